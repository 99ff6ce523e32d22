//! In-house directional movement: +DI, −DI and ADX of one period from one state.
//!
//! # Why
//!
//! TA-Lib's `ADX`, `PLUS_DI` and `MINUS_DI` each smooth the same directional movements and
//! true range; the `adx` strategy ran all three `ta-lib` streams, so it paid for that
//! smoothing three times (about 300 instructions a bar). [`Dmi`] steps it once, with the
//! operations of TA-Lib's `ADX` in their order (Wilder sums over the first `period - 1` bars,
//! then `x - x / period + new` smoothing; DX summed over `period` bars to seed ADX), and reads
//! ±DI off the same sums as `PLUS_DI`/`MINUS_DI` do (their `max` form of the DM update gives
//! the same numbers as `ADX`'s, and they answer 0 while the true range is 0). Every output is
//! bit-identical to the crate's batch calls, which `tests/indicator_properties.rs` checks on
//! random series (`==`) and `tests/talib_parity.rs` against the C library. [`super::Adx`],
//! [`super::PlusDi`] and [`super::MinusDi`] stay for separate use (rule strategies).

use super::{Indicator, NEVER, core, lb};
use crate::model::Candle;

/// +DI, −DI and ADX of one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DmiValue {
    /// Plus Directional Indicator.
    pub plus_di: f64,
    /// Minus Directional Indicator.
    pub minus_di: f64,
    /// Average Directional Index.
    pub adx: f64,
}

/// +DI, −DI and ADX over one period, values from ADX's first bar (its lookback) on.
#[derive(Debug, Clone, Copy)]
pub struct Dmi {
    period: usize,
    inv_period: f64,
    lookback: usize,
    /// ±DI's own lookback (TA-Lib's `PLUS_DI`/`MINUS_DI`): they have values before ADX does.
    di_lookback: usize,
    /// Bars seen.
    bars: usize,
    prev_high: f64,
    prev_low: f64,
    prev_close: f64,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
    sum_dx: f64,
    adx: f64,
}

impl Dmi {
    /// +DI, −DI and ADX of `period` bars (TA-Lib: 2 and up).
    pub fn new(period: usize) -> Self {
        Dmi {
            period,
            inv_period: 1.0 / period as f64,
            lookback: lb(core().adx_lookback(period as i32)),
            di_lookback: lb(core().plus_di_lookback(period as i32)),
            bars: 0,
            prev_high: 0.0,
            prev_low: 0.0,
            prev_close: 0.0,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
            sum_dx: 0.0,
            adx: 0.0,
        }
    }
}

impl Dmi {
    /// One bar, each line from its own first bar on (TA-Lib's `PLUS_DI`, `MINUS_DI` and `ADX`
    /// lookbacks): ±DI once `period` bars are in, ADX `NaN` until its lookback. For the rule
    /// language, where `adx(n)`, `plus_di(n)` and `minus_di(n)` share one state.
    pub fn update_lines(&mut self, c: &Candle) -> Option<DmiValue> {
        let (t, v) = self.step(c)?;
        (t >= self.di_lookback).then_some(DmiValue {
            adx: if t >= self.lookback { v.adx } else { f64::NAN },
            ..v
        })
    }

    /// ±DI's lookback.
    pub fn di_lookback(&self) -> usize {
        self.di_lookback
    }

    /// Commits one bar: its index and the three lines as they stand (meaningful from each
    /// line's lookback on).
    #[inline]
    fn step(&mut self, c: &Candle) -> Option<(usize, DmiValue)> {
        if !c.high.is_finite() || !c.low.is_finite() || !c.close.is_finite() {
            return None; // as the crate's streams: refused, nothing committed
        }
        if self.lookback == NEVER {
            return None; // parameters TA-Lib refuses
        }
        let t = self.bars;
        self.bars += 1;
        if t == 0 {
            (self.prev_high, self.prev_low, self.prev_close) = (c.high, c.low, c.close);
            return None;
        }
        let p = self.period;
        let inv = self.inv_period;
        let diff_p = c.high - self.prev_high;
        self.prev_high = c.high;
        let diff_m = self.prev_low - c.low;
        self.prev_low = c.low;
        let seeding = t < p;
        if !seeding {
            self.minus_dm -= self.minus_dm * inv;
            self.plus_dm -= self.plus_dm * inv;
        }
        let minus_sel = if diff_m - diff_p > 0.0 { diff_m } else { 0.0 };
        let plus_sel = if diff_p - diff_m > 0.0 { diff_p } else { 0.0 };
        self.minus_dm += if diff_m > 0.0 { minus_sel } else { 0.0 };
        self.plus_dm += if diff_p > 0.0 { plus_sel } else { 0.0 };
        let mut range = self.prev_high - self.prev_low;
        let up = (self.prev_high - self.prev_close).abs();
        if up > range {
            range = up;
        }
        let down = (self.prev_low - self.prev_close).abs();
        if down > range {
            range = down;
        }
        self.prev_close = c.close;
        if seeding {
            self.tr += range;
            return Some((
                t,
                DmiValue {
                    plus_di: f64::NAN,
                    minus_di: f64::NAN,
                    adx: f64::NAN,
                },
            ));
        }
        self.tr = self.tr - self.tr * inv + range;
        let (mut plus_di, mut minus_di) = (0.0, 0.0);
        if self.tr > 0.0 {
            minus_di = 100.0 * (self.minus_dm / self.tr);
            plus_di = 100.0 * (self.plus_dm / self.tr);
            let sum = minus_di + plus_di;
            // As TA-Lib's negated test: a NaN sum is not "zero".
            let zero = sum.abs() < 1e-14;
            if !zero {
                let dx = 100.0 * ((minus_di - plus_di).abs() / sum);
                if t < 2 * p {
                    self.sum_dx += dx;
                } else {
                    self.adx -= (self.adx - dx) * inv;
                }
            }
        }
        if t == 2 * p - 1 {
            self.adx = self.sum_dx / p as f64;
        }
        Some((
            t,
            DmiValue {
                plus_di,
                minus_di,
                adx: self.adx,
            },
        ))
    }
}

impl Indicator for Dmi {
    type Output = DmiValue;

    fn update(&mut self, c: &Candle) -> Option<DmiValue> {
        let (t, v) = self.step(c)?;
        (t >= self.lookback).then_some(v)
    }

    fn peek(&self, c: &Candle) -> Option<DmiValue> {
        let mut fork = *self;
        fork.update(c)
    }

    fn reset(&mut self) {
        *self = Dmi::new(self.period);
    }

    fn lookback(&self) -> usize {
        self.lookback
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{Adx, MinusDi, PlusDi};

    /// `adx(n)`, `plus_di(n)` and `minus_di(n)` of a rule read one [`Dmi`] through
    /// [`Dmi::update_lines`]: each line must be the crate's own stream, bar for bar, from that
    /// line's first value on (±DI start `n - 1` bars before ADX).
    #[test]
    fn lines_equal_the_crate_streams_from_each_lookback() {
        for (seed, period) in [(1, 2), (2, 5), (3, 14), (4, 30)] {
            let mut dmi = Dmi::new(period);
            let (mut adx, mut plus, mut minus) =
                (Adx::new(period), PlusDi::new(period), MinusDi::new(period));
            let bits = |v: Option<f64>| v.unwrap_or(f64::NAN).to_bits();
            let mut early_di = 0;
            for (t, c) in crate::testing::synthetic(seed, 3000).iter().enumerate() {
                let got = dmi.update_lines(c);
                let line = |f: fn(&DmiValue) -> f64| got.as_ref().map(f);
                let want = (adx.update(c), plus.update(c), minus.update(c));
                assert_eq!(
                    (
                        bits(line(|v| v.adx).filter(|v| !v.is_nan())),
                        bits(line(|v| v.plus_di)),
                        bits(line(|v| v.minus_di))
                    ),
                    (bits(want.0), bits(want.1), bits(want.2)),
                    "period {period}, bar {t}"
                );
                early_di += usize::from(want.1.is_some() && want.0.is_none());
            }
            assert_eq!(early_di, period - 1, "±DI lead ADX by n - 1 bars");
        }
    }
}
