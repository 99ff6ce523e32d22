//! OKX v5 REST: request paths and response parsing (the HTTP itself is in
//! [`crate::feed::rest`]). Recent candles come from `/api/v5/market/candles` (≤ 300 rows),
//! ranges from `/api/v5/market/history-candles` (≤ 100 rows); both answer newest first.

use manus_core::{Candle, Interval};
use serde::de::DeserializeOwned;

use super::message::{Envelope, Instrument, Time, interval_code, row_to_candle};
use crate::feed::FeedError;

/// Largest `limit` `/api/v5/market/candles` accepts.
pub const MAX_LIMIT_RECENT: u32 = 300;
/// Largest `limit` `/api/v5/market/history-candles` accepts.
pub const MAX_LIMIT_HISTORY: u32 = 100;

/// `/api/v5/public/time`.
pub const TIME_PATH: &str = "/api/v5/public/time";

/// OKX's "instrument does not exist" code.
pub const UNKNOWN_INSTRUMENT: i64 = 51001;

/// A klines path: the latest rows from `candles` without a range, else `history-candles`
/// bounded by `before` (newer than, exclusive) and `after` (older than, exclusive).
pub fn klines_path(
    inst_id: &str,
    interval: Interval,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: u32,
) -> Result<String, FeedError> {
    let bar = interval_code(interval).ok_or_else(|| {
        FeedError::Invalid(format!("OKX has no {interval} candles aligned to UTC"))
    })?;
    if start_ms.is_none() && end_ms.is_none() {
        return Ok(format!(
            "/api/v5/market/candles?instId={inst_id}&bar={bar}&limit={}",
            limit.clamp(1, MAX_LIMIT_RECENT)
        ));
    }
    let mut p = format!(
        "/api/v5/market/history-candles?instId={inst_id}&bar={bar}&limit={}",
        limit.clamp(1, MAX_LIMIT_HISTORY)
    );
    if let Some(e) = end_ms {
        p.push_str(&format!("&after={}", e.saturating_add(1)));
    }
    if let Some(s) = start_ms {
        p.push_str(&format!("&before={}", s.saturating_sub(1)));
    }
    Ok(p)
}

/// `/api/v5/public/instruments` path for one instrument.
pub fn instruments_path(inst_id: &str) -> String {
    format!("/api/v5/public/instruments?instType=SPOT&instId={inst_id}")
}

/// Unwraps the envelope: a non-zero `code` becomes [`FeedError::ExchangeError`].
fn open<T: DeserializeOwned>(body: &str, what: &str) -> Result<Vec<T>, FeedError> {
    let env: Envelope<T> =
        serde_json::from_str(body).map_err(|e| FeedError::Parse(format!("{what}: {e}")))?;
    if env.code != "0" {
        let code = env.code.parse::<i64>().map_err(|_| {
            FeedError::Parse(format!("{what}: code '{}' is not a number", env.code))
        })?;
        return Err(FeedError::ExchangeError { code, msg: env.msg });
    }
    Ok(env.data)
}

/// An error payload in any response body, if there is one.
pub fn parse_error(body: &str) -> Option<FeedError> {
    open::<serde::de::IgnoredAny>(body, "error")
        .err()
        .filter(|e| matches!(e, FeedError::ExchangeError { .. }))
}

/// Candles, reordered oldest first (the newest may be forming: `confirm` "0").
pub fn parse_klines(body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError> {
    let rows = open::<Vec<String>>(body, "candles")?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows.iter().rev() {
        let (c, _) = row_to_candle(row, interval).map_err(|e| FeedError::Parse(e.to_string()))?;
        if out
            .last()
            .is_some_and(|l: &Candle| c.open_time <= l.open_time)
        {
            return Err(FeedError::Parse(
                "candles: rows are not newest first without repeats".into(),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// The server time, ms.
pub fn parse_time(body: &str) -> Result<i64, FeedError> {
    let data = open::<Time>(body, "time")?;
    data.first()
        .and_then(|t| t.ts.parse().ok())
        .ok_or_else(|| FeedError::Parse("time: no ts".into()))
}

/// Checks that `inst_id` is listed and live.
pub fn check_symbol(body: &str, inst_id: &str) -> Result<(), FeedError> {
    let list = open::<Instrument>(body, "instruments")?;
    match list.iter().find(|i| i.inst_id == inst_id) {
        Some(i) if i.state == "live" => Ok(()),
        Some(i) => Err(FeedError::Invalid(format!(
            "instrument {inst_id} is not trading (state {})",
            i.state
        ))),
        None => Err(FeedError::ExchangeError {
            code: UNKNOWN_INSTRUMENT,
            msg: format!("Instrument ID {inst_id} does not exist on OKX spot"),
        }),
    }
}
