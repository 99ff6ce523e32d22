//! [`RuleStrategy`]: a strategy defined by a `[[strategy]]` table — its `buy` and `sell`
//! conditions, compiled once, give the signals; [`Hold`] turns them into views as for the
//! built-ins; the optional `score` expression gives the strength for weighted confluence.

use crate::model::{Action, Candle};
use crate::strategy::hold::{Hold, Signal};
use crate::strategy::{Decision, Reason, Strategy, StrategyError};

use super::compile::lookbacks;
use super::eval::{Ix, Node, Program};
use super::mtf::base_of;

/// A compiled rule strategy.
#[derive(Debug, Clone)]
pub struct RuleStrategy {
    pub(crate) id: &'static str,
    pub(crate) prog: Program,
    pub(crate) buy: Ix,
    pub(crate) sell: Ix,
    pub(crate) score: Option<Ix>,
    pub(crate) hold: Hold,
    seen: u64,
    warmup: usize,
    has_on: bool,
}

impl RuleStrategy {
    pub(crate) fn new(
        id: &'static str,
        prog: Program,
        (buy, sell, score): (Ix, Ix, Option<Ix>),
        hold: usize,
    ) -> Self {
        let has_on = prog.nodes.iter().any(|n| matches!(n, Node::On(_)));
        let mut s = RuleStrategy {
            id,
            prog,
            buy,
            sell,
            score,
            hold: Hold::new(hold),
            seen: 0,
            warmup: 0,
            has_on,
        };
        s.warmup = s.warmup_at(None);
        s
    }

    /// The warm-up in candles of `base_ms` (the longest lookback of any part, plus one).
    pub fn warmup_at(&self, base_ms: Option<i64>) -> usize {
        lookbacks(&self.prog, base_ms)
            .into_iter()
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }
}

impl Strategy for RuleStrategy {
    fn id(&self) -> &'static str {
        self.id
    }

    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        self.prog
            .step(c)
            .map_err(|e| StrategyError(format!("{}: {e}", self.id)))?;
        if self.seen == 0 && self.has_on {
            // The stream's interval is known from its first candle: the warm-up of on(...)
            // counts higher candles in base candles.
            self.warmup = self.warmup_at(Some(base_of(c)));
        }
        self.seen += 1;
        // Nothing is said before the warm-up has passed, even when an `or` could already be
        // decided: the declared warm-up is when the strategy starts speaking.
        let ready = self.seen >= self.warmup as u64;
        let buy = ready && self.prog.value(self.buy) == 1.0;
        let sell = ready && self.prog.value(self.sell) == 1.0;
        let strength = self
            .score
            .map(|ix| self.prog.value(ix).abs())
            .filter(|v| !v.is_nan())
            .unwrap_or(1.0);
        let signal = match (buy, sell) {
            (true, false) => Some(Decision::new(
                Action::Buy,
                strength,
                Reason::text("buy rule true"),
            )),
            (false, true) => Some(Decision::new(
                Action::Sell,
                -strength,
                Reason::text("sell rule true"),
            )),
            (true, true) => {
                // Both ways at once: no side can be taken, nor kept.
                self.hold.end();
                None
            }
            (false, false) => None,
        };
        let idle = if !ready {
            Decision::WARMING_UP
        } else if buy && sell {
            Decision::hold(Reason::text("buy and sell rules both true"))
        } else {
            Decision::hold(Reason::text("no rule true"))
        };
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
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
