//! [`RuleStrategy`]: a strategy defined by a `[[strategy]]` table — its `buy` and `sell`
//! conditions, compiled once, give the signals; [`Hold`] turns them into views as for the
//! built-ins; the optional `score` expression gives the strength for weighted confluence.
//!
//! Alone it steps its own program; in an engine it compiles itself again into the engine's
//! shared graph ([`Strategy::share`]), so an indicator several strategies use is stepped once.

use std::sync::Arc;

use crate::graph::{Graph, GraphBuilder};
use crate::model::{Action, Candle};
use crate::strategy::hold::{Hold, Signal};
use crate::strategy::{Decision, Reason, Strategy, StrategyError};

use super::compile::lookbacks;
use super::eval::{Ix, Node, Program};
use super::mtf::base_of;
use super::{Roots, RuleDef};

/// A compiled rule strategy.
#[derive(Debug, Clone)]
pub struct RuleStrategy {
    pub(crate) id: &'static str,
    /// Its own program; empty once shared.
    pub(crate) prog: Program,
    pub(crate) buy: Ix,
    pub(crate) sell: Ix,
    pub(crate) score: Option<Ix>,
    pub(crate) hold: Hold,
    /// The definition, to compile it again into an engine's graph; dropped once shared.
    def: Option<Arc<RuleDef>>,
    /// True once its nodes live in an engine's graph (`buy`, `sell`, `score` index it).
    shared: bool,
    seen: u64,
    warmup: usize,
    has_on: bool,
}

impl RuleStrategy {
    pub(crate) fn new(
        def: Arc<RuleDef>,
        mut prog: Program,
        (buy, sell, score): Roots,
        hold: usize,
    ) -> Self {
        // A score is wanted only on the candles with a signal: computed then, not stepped.
        let new = prog.partition(&[buy, sell]);
        let (buy, sell) = (new[buy as usize], new[sell as usize]);
        let score = score.map(|ix| new[ix as usize]);
        let has_on = prog.nodes.iter().any(|n| matches!(n, Node::On(_)));
        let mut s = RuleStrategy {
            id: def.id,
            prog,
            buy,
            sell,
            score,
            hold: Hold::new(hold),
            def: Some(def),
            shared: false,
            seen: 0,
            warmup: 0,
            has_on,
        };
        s.warmup = s.warmup_at(None);
        s
    }

    /// The warm-up in candles of `base_ms` (the longest lookback of any part, plus one).
    pub fn warmup_at(&self, base_ms: Option<i64>) -> usize {
        if self.shared {
            return self.warmup;
        }
        self.warmup_in(&self.prog, base_ms)
    }

    /// The warm-up over the program holding its nodes. A node's lookback is at least that of
    /// every node it reads, so the longest is at a root.
    fn warmup_in(&self, prog: &Program, base_ms: Option<i64>) -> usize {
        let lb = lookbacks(prog, base_ms);
        [Some(self.buy), Some(self.sell), self.score]
            .into_iter()
            .flatten()
            .map(|ix| lb[ix as usize])
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }

    /// The decision from the values of its nodes in `graph`, or in its own program.
    #[inline(always)]
    fn judge(&mut self, c: &Candle, graph: Option<&Program>) -> Decision {
        let prog = match graph {
            Some(g) => g,
            None => &self.prog,
        };
        if self.seen == 0 && self.has_on {
            // The stream's interval is known from its first candle: the warm-up of on(...)
            // counts higher candles in base candles.
            self.warmup = self.warmup_in(prog, Some(base_of(c)));
        }
        self.seen += 1;
        // Nothing is said before the warm-up has passed, even when an `or` could already be
        // decided: the declared warm-up is when the strategy starts speaking.
        let ready = self.seen >= self.warmup as u64;
        let buy = ready && prog.value(self.buy) == 1.0;
        let sell = ready && prog.value(self.sell) == 1.0;
        if buy != sell {
            let strength = self
                .score
                .map(|ix| prog.eval(ix, c).abs())
                .filter(|v| !v.is_nan())
                .unwrap_or(1.0);
            let d = if buy {
                Decision::new(Action::Buy, strength, Reason::text("buy rule true"))
            } else {
                Decision::new(Action::Sell, -strength, Reason::text("sell rule true"))
            };
            // A signal always makes the view; what to say without one is never needed.
            return self
                .hold
                .step(c, Some(Signal::new(d)), Decision::WARMING_UP);
        }
        if buy {
            // Both ways at once: no side can be taken, nor kept.
            self.hold.end();
            return Decision::hold(Reason::text("buy and sell rules both true"));
        }
        let idle = if ready {
            Decision::hold(Reason::text("no rule true"))
        } else {
            Decision::WARMING_UP
        };
        self.hold.step(c, None, idle)
    }
}

impl Strategy for RuleStrategy {
    fn id(&self) -> &'static str {
        self.id
    }

    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        if self.shared {
            return Err(StrategyError(format!(
                "{}: its nodes are in an engine's graph; the engine steps it",
                self.id
            )));
        }
        self.prog
            .step(c)
            .map_err(|e| StrategyError(format!("{}: {e}", self.id)))?;
        Ok(self.judge(c, None))
    }

    fn share(&mut self, graph: &mut GraphBuilder) -> bool {
        let Some(def) = self.def.as_ref().filter(|_| !self.shared && self.seen == 0) else {
            return false;
        };
        // It compiled alone, so it compiles again; if not, it keeps its own program.
        let Ok((buy, sell, score)) = def.compile_into(&mut graph.c) else {
            return false;
        };
        (self.buy, self.sell, self.score) = (buy, sell, score);
        self.prog = Program::default();
        self.def = None;
        self.shared = true;
        true
    }

    fn placed(&mut self, graph: &Graph) {
        if self.shared {
            self.buy = graph.place(self.buy);
            self.sell = graph.place(self.sell);
            self.score = self.score.map(|ix| graph.place(ix));
        }
    }

    fn decide(&mut self, c: &Candle, graph: &Graph) -> Result<Decision, StrategyError> {
        if !self.shared {
            return self.on_candle(c);
        }
        let roots = [Some(self.buy), Some(self.sell), self.score];
        if let Some(f) = roots.into_iter().flatten().find_map(|ix| graph.fault(ix)) {
            return Err(StrategyError(format!("{}: {f}", self.id)));
        }
        Ok(self.judge(c, Some(&graph.prog)))
    }

    fn reset(&mut self) {
        self.prog.reset();
        self.hold.reset();
        self.seen = 0;
    }

    fn warmup(&self) -> usize {
        self.warmup
    }

    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
