//! In-house exponential moving average: TA-Lib's `EMA` transcribed.
//!
//! # Why
//!
//! The crate's `EmaStream` step is one fused multiply-add, but behind the buffering wrapper,
//! the handle's checks, its CPU-feature dispatch and `Result` it cost ~60 instructions a bar.
//! This keeps the C library's (and the crate's) arithmetic: the coefficients computed as the
//! crate computes them, the seed the mean of the first `period` inputs (summed from the first,
//! divided by the period), then `prev = beta · prev + k · x` as one fused multiply-add
//! (`f64::mul_add` is fused on every target, as the crate's FMA and scalar paths both are), so
//! every output is the crate's to the bit (tested against its stream).

use super::{Indicator, NEVER, core, lb};
use crate::model::Candle;

/// The EMA of closes, SMA-seeded as in TA-Lib.
#[derive(Debug, Clone)]
pub struct ExpAvg {
    period: usize,
    lookback: usize,
    beta: f64,
    k: f64,
    seen: usize,
    /// The running sum of the seed, then the average.
    prev: f64,
}

impl ExpAvg {
    /// Over `period` closes (TA-Lib: 1 to 100,000).
    pub fn new(period: usize) -> Self {
        let lookback = lb(core().ema_lookback(period as i32));
        // The crate's coefficients: beta + k must be exactly 1.
        let mut beta = (period as f64 - 1.0) / (period as f64 + 1.0);
        let k = 1.0 - beta;
        if beta < 0.5 {
            beta = 1.0 - k;
        }
        ExpAvg {
            period,
            lookback,
            beta,
            k,
            seen: 0,
            prev: 0.0,
        }
    }
}

impl Indicator for ExpAvg {
    type Output = f64;

    fn update(&mut self, c: &Candle) -> Option<f64> {
        let x = c.close;
        if !x.is_finite() || self.lookback == NEVER {
            return None; // as the crate's stream: refused, nothing committed
        }
        let t = self.seen;
        self.seen += 1;
        if self.period == 1 {
            return Some(x);
        }
        if t < self.period {
            self.prev += x;
            if t + 1 == self.period {
                self.prev /= self.period as f64;
            }
        } else {
            self.prev = self.beta.mul_add(self.prev, self.k * x);
        }
        (t >= self.lookback).then_some(self.prev)
    }

    fn peek(&self, c: &Candle) -> Option<f64> {
        self.clone().update(c)
    }

    fn reset(&mut self) {
        *self = ExpAvg::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::Ema;
    use crate::indicator::bit_parity::{assert_same_bits, synthetic_field};
    use crate::testing::candles;

    #[test]
    fn equals_the_crate_stream_to_the_bit() {
        let mut series = synthetic_field(1..4, |c| c.close);
        series.push((0..3000).map(|i| 50.0 + ((i * 37) % 23) as f64).collect());
        series.push((0..3000).map(|i| 1e8 + (i % 5) as f64 * 1e-4).collect());
        for xs in &series {
            let cs = candles(xs);
            for n in [2, 3, 4, 5, 9, 12, 20, 26, 50, 200] {
                let values = assert_same_bits(ExpAvg::new(n), Ema::new(n), &cs, &n.to_string());
                assert_eq!(values, cs.len() - (n - 1));
            }
        }
    }
}
