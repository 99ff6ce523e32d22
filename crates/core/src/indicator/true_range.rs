//! In-house average true range: TA-Lib's `ATR` transcribed (periods of 2 and more).
//!
//! # Why
//!
//! Behind the buffering wrapper, the handle's checks and its CPU-feature dispatch, the crate's
//! `AtrStream` cost the rule language ~100 instructions a bar for a few operations. This keeps
//! the crate's arithmetic: the true range as it computes it (`high − low`, then the larger of
//! it and each distance from the previous close), the seed the mean of the first `period`
//! true ranges (summed, divided by the period), then `atr = beta · atr + alpha · tr` as one
//! fused multiply-add with the crate's coefficients, so every output is the crate's to the bit
//! (tested against its stream).

use super::{Indicator, NEVER, core, lb};
use crate::model::Candle;

/// Wilder's average true range over `period` (≥ 2) candles.
#[derive(Debug, Clone)]
pub struct TrueRangeAvg {
    period: usize,
    lookback: usize,
    beta: f64,
    alpha: f64,
    /// Candles seen.
    seen: usize,
    prev_close: f64,
    /// The sum of the seed's true ranges, then the average.
    atr: f64,
}

impl TrueRangeAvg {
    /// Over `period` candles; a period below 2 never gives a value (use [`super::Atr`]).
    pub fn new(period: usize) -> Self {
        let lookback = if period < 2 {
            NEVER
        } else {
            lb(core().atr_lookback(period as i32))
        };
        let beta = (period as f64 - 1.0) / period as f64;
        TrueRangeAvg {
            period,
            lookback,
            beta,
            alpha: 1.0 - beta,
            seen: 0,
            prev_close: 0.0,
            atr: 0.0,
        }
    }
}

/// TA-Lib's `max`: `a` when `a > b`, else `b`.
#[inline]
fn c_max(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

impl Indicator for TrueRangeAvg {
    type Output = f64;

    fn update(&mut self, c: &Candle) -> Option<f64> {
        if !c.high.is_finite() || !c.low.is_finite() || !c.close.is_finite() {
            return None; // as the crate's stream: refused, nothing committed
        }
        if self.lookback == NEVER {
            return None;
        }
        let t = self.seen;
        self.seen += 1;
        let cy = self.prev_close;
        self.prev_close = c.close;
        if t == 0 {
            return None;
        }
        let mut tr = c.high - c.low;
        tr = c_max((cy - c.high).abs(), tr);
        tr = c_max((cy - c.low).abs(), tr);
        if t <= self.period {
            self.atr += tr;
            if t == self.period {
                self.atr /= self.period as f64;
            }
        } else {
            self.atr = self.beta.mul_add(self.atr, self.alpha * tr);
        }
        (t >= self.lookback).then_some(self.atr)
    }

    fn peek(&self, c: &Candle) -> Option<f64> {
        self.clone().update(c)
    }

    fn reset(&mut self) {
        *self = TrueRangeAvg::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::Atr;
    use crate::indicator::bit_parity::assert_same_bits;

    #[test]
    fn equals_the_crate_stream_to_the_bit() {
        let mut series: Vec<Vec<Candle>> = (1..5)
            .map(|seed| crate::testing::synthetic(seed, 5000))
            .collect();
        // Flat stretches and gaps: true ranges of 0 and ranges set by the previous close.
        series.push(crate::testing::bars(
            &(0..3000)
                .map(|i| {
                    let p = 100.0 + ((i / 40) % 5) as f64 * 3.0;
                    if i % 40 < 15 {
                        (p, p, p, p)
                    } else {
                        (p, p + 0.5, p - 0.25, p + 0.1)
                    }
                })
                .collect::<Vec<_>>(),
        ));
        for cs in &series {
            for n in [2, 3, 5, 14, 20, 50] {
                let values =
                    assert_same_bits(TrueRangeAvg::new(n), Atr::new(n), cs, &n.to_string());
                assert_eq!(values, cs.len() - n);
            }
        }
    }
}
