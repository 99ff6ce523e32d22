//! In-house highest and lowest value over a window: TA-Lib's `MAX` and `MIN` transcribed.
//!
//! # Why
//!
//! The crate's `MaxStream`/`MinStream` step costs ~65 instructions a bar and the wrapper
//! around it (buffering, the handle's range and finiteness checks, `Result` to `Option`)
//! about as much again; the rule language's `highest`/`lowest` paid ~105 per bar each. This
//! keeps the C library's algorithm — the extreme's index; when it leaves the window, the
//! earliest extreme of the window (TA-Lib rescans with a strict comparison); `>=`/`<=` for a
//! new bar — so which of equal values is kept (it matters for ±0) is TA-Lib's, and every
//! output is the crate's to the bit (tested against its streams on series full of ties and
//! signed zeros). Only the rescan is replaced: a monotonic queue that keeps equal values
//! answers "earliest extreme of the window" in O(1) amortised.

use super::{Indicator, NEVER, core, lb};
use crate::model::Candle;

/// The highest (`MAX = true`) or lowest close of the last `period` candles.
#[derive(Debug, Clone)]
pub struct Extreme<const MAX: bool> {
    period: usize,
    lookback: usize,
    /// Inputs seen (the index of the next).
    today: usize,
    /// Index of the current extreme; meaningless until the first output (`best_at < trailing`
    /// forces the first scan).
    best_at: usize,
    best: f64,
    started: bool,
    /// `(index, value)` of the window, values non-increasing (non-decreasing for the lowest)
    /// from the front, equal ones kept: the front is the window's earliest extreme. A ring of
    /// `queue.len()` (a power of two above `period`) between `head` and `tail`.
    queue: Vec<(usize, f64)>,
    head: usize,
    tail: usize,
}

impl<const MAX: bool> Extreme<MAX> {
    /// Over `period` closes (TA-Lib: 2 to 100,000).
    pub fn new(period: usize) -> Self {
        let lookback = if MAX {
            lb(core().max_lookback(period as i32))
        } else {
            lb(core().min_lookback(period as i32))
        };
        let queue = if lookback == NEVER {
            1
        } else {
            (period + 1).next_power_of_two()
        };
        Extreme {
            period,
            lookback,
            today: 0,
            best_at: 0,
            best: 0.0,
            started: false,
            queue: vec![(0, 0.0); queue],
            head: 0,
            tail: 0,
        }
    }

    #[inline]
    fn beats(a: f64, b: f64) -> bool {
        if MAX { a > b } else { a < b }
    }

    #[inline]
    fn ties_or_beats(a: f64, b: f64) -> bool {
        if MAX { a >= b } else { a <= b }
    }
}

impl<const MAX: bool> Indicator for Extreme<MAX> {
    type Output = f64;

    fn update(&mut self, c: &Candle) -> Option<f64> {
        let x = c.close;
        if !x.is_finite() || self.lookback == NEVER {
            return None; // as the crate's stream: refused, nothing committed
        }
        let today = self.today;
        self.today += 1;
        let qmask = self.queue.len() - 1;
        while self.tail > self.head && Self::beats(x, self.queue[(self.tail - 1) & qmask].1) {
            self.tail -= 1;
        }
        self.queue[self.tail & qmask] = (today, x);
        self.tail += 1;
        if today < self.lookback {
            return None;
        }
        let trailing = today - self.lookback;
        while self.queue[self.head & qmask].0 < trailing {
            self.head += 1;
        }
        if !self.started || self.best_at < trailing {
            // The extreme left the window (or there is none yet): TA-Lib rescans the window
            // for its earliest extreme, which is the front of the queue.
            self.started = true;
            (self.best_at, self.best) = self.queue[self.head & qmask];
        } else if Self::ties_or_beats(x, self.best) {
            self.best_at = today;
            self.best = x;
        }
        Some(self.best)
    }

    fn peek(&self, c: &Candle) -> Option<f64> {
        self.clone().update(c)
    }

    fn reset(&mut self) {
        *self = Extreme::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::bit_parity::synthetic_field;
    use crate::indicator::{Highest, Lowest};
    use crate::testing::candles;

    /// Equal to the crate's streams to the bit, on prices and on series of few distinct values
    /// with both zeros (where which of equal values is kept shows).
    #[test]
    fn equals_the_crate_streams_to_the_bit() {
        let mut series = synthetic_field(1..4, |c| c.close);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let picks = [0.0, -0.0, 1.0, -1.0, 2.0, 0.0, -0.0];
        series.push(
            (0..20_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    picks[(state % picks.len() as u64) as usize]
                })
                .collect(),
        );
        series.push((0..3000).map(|i| -((i / 50) as f64)).collect());
        for xs in &series {
            let cs = candles(xs);
            for n in [2, 3, 5, 14, 20, 64, 65] {
                let (mut hi, mut lo) = (Extreme::<true>::new(n), Extreme::<false>::new(n));
                let (mut thi, mut tlo) = (Highest::new(n), Lowest::new(n));
                let bits = |v: Option<f64>| v.map(f64::to_bits);
                for (t, c) in cs.iter().enumerate() {
                    assert_eq!(bits(hi.update(c)), bits(thi.update(c)), "max {n} at {t}");
                    assert_eq!(bits(lo.update(c)), bits(tlo.update(c)), "min {n} at {t}");
                }
                assert_eq!(hi.lookback(), thi.lookback());
            }
        }
    }
}
