//! Fair value gaps: three-candle imbalances.
//!
//! On candle `i` (with candles `i-2`, `i-1` before it):
//!
//! - `low[i] > high[i-2]` → a **bullish** gap `[high[i-2], low[i]]`;
//! - `high[i] < low[i-2]` → a **bearish** gap `[high[i], low[i-2]]`;
//!
//! kept only if its height is at least `min_size_pct` percent of `close[i]`. A gap is a
//! [`super::zone`] zone born on candle `i`: price later retracing into it (bullish: `low <= top`)
//! is a retest, and it counts as **filled** — and is dropped — on the first close through its
//! far side (bullish: `close < bottom`; bearish: `close > top`). Existing gaps are checked before
//! a new one is recorded, so a gap is never retested by the candle that completes it.

use super::Side;
use super::zone::{Zone, ZoneBook, ZoneEvent};
use crate::model::Candle;

/// What one candle did to the gaps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FvgUpdate {
    /// A retrace into a live gap (or a conflict).
    pub event: ZoneEvent,
    /// The gap this candle completed.
    pub born: Option<Zone>,
}

/// Streaming fair-value-gap detector.
#[derive(Debug, Clone)]
pub struct Fvgs {
    zones: ZoneBook,
    min_size_pct: f64,
    /// `(high, low)` of candles `i-2` and `i-1`.
    prev: [Option<(f64, f64)>; 2],
    seen: u64,
}

impl Fvgs {
    /// A detector keeping gaps of at least `min_size_pct` % of price, at most `max_zones` per
    /// side, each for at most `max_age` candles (`0` = no limit).
    pub fn new(min_size_pct: f64, max_zones: usize, max_age: usize) -> Self {
        let min_size_pct = if min_size_pct.is_finite() {
            min_size_pct.max(0.0)
        } else {
            0.0
        };
        Fvgs {
            zones: ZoneBook::new(max_zones, max_age),
            min_size_pct,
            prev: [None; 2],
            seen: 0,
        }
    }

    /// The live gaps.
    pub fn zones(&self) -> &ZoneBook {
        &self.zones
    }

    /// Candles fed since the last reset.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one closed candle.
    #[inline]
    pub fn update(&mut self, c: &Candle) -> FvgUpdate {
        let index = self.seen;
        self.seen += 1;
        let event = self.zones.update(c, index);
        let min = self.min_size_pct / 100.0 * c.close.abs();
        let born = self.prev[0].and_then(|(h2, l2)| {
            let (side, bottom, top) = if c.low > h2 {
                (Side::Bull, h2, c.low)
            } else if c.high < l2 {
                (Side::Bear, c.high, l2)
            } else {
                return None;
            };
            (top - bottom >= min).then_some(Zone {
                side,
                top,
                bottom,
                born: index,
            })
        });
        if let Some(z) = born {
            self.zones.add(z);
        }
        self.prev = [self.prev[1], Some((c.high, c.low))];
        FvgUpdate { event, born }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.zones.clear();
        self.prev = [None; 2];
        self.seen = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bars;

    #[derive(Debug, PartialEq)]
    enum Ev {
        Born(Side, f64, f64),
        Retest(Side),
    }

    fn events(min_pct: f64, ohlc: &[(f64, f64, f64, f64)]) -> (Vec<(usize, Ev)>, (usize, usize)) {
        let mut f = Fvgs::new(min_pct, 4, 0);
        let mut out = Vec::new();
        for (i, c) in bars(ohlc).iter().enumerate() {
            let u = f.update(c);
            if let ZoneEvent::Retest(r) = u.event {
                out.push((i, Ev::Retest(r.zone.side)));
            }
            if let Some(z) = u.born {
                out.push((i, Ev::Born(z.side, z.bottom, z.top)));
            }
        }
        (out, f.zones().counts())
    }

    // A bullish gap between candle 0's high (101) and candle 2's low (103).
    const BULL3: [(f64, f64, f64, f64); 3] = [
        (100.0, 101.0, 99.0, 100.5),
        (100.5, 104.0, 100.4, 103.8),
        (103.8, 105.0, 103.0, 104.5),
    ];
    // A bearish gap between candle 2's high (97) and candle 0's low (99).
    const BEAR3: [(f64, f64, f64, f64); 3] = [
        (100.0, 101.0, 99.0, 99.5),
        (99.5, 99.6, 96.0, 96.2),
        (96.2, 97.0, 95.0, 95.5),
    ];

    #[test]
    fn gaps_are_created_retraced_and_filled() {
        use Side::*;
        struct Case {
            name: &'static str,
            candles: Vec<(f64, f64, f64, f64)>,
            min_pct: f64,
            expected: Vec<(usize, Ev)>,
            left: (usize, usize),
        }
        let with = |base: &[(f64, f64, f64, f64)], tail: &[(f64, f64, f64, f64)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(tail);
            v
        };
        let cases = [
            Case {
                name: "bullish gap creation",
                candles: BULL3.to_vec(),
                min_pct: 0.0,
                expected: vec![(2, Ev::Born(Bull, 101.0, 103.0))],
                left: (1, 0),
            },
            Case {
                name: "bearish gap creation",
                candles: BEAR3.to_vec(),
                min_pct: 0.0,
                expected: vec![(2, Ev::Born(Bear, 97.0, 99.0))],
                left: (0, 1),
            },
            Case {
                name: "overlapping wicks: no gap",
                candles: vec![BULL3[0], BULL3[1], (103.8, 105.0, 100.9, 104.5)],
                min_pct: 0.0,
                expected: vec![],
                left: (0, 0),
            },
            Case {
                name: "below the minimum size: ignored",
                candles: BULL3.to_vec(),
                min_pct: 2.0, // 2 % of 104.5 = 2.09 > 2.0
                expected: vec![],
                left: (0, 0),
            },
            Case {
                name: "bullish retrace into the gap that holds: BUY, gap stays",
                candles: with(
                    &BULL3,
                    &[(104.5, 106.0, 104.0, 105.5), (105.5, 105.6, 102.0, 104.0)],
                ),
                min_pct: 0.0,
                expected: vec![(2, Ev::Born(Bull, 101.0, 103.0)), (4, Ev::Retest(Bull))],
                left: (1, 0),
            },
            Case {
                name: "bullish gap filled by a close below its bottom: dropped, no signal",
                candles: with(
                    &BULL3,
                    &[(104.5, 104.6, 100.0, 100.5), (100.5, 103.2, 100.2, 102.0)],
                ),
                min_pct: 0.0,
                expected: vec![(2, Ev::Born(Bull, 101.0, 103.0))],
                left: (0, 0),
            },
            Case {
                name: "bearish retrace: SELL; then a close above the top fills it",
                candles: with(
                    &BEAR3,
                    &[
                        (95.5, 97.5, 95.2, 96.0),
                        (96.0, 96.5, 95.0, 95.5),
                        (95.5, 99.5, 95.4, 99.2),
                    ],
                ),
                min_pct: 0.0,
                expected: vec![(2, Ev::Born(Bear, 97.0, 99.0)), (3, Ev::Retest(Bear))],
                left: (0, 0),
            },
        ];
        for c in cases {
            let (got, left) = events(c.min_pct, &c.candles);
            assert_eq!(got, c.expected, "{}", c.name);
            assert_eq!(left, c.left, "{}", c.name);
        }
    }

    #[test]
    fn reset_forgets_the_previous_candles() {
        let mut f = Fvgs::new(0.0, 4, 0);
        let cs = bars(&BULL3);
        f.update(&cs[0]);
        f.update(&cs[1]);
        f.reset();
        assert_eq!(f.update(&cs[2]).born, None);
        assert_eq!(f.seen(), 1);
    }
}
