//! Market structure: Break of Structure (BOS) and Change of Character (CHoCH).
//!
//! The tracker remembers the **last confirmed** swing high and swing low (a newly confirmed swing
//! replaces the previous one of its kind, broken or not). Each remembered level can be broken
//! once:
//!
//! - a **bullish break** is a candle closing strictly above the unbroken last swing high;
//! - a **bearish break** is a candle closing strictly below the unbroken last swing low.
//!
//! A break in the direction of the current structure is a BOS; a break against it is a CHoCH.
//! Structure starts undefined; the first break sets it and counts as a BOS (there is no
//! character to change yet). After any break the structure is the break's direction.
//!
//! Per candle: swings first (a swing confirmed on this candle cannot be broken by it, because
//! the confirming candle's high is at most the swing high), then the break check, the bullish
//! one first; at most one break is reported per candle.

use super::Side;
use super::swing::{Confirmed, Swings};
use crate::model::Candle;

/// BOS or CHoCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// Break of Structure: with the current structure (or the very first break).
    Bos,
    /// Change of Character: against the current structure.
    Choch,
}

/// A structure break on one candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Break {
    /// Bullish (close above a swing high) or bearish (close below a swing low).
    pub side: Side,
    /// BOS or CHoCH.
    pub kind: BreakKind,
    /// The broken swing level.
    pub level: f64,
    /// Index of the broken swing bar.
    pub swing_index: u64,
    /// Index of the breaking candle.
    pub index: u64,
}

/// What one candle did to the structure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StructureUpdate {
    /// Swings confirmed on this candle.
    pub swings: Confirmed,
    /// The break on this candle, if any.
    pub brk: Option<Break>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Level {
    price: f64,
    index: u64,
    broken: bool,
}

/// The structure's levels and trend, fed the swings confirmed on each candle: what
/// [`Structure`] adds to a [`Swings`] detector, apart so that several detectors can read one
/// swing tracker (the engine's shared graph does).
#[derive(Debug, Clone, Default)]
pub struct StructureState {
    trend: Option<Side>,
    high: Option<Level>,
    low: Option<Level>,
}

impl StructureState {
    /// The current structure: the side of the last break (`None` before the first).
    pub fn trend(&self) -> Option<Side> {
        self.trend
    }

    /// The last confirmed swing high, if it is still unbroken.
    pub fn open_high(&self) -> Option<f64> {
        self.high.filter(|l| !l.broken).map(|l| l.price)
    }

    /// The last confirmed swing low, if it is still unbroken.
    pub fn open_low(&self) -> Option<f64> {
        self.low.filter(|l| !l.broken).map(|l| l.price)
    }

    /// Candle `index` (0-based) with the swings it confirmed; returns its break, if any.
    pub fn update(&mut self, c: &Candle, swings: Confirmed, index: u64) -> Option<Break> {
        if let Some(p) = swings.high {
            self.high = Some(Level {
                price: p.price,
                index: p.index,
                broken: false,
            });
        }
        if let Some(p) = swings.low {
            self.low = Some(Level {
                price: p.price,
                index: p.index,
                broken: false,
            });
        }
        let mut brk = None;
        if let Some(h) = self
            .high
            .as_mut()
            .filter(|h| !h.broken && c.close > h.price)
        {
            h.broken = true;
            brk = Some((Side::Bull, h.price, h.index));
        } else if let Some(l) = self.low.as_mut().filter(|l| !l.broken && c.close < l.price) {
            l.broken = true;
            brk = Some((Side::Bear, l.price, l.index));
        }
        brk.map(|(side, level, swing_index)| {
            let kind = if self.trend == Some(side.opposite()) {
                BreakKind::Choch
            } else {
                BreakKind::Bos
            };
            self.trend = Some(side);
            Break {
                side,
                kind,
                level,
                swing_index,
                index,
            }
        })
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        *self = StructureState::default();
    }
}

/// Streaming structure tracker over a [`Swings`] detector.
#[derive(Debug, Clone)]
pub struct Structure {
    swings: Swings,
    state: StructureState,
}

impl Structure {
    /// A tracker over swings of `swing_length` bars each side.
    pub fn new(swing_length: usize) -> Self {
        Structure {
            swings: Swings::new(swing_length),
            state: StructureState::default(),
        }
    }

    /// The current structure: the side of the last break (`None` before the first).
    pub fn trend(&self) -> Option<Side> {
        self.state.trend()
    }

    /// The last confirmed swing high, if it is still unbroken.
    pub fn open_high(&self) -> Option<f64> {
        self.state.open_high()
    }

    /// The last confirmed swing low, if it is still unbroken.
    pub fn open_low(&self) -> Option<f64> {
        self.state.open_low()
    }

    /// Candles fed since the last reset.
    pub fn seen(&self) -> u64 {
        self.swings.seen()
    }

    /// Bars on each side of a swing.
    pub fn swing_length(&self) -> usize {
        self.swings.length()
    }

    /// Feeds one closed candle.
    pub fn update(&mut self, c: &Candle) -> StructureUpdate {
        let swings = self.swings.update(c);
        let index = self.swings.seen() - 1;
        let brk = self.state.update(c, swings, index);
        StructureUpdate { swings, brk }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.swings.reset();
        self.state.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bars;

    /// `(candle index, side, kind, level)` of every break.
    fn breaks(length: usize, ohlc: &[(f64, f64, f64, f64)]) -> Vec<(u64, Side, BreakKind, f64)> {
        let mut s = Structure::new(length);
        bars(ohlc)
            .iter()
            .filter_map(|c| s.update(c).brk)
            .map(|b| (b.index, b.side, b.kind, b.level))
            .collect()
    }

    // L = 1 throughout: a swing is confirmed one candle after it.
    const UP: (f64, f64, f64, f64) = (10.0, 10.5, 9.5, 10.2);

    #[test]
    fn bos_and_choch_are_told_apart() {
        use BreakKind::*;
        use Side::*;
        struct Case {
            name: &'static str,
            ohlc: Vec<(f64, f64, f64, f64)>,
            expected: Vec<(u64, Side, BreakKind, f64)>,
        }
        let cases = [
            Case {
                name: "first break sets structure and counts as BOS; second up-break is BOS",
                ohlc: vec![
                    UP,
                    (10.2, 12.0, 10.0, 11.0), // 1: swing high 12 (confirmed on 2)
                    (11.0, 11.5, 10.5, 11.0), // 2
                    (11.0, 12.5, 10.8, 12.3), // 3: close 12.3 > 12 -> BOS up
                    (12.3, 13.0, 12.0, 12.5), // 4: swing high 13 (confirmed on 5)
                    (12.5, 12.8, 12.1, 12.2), // 5
                    (12.2, 13.5, 12.1, 13.2), // 6: close 13.2 > 13 -> BOS up
                ],
                expected: vec![(3, Bull, Bos, 12.0), (6, Bull, Bos, 13.0)],
            },
            Case {
                name: "bullish structure, close below the last swing low is a CHoCH",
                ohlc: vec![
                    UP,
                    (10.2, 12.0, 10.0, 11.0), // 1: swing high 12
                    (11.0, 11.5, 10.5, 11.0), // 2
                    (11.0, 12.5, 10.8, 12.3), // 3: BOS up
                    (12.3, 12.4, 9.0, 9.5),   // 4: swing low 9 (confirmed on 5)
                    (9.5, 10.0, 9.2, 9.8),    // 5
                    (9.8, 9.9, 8.5, 8.8),     // 6: close 8.8 < 9 -> CHoCH down
                    (8.8, 9.0, 8.0, 8.5),     // 7: swing low 8 (confirmed on 8)
                    (8.5, 8.7, 8.2, 8.6),     // 8
                    (8.6, 8.6, 7.5, 7.8),     // 9: close < 8 -> BOS down
                ],
                expected: vec![
                    (3, Bull, Bos, 12.0),
                    (6, Bear, Choch, 9.0),
                    (9, Bear, Bos, 8.0),
                ],
            },
            Case {
                name: "a swing level is broken once",
                ohlc: vec![
                    UP,
                    (10.2, 12.0, 10.0, 11.0),   // 1: swing high 12
                    (11.0, 11.5, 10.5, 11.0),   // 2
                    (11.0, 12.5, 10.8, 12.3),   // 3: BOS up
                    (12.3, 12.6, 11.9, 11.95),  // 4: back below 12
                    (11.95, 12.55, 11.9, 12.4), // 5: closes above 12 again: already broken
                ],
                expected: vec![(3, Bull, Bos, 12.0)],
            },
            Case {
                name: "a wick above without a close above is not a break",
                ohlc: vec![
                    UP,
                    (10.2, 12.0, 10.0, 11.0), // 1: swing high 12
                    (11.0, 11.5, 10.5, 11.0), // 2
                    (11.0, 12.5, 10.8, 12.0), // 3: close == level: not beyond
                ],
                expected: vec![],
            },
        ];
        for c in cases {
            assert_eq!(breaks(1, &c.ohlc), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn a_swing_cannot_be_broken_before_it_is_confirmed() {
        // L = 2: the swing high 12 at index 2 is confirmed on candle 4 and not before; candle 3
        // closes above the earlier highs but nothing is confirmed yet, so nothing breaks.
        let ohlc = [
            (10.0, 10.5, 9.5, 10.0),
            (10.0, 10.8, 9.6, 10.5),
            (10.5, 12.0, 10.2, 11.0), // 2: the swing high
            (11.0, 11.8, 10.9, 11.5),
            (11.5, 11.9, 11.0, 11.2), // 4: confirms it
            (11.2, 12.3, 11.1, 12.2), // 5: first close above the confirmed 12
        ];
        let mut s = Structure::new(2);
        let got: Vec<_> = bars(&ohlc).iter().map(|c| s.update(c)).collect();
        assert!(
            got[..4]
                .iter()
                .all(|u| u.swings.high.is_none() && u.brk.is_none())
        );
        assert_eq!(
            got[4].swings.high.map(|p| (p.index, p.price)),
            Some((2, 12.0))
        );
        assert!(got[4].brk.is_none());
        let b = got[5].brk.expect("break on candle 5");
        assert_eq!(
            (b.side, b.kind, b.level, b.swing_index),
            (Side::Bull, BreakKind::Bos, 12.0, 2)
        );
        assert_eq!(s.trend(), Some(Side::Bull));
        assert_eq!(s.open_high(), None);
        s.reset();
        assert_eq!((s.trend(), s.seen()), (None, 0));
    }
}
