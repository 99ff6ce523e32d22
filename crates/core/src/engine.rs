//! The signal engine: the selected strategies plus a confluence rule, fed one closed candle at a
//! time. Live trading and backtests make exactly the same call, [`SignalEngine::on_closed`].

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Map, Value};

use crate::confluence::{self, Outcome, Rule};
use crate::error::CoreError;
use crate::graph::{Graph, GraphBuilder, panic_message};
use crate::model::Candle;
use crate::strategy::{self, Decision, Reason, Strategy};

/// One strategy and its bookkeeping.
#[derive(Debug, Clone)]
pub struct Slot {
    strategy: Box<dyn Strategy>,
    /// Open time of the candle on which its action last changed.
    pub changed_at: Option<i64>,
    /// How many candles it failed on (error or panic).
    pub failures: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

impl Slot {
    /// The strategy's id.
    pub fn id(&self) -> &'static str {
        self.strategy.id()
    }
}

/// Strategies + confluence, stepping in lock-step over closed candles.
#[derive(Debug, Clone)]
pub struct SignalEngine {
    slots: Vec<Slot>,
    /// The streaming nodes the strategies share, stepped once per candle before they decide.
    graph: Graph,
    decisions: Vec<Decision>,
    rule: Rule,
    last: Outcome,
    candles: u64,
    /// The longest warm-up of the strategies (fixed per instance).
    warmup: usize,
}

/// A strategy selection with its parameter overrides.
#[derive(Debug, Clone, Default)]
pub struct StrategySpec {
    /// Strategy id.
    pub id: String,
    /// Overrides of its default parameters.
    pub params: Map<String, Value>,
}

impl SignalEngine {
    /// An engine over already-built strategies.
    pub fn new(strategies: Vec<Box<dyn Strategy>>, rule: Rule) -> Result<Self, CoreError> {
        if strategies.is_empty() {
            return Err(CoreError::NoStrategies);
        }
        let n = strategies.len();
        let mut builder = GraphBuilder::default();
        let mut slots: Vec<Slot> = strategies
            .into_iter()
            .map(|mut strategy| {
                strategy.share(&mut builder);
                strategy
            })
            .map(|strategy| Slot {
                strategy,
                changed_at: None,
                failures: 0,
                last_error: None,
            })
            .collect();
        let graph = builder.finish();
        for slot in &mut slots {
            slot.strategy.placed(&graph);
        }
        let warmup = warmup_of(&slots);
        Ok(SignalEngine {
            slots,
            graph,
            decisions: vec![Decision::WARMING_UP; n],
            rule,
            last: Outcome::NONE,
            candles: 0,
            warmup,
        })
    }

    /// Builds the strategies from specs.
    pub fn from_specs(specs: &[StrategySpec], rule: Rule) -> Result<Self, CoreError> {
        let strategies = specs
            .iter()
            .map(|s| strategy::build(&s.id, &s.params))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(strategies, rule)
    }

    /// Builds strategies by id with default parameters.
    pub fn from_ids(ids: &[&str], rule: Rule) -> Result<Self, CoreError> {
        let specs: Vec<_> = ids
            .iter()
            .map(|id| StrategySpec {
                id: id.to_string(),
                params: Map::new(),
            })
            .collect();
        Self::from_specs(&specs, rule)
    }

    /// Feeds one closed candle to every strategy and combines their decisions. A strategy that
    /// errors or panics holds for this candle and is counted; the others go on.
    pub fn on_closed(&mut self, c: &Candle) -> Outcome {
        // Shared nodes first, once; a node that fails fails the strategies reading it.
        self.graph.step(c);
        // One panic guard around the loop, not one per strategy (≈ 13 instructions each): a
        // panicking strategy is found by `next`, failed and reset, and the loop goes on from
        // the strategy after it, so every other strategy decides exactly as before.
        let mut next = 0;
        loop {
            let (slots, decisions, graph) = (&mut self.slots, &mut self.decisions, &self.graph);
            let from = next;
            let done = catch_unwind(AssertUnwindSafe(|| {
                for i in from..slots.len() {
                    // Where a panic would come from.
                    next = i;
                    let slot = &mut slots[i];
                    let d = match slot.strategy.decide(c, graph) {
                        Ok(d) => d,
                        Err(e) => fail(slot, e.0),
                    };
                    record(slot, &mut decisions[i], d, c);
                }
            }));
            let Err(panic) = done else { break };
            let msg = panic_message(&*panic);
            let slot = &mut self.slots[next];
            // Its state may be half-updated: start it over rather than trust it (a sharing
            // strategy's own state; the graph's nodes did not panic).
            slot.strategy.reset();
            let d = fail(slot, format!("panicked: {msg}"));
            record(slot, &mut self.decisions[next], d, c);
            next += 1;
        }
        self.candles += 1;
        if self.candles == 1 {
            // A rule strategy with on(...) learns the stream's interval from its first candle,
            // and with it how many base candles its higher-timeframe warm-up takes.
            self.warmup = warmup_of(&self.slots);
        }
        self.last = confluence::combine(&self.rule, &self.decisions);
        self.last
    }

    /// What the engine would say if the forming candle `c` closed now; commits nothing.
    pub fn provisional(&self, c: &Candle) -> (Outcome, Vec<Decision>) {
        let mut copy = self.clone();
        let out = copy.on_closed(c);
        (out, copy.decisions)
    }

    /// The decisions on the last closed candle, one per strategy, in the order of [`Self::slots`].
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The streaming nodes the strategies share.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The strategies with their bookkeeping.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The ids, in order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.slots.iter().map(Slot::id).collect()
    }

    /// The last confluence outcome.
    pub fn last(&self) -> Outcome {
        self.last
    }

    /// Closed candles seen.
    pub fn candles(&self) -> u64 {
        self.candles
    }

    /// Total strategy failures.
    pub fn failures(&self) -> u64 {
        self.slots.iter().map(|s| s.failures).sum()
    }

    /// The confluence rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// Candles needed before every strategy can speak.
    pub fn warmup(&self) -> usize {
        self.warmup
    }

    /// True while some strategy has not seen enough candles to have a view.
    pub fn warming_up(&self) -> bool {
        self.candles < self.warmup as u64
    }
}

/// Candles before every strategy can speak: the longest warm-up.
fn warmup_of(slots: &[Slot]) -> usize {
    slots.iter().map(|s| s.strategy.warmup()).max().unwrap_or(0)
}

/// Stores a slot's decision. `decisions` is the one copy of each view (a second one per slot
/// cost ~3 % of the engine's instructions): compare before overwriting.
#[inline]
fn record(slot: &mut Slot, out: &mut Decision, d: Decision, c: &Candle) {
    if d.action != out.action {
        slot.changed_at = Some(c.open_time);
    }
    *out = d;
}

#[cold]
fn fail(slot: &mut Slot, msg: String) -> Decision {
    slot.failures += 1;
    slot.last_error = Some(msg);
    Decision::hold(Reason::text("error"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::Mode;
    use crate::model::Action;
    use crate::strategy::StrategyError;

    #[derive(Debug, Clone)]
    struct Fixed(Action, bool);
    impl Strategy for Fixed {
        fn id(&self) -> &'static str {
            if self.1 { "boom" } else { "fixed" }
        }
        fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
            if self.1 && c.open_time % 2 == 0 {
                panic!("bad candle {}", c.open_time);
            }
            if self.1 {
                return Err(StrategyError("odd".into()));
            }
            Ok(Decision::new(self.0, 1.0, Reason::text("fixed")))
        }
        fn reset(&mut self) {}
        fn warmup(&self) -> usize {
            0
        }
        fn clone_box(&self) -> Box<dyn Strategy> {
            Box::new(self.clone())
        }
    }

    fn candle(t: i64) -> Candle {
        Candle {
            open_time: t,
            close_time: t + 1,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 0.0,
        }
    }

    #[test]
    fn failing_strategy_is_isolated_and_counted() {
        let strategies: Vec<Box<dyn Strategy>> = vec![
            Box::new(Fixed(Action::Buy, false)),
            Box::new(Fixed(Action::Hold, true)),
        ];
        let mut e = SignalEngine::new(strategies, Rule::new(Mode::Any, 2)).unwrap();
        for t in 0..4 {
            let o = e.on_closed(&candle(t));
            assert_eq!(
                o.action,
                Action::Buy,
                "the healthy strategy still drives ANY"
            );
        }
        assert_eq!(e.slots()[1].failures, 4);
        assert_eq!(e.failures(), 4);
        assert!(e.slots()[1].last_error.as_deref().unwrap().contains("odd"));
        assert_eq!(e.candles(), 4);
    }

    #[test]
    fn strategies_after_a_panicking_one_still_decide() {
        // One panic guard covers the loop: the loop must resume after the panicking slot.
        let strategies: Vec<Box<dyn Strategy>> = vec![
            Box::new(Fixed(Action::Hold, true)),
            Box::new(Fixed(Action::Buy, false)),
            Box::new(Fixed(Action::Hold, true)),
            Box::new(Fixed(Action::Buy, false)),
        ];
        let mut e = SignalEngine::new(strategies, Rule::new(Mode::Any, 4)).unwrap();
        for t in 0..6 {
            let o = e.on_closed(&candle(t));
            assert_eq!(o.action, Action::Buy, "candle {t}");
            let actions: Vec<Action> = e.decisions().iter().map(|d| d.action).collect();
            assert_eq!(
                actions,
                [Action::Hold, Action::Buy, Action::Hold, Action::Buy]
            );
        }
        let failures: Vec<u64> = e.slots().iter().map(|s| s.failures).collect();
        assert_eq!(failures, [6, 0, 6, 0]);
        assert!(e.slots()[2].last_error.as_deref().unwrap().contains("odd"));
        e.on_closed(&candle(6));
        let msg = e.slots()[0].last_error.as_deref().unwrap();
        assert!(msg.contains("panicked: bad candle 6"), "{msg}");
        assert_eq!(e.slots()[1].changed_at, Some(0));
    }

    #[test]
    fn provisional_commits_nothing() {
        let mut e =
            SignalEngine::from_ids(&["rsi_mean_reversion"], Rule::new(Mode::Any, 1)).unwrap();
        let before = e.candles();
        let _ = e.provisional(&candle(1));
        assert_eq!(e.candles(), before);
        e.on_closed(&candle(1));
        assert_eq!(e.candles(), before + 1);
    }

    #[test]
    fn built_ins_sharing_the_graph_decide_as_alone() {
        use crate::rules::eval::Node;
        let ids = &strategy::IDS;
        let mut e = SignalEngine::from_ids(ids, Rule::new(Mode::Majority, ids.len())).unwrap();
        // BOS and CHoCH read one structure node; it, order blocks and sweeps one swing tracker.
        let count = |f: fn(&Node) -> bool| e.graph().prog.nodes.iter().filter(|n| f(n)).count();
        assert_eq!(count(|n| matches!(n, Node::Swings(..))), 1);
        assert_eq!(
            count(|n| matches!(n, Node::Smc(..))),
            4,
            "structure, ob, fvg, sweep"
        );
        let mut alone: Vec<_> = ids
            .iter()
            .map(|id| strategy::build(id, &Map::new()).unwrap())
            .collect();
        let mut fired = 0;
        for (t, c) in crate::testing::synthetic(3, 5000).iter().enumerate() {
            e.on_closed(c);
            for (i, s) in alone.iter_mut().enumerate() {
                let d = s.on_candle(c).unwrap();
                let got = e.decisions()[i];
                assert_eq!(
                    (
                        got.action,
                        got.score.to_bits(),
                        got.reason.to_string(),
                        got.event
                    ),
                    (d.action, d.score.to_bits(), d.reason.to_string(), d.event),
                    "{} on candle {t}",
                    s.id()
                );
                fired += usize::from(d.event && ids[i].starts_with("smc"));
            }
        }
        assert!(fired > 50, "SMC events compared: {fired}");
        assert_eq!(e.failures(), 0);
    }

    #[test]
    fn no_strategies_is_an_error() {
        assert!(matches!(
            SignalEngine::new(vec![], Rule::new(Mode::All, 0)),
            Err(CoreError::NoStrategies)
        ));
    }
}
