//! Order blocks: the last opposite-coloured candle before the impulse that broke structure.
//!
//! On every structure break (BOS or CHoCH, including the first, see [`super::structure`]) on
//! candle `t`:
//!
//! - bullish break → the most recent **down** candle (`close < open`) before `t` becomes a
//!   bullish zone `[low, high]`;
//! - bearish break → the most recent **up** candle (`close > open`) before `t` becomes a bearish
//!   zone `[low, high]`;
//!
//! provided that candle comes after the broken swing bar (otherwise the move from the swing to
//! the break had no opposite candle and no block is recorded). Doji candles (`close == open`)
//! are neither. Zones then follow the [`super::zone`] rules: a retest signals, a close through
//! the far side kills the zone. Per candle: existing zones are checked first, so a block is
//! never retested by the candle that created it.

use super::Side;
use super::structure::{Break, StructureState};
use super::swing::{Confirmed, Swings};
use super::zone::{Zone, ZoneBook, ZoneEvent};
use crate::model::Candle;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bar {
    index: u64,
    high: f64,
    low: f64,
}

/// What one candle did to the order blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObUpdate {
    /// A retest of a live block (or a conflict).
    pub event: ZoneEvent,
    /// The structure break on this candle.
    pub brk: Option<Break>,
    /// The block that break created.
    pub born: Option<Zone>,
}

/// Streaming order-block detector.
#[derive(Debug, Clone)]
pub struct OrderBlocks {
    /// Its own swings; unused when a shared tracker feeds [`OrderBlocks::update_with`].
    swings: Swings,
    structure: StructureState,
    zones: ZoneBook,
    last_down: Option<Bar>,
    last_up: Option<Bar>,
    seen: u64,
}

impl OrderBlocks {
    /// A detector over swings of `swing_length` bars, keeping at most `max_zones` blocks per
    /// side for at most `max_age` candles (`0` = no limit).
    pub fn new(swing_length: usize, max_zones: usize, max_age: usize) -> Self {
        OrderBlocks {
            swings: Swings::new(swing_length),
            structure: StructureState::default(),
            zones: ZoneBook::new(max_zones, max_age),
            last_down: None,
            last_up: None,
            seen: 0,
        }
    }

    /// The live blocks.
    pub fn zones(&self) -> &ZoneBook {
        &self.zones
    }

    /// Candles fed since the last reset.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one closed candle.
    pub fn update(&mut self, c: &Candle) -> ObUpdate {
        let swings = self.swings.update(c);
        self.update_with(c, swings)
    }

    /// Feeds one closed candle with the swings a tracker of the same `swing_length` confirmed
    /// on it (the zones do not depend on the swings, so this equals [`OrderBlocks::update`]).
    pub fn update_with(&mut self, c: &Candle, swings: Confirmed) -> ObUpdate {
        let index = self.seen;
        self.seen += 1;
        let event = self.zones.update(c, index);
        let brk = self.structure.update(c, swings, index);
        let born = brk.and_then(|b| {
            let source = match b.side {
                Side::Bull => self.last_down,
                Side::Bear => self.last_up,
            };
            source
                .filter(|bar| bar.index > b.swing_index)
                .map(|bar| Zone {
                    side: b.side,
                    top: bar.high,
                    bottom: bar.low,
                    born: index,
                })
        });
        if let Some(z) = born {
            self.zones.add(z);
        }
        let bar = Some(Bar {
            index,
            high: c.high,
            low: c.low,
        });
        if c.close < c.open {
            self.last_down = bar;
        } else if c.close > c.open {
            self.last_up = bar;
        }
        ObUpdate { event, brk, born }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.swings.reset();
        self.structure.reset();
        self.zones.clear();
        self.last_down = None;
        self.last_up = None;
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

    fn events(ohlc: &[(f64, f64, f64, f64)]) -> Vec<(usize, Ev)> {
        let mut ob = OrderBlocks::new(1, 4, 0);
        let mut out = Vec::new();
        for (i, c) in bars(ohlc).iter().enumerate() {
            let u = ob.update(c);
            if let ZoneEvent::Retest(r) = u.event {
                out.push((i, Ev::Retest(r.zone.side)));
            }
            if let Some(z) = u.born {
                out.push((i, Ev::Born(z.side, z.bottom, z.top)));
            }
        }
        out
    }

    // L = 1. A swing high at 12 (candle 1), a pullback whose last down candle is candle 3
    // (10.4..11.2), then an up-impulse breaking 12 on candle 5.
    const BASE: [(f64, f64, f64, f64); 6] = [
        (10.0, 10.5, 9.5, 10.2),
        (10.2, 12.0, 10.0, 11.5), // 1: swing high 12
        (11.5, 11.8, 10.8, 11.0), // 2: down
        (11.0, 11.2, 10.4, 10.6), // 3: down — the order block
        (10.6, 11.9, 10.5, 11.8), // 4: up
        (11.8, 12.6, 11.7, 12.5), // 5: close 12.5 > 12: bullish BOS
    ];

    #[test]
    fn blocks_are_born_on_breaks_retested_and_killed() {
        struct Case {
            name: &'static str,
            tail: Vec<(f64, f64, f64, f64)>,
            expected: Vec<(usize, Ev)>,
        }
        let born = (5, Ev::Born(Side::Bull, 10.4, 11.2));
        let cases = [
            Case {
                name: "creation on the break",
                tail: vec![],
                expected: vec![born],
            },
            Case {
                name: "price returns into the block and holds: BUY",
                tail: vec![
                    (12.5, 12.9, 12.2, 12.8), // 6
                    (12.8, 12.9, 11.0, 11.5), // 7: low 11.0 <= 11.2, close above 10.4
                ],
                expected: vec![
                    (5, Ev::Born(Side::Bull, 10.4, 11.2)),
                    (7, Ev::Retest(Side::Bull)),
                ],
            },
            Case {
                name: "a close through the block kills it silently; later visits do nothing",
                tail: vec![
                    (12.5, 12.9, 12.2, 12.8), // 6
                    (12.8, 12.9, 10.0, 10.2), // 7: close below 10.4: dead
                    (10.2, 12.0, 10.1, 11.9), // 8
                    (11.9, 12.0, 10.9, 11.0), // 9: would have been a retest
                ],
                // Candle 7 also closes below the swing low 10.4: a bearish CHoCH whose block is
                // the last up candle, 6.
                expected: vec![
                    (5, Ev::Born(Side::Bull, 10.4, 11.2)),
                    (7, Ev::Born(Side::Bear, 12.2, 12.9)),
                ],
            },
        ];
        for c in cases {
            let mut ohlc = BASE.to_vec();
            ohlc.extend(c.tail);
            assert_eq!(events(&ohlc), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn bearish_block_is_the_last_up_candle_before_the_drop() {
        let ohlc = [
            (12.0, 12.5, 11.5, 11.8),
            (11.8, 12.0, 10.0, 10.5), // 1: swing low 10
            (10.5, 11.2, 10.4, 11.0), // 2: up
            (11.0, 11.6, 10.8, 11.4), // 3: up — the order block
            (11.4, 11.5, 10.1, 10.2), // 4: down
            (10.2, 10.3, 9.4, 9.5),   // 5: close below 10: bearish break
            (9.5, 9.8, 9.2, 9.4),     // 6
            (9.4, 11.0, 9.3, 10.6),   // 7: high 11.0 >= 10.8, close below 11.6: SELL
        ];
        assert_eq!(
            events(&ohlc),
            vec![
                (5, Ev::Born(Side::Bear, 10.8, 11.6)),
                (7, Ev::Retest(Side::Bear))
            ]
        );
    }

    #[test]
    fn no_block_without_an_opposite_candle_after_the_swing() {
        // The down candle (0) precedes the swing high (1); the move to the break is all up.
        let ohlc = [
            (10.4, 10.5, 9.5, 10.0),  // 0: down, but before the swing
            (10.0, 12.0, 9.9, 11.0),  // 1: swing high 12 (up)
            (11.0, 11.5, 10.9, 11.4), // 2: up
            (11.4, 12.4, 11.3, 12.3), // 3: up, close > 12: break
        ];
        let mut ob = OrderBlocks::new(1, 4, 0);
        let ups: Vec<_> = bars(&ohlc).iter().map(|c| ob.update(c)).collect();
        assert!(ups[3].brk.is_some());
        assert_eq!(ups[3].born, None);
        assert_eq!(ob.zones().counts(), (0, 0));
        ob.reset();
        assert_eq!(ob.seen(), 0);
    }
}
