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

/// A parameter outside its valid range, named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// An integer outside `lo..=hi`.
    #[error("{name} must be in {lo}..={hi}, got {got}")]
    Int {
        /// The parameter.
        name: &'static str,
        /// The value given.
        got: usize,
        /// Smallest valid value.
        lo: usize,
        /// Largest valid value.
        hi: usize,
    },
    /// A number outside `lo..=hi`, or not finite.
    #[error("{name} must be a number in {lo}..={hi}, got {got}")]
    Num {
        /// The parameter.
        name: &'static str,
        /// The value given.
        got: f64,
        /// Smallest valid value.
        lo: f64,
        /// Largest valid value.
        hi: f64,
    },
    /// Two parameters in the wrong order (`fast` not below `slow`, `oversold` not below
    /// `overbought`).
    #[error("{lower} ({lower_value}) must be less than {upper} ({upper_value})")]
    Order {
        /// The parameter that must be smaller.
        lower: &'static str,
        /// Its value.
        lower_value: f64,
        /// The parameter that must be larger.
        upper: &'static str,
        /// Its value.
        upper_value: f64,
    },
}

/// A strategy's parameters: serde (unknown fields denied), defaults, range checks, and the
/// strategy they build.
pub trait Params: Serialize + DeserializeOwned + Default {
    /// The strategy's id.
    const ID: &'static str;
    /// The strategy these parameters build.
    type Strategy: Strategy + 'static;
    /// Checks every field's range; the error names the parameter and what is valid.
    fn validate(&self) -> Result<(), ParamError>;
    /// Builds the strategy (parameters already validated).
    fn build(self) -> Self::Strategy;
}

/// `name` must lie in `lo..=hi`.
pub fn int_in(name: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), ParamError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ParamError::Int {
            name,
            got: v,
            lo,
            hi,
        })
    }
}

/// `name` must be finite and lie in `lo..=hi`.
pub fn num_in(name: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), ParamError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ParamError::Num {
            name,
            got: v,
            lo,
            hi,
        })
    }
}

/// An indicator period: 2..=[`MAX_PERIOD`] (TA-Lib's range for averages and oscillators).
pub fn period(name: &'static str, v: usize) -> Result<(), ParamError> {
    int_in(name, v, 2, MAX_PERIOD)
}

/// A smoothing length that may be 1 (MACD's signal, Stochastic's %K smoothing and %D).
pub fn smoothing(name: &'static str, v: usize) -> Result<(), ParamError> {
    int_in(name, v, 1, MAX_PERIOD)
}

/// How many candles a view lasts: 1..=[`MAX_HOLD`].
pub fn hold(v: usize) -> Result<(), ParamError> {
    int_in("hold", v, 1, MAX_HOLD)
}

/// `fast` must be shorter than `slow`: otherwise the "fast" line lags and crossings mean the
/// opposite of what the strategy claims.
pub fn fast_below_slow(fast: usize, slow: usize) -> Result<(), ParamError> {
    if fast < slow {
        Ok(())
    } else {
        Err(ParamError::Order {
            lower: "fast",
            lower_value: fast as f64,
            upper: "slow",
            upper_value: slow as f64,
        })
    }
}

/// Oscillator levels: both in 0..=100, oversold below overbought.
pub fn levels(oversold: f64, overbought: f64) -> Result<(), ParamError> {
    num_in("oversold", oversold, 0.0, 100.0)?;
    num_in("overbought", overbought, 0.0, 100.0)?;
    if oversold < overbought {
        Ok(())
    } else {
        Err(ParamError::Order {
            lower: "oversold",
            lower_value: oversold,
            upper: "overbought",
            upper_value: overbought,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_parameter() {
        assert!(period("period", 14).is_ok());
        assert_eq!(
            period("period", 0),
            Err(ParamError::Int {
                name: "period",
                got: 0,
                lo: 2,
                hi: MAX_PERIOD
            })
        );
        assert!(matches!(
            num_in("std_dev", f64::NAN, 0.0, 10.0),
            Err(ParamError::Num {
                name: "std_dev",
                ..
            })
        ));
        assert!(num_in("std_dev", f64::INFINITY, 0.0, 10.0).is_err());
        assert!(hold(0).is_err() && hold(1).is_ok());
        assert!(matches!(
            fast_below_slow(26, 12),
            Err(ParamError::Order { lower: "fast", lower_value, .. }) if lower_value == 26.0
        ));
        assert!(matches!(
            levels(70.0, 30.0),
            Err(ParamError::Order {
                lower: "oversold",
                ..
            })
        ));
        assert!(levels(30.0, 70.0).is_ok());
        // The message still names the parameter and what is valid.
        let e = period("period", 0).unwrap_err().to_string();
        assert_eq!(e, "period must be in 2..=100000, got 0");
    }
}
