//! [`Params`]: a strategy's configuration type, with the valid range of every field checked once
//! when the strategy is built, so an absurd setting is an error naming the parameter instead of
//! an allocation failure, a panic or a strategy that can never speak.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Strategy;

/// Longest indicator period accepted (TA-Lib's own upper bound).
pub const MAX_PERIOD: usize = 100_000;
/// Longest `hold` accepted, in candles.
pub const MAX_HOLD: usize = 100_000;

/// A strategy's parameters: serde (unknown fields denied), defaults, range checks, and the
/// strategy they build.
pub trait Params: Serialize + DeserializeOwned + Default {
    /// The strategy's id.
    const ID: &'static str;
    /// The strategy these parameters build.
    type Strategy: Strategy + 'static;
    /// Checks every field's range; the error names the parameter and what is valid.
    fn validate(&self) -> Result<(), String>;
    /// Builds the strategy (parameters already validated).
    fn build(self) -> Self::Strategy;
}

/// `name` must lie in `lo..=hi`.
pub fn int_in(name: &str, v: usize, lo: usize, hi: usize) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} must be in {lo}..={hi}, got {v}"))
    }
}

/// `name` must be finite and lie in `lo..=hi`.
pub fn num_in(name: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} must be a number in {lo}..={hi}, got {v}"))
    }
}

/// An indicator period: 2..=[`MAX_PERIOD`] (TA-Lib's range for averages and oscillators).
pub fn period(name: &str, v: usize) -> Result<(), String> {
    int_in(name, v, 2, MAX_PERIOD)
}

/// A smoothing length that may be 1 (MACD's signal, Stochastic's %K smoothing and %D).
pub fn smoothing(name: &str, v: usize) -> Result<(), String> {
    int_in(name, v, 1, MAX_PERIOD)
}

/// How many candles a view lasts: 1..=[`MAX_HOLD`].
pub fn hold(v: usize) -> Result<(), String> {
    int_in("hold", v, 1, MAX_HOLD)
}

/// `fast` must be shorter than `slow`: otherwise the "fast" line lags and crossings mean the
/// opposite of what the strategy claims.
pub fn fast_below_slow(fast: usize, slow: usize) -> Result<(), String> {
    if fast < slow {
        Ok(())
    } else {
        Err(format!("fast ({fast}) must be less than slow ({slow})"))
    }
}

/// Oscillator levels: both in 0..=100, oversold below overbought.
pub fn levels(oversold: f64, overbought: f64) -> Result<(), String> {
    num_in("oversold", oversold, 0.0, 100.0)?;
    num_in("overbought", overbought, 0.0, 100.0)?;
    if oversold < overbought {
        Ok(())
    } else {
        Err(format!(
            "oversold ({oversold}) must be less than overbought ({overbought})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_parameter() {
        assert!(period("period", 14).is_ok());
        let e = period("period", 0).unwrap_err();
        assert!(e.contains("period must be in 2..=100000, got 0"), "{e}");
        assert!(num_in("std_dev", f64::NAN, 0.0, 10.0).is_err());
        assert!(num_in("std_dev", f64::INFINITY, 0.0, 10.0).is_err());
        assert!(hold(0).is_err() && hold(1).is_ok());
        assert!(fast_below_slow(26, 12).unwrap_err().contains("fast (26)"));
        assert!(levels(70.0, 30.0).is_err() && levels(30.0, 70.0).is_ok());
    }
}
