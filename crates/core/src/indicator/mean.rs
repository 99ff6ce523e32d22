//! In-house simple moving average: TA-Lib's `SMA` transcribed.
//!
//! # Why
//!
//! The crate's `SmaStream` step is a handful of operations, but behind the buffering wrapper,
//! the handle's checks and `Result` it cost the rule language ~70 instructions a bar. This
//! runs the C library's arithmetic in its order — a running total summed from the first bar,
//! the new value added, the total kept before the trailing value is subtracted, divided (not
//! multiplied by an inverse) by the period — so every output is the crate's to the bit
//! (tested against its stream).

use super::{Indicator, NEVER, core, lb};
use crate::model::Candle;

/// The mean of the last `period` closes.
#[derive(Debug, Clone)]
pub struct Mean {
    period: usize,
    lookback: usize,
    /// The last `period` inputs; `pos` is where the next goes (the oldest of the window).
    ring: Vec<f64>,
    pos: usize,
    seen: usize,
    total: f64,
}

impl Mean {
    /// Over `period` closes (TA-Lib: 2 to 100,000).
    pub fn new(period: usize) -> Self {
        let lookback = lb(core().sma_lookback(period as i32));
        Mean {
            period,
            lookback,
            ring: vec![0.0; if lookback == NEVER { 1 } else { period }],
            pos: 0,
            seen: 0,
            total: 0.0,
        }
    }
}

impl Indicator for Mean {
    type Output = f64;

    fn update(&mut self, c: &Candle) -> Option<f64> {
        let x = c.close;
        if !x.is_finite() || self.lookback == NEVER {
            return None; // as the crate's stream: refused, nothing committed
        }
        self.ring[self.pos] = x;
        self.pos += 1;
        if self.pos == self.ring.len() {
            self.pos = 0;
        }
        self.total += x;
        self.seen += 1;
        if self.seen <= self.lookback {
            return None;
        }
        let sum = self.total;
        // `ring[pos]` is now the oldest value of the window, which leaves it next bar.
        self.total -= self.ring[self.pos];
        Some(sum / self.period as f64)
    }

    fn peek(&self, c: &Candle) -> Option<f64> {
        self.clone().update(c)
    }

    fn reset(&mut self) {
        *self = Mean::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::Sma;
    use crate::indicator::bit_parity::{assert_same_bits, synthetic_field};
    use crate::testing::candles;

    #[test]
    fn equals_the_crate_stream_to_the_bit() {
        let mut series = synthetic_field(1..4, |c| c.volume);
        series.extend(synthetic_field(9..10, |c| c.close * 1e3));
        series.push((0..4000).map(|i| 1e9 + (i % 7) as f64 * 1e-3).collect());
        for xs in &series {
            let cs = candles(xs);
            for n in [2, 3, 9, 20, 50, 200] {
                let values = assert_same_bits(Mean::new(n), Sma::new(n), &cs, &n.to_string());
                assert_eq!(values, cs.len() - (n - 1));
            }
        }
    }
}
