//! Liquidity sweeps: a wick through resting stops that closes back inside.
//!
//! Stops rest beyond swing points. Every confirmed swing high (see [`super::swing`]) becomes a
//! **high pool** at its price, every confirmed swing low a **low pool**. A newly confirmed swing
//! within `tolerance_pct` percent of a live pool of its kind joins it instead (equal highs /
//! equal lows): the pool keeps the more extreme price and counts one more touch. A pool lives
//! until it is taken, it is older than `max_age` candles since its latest touch (`0` = no
//! limit), or `max_levels` newer pools of its kind push it out (the oldest goes first).
//!
//! On each candle, before the swings it confirms are added:
//!
//! - a **sweep of highs** (bearish, SELL) is a candle with `high > pool` and `close < pool`:
//!   the wick took the stops and price closed back below;
//! - a **sweep of lows** (bullish, BUY) mirrors it: `low < pool` and `close > pool`;
//! - a candle that trades through a pool and closes beyond it (or exactly on it) takes the pool
//!   without a sweep: price was accepted there.
//!
//! Every pool a candle trades through is removed. When one candle sweeps several pools of one
//! kind, the most extreme is reported, with the touches of all of them; when it sweeps highs and
//! lows at once it is a conflict. A swing confirmed on a candle cannot be swept by that candle:
//! its high (low) is at most (least) the swing's. Cost per candle: `O(swing_length + max_levels)`.

use super::Side;
use super::swing::{Confirmed, SwingPoint, Swings};
use crate::model::Candle;

/// A resting-liquidity level: one swing point or a cluster of equal ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pool {
    /// The level: the highest high of the cluster (high pools) or the lowest low (low pools).
    pub price: f64,
    /// How many confirmed swings form it (1 = a single swing, 2+ = equal highs/lows).
    pub touches: u32,
    /// Index of its newest swing bar.
    pub last: u64,
}

/// A sweep on one candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// Bearish for a sweep of highs (SELL), bullish for a sweep of lows (BUY).
    pub side: Side,
    /// The most extreme pool swept.
    pub level: f64,
    /// The wick's extreme: the candle's high (sweep of highs) or low (sweep of lows).
    pub wick: f64,
    /// The close, back inside.
    pub close: f64,
    /// Touches of all pools swept by this candle.
    pub touches: u32,
}

/// What one candle did to the liquidity pools.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SweepEvent {
    /// No sweep.
    #[default]
    None,
    /// Highs or lows were swept.
    Sweep(Sweep),
    /// Highs and lows were both swept by one candle: no view.
    Conflict,
}

/// What one candle did: the sweep, and the swings it confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LiquidityUpdate {
    /// The sweep on this candle.
    pub event: SweepEvent,
    /// Swings confirmed on this candle (added as pools after the sweep check).
    pub swings: Confirmed,
}

/// Streaming liquidity-sweep detector.
#[derive(Debug, Clone)]
pub struct Liquidity {
    /// Its own swings; unused when a shared tracker feeds [`Liquidity::update_with`].
    swings: Swings,
    seen: u64,
    // Vecs, as in `zone::ZoneBook`: scanned on every candle, shifted only when full.
    highs: Vec<Pool>,
    lows: Vec<Pool>,
    tolerance_pct: f64,
    max_levels: usize,
    max_age: usize,
}

impl Liquidity {
    /// A detector over swings of `swing_length` bars, merging swings within `tolerance_pct` %
    /// into one pool, keeping at most `max_levels` pools per side (at least 1), each for at
    /// most `max_age` candles after its latest touch (`0` = no limit).
    pub fn new(swing_length: usize, tolerance_pct: f64, max_levels: usize, max_age: usize) -> Self {
        let tolerance_pct = if tolerance_pct.is_finite() {
            tolerance_pct.max(0.0)
        } else {
            0.0
        };
        let max_levels = max_levels.max(1);
        Liquidity {
            swings: Swings::new(swing_length),
            seen: 0,
            highs: Vec::with_capacity(max_levels),
            lows: Vec::with_capacity(max_levels),
            tolerance_pct,
            max_levels,
            max_age,
        }
    }

    /// Live pools above price (swing highs), oldest first.
    pub fn highs(&self) -> impl Iterator<Item = &Pool> {
        self.highs.iter()
    }

    /// Live pools below price (swing lows), oldest first.
    pub fn lows(&self) -> impl Iterator<Item = &Pool> {
        self.lows.iter()
    }

    /// Candles fed since the last reset.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one closed candle.
    pub fn update(&mut self, c: &Candle) -> LiquidityUpdate {
        let swings = self.swings.update(c);
        self.update_with(c, swings)
    }

    /// Feeds one closed candle with the swings a tracker of the same `swing_length` confirmed
    /// on it (pools are swept before the new swings join them, so this equals
    /// [`Liquidity::update`]).
    pub fn update_with(&mut self, c: &Candle, swings: Confirmed) -> LiquidityUpdate {
        let index = self.seen;
        self.seen += 1;
        let bear = take::<true>(&mut self.highs, c, index, self.max_age);
        let bull = take::<false>(&mut self.lows, c, index, self.max_age);
        let event = match (bull, bear) {
            (Some(s), None) | (None, Some(s)) => SweepEvent::Sweep(s),
            (Some(_), Some(_)) => SweepEvent::Conflict,
            (None, None) => SweepEvent::None,
        };
        let (tol, max) = (self.tolerance_pct / 100.0, self.max_levels);
        if let Some(p) = swings.high {
            add(&mut self.highs, p, tol, max, f64::max);
        }
        if let Some(p) = swings.low {
            add(&mut self.lows, p, tol, max, f64::min);
        }
        LiquidityUpdate { event, swings }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.swings.reset();
        self.seen = 0;
        self.highs.clear();
        self.lows.clear();
    }
}

/// Removes expired pools and pools `c` trades through; returns the sweep, if any. One copy per
/// side (`BEAR`: the pools of highs), so the side test is not in the loop.
fn take<const BEAR: bool>(
    pools: &mut Vec<Pool>,
    c: &Candle,
    index: u64,
    max_age: usize,
) -> Option<Sweep> {
    let side = if BEAR { Side::Bear } else { Side::Bull };
    let expired = |p: &Pool| max_age > 0 && index.saturating_sub(p.last) > max_age as u64;
    // Bear = a pool of highs: through it means above; back inside means a close below.
    let through = |p: &Pool| {
        if BEAR {
            c.high > p.price
        } else {
            c.low < p.price
        }
    };
    // On most candles no pool expires or is traded through: look before touching the list.
    if !pools.iter().any(|p| expired(p) || through(p)) {
        return None;
    }
    let mut sweep: Option<Sweep> = None;
    pools.retain(|p| {
        if expired(p) {
            return false;
        }
        if !through(p) {
            return true;
        }
        let back = if BEAR {
            c.close < p.price
        } else {
            c.close > p.price
        };
        if back {
            let more_extreme = |s: &Sweep| {
                if BEAR {
                    p.price > s.level
                } else {
                    p.price < s.level
                }
            };
            let touches = sweep.map_or(0, |s| s.touches) + p.touches;
            let level = match sweep {
                Some(s) if !more_extreme(&s) => s.level,
                _ => p.price,
            };
            sweep = Some(Sweep {
                side,
                level,
                wick: if BEAR { c.high } else { c.low },
                close: c.close,
                touches,
            });
        }
        false
    });
    sweep
}

/// Adds a confirmed swing as a pool, or merges it into the nearest pool within tolerance.
fn add(pools: &mut Vec<Pool>, p: SwingPoint, tol: f64, max: usize, extreme: fn(f64, f64) -> f64) {
    let band = tol * p.price.abs();
    let nearest = pools
        .iter_mut()
        .filter(|q| (q.price - p.price).abs() <= band)
        .min_by(|a, b| {
            (a.price - p.price)
                .abs()
                .total_cmp(&(b.price - p.price).abs())
        });
    if let Some(q) = nearest {
        q.price = extreme(q.price, p.price);
        q.touches += 1;
        q.last = p.index;
        return;
    }
    if pools.len() >= max {
        pools.remove(0);
    }
    pools.push(Pool {
        price: p.price,
        touches: 1,
        last: p.index,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bars;

    /// `(candle, side, level, touches)` of every sweep; `(candle, Conflict)` as side `None`.
    type Seen = (usize, Option<Side>, f64, u32);

    fn run(tol_pct: f64, max_age: usize, ohlc: &[(f64, f64, f64, f64)]) -> (Vec<Seen>, Liquidity) {
        let mut liq = Liquidity::new(1, tol_pct, 4, max_age);
        let mut out = Vec::new();
        for (i, c) in bars(ohlc).iter().enumerate() {
            match liq.update(c).event {
                SweepEvent::Sweep(s) => out.push((i, Some(s.side), s.level, s.touches)),
                SweepEvent::Conflict => out.push((i, None, f64::NAN, 0)),
                SweepEvent::None => {}
            }
        }
        (out, liq)
    }

    // L = 1. A swing high at 12 (candle 1, confirmed on 2) and a swing low at 9 (candle 3,
    // confirmed on 4); everything else stays inside 9..12.
    const RANGE: [(f64, f64, f64, f64); 5] = [
        (10.0, 10.5, 9.5, 10.2),
        (10.2, 12.0, 10.0, 11.5), // 1: swing high 12
        (11.5, 11.6, 10.0, 10.2), // 2
        (10.2, 10.4, 9.0, 9.8),   // 3: swing low 9
        (9.8, 10.3, 9.6, 10.1),   // 4: below candle 3's high, so not a swing high
    ];

    #[test]
    fn sweeps_of_single_swings() {
        use Side::*;
        struct Case {
            name: &'static str,
            tail: Vec<(f64, f64, f64, f64)>,
            expected: Vec<Seen>,
            left: (usize, usize),
        }
        let cases = [
            Case {
                name: "nothing beyond the swings: no sweep, both pools live",
                tail: vec![(10.4, 11.9, 9.1, 11.0)],
                expected: vec![],
                left: (1, 1),
            },
            Case {
                name: "wick above the swing high, close back below: SELL",
                tail: vec![(10.4, 12.4, 10.3, 11.7)],
                expected: vec![(5, Some(Bear), 12.0, 1)],
                left: (0, 1),
            },
            Case {
                name: "wick below the swing low, close back above: BUY",
                tail: vec![(10.4, 10.5, 8.6, 9.4)],
                expected: vec![(5, Some(Bull), 9.0, 1)],
                left: (1, 0),
            },
            Case {
                name: "close above the high is a breakout, not a sweep; the pool is gone",
                tail: vec![(10.4, 12.5, 10.3, 12.3), (12.3, 12.6, 11.0, 11.2)],
                expected: vec![],
                left: (0, 1),
            },
            Case {
                name: "a close exactly on the level is not back inside",
                tail: vec![(10.4, 12.4, 10.3, 12.0)],
                expected: vec![],
                left: (0, 1),
            },
            Case {
                name: "a pool is swept once",
                tail: vec![(10.4, 12.4, 10.3, 11.7), (11.7, 12.5, 11.0, 11.5)],
                expected: vec![(5, Some(Bear), 12.0, 1)],
                left: (0, 1),
            },
            Case {
                name: "an outside bar sweeping both sides is a conflict",
                tail: vec![(10.4, 12.4, 8.6, 10.5)],
                expected: vec![(5, None, f64::NAN, 0)],
                left: (0, 0),
            },
        ];
        for c in cases {
            let mut ohlc = RANGE.to_vec();
            ohlc.extend(c.tail);
            let (got, liq) = run(0.0, 0, &ohlc);
            // NaN != NaN: compare conflicts by side only.
            let key = |v: &[Seen]| -> Vec<(usize, Option<Side>, String, u32)> {
                v.iter()
                    .map(|&(i, s, l, t)| (i, s, format!("{l}"), t))
                    .collect()
            };
            assert_eq!(key(&got), key(&c.expected), "{}", c.name);
            let left = (liq.highs().count(), liq.lows().count());
            assert_eq!(left, c.left, "{}", c.name);
        }
    }

    #[test]
    fn equal_lows_form_one_pool_and_are_swept_together() {
        // Two swing lows at 9.00 and 9.004 (0.044 % apart), then a wick to 8.8 closing at 9.3.
        let ohlc = [
            (10.0, 10.5, 9.5, 10.2),
            (10.2, 10.4, 9.0, 9.8),   // 1: swing low 9.00
            (9.8, 10.6, 9.6, 10.4),   // 2
            (10.4, 10.8, 10.0, 10.1), // 3: swing high 10.8
            (10.1, 10.3, 9.004, 9.5), // 4: swing low 9.004
            (9.5, 10.0, 9.4, 9.9),    // 5
            (9.9, 10.0, 8.8, 9.3),    // 6: sweep of both
        ];
        let (got, liq) = run(0.05, 0, &ohlc);
        assert_eq!(got, vec![(6, Some(Side::Bull), 9.0, 2)]);
        assert_eq!(liq.lows().count(), 0);
        // With no tolerance they are two pools; the sweep still reports the lowest, 2 touches.
        let (got, _) = run(0.0, 0, &ohlc);
        assert_eq!(got, vec![(6, Some(Side::Bull), 9.0, 2)]);
        // Before the sweep, with tolerance: one pool of 2 touches at the lower low.
        let (_, liq) = run(0.05, 0, &ohlc[..6]);
        let pools: Vec<_> = liq.lows().map(|p| (p.price, p.touches, p.last)).collect();
        assert_eq!(pools, vec![(9.0, 2, 4)]);
        let (_, liq) = run(0.0, 0, &ohlc[..6]);
        assert_eq!(liq.lows().count(), 2);
    }

    #[test]
    fn a_wick_between_two_pools_sweeps_only_the_nearer_one() {
        // Swing highs 12 (candle 1) and 11.5 (candle 3); a wick to 11.8 closing 11.2 sweeps
        // 11.5 only; 12 stays.
        let ohlc = [
            (10.0, 10.5, 9.5, 10.2),
            (10.2, 12.0, 10.0, 11.0), // 1: swing high 12
            (11.0, 11.2, 10.2, 10.5), // 2
            (10.5, 11.5, 10.4, 11.0), // 3: swing high 11.5
            (11.0, 11.1, 10.3, 10.6), // 4
            (10.6, 11.8, 10.5, 11.2), // 5: sweep of 11.5
        ];
        let (got, liq) = run(0.0, 0, &ohlc);
        assert_eq!(got, vec![(5, Some(Side::Bear), 11.5, 1)]);
        let left: Vec<_> = liq.highs().map(|p| p.price).collect();
        assert_eq!(left, vec![12.0]);
    }

    #[test]
    fn pools_expire_and_reset_forgets() {
        let mut ohlc = RANGE.to_vec();
        // Candles 5..=7 inside; candle 8 would sweep the high at index 1, but with max_age 5 the
        // pool (latest touch at 1) is 7 candles old and gone.
        ohlc.extend([(10.4, 10.6, 10.0, 10.2); 3]);
        ohlc.push((10.2, 12.4, 10.1, 11.7));
        assert_eq!(run(0.0, 5, &ohlc).0, vec![]);
        assert_eq!(run(0.0, 0, &ohlc).0, vec![(8, Some(Side::Bear), 12.0, 1)]);
        let (_, mut liq) = run(0.0, 0, &ohlc);
        liq.reset();
        assert_eq!((liq.seen(), liq.highs().count()), (0, 0));
    }
}
