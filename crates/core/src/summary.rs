//! [`Moves`]: what a run decided, counted as it goes, and the hint a command prints when it
//! decided nothing at all (so "3,000 HOLDs and no trade" never comes without a reason).

use crate::confluence::{Mode, Outcome};
use crate::engine::SignalEngine;
use crate::model::Action;

/// Counts closed candles, candles with a view, and *moves*: candles on which the decision
/// changed to BUY or SELL.
#[derive(Debug, Clone, Default)]
pub struct Moves {
    prev: Option<Action>,
    /// Closed candles seen.
    pub candles: u64,
    /// Candles on which the decision became BUY or SELL.
    pub moves: u64,
    /// Candles on which at least one strategy had a view.
    pub with_views: u64,
}

impl Moves {
    /// Counts the outcome of one closed candle.
    pub fn observe(&mut self, o: &Outcome) {
        self.candles += 1;
        if o.votes.buy + o.votes.sell > 0 {
            self.with_views += 1;
        }
        if o.action != Action::Hold && self.prev != Some(o.action) {
            self.moves += 1;
        }
        self.prev = Some(o.action);
    }

    /// `None` when the run decided something; otherwise one line saying so, with the likely
    /// cause and what to try.
    pub fn no_decision_hint(&self, engine: &SignalEngine) -> Option<String> {
        if self.moves > 0 {
            return None;
        }
        let n = engine.slots().len();
        let mode = engine.rule().mode;
        let what = format!(
            "0 BUY/SELL decisions in {} candle{}",
            self.candles,
            if self.candles == 1 { "" } else { "s" }
        );
        let warmup = engine.warmup() as u64;
        // The engine's own count: a live run warms up on bootstrap candles it makes no record of.
        let cause = if engine.candles() < warmup {
            format!(
                "the strategies need {warmup} candles of warm-up before they can speak; give \
                 more history"
            )
        } else if self.with_views == 0 {
            "no selected strategy ever had a view; try other strategies or parameters".into()
        } else {
            let why = match mode {
                Mode::All => "their views never all pointed the same way",
                Mode::Majority => "never more than half of their views pointed the same way",
                Mode::Any => "whenever one had a view, another opposed it",
                Mode::Weighted => "the weighted score never reached the threshold",
            };
            let plural = if n == 1 { "y" } else { "ies" };
            let tip = match mode {
                Mode::Any => "try --strategies trend --confluence majority",
                Mode::Weighted => "lower --threshold, or try --strategies trend",
                Mode::All | Mode::Majority => {
                    "try --strategies trend (one family agrees more often than a mix) or \
                     --confluence weighted"
                }
            };
            format!("confluence {mode} over {n} strateg{plural} never agreed: {why}; {tip}")
        };
        Some(format!("{what}: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::Rule;
    use crate::model::Candle;

    fn candles(n: usize) -> Vec<Candle> {
        (0..n)
            .map(|i| {
                let p = 100.0 + (i as f64 * 0.2).sin() * 10.0;
                Candle {
                    open_time: i as i64 * 60_000,
                    close_time: i as i64 * 60_000 + 59_999,
                    open: p,
                    high: p + 1.0,
                    low: p - 1.0,
                    close: p,
                    volume: 1.0,
                }
            })
            .collect()
    }

    fn run(ids: &[&str], mode: Mode, n: usize) -> (Moves, SignalEngine) {
        let mut e = SignalEngine::from_ids(ids, Rule::new(mode, ids.len())).unwrap();
        let mut m = Moves::default();
        for c in candles(n) {
            m.observe(&e.on_closed(&c));
        }
        (m, e)
    }

    #[test]
    fn a_run_with_moves_has_no_hint() {
        let (m, e) = run(&["ema_crossover"], Mode::Any, 400);
        assert!(m.moves > 0, "a sine wave crosses");
        assert_eq!(m.no_decision_hint(&e), None);
    }

    #[derive(Debug, Clone)]
    struct Fixed(Action);
    impl crate::strategy::Strategy for Fixed {
        fn id(&self) -> &'static str {
            match self.0 {
                Action::Buy => "buyer",
                Action::Sell => "seller",
                Action::Hold => "idle",
            }
        }
        fn on_candle(
            &mut self,
            _: &Candle,
        ) -> Result<crate::strategy::Decision, crate::strategy::StrategyError> {
            let score =
                f64::from(i8::from(self.0 == Action::Buy) - i8::from(self.0 == Action::Sell));
            Ok(crate::strategy::Decision::new(
                self.0,
                score,
                crate::strategy::Reason::text("fixed"),
            ))
        }
        fn reset(&mut self) {}
        fn warmup(&self) -> usize {
            0
        }
        fn clone_box(&self) -> Box<dyn crate::strategy::Strategy> {
            Box::new(self.clone())
        }
    }

    fn fixed(views: &[Action], mode: Mode) -> (Moves, SignalEngine) {
        let s: Vec<Box<dyn crate::strategy::Strategy>> =
            views.iter().map(|a| Box::new(Fixed(*a)) as _).collect();
        let mut e = SignalEngine::new(s, Rule::new(mode, views.len())).unwrap();
        let mut m = Moves::default();
        for c in candles(50) {
            m.observe(&e.on_closed(&c));
        }
        (m, e)
    }

    #[test]
    fn hints_name_the_cause() {
        let (m, e) = run(&["ema_crossover", "macd"], Mode::Majority, 10);
        let h = m.no_decision_hint(&e).unwrap();
        assert!(h.starts_with("0 BUY/SELL decisions in 10 candles"), "{h}");
        assert!(h.contains("warm-up"), "{h}");

        let (m, e) = fixed(&[Action::Buy, Action::Sell], Mode::All);
        assert_eq!((m.moves, m.with_views), (0, 50));
        let h = m.no_decision_hint(&e).unwrap();
        assert!(
            h.contains("confluence all over 2 strategies never agreed"),
            "{h}"
        );
        assert!(h.contains("--strategies trend"), "{h}");

        let (m, e) = fixed(&[Action::Hold, Action::Hold], Mode::Any);
        let h = m.no_decision_hint(&e).unwrap();
        assert!(h.contains("no selected strategy ever had a view"), "{h}");

        let (m, e) = fixed(&[Action::Buy, Action::Hold], Mode::Any);
        assert_eq!(m.moves, 1, "one move: the decision stays BUY");
        assert_eq!(m.no_decision_hint(&e), None);
    }
}
