//! The valid range of every numeric setting outside strategy parameters, checked once where the
//! setting is parsed. An out-of-range value is bad input (exit 2) and the error names the
//! setting and its range. The table in `docs/RELIABILITY.md` lists [`ALL`] (a test keeps the two
//! equal).

/// An inclusive range for one setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The flag or settings key, as the user wrote it.
    pub setting: &'static str,
    /// Smallest valid value.
    pub min: f64,
    /// Largest valid value.
    pub max: f64,
}

/// A value outside its setting's range (exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting} = {got} is out of range: valid {min} to {max}")]
pub struct RangeError {
    /// The setting.
    pub setting: &'static str,
    /// The value given.
    pub got: String,
    /// The range, formatted.
    pub min: String,
    /// The range, formatted.
    pub max: String,
}

/// `1000000` rather than `1e6`, `0.5` as is.
fn show(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Range {
    const fn new(setting: &'static str, min: f64, max: f64) -> Self {
        Range { setting, min, max }
    }

    /// `valid MIN to MAX`, as errors and the documentation say it.
    pub fn valid(&self) -> String {
        format!("valid {} to {}", show(self.min), show(self.max))
    }

    fn error(&self, got: String) -> RangeError {
        RangeError {
            setting: self.setting,
            got,
            min: show(self.min),
            max: show(self.max),
        }
    }

    /// `v` when it is a finite number within the range.
    pub fn f64(&self, v: f64) -> Result<f64, RangeError> {
        if v.is_finite() && v >= self.min && v <= self.max {
            Ok(v)
        } else {
            Err(self.error(format!("{v}")))
        }
    }

    /// `v` when it is within the range.
    pub fn u64(&self, v: u64) -> Result<u64, RangeError> {
        // Every bound is below 2^53, so the comparison in f64 is exact.
        if v as f64 >= self.min && v as f64 <= self.max {
            Ok(v)
        } else {
            Err(self.error(v.to_string()))
        }
    }

    /// [`Range::u64`] for sizes and counts.
    pub fn usize(&self, v: usize) -> Result<usize, RangeError> {
        self.u64(v as u64).map(|_| v)
    }

    /// [`Range::u64`] for `u32` settings.
    pub fn u32(&self, v: u32) -> Result<u32, RangeError> {
        self.u64(u64::from(v)).map(|_| v)
    }
}

/// The weighted confluence threshold: scores are in [-1, 1].
pub const THRESHOLD: Range = Range::new("--threshold / [confluence] threshold", 0.0, 1.0);
/// Closed candles fetched per stream at start (100 REST pages of 1,000).
pub const BOOTSTRAP: Range = Range::new("--bootstrap", 0.0, 100_000.0);
/// Closed candles kept per stream.
pub const WINDOW: Range = Range::new("--window", 1.0, 1_000_000.0);
/// Stop after this many closed candles.
pub const MAX_CANDLES: Range = Range::new("--max-candles", 1.0, 1e12);
/// Demo streams.
pub const DEMO_SYMBOLS: Range = Range::new("demo --symbols", 1.0, 1_000.0);
/// Demo candle pace.
pub const DEMO_CANDLE_MS: Range = Range::new("demo --candle-ms", 20.0, 60_000.0);
/// Demo connection drops (0: never).
pub const DEMO_DROP_EVERY: Range = Range::new("demo --drop-every", 0.0, 1e9);
/// `serve --demo` candle pace.
pub const SERVE_DEMO_CANDLE_MS: Range = Range::new("serve --demo-candle-ms", 20.0, 3_600_000.0);
/// Simulated exchange candle pace.
pub const SIM_CANDLE_MS: Range = Range::new("exchange-sim --candle-ms", 1.0, 3_600_000.0);
/// Simulated exchange updates per candle.
pub const SIM_UPDATES: Range = Range::new("exchange-sim --updates", 0.0, 1_000.0);
/// Simulated exchange history at start, per stream (also the bound of the history it keeps).
pub const SIM_HISTORY: Range = Range::new(
    "exchange-sim --history",
    0.0,
    manus_exchange::sim::MAX_HISTORY as f64,
);
/// Simulated exchange fault periods (`--drop-every`, `--malformed-every`,
/// `--duplicate-final-every`; 0: never).
pub const SIM_EVERY: Range = Range::new("exchange-sim --*-every", 0.0, 1e9);
/// Simulated exchange per-connection message rate limit.
pub const SIM_WS_RATE_LIMIT: Range = Range::new("exchange-sim --ws-rate-limit", 1.0, 1_000_000.0);
/// Rows of a backtest sweep table.
pub const BACKTEST_TOP: Range = Range::new("backtest --top", 1.0, 1_000_000.0);
/// Rows of `history` (0: all).
pub const HISTORY_LIMIT: Range = Range::new("history --limit", 0.0, 10_000_000.0);
/// Rows of `alerts list`.
pub const ALERTS_LIMIT: Range = Range::new("alerts list --limit", 1.0, 1_000_000.0);
/// Delivery attempts per alert.
pub const MAX_ATTEMPTS: Range = Range::new("[alerts.delivery] max_attempts", 1.0, 100.0);
/// First retry delay.
pub const BACKOFF_BASE_MS: Range =
    Range::new("[alerts.delivery] backoff_base_ms", 1.0, 3_600_000.0);
/// Longest retry delay.
pub const BACKOFF_MAX_MS: Range = Range::new("[alerts.delivery] backoff_max_ms", 1.0, 86_400_000.0);
/// Per-request timeout.
pub const TIMEOUT_MS: Range = Range::new("[alerts.delivery] timeout_ms", 100.0, 600_000.0);
/// Records queued for the store writer.
pub const QUEUE_CAPACITY: Range = Range::new("[alerts.delivery] queue_capacity", 1.0, 1_000_000.0);
/// Outbox poll period.
pub const POLL_INTERVAL_MS: Range =
    Range::new("[alerts.delivery] poll_interval_ms", 10.0, 3_600_000.0);

/// How many periods after its candle closed an alert may still be sent.
pub const MAX_ALERT_AGE_CANDLES: Range =
    Range::new("[alerts.delivery] max_alert_age_candles", 1.0, 1_000_000.0);
/// How early a live run starts warming the candle path before a candle is due, µs (0: never).
pub const PREWARM_US: Range = Range::new("--prewarm-us", 0.0, 1_000_000.0);
/// Missed candles a restarted run fetches per stream.
pub const RESUME_MAX: Range = Range::new("--resume-max", 0.0, 100_000.0);

/// Every range, for the documentation table and its test.
pub const ALL: &[Range] = &[
    THRESHOLD,
    BOOTSTRAP,
    WINDOW,
    MAX_CANDLES,
    DEMO_SYMBOLS,
    DEMO_CANDLE_MS,
    DEMO_DROP_EVERY,
    SERVE_DEMO_CANDLE_MS,
    SIM_CANDLE_MS,
    SIM_UPDATES,
    SIM_HISTORY,
    SIM_EVERY,
    SIM_WS_RATE_LIMIT,
    BACKTEST_TOP,
    HISTORY_LIMIT,
    ALERTS_LIMIT,
    MAX_ATTEMPTS,
    BACKOFF_BASE_MS,
    BACKOFF_MAX_MS,
    TIMEOUT_MS,
    QUEUE_CAPACITY,
    POLL_INTERVAL_MS,
    MAX_ALERT_AGE_CANDLES,
    RESUME_MAX,
    PREWARM_US,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_everything_else_is_named() {
        for r in ALL {
            assert!(r.min <= r.max && r.max < 9e15, "{r:?}");
            assert_eq!(r.f64(r.min), Ok(r.min), "{}", r.setting);
            assert_eq!(r.f64(r.max), Ok(r.max), "{}", r.setting);
            for bad in [r.min - 1.0, r.max + 1.0, f64::NAN, f64::INFINITY] {
                let e = r.f64(bad).unwrap_err().to_string();
                assert!(e.starts_with(r.setting), "{e}");
                assert!(
                    e.contains(&format!("valid {} to {}", show(r.min), show(r.max))),
                    "{e}"
                );
            }
            assert!(r.u64(u64::MAX).is_err(), "{}", r.setting);
        }
    }

    #[test]
    fn the_documented_table_lists_every_range() {
        let doc = include_str!("../../../docs/RELIABILITY.md");
        for r in ALL {
            let row = format!("| `{}` | {} | {} |", r.setting, show(r.min), show(r.max));
            assert!(
                doc.contains(&row),
                "docs/RELIABILITY.md lacks the row {row}"
            );
        }
    }
}
