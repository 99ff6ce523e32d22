//! Wall-clock helpers the store, alerts and commands share: the one place the app reads the
//! clock for timestamps it stores or prints (signal time itself comes from candles).

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock now, ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Formats ms since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn format_ms(ms: i64) -> String {
    manus_core::model::format_utc_ms(ms)
}
