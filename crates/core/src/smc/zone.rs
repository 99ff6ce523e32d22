//! A bounded book of price zones (order blocks, fair value gaps) with one set of rules.
//!
//! A zone is a price band `[bottom, top]` with a side. For a **bullish** zone (demand, below
//! price):
//!
//! - it **dies** on the first candle that closes strictly below `bottom` (a close through its
//!   far side), or when it is older than `max_age` candles (`0` = no age limit), or when a newer
//!   bullish zone is added while `max_zones` are live (the oldest goes first);
//! - a candle **trades into** it when `low <= top`;
//! - a **retest** is a candle that trades into it and does not kill it, when the previous
//!   candle did not trade into it (price came back from outside). The candle that creates a zone
//!   never counts as inside it, so the next candle can already retest.
//!
//! Bearish zones (supply, above price) mirror it: death on `close > top`, inside on
//! `high >= bottom`. A retest's depth is how far into the band the wick reached, in `[0, 1]`.
//! Per candle the cost is `O(max_zones)`; a zone list never grows past `max_zones`.

use super::Side;
use crate::model::Candle;

/// A price zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    /// Bullish (demand, BUY on retest) or bearish (supply, SELL on retest).
    pub side: Side,
    /// Upper bound.
    pub top: f64,
    /// Lower bound.
    pub bottom: f64,
    /// Index of the candle that created it.
    pub born: u64,
}

/// A zone retested by a candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retest {
    /// The zone.
    pub zone: Zone,
    /// How far the wick reached into the band: 0 at the near edge, 1 at (or past) the far edge.
    pub depth: f64,
}

/// What one candle did to a zone book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZoneEvent {
    /// No retest.
    None,
    /// One side retested; the newest such zone is reported.
    Retest(Retest),
    /// Bullish and bearish zones retested by the same candle: no view.
    Conflict,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    zone: Zone,
    inside: bool,
}

/// Live zones, at most `max_zones` per side, oldest first. Plain `Vec`s: the scan on every
/// candle is the hot path and runs faster over contiguous memory than over a `VecDeque`;
/// dropping the oldest when a side is full shifts at most `max_zones` entries, and is rare.
#[derive(Debug, Clone)]
pub struct ZoneBook {
    bull: Vec<Live>,
    bear: Vec<Live>,
    max_zones: usize,
    max_age: usize,
}

impl ZoneBook {
    /// A book keeping at most `max_zones` (at least 1) zones per side, each for at most
    /// `max_age` candles after its birth (`0` = no limit).
    pub fn new(max_zones: usize, max_age: usize) -> Self {
        let max_zones = max_zones.max(1);
        ZoneBook {
            bull: Vec::with_capacity(max_zones),
            bear: Vec::with_capacity(max_zones),
            max_zones,
            max_age,
        }
    }

    /// Adds a zone, dropping the oldest of its side when full. Inverted bounds are swapped.
    pub fn add(&mut self, mut zone: Zone) {
        if zone.bottom > zone.top {
            std::mem::swap(&mut zone.bottom, &mut zone.top);
        }
        let list = match zone.side {
            Side::Bull => &mut self.bull,
            Side::Bear => &mut self.bear,
        };
        if list.len() >= self.max_zones {
            list.remove(0);
        }
        list.push(Live {
            zone,
            inside: false,
        });
    }

    /// Live zones of one side, oldest first.
    pub fn zones(&self, side: Side) -> impl Iterator<Item = &Zone> {
        match side {
            Side::Bull => self.bull.iter(),
            Side::Bear => self.bear.iter(),
        }
        .map(|l| &l.zone)
    }

    /// How many zones are live on each side: `(bullish, bearish)`.
    pub fn counts(&self) -> (usize, usize) {
        (self.bull.len(), self.bear.len())
    }

    /// Applies candle `index` to every live zone: expiry, death, retests.
    pub fn update(&mut self, c: &Candle, index: u64) -> ZoneEvent {
        let bull = scan::<true>(&mut self.bull, c, index, self.max_age);
        let bear = scan::<false>(&mut self.bear, c, index, self.max_age);
        match (bull, bear) {
            (Some(r), None) | (None, Some(r)) => ZoneEvent::Retest(r),
            (Some(_), Some(_)) => ZoneEvent::Conflict,
            (None, None) => ZoneEvent::None,
        }
    }

    /// Forgets every zone.
    pub fn clear(&mut self) {
        self.bull.clear();
        self.bear.clear();
    }
}

// One copy per side (`BULL`), so the side test is not in the loop.
fn scan<const BULL: bool>(
    list: &mut Vec<Live>,
    c: &Candle,
    index: u64,
    max_age: usize,
) -> Option<Retest> {
    let gone = |z: &Zone| {
        let expired = max_age > 0 && index.saturating_sub(z.born) > max_age as u64;
        let dead = if BULL {
            c.close < z.bottom
        } else {
            c.close > z.top
        };
        expired || dead
    };
    let mut newest = None;
    let mut any_gone = false;
    // One plain pass; zones die or expire on few candles, and only then is the list compacted
    // (with the same test, so exactly the zones skipped here go).
    for live in list.iter_mut() {
        let z = live.zone;
        if gone(&z) {
            any_gone = true;
            continue;
        }
        let (inside, reach) = if BULL {
            (c.low <= z.top, z.top - c.low)
        } else {
            (c.high >= z.bottom, c.high - z.bottom)
        };
        if inside && !live.inside {
            let height = z.top - z.bottom;
            let depth = if height > 0.0 {
                (reach / height).clamp(0.0, 1.0)
            } else {
                1.0
            };
            newest = Some(Retest { zone: z, depth });
        }
        live.inside = inside;
    }
    if any_gone {
        list.retain(|live| !gone(&live.zone));
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bars;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Ev {
        No,
        Buy(f64),
        Sell(f64),
        Conflict,
    }

    fn run(book: &mut ZoneBook, ohlc: &[(f64, f64, f64, f64)], first_index: u64) -> Vec<Ev> {
        bars(ohlc)
            .iter()
            .enumerate()
            .map(|(i, c)| match book.update(c, first_index + i as u64) {
                ZoneEvent::None => Ev::No,
                ZoneEvent::Conflict => Ev::Conflict,
                ZoneEvent::Retest(r) if r.zone.side == Side::Bull => Ev::Buy(r.depth),
                ZoneEvent::Retest(r) => Ev::Sell(r.depth),
            })
            .collect()
    }

    const BULL: Zone = Zone {
        side: Side::Bull,
        top: 100.0,
        bottom: 98.0,
        born: 0,
    };
    const BEAR: Zone = Zone {
        side: Side::Bear,
        top: 110.0,
        bottom: 108.0,
        born: 0,
    };

    #[test]
    fn retests_fire_on_entry_and_zones_die_on_close_through() {
        struct Case {
            name: &'static str,
            zones: Vec<Zone>,
            candles: Vec<(f64, f64, f64, f64)>,
            expected: Vec<Ev>,
            left: (usize, usize),
        }
        let cases = [
            Case {
                name: "dip into a demand zone that holds: BUY once, again after leaving",
                zones: vec![BULL],
                candles: vec![
                    (103.0, 104.0, 102.0, 103.0),
                    (103.0, 103.5, 99.0, 101.0), // into the top half: depth 0.5
                    (101.0, 101.5, 99.5, 100.5), // still inside: no new retest
                    (100.5, 103.0, 100.5, 102.0), // left (low > top)
                    (102.0, 102.0, 98.0, 99.0),  // back in, to the bottom: depth 1
                ],
                expected: vec![Ev::No, Ev::Buy(0.5), Ev::No, Ev::No, Ev::Buy(1.0)],
                left: (1, 0),
            },
            Case {
                name: "close below the bottom kills it without a signal",
                zones: vec![BULL],
                candles: vec![(101.0, 101.0, 97.0, 97.5), (97.5, 100.0, 97.0, 99.0)],
                expected: vec![Ev::No, Ev::No],
                left: (0, 0),
            },
            Case {
                name: "supply zone mirrored; close above the top kills it",
                zones: vec![BEAR],
                candles: vec![
                    (106.0, 108.5, 105.0, 107.0), // depth 0.25
                    (107.0, 107.5, 106.0, 107.0),
                    (107.0, 111.0, 107.0, 110.5), // closes through
                    (110.5, 110.6, 109.0, 109.5),
                ],
                expected: vec![Ev::Sell(0.25), Ev::No, Ev::No, Ev::No],
                left: (0, 0),
            },
            Case {
                name: "one candle into both sides: conflict",
                zones: vec![BULL, BEAR],
                candles: vec![(104.0, 109.0, 99.0, 104.0)],
                expected: vec![Ev::Conflict],
                left: (1, 1),
            },
        ];
        for c in cases {
            let mut book = ZoneBook::new(4, 0);
            c.zones.iter().for_each(|z| book.add(*z));
            assert_eq!(run(&mut book, &c.candles, 1), c.expected, "{}", c.name);
            assert_eq!(book.counts(), c.left, "{}", c.name);
        }
    }

    #[test]
    fn books_are_bounded_by_count_and_age() {
        let mut book = ZoneBook::new(2, 3);
        for (i, top) in [100.0, 90.0, 80.0].into_iter().enumerate() {
            book.add(Zone {
                side: Side::Bull,
                top,
                bottom: top - 1.0,
                born: i as u64,
            });
        }
        let tops: Vec<_> = book.zones(Side::Bull).map(|z| z.top).collect();
        assert_eq!(tops, vec![90.0, 80.0], "the oldest is dropped");
        // Candle 5: the zone born at 1 is 4 candles old (> 3) and expires; 80 stays.
        let far = bars(&[(200.0, 201.0, 199.0, 200.0)]);
        assert_eq!(book.update(&far[0], 5), ZoneEvent::None);
        assert_eq!(book.counts(), (1, 0));
        book.clear();
        assert_eq!(book.counts(), (0, 0));
    }
}
