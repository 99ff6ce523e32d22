//! Combining strategy views: [`Mode`] (ALL / ANY / MAJORITY / WEIGHTED) and [`Outcome`].
//!
//! Each strategy's [`Decision`] is its *view* on the last closed candle (BUY, SELL or none),
//! which for event strategies lasts several candles (see [`crate::strategy::Hold`]); the modes
//! combine views, so events of different strategies a few candles apart can agree.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::model::Action;
use crate::strategy::Decision;

/// How decisions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every selected strategy agrees.
    All,
    /// At least one says BUY (or SELL) and none says the opposite.
    Any,
    /// More than half agree.
    #[default]
    Majority,
    /// The weighted mean score crosses ±threshold.
    Weighted,
}

impl Mode {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Any => "any",
            Mode::Majority => "majority",
            Mode::Weighted => "weighted",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        match s.to_ascii_lowercase().as_str() {
            "all" => Ok(Mode::All),
            "any" => Ok(Mode::Any),
            "majority" => Ok(Mode::Majority),
            "weighted" => Ok(Mode::Weighted),
            _ => Err(CoreError::UnknownConfluence(s.to_string())),
        }
    }
}

/// A confluence rule: the mode, per-strategy weights (aligned with the strategies) and the
/// WEIGHTED threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The mode.
    pub mode: Mode,
    /// One weight per strategy, in the engine's order (all 1.0 by default).
    pub weights: Vec<f64>,
    /// WEIGHTED fires when the weighted mean score is ≥ threshold (BUY) or ≤ −threshold (SELL).
    pub threshold: f64,
}

impl Rule {
    /// A rule with equal weights for `n` strategies and a 0.3 WEIGHTED threshold.
    pub fn new(mode: Mode, n: usize) -> Self {
        Rule {
            mode,
            weights: vec![1.0; n],
            threshold: 0.3,
        }
    }
}

/// How many views are BUY, SELL and none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Votes {
    /// Strategies whose view is BUY.
    pub buy: u32,
    /// Strategies whose view is SELL.
    pub sell: u32,
    /// Strategies without a view.
    pub none: u32,
}

/// The combined decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// BUY, SELL or HOLD.
    pub action: Action,
    /// Share of strategies (weight share under WEIGHTED) whose view equals `action`; 0 for
    /// HOLD (no view agrees with "no decision").
    pub confidence: f64,
    /// Bit `i` set when strategy `i`'s view agrees with a BUY or SELL `action` (up to 64
    /// strategies); empty for HOLD.
    pub agreeing: u64,
    /// Bit `i` set when strategy `i`'s view began on this candle.
    pub events: u64,
    /// The views counted.
    pub votes: Votes,
}

impl Outcome {
    /// HOLD with no views.
    pub const NONE: Outcome = Outcome {
        action: Action::Hold,
        confidence: 0.0,
        agreeing: 0,
        events: 0,
        votes: Votes {
            buy: 0,
            sell: 0,
            none: 0,
        },
    };
    /// Indices of the agreeing strategies.
    pub fn agreeing_indices(&self) -> impl Iterator<Item = usize> + '_ {
        bits(self.agreeing)
    }
    /// Indices of the strategies whose view began on this candle.
    pub fn event_indices(&self) -> impl Iterator<Item = usize> + '_ {
        bits(self.events)
    }
}

fn bits(mask: u64) -> impl Iterator<Item = usize> {
    (0..64).filter(move |i| mask & (1u64 << i) != 0)
}

/// Combines decisions under `rule`. O(n) in the number of strategies, no allocation.
pub fn combine(rule: &Rule, decisions: &[Decision]) -> Outcome {
    let n = decisions.len();
    if n == 0 {
        return Outcome::NONE;
    }
    let (mut buys, mut sells) = (0usize, 0usize);
    let mut events = 0u64;
    for (i, d) in decisions.iter().enumerate() {
        match d.action {
            Action::Buy => buys += 1,
            Action::Sell => sells += 1,
            Action::Hold => {}
        }
        if d.event && i < 64 {
            events |= 1 << i;
        }
    }
    let votes = Votes {
        buy: buys as u32,
        sell: sells as u32,
        none: (n - buys - sells) as u32,
    };
    let action = match rule.mode {
        Mode::All if buys == n => Action::Buy,
        Mode::All if sells == n => Action::Sell,
        Mode::Any if buys > 0 && sells == 0 => Action::Buy,
        Mode::Any if sells > 0 && buys == 0 => Action::Sell,
        Mode::Majority if 2 * buys > n => Action::Buy,
        Mode::Majority if 2 * sells > n => Action::Sell,
        Mode::Weighted => {
            let (mut sum, mut wsum) = (0.0, 0.0);
            for (d, w) in decisions.iter().zip(weights(rule, n)) {
                sum += w * d.score;
                wsum += w;
            }
            let mean = if wsum > 0.0 { sum / wsum } else { 0.0 };
            if mean >= rule.threshold && mean > 0.0 {
                Action::Buy
            } else if mean <= -rule.threshold && mean < 0.0 {
                Action::Sell
            } else {
                Action::Hold
            }
        }
        _ => Action::Hold,
    };
    if action == Action::Hold {
        return Outcome {
            events,
            votes,
            ..Outcome::NONE
        };
    }
    let mut agreeing = 0u64;
    let (mut agree_w, mut total_w) = (0.0, 0.0);
    for (i, (d, w)) in decisions.iter().zip(weights(rule, n)).enumerate() {
        total_w += w;
        if d.action == action {
            agree_w += w;
            if i < 64 {
                agreeing |= 1 << i;
            }
        }
    }
    let confidence = match rule.mode {
        Mode::Weighted if total_w > 0.0 => agree_w / total_w,
        _ => agreeing.count_ones() as f64 / n as f64,
    };
    Outcome {
        action,
        confidence,
        agreeing,
        events,
        votes,
    }
}

fn weights(rule: &Rule, n: usize) -> impl Iterator<Item = f64> + '_ {
    (0..n).map(move |i| rule.weights.get(i).copied().unwrap_or(1.0).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Reason;

    fn d(a: Action, score: f64) -> Decision {
        Decision {
            action: a,
            score,
            reason: Reason::text("t"),
            event: false,
        }
    }
    use Action::{Buy as B, Hold as H, Sell as S};

    #[test]
    fn table() {
        struct Case {
            mode: Mode,
            input: Vec<Action>,
            expected: Action,
            confidence: f64,
        }
        let cases = vec![
            Case {
                mode: Mode::All,
                input: vec![B, B, B],
                expected: B,
                confidence: 1.0,
            },
            Case {
                mode: Mode::All,
                input: vec![B, B, H],
                expected: H,
                confidence: 0.0,
            },
            Case {
                mode: Mode::All,
                input: vec![S, S],
                expected: S,
                confidence: 1.0,
            },
            Case {
                mode: Mode::Any,
                input: vec![H, B, H],
                expected: B,
                confidence: 1.0 / 3.0,
            },
            Case {
                mode: Mode::Any,
                input: vec![S, B, H],
                expected: H,
                confidence: 0.0,
            },
            Case {
                mode: Mode::Any,
                input: vec![H, S],
                expected: S,
                confidence: 0.5,
            },
            Case {
                mode: Mode::Majority,
                input: vec![B, B, S],
                expected: B,
                confidence: 2.0 / 3.0,
            },
            Case {
                mode: Mode::Majority,
                input: vec![B, B, S, S],
                expected: H,
                confidence: 0.0,
            },
            Case {
                mode: Mode::Majority,
                input: vec![S, S, S, H],
                expected: S,
                confidence: 0.75,
            },
        ];
        for c in cases {
            let ds: Vec<_> = c.input.iter().map(|a| d(*a, 0.0)).collect();
            let o = combine(&Rule::new(c.mode, ds.len()), &ds);
            assert_eq!(o.action, c.expected, "{:?} {:?}", c.mode, c.input);
            assert!(
                (o.confidence - c.confidence).abs() < 1e-12,
                "{:?} {:?}",
                c.mode,
                c.input
            );
            let agreeing: Vec<_> = o.agreeing_indices().collect();
            let expected: Vec<_> = (0..ds.len())
                .filter(|&i| c.expected != H && c.input[i] == c.expected)
                .collect();
            assert_eq!(agreeing, expected, "HOLD has no agreeing strategies");
            let count = |a| c.input.iter().filter(|x| **x == a).count() as u32;
            assert_eq!(
                o.votes,
                Votes {
                    buy: count(B),
                    sell: count(S),
                    none: count(H)
                }
            );
        }
    }

    #[test]
    fn weighted_uses_scores_weights_and_threshold() {
        let ds = vec![d(B, 0.9), d(H, 0.0), d(S, -0.3)];
        let mut rule = Rule::new(Mode::Weighted, 3);
        rule.threshold = 0.2;
        // (0.9 + 0 - 0.3) / 3 = 0.2 → BUY at threshold 0.2.
        assert_eq!(combine(&rule, &ds).action, B);
        rule.threshold = 0.25;
        assert_eq!(combine(&rule, &ds).action, H);
        // Weighting the seller heavily flips it.
        rule.weights = vec![1.0, 1.0, 10.0];
        rule.threshold = 0.1;
        let o = combine(&rule, &ds);
        assert_eq!(o.action, S);
        assert!((o.confidence - 10.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn events_are_the_views_that_began() {
        let mut ds = vec![d(B, 1.0), d(B, 1.0), d(H, 0.0)];
        ds[1].event = true;
        let o = combine(&Rule::new(Mode::Majority, 3), &ds);
        assert_eq!(o.action, B);
        assert_eq!(o.event_indices().collect::<Vec<_>>(), vec![1]);
        assert!((o.confidence - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn parse_modes() {
        assert_eq!("ALL".parse::<Mode>().unwrap(), Mode::All);
        let e = "most".parse::<Mode>().unwrap_err().to_string();
        assert!(e.contains("all, any, majority, weighted"), "{e}");
    }
}
