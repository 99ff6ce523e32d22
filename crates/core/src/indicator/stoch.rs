//! In-house slow stochastic (TA-Lib's `STOCH` with SMA smoothing of %K and %D).
//!
//! # Why
//!
//! The `ta-lib` crate's stream is exact but layered: its `update` checks the bar, steps a
//! fast-%K ring, then steps two generic `MA` streams, each dispatching on the MA type to an
//! `SMA` stream that checks its input again — about 360 instructions a bar, the costliest
//! indicator behind the eleven strategies. This module carries the state directly: the
//! window's lowest low and highest high (on monotonic queues — the same values TA-Lib's rescans
//! find, in O(1) amortised), the same fast-%K expression and flat-range guard, and two running sums stepped in the batch's order
//! (add the new value, keep the total, subtract the oldest, divide by the period), so every
//! output is bit-identical to the crate's batch call, which `tests/indicator_properties.rs`
//! checks on random series (`==`) and `tests/talib_parity.rs` against the C library.

use super::{Indicator, NEVER, StochValue, core, lb};
use crate::model::Candle;

use ta_lib::MAType;

/// TA-Lib's SMA as a running sum: the first `period - 1` values only add, then each value adds,
/// the total is kept, the value `period - 1` back is subtracted, and the kept total is divided
/// by the period — the batch's exact operations. A period of 1 copies its input, as `MA` does.
#[derive(Debug, Clone)]
struct RunningSma {
    period: f64,
    /// The last `period - 1` inputs; `ring[pos]` is the oldest once full.
    ring: Vec<f64>,
    pos: usize,
    filled: usize,
    total: f64,
}

impl RunningSma {
    fn new(period: usize) -> Self {
        RunningSma {
            period: period as f64,
            ring: vec![0.0; period.saturating_sub(1)],
            pos: 0,
            filled: 0,
            total: 0.0,
        }
    }

    fn step(&mut self, x: f64) -> Option<f64> {
        let n = self.ring.len();
        if n == 0 {
            return Some(x);
        }
        if self.filled < n {
            self.total += x;
            self.ring[self.filled] = x;
            self.filled += 1;
            return None;
        }
        self.total += x;
        let kept = self.total;
        self.total -= self.ring[self.pos];
        self.ring[self.pos] = x;
        self.pos += 1;
        if self.pos == n {
            self.pos = 0;
        }
        Some(kept / self.period)
    }
}

/// The extreme (lowest with `MAX = false`, highest with `true`) of a sliding window, as a
/// monotonic queue: O(1) amortised per bar where TA-Lib rescans the window each time its
/// extreme leaves it. The value is the window's minimum (maximum) either way, so the outputs
/// are the same numbers.
#[derive(Debug, Clone)]
struct Extreme<const MAX: bool> {
    /// Bar index and value of each candidate, oldest first, at `head..tail` (masked).
    idx: Vec<usize>,
    val: Vec<f64>,
    mask: usize,
    head: usize,
    tail: usize,
}

impl<const MAX: bool> Extreme<MAX> {
    fn new(window: usize) -> Self {
        // Room for a whole window plus the bar pushed before the oldest expires.
        let cap = (window.max(1) + 1).next_power_of_two();
        Extreme {
            idx: vec![0; cap],
            val: vec![0.0; cap],
            mask: cap - 1,
            head: 0,
            tail: 0,
        }
    }

    /// Adds bar `t`'s value, drops bars before `trailing`, and returns the window's extreme.
    fn push(&mut self, t: usize, v: f64, trailing: usize) -> f64 {
        // A later value at least as extreme makes an earlier one irrelevant.
        while self.tail != self.head {
            let last = self.val[(self.tail - 1) & self.mask];
            if (MAX && last > v) || (!MAX && last < v) {
                break;
            }
            self.tail -= 1;
        }
        self.idx[self.tail & self.mask] = t;
        self.val[self.tail & self.mask] = v;
        self.tail += 1;
        // Never empties: bar `t` itself is in the window.
        while self.idx[self.head & self.mask] < trailing {
            self.head += 1;
        }
        self.val[self.head & self.mask]
    }
}

/// Slow stochastic oscillator (fast %K look-back, SMA-smoothed slow %K and %D), in-house: see
/// the module docs (`indicator/stoch.rs`).
#[derive(Debug, Clone)]
pub struct Stoch {
    fast_k: usize,
    slow_k_period: usize,
    slow_d_period: usize,
    lookback: usize,
    /// Bars seen.
    today: usize,
    lowest: Extreme<false>,
    highest: Extreme<true>,
    slow_k: RunningSma,
    slow_d: RunningSma,
}

impl Stoch {
    /// Stochastic(fast_k, slow_k SMA, slow_d SMA).
    pub fn new(fast_k: usize, slow_k: usize, slow_d: usize) -> Self {
        let lookback = lb(core().stoch_lookback(
            fast_k as i32,
            slow_k as i32,
            MAType::SMA,
            slow_d as i32,
            MAType::SMA,
        ));
        let ring = fast_k.max(1);
        Stoch {
            fast_k: ring,
            slow_k_period: slow_k,
            slow_d_period: slow_d,
            lookback,
            today: 0,
            lowest: Extreme::new(ring),
            highest: Extreme::new(ring),
            slow_k: RunningSma::new(slow_k),
            slow_d: RunningSma::new(slow_d),
        }
    }

    /// Fast %K of bar `today`, once a whole window exists.
    fn fast_k_value(&mut self, today: usize, low: f64, high: f64, close: f64) -> Option<f64> {
        let trailing = (today + 1).saturating_sub(self.fast_k);
        let lo = self.lowest.push(today, low, trailing);
        let hi = self.highest.push(today, high, trailing);
        if today + 1 < self.fast_k {
            return None;
        }
        // TA-Lib's guard: a range flat against its own extremes reads 0 (a NaN range, as in
        // TA-Lib's negated test, is not flat).
        let flat = (hi - lo).abs() <= 1e-14 * (hi.abs() + lo.abs());
        Some(if flat {
            0.0
        } else {
            (close - lo) / (hi - lo) * 100.0
        })
    }
}

impl Indicator for Stoch {
    type Output = StochValue;

    fn update(&mut self, c: &Candle) -> Option<StochValue> {
        if !c.high.is_finite() || !c.low.is_finite() || !c.close.is_finite() {
            return None; // as the crate's stream: refused, nothing committed
        }
        if self.lookback == NEVER {
            return None; // parameters TA-Lib refuses
        }
        let today = self.today;
        self.today += 1;
        let fast = self.fast_k_value(today, c.low, c.high, c.close)?;
        let k = self.slow_k.step(fast)?;
        let d = self.slow_d.step(k)?;
        Some(StochValue { k, d })
    }

    fn peek(&self, c: &Candle) -> Option<StochValue> {
        // Only tests and forming-candle previews peek; a copy keeps it obviously equal.
        self.clone().update(c)
    }

    fn reset(&mut self) {
        *self = Stoch::new(self.fast_k, self.slow_k_period, self.slow_d_period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}
