//! In-house RSI, the one indicator not taken from the `ta-lib` crate.
//!
//! # Why
//!
//! `ta-lib` 0.8.3 answers the neutral **50** when the period's average gain and average loss
//! are both exactly zero — every close since the first one identical (upstream issue #480).
//! The TA-Lib C library our parity standard is pinned to (0.8.1, as bundled by the PyPI
//! `ta-lib` wheel; see `tests/talib_parity.rs`) answers **0** there. Everywhere else the two
//! agree bit for bit. That zero-total branch is a constant inside the crate's stream, not
//! reachable from its API, so this module transcribes the same Wilder recurrence (same
//! operations in the same order, so bit-identical to both) with the C library's 0.
//!
//! The case is a series that has never moved since its first bar — e.g. a new or halted
//! pair whose klines are all one price. Note that C's 0 reads as "extremely oversold"; if the
//! project ever re-pins parity to a C release that includes #480, delete this module and go
//! back to the crate (`close_spec!(RsiSpec, Rsi, ta_lib::RsiStream, rsi_lookback, rsi_open)`
//! in `indicator.rs`).
//!
//! Its parity with C is proven by `tests/talib_parity.rs`, and its agreement with the crate
//! (everywhere but that zero total) by `tests/indicator_properties.rs`.

use ta_lib::RetCode;

use super::{Spec, Streamed, core, lb};
use crate::model::Candle;

/// Relative Strength Index (Wilder smoothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RsiSpec {
    /// Time period.
    pub period: i32,
}

/// The running state of an [`RsiSpec`]: Wilder's average gain and loss and the last close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RsiStream {
    period_minus_1: f64,
    inv_period: f64,
    avg_gain: f64,
    avg_loss: f64,
    prev_close: f64,
}

impl RsiStream {
    /// The averages after one more close, without committing it.
    fn step(&self, close: f64) -> (f64, f64) {
        let change = close - self.prev_close;
        let gain = if change > 0.0 { change } else { 0.0 };
        // `gain - change` is the exact loss (0 or -change) for every finite change.
        let avg_gain = (self.avg_gain * self.period_minus_1 + gain) * self.inv_period;
        let avg_loss = (self.avg_loss * self.period_minus_1 + (gain - change)) * self.inv_period;
        (avg_gain, avg_loss)
    }

    /// `100 · gain / (gain + loss)`, and the C library's 0 when both are zero.
    fn value(avg_gain: f64, avg_loss: f64) -> f64 {
        let total = avg_gain + avg_loss;
        if total > 0.0 {
            100.0 * (avg_gain / total)
        } else {
            0.0
        }
    }

    fn commit(&mut self, close: f64) -> Result<f64, RetCode> {
        if !close.is_finite() {
            return Err(RetCode::BadParam);
        }
        let (g, l) = self.step(close);
        self.avg_gain = g;
        self.avg_loss = l;
        self.prev_close = close;
        Ok(Self::value(g, l))
    }
}

impl Spec for RsiSpec {
    type Stream = RsiStream;
    type Output = f64;

    fn lookback(&self) -> usize {
        lb(core().rsi_lookback(self.period))
    }

    fn open(&self, _: &[f64], _: &[f64], c: &[f64]) -> Result<(RsiStream, f64), RetCode> {
        let n = self.lookback();
        if n == usize::MAX - 1 {
            return Err(RetCode::BadParam);
        }
        if c.len() <= n {
            return Err(RetCode::InsufficientHistory);
        }
        if c.iter().any(|v| !v.is_finite()) {
            return Err(RetCode::BadParam);
        }
        let period = self.period as usize;
        // Seed: plain sums of the first `period` gains and losses, then one scaling.
        let (mut gains, mut losses) = (0.0, 0.0);
        for w in c[..=period].windows(2) {
            let change = w[1] - w[0];
            let gain = if change > 0.0 { change } else { 0.0 };
            gains += gain;
            losses += gain - change;
        }
        let inv_period = 1.0 / f64::from(self.period);
        let mut s = RsiStream {
            period_minus_1: f64::from(self.period - 1),
            inv_period,
            avg_gain: gains * inv_period,
            avg_loss: losses * inv_period,
            prev_close: c[period],
        };
        let mut out = RsiStream::value(s.avg_gain, s.avg_loss);
        // Any history beyond the seed (a longer warm-up) steps on, as C skips an unstable period.
        for &close in &c[period + 1..] {
            out = s.commit(close)?;
        }
        Ok((s, out))
    }

    fn update(s: &mut RsiStream, c: &Candle) -> Result<f64, RetCode> {
        s.commit(c.close)
    }

    fn peek(s: &RsiStream, c: &Candle) -> Result<f64, RetCode> {
        if !c.close.is_finite() {
            return Err(RetCode::BadParam);
        }
        let (g, l) = s.step(c.close);
        Ok(RsiStream::value(g, l))
    }
}

/// Relative Strength Index (Wilder smoothing), in-house: see the module docs (`indicator/rsi.rs`).
pub type Rsi = Streamed<RsiSpec>;

impl Rsi {
    /// A new indicator over closes with this period.
    pub fn new(period: usize) -> Self {
        Streamed::with_spec(RsiSpec {
            period: period as i32,
        })
    }
}
