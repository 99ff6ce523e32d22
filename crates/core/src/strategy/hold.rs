//! [`Hold`]: how long a strategy's view lasts.
//!
//! Strategies see *signals*: a crossover or an SMC break happens on one candle (an event), an
//! RSI extreme holds while it lasts (a state). Confluence needs *views*: what each strategy
//! thinks now. A view begins with a signal and lasts `hold` candles counted from the last candle
//! that signalled it (the signal candle is the first), unless the opposite signal replaces it or
//! the close goes back through the view's invalidation level. `hold = 1` is the bare signal.
//! Everything is decided on the candle's own close: a view about candle `t` never looks past `t`.

use crate::model::{Action, Candle};

use super::Decision;

/// A signal with the close beyond which its view no longer holds: below `level` for a BUY,
/// above it for a SELL (`None`: only time or the opposite signal end it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The BUY or SELL decision of this candle.
    pub decision: Decision,
    /// The invalidation level.
    pub level: Option<f64>,
}

impl Signal {
    /// A signal without an invalidation level.
    pub fn new(decision: Decision) -> Self {
        Signal {
            decision,
            level: None,
        }
    }
    /// A signal invalidated by a close back through `level`.
    pub fn until_close_beyond(decision: Decision, level: f64) -> Self {
        Signal {
            decision,
            level: Some(level),
        }
    }
}

/// Turns per-candle signals into a persistent view. O(1) per candle, a few words of state.
#[derive(Debug, Clone)]
pub struct Hold {
    hold: usize,
    left: usize,
    view: Option<Signal>,
}

impl Hold {
    /// Views last `hold` candles (at least 1).
    pub fn new(hold: usize) -> Self {
        Hold {
            hold: hold.max(1),
            left: 0,
            view: None,
        }
    }

    /// One closed candle. `signal` is this candle's BUY or SELL (if any), `idle` what to say when
    /// there is no view. Returns the view with `event` set when it began on this candle.
    pub fn step(&mut self, c: &Candle, signal: Option<Signal>, idle: Decision) -> Decision {
        if let Some(s) = signal.filter(|s| s.decision.action != Action::Hold) {
            let began = self.view.map(|v| v.decision.action) != Some(s.decision.action);
            self.view = Some(s);
            self.left = self.hold;
            return Decision {
                event: began,
                ..s.decision
            };
        }
        if let Some(v) = self.view {
            let broken = match (v.decision.action, v.level) {
                (Action::Buy, Some(l)) => c.close < l,
                (Action::Sell, Some(l)) => c.close > l,
                _ => false,
            };
            self.left = self.left.saturating_sub(1);
            if !broken && self.left > 0 {
                return Decision {
                    event: false,
                    ..v.decision
                };
            }
            self.view = None;
        }
        idle
    }

    /// Ends the current view now (a strategy's own invalidation, e.g. the cross reversed).
    pub fn end(&mut self) {
        self.view = None;
        self.left = 0;
    }

    /// The current view's action (HOLD when none).
    pub fn view(&self) -> Action {
        self.view.map_or(Action::Hold, |v| v.decision.action)
    }

    /// Forgets the view.
    pub fn reset(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Reason;

    fn candle(close: f64) -> Candle {
        Candle {
            open_time: 0,
            close_time: 59_999,
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }

    fn sig(a: Action, level: Option<f64>) -> Option<Signal> {
        let score = match a {
            Action::Buy => 1.0,
            Action::Sell => -1.0,
            Action::Hold => 0.0,
        };
        Some(Signal {
            decision: Decision::new(a, score, Reason::text("s")),
            level,
        })
    }

    /// `(close, signal)` per candle → `(view, event)` per candle.
    fn run(hold: usize, steps: &[(f64, Option<Signal>)]) -> Vec<(Action, bool)> {
        let mut h = Hold::new(hold);
        let idle = Decision::hold(Reason::text("idle"));
        steps
            .iter()
            .map(|(close, s)| {
                let d = h.step(&candle(*close), *s, idle);
                assert_eq!(d.action, h.view(), "view() agrees with the returned view");
                (d.action, d.event)
            })
            .collect()
    }

    #[test]
    fn table() {
        use Action::{Buy as B, Hold as H, Sell as S};
        struct Case {
            name: &'static str,
            hold: usize,
            steps: Vec<(f64, Option<Signal>)>,
            expected: Vec<(Action, bool)>,
        }
        let cases = [
            Case {
                name: "hold 1 is the bare signal",
                hold: 1,
                steps: vec![(1.0, sig(B, None)), (1.0, None), (1.0, sig(S, None))],
                expected: vec![(B, true), (H, false), (S, true)],
            },
            Case {
                name: "hold 3 lasts three candles from the signal",
                hold: 3,
                steps: vec![(1.0, sig(B, None)), (1.0, None), (1.0, None), (1.0, None)],
                expected: vec![(B, true), (B, false), (B, false), (H, false)],
            },
            Case {
                name: "a repeated signal renews the view without a new event",
                hold: 2,
                steps: vec![
                    (1.0, sig(B, None)),
                    (1.0, sig(B, None)),
                    (1.0, None),
                    (1.0, None),
                ],
                expected: vec![(B, true), (B, false), (B, false), (H, false)],
            },
            Case {
                name: "the opposite signal replaces the view",
                hold: 5,
                steps: vec![(1.0, sig(B, None)), (1.0, None), (1.0, sig(S, None))],
                expected: vec![(B, true), (B, false), (S, true)],
            },
            Case {
                name: "a close back through the level ends a BUY view",
                hold: 5,
                steps: vec![
                    (10.0, sig(B, Some(9.0))),
                    (9.5, None),
                    (8.9, None),
                    (10.0, None),
                ],
                expected: vec![(B, true), (B, false), (H, false), (H, false)],
            },
            Case {
                name: "a close above the level ends a SELL view; the signal candle is not checked",
                hold: 5,
                steps: vec![(12.0, sig(S, Some(11.0))), (10.0, None), (11.5, None)],
                expected: vec![(S, true), (S, false), (H, false)],
            },
        ];
        for c in cases {
            assert_eq!(run(c.hold, &c.steps), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn end_and_reset_forget_the_view() {
        let mut h = Hold::new(10);
        let idle = Decision::hold(Reason::text("idle"));
        h.step(&candle(1.0), sig(Action::Buy, None), idle);
        h.end();
        assert_eq!(h.step(&candle(1.0), None, idle).action, Action::Hold);
        let d = h.step(&candle(1.0), sig(Action::Buy, None), idle);
        assert!(d.event, "a view after end() is a new one");
        h.reset();
        assert_eq!(h.view(), Action::Hold);
    }
}
