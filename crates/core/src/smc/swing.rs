//! Swing highs and lows, reported only once confirmed.
//!
//! With `L = swing_length`, the bar at index `c` is a **swing high** when its high is the strict
//! maximum of the `2L + 1` bars `c - L ..= c + L`, ties going to the earliest bar:
//!
//! - `high[c] >  high[j]` for the `L` bars on its left, and
//! - `high[c] >= high[j]` for the `L` bars on its right.
//!
//! So a flat top of equal highs yields exactly one swing high, at its first bar. Swing lows
//! mirror this (`low[c] < low[j]` on the left, `<=` on the right). A bar can be both.
//!
//! A swing is **confirmed** on the candle at index `c + L`, once its right side has closed, and
//! is reported then and only then. The first `L` bars have no complete left side and are never
//! swings. Cost per candle: `O(L)` over a ring of `2L + 1` bars.

use std::collections::VecDeque;

use crate::model::Candle;

/// A confirmed swing point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwingPoint {
    /// Index (0-based, in candles fed since the last reset) of the swing bar itself.
    pub index: u64,
    /// Its high (swing high) or low (swing low).
    pub price: f64,
}

/// What one candle confirmed: the swing `L` bars back, if any, as a high and/or a low.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Confirmed {
    /// A swing high confirmed on this candle.
    pub high: Option<SwingPoint>,
    /// A swing low confirmed on this candle.
    pub low: Option<SwingPoint>,
}

/// Streaming swing detector.
#[derive(Debug, Clone)]
pub struct Swings {
    length: usize,
    /// `(high, low)` of the last `2L + 1` bars, oldest first.
    window: VecDeque<(f64, f64)>,
    seen: u64,
}

impl Swings {
    /// A detector with `length` bars on each side (at least 1).
    pub fn new(length: usize) -> Self {
        let length = length.max(1);
        Swings {
            length,
            window: VecDeque::with_capacity(2 * length + 1),
            seen: 0,
        }
    }

    /// Bars on each side of a swing.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Candles fed since the last reset; the newest candle's index is `seen() - 1`.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one closed candle; reports the swing(s) it confirms.
    pub fn update(&mut self, c: &Candle) -> Confirmed {
        let size = 2 * self.length + 1;
        if self.window.len() == size {
            self.window.pop_front();
        }
        self.window.push_back((c.high, c.low));
        self.seen += 1;
        if self.window.len() < size {
            return Confirmed::default();
        }
        let l = self.length;
        let (ch, cl) = self.window[l];
        let (mut is_high, mut is_low) = (true, true);
        for (j, &(h, lo)) in self.window.iter().enumerate() {
            if j < l {
                is_high &= ch > h;
                is_low &= cl < lo;
            } else if j > l {
                is_high &= ch >= h;
                is_low &= cl <= lo;
            }
        }
        let index = self.seen - 1 - l as u64;
        Confirmed {
            high: is_high.then_some(SwingPoint { index, price: ch }),
            low: is_low.then_some(SwingPoint { index, price: cl }),
        }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.window.clear();
        self.seen = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hl;

    /// `(confirmed on candle, is_high, swing index, price)`.
    type Seen = (u64, bool, u64, f64);

    fn run(length: usize, bars: &[(f64, f64)]) -> Vec<Seen> {
        let mut s = Swings::new(length);
        let mut out = Vec::new();
        for (t, c) in hl(bars).iter().enumerate() {
            let got = s.update(c);
            if let Some(p) = got.high {
                out.push((t as u64, true, p.index, p.price));
            }
            if let Some(p) = got.low {
                out.push((t as u64, false, p.index, p.price));
            }
        }
        out
    }

    #[test]
    fn swings_are_confirmed_exactly_length_bars_later() {
        struct Case {
            name: &'static str,
            length: usize,
            bars: Vec<(f64, f64)>,
            expected: Vec<Seen>,
        }
        let cases = [
            Case {
                name: "peak at 2 with L=2 is reported on candle 4, not before",
                length: 2,
                bars: vec![
                    (10.0, 9.0),
                    (11.0, 10.0),
                    (13.0, 12.0),
                    (12.0, 11.0),
                    (11.5, 10.5),
                ],
                expected: vec![(4, true, 2, 13.0)],
            },
            Case {
                name: "right side not closed yet: nothing",
                length: 2,
                bars: vec![(10.0, 9.0), (11.0, 10.0), (13.0, 12.0), (12.0, 11.0)],
                expected: vec![],
            },
            Case {
                name: "trough mirrored",
                length: 1,
                bars: vec![(10.0, 9.0), (9.0, 8.0), (10.0, 9.5)],
                expected: vec![(2, false, 1, 8.0)],
            },
            Case {
                name: "flat top: the first of two equal highs is the swing",
                length: 1,
                bars: vec![(10.0, 9.0), (12.0, 11.0), (12.0, 11.0), (10.0, 9.0)],
                expected: vec![(2, true, 1, 12.0)],
            },
            Case {
                name: "an equal high on the left disqualifies",
                length: 2,
                bars: vec![
                    (12.0, 9.0),
                    (11.0, 10.0),
                    (12.0, 10.5),
                    (11.0, 10.0),
                    (10.0, 9.5),
                ],
                expected: vec![],
            },
            Case {
                name: "outside bar is both a swing high and a swing low",
                length: 1,
                bars: vec![(10.0, 9.0), (11.0, 8.0), (10.0, 9.0)],
                expected: vec![(2, true, 1, 11.0), (2, false, 1, 8.0)],
            },
            Case {
                name: "the first L bars have no left side and are never swings",
                length: 2,
                bars: vec![
                    (15.0, 1.0),
                    (12.0, 9.0),
                    (11.0, 10.0),
                    (11.0, 10.0),
                    (11.0, 10.0),
                ],
                expected: vec![],
            },
        ];
        for c in cases {
            assert_eq!(run(c.length, &c.bars), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn reset_starts_over_and_length_is_at_least_one() {
        let mut s = Swings::new(0);
        assert_eq!(s.length(), 1);
        for c in hl(&[(10.0, 9.0), (11.0, 10.0)]) {
            s.update(&c);
        }
        s.reset();
        assert_eq!(s.seen(), 0);
        let bars = hl(&[(10.0, 9.0), (11.0, 10.0), (10.0, 9.0)]);
        let got: Vec<_> = bars.iter().map(|c| s.update(c)).collect();
        assert_eq!(
            got[2].high,
            Some(SwingPoint {
                index: 1,
                price: 11.0
            })
        );
    }
}
