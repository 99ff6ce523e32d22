//! Bybit v5 REST: request paths and response parsing (the HTTP itself is in
//! [`crate::feed::rest`]). `category=spot` is always passed: Bybit defaults to futures.

use manus_core::{Candle, Interval};
use serde::de::DeserializeOwned;

use super::message::{
    Envelope, InstrumentsResult, KlineResult, TimeResult, interval_code, rows_to_candles,
};
use crate::feed::FeedError;

/// Largest `limit` `/v5/market/kline` accepts.
pub const MAX_LIMIT: u32 = 1000;

/// `/v5/market/time`.
pub const TIME_PATH: &str = "/v5/market/time";

/// `/v5/market/kline` path and query.
pub fn klines_path(
    symbol: &str,
    interval: Interval,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: u32,
) -> Result<String, FeedError> {
    let code = interval_code(interval)
        .ok_or_else(|| FeedError::Invalid(format!("Bybit has no {interval} klines")))?;
    let mut p = format!(
        "/v5/market/kline?category=spot&symbol={symbol}&interval={code}&limit={}",
        limit.clamp(1, MAX_LIMIT)
    );
    if let Some(s) = start_ms {
        p.push_str(&format!("&start={s}"));
    }
    if let Some(e) = end_ms {
        p.push_str(&format!("&end={e}"));
    }
    Ok(p)
}

/// `/v5/market/instruments-info` path for one symbol.
pub fn instruments_path(symbol: &str) -> String {
    format!("/v5/market/instruments-info?category=spot&symbol={symbol}")
}

/// Unwraps the envelope: a non-zero `retCode` becomes [`FeedError::ExchangeError`].
fn open<T: DeserializeOwned>(
    body: &str,
    what: &str,
) -> Result<(Option<T>, Option<i64>), FeedError> {
    let env: Envelope<T> =
        serde_json::from_str(body).map_err(|e| FeedError::Parse(format!("{what}: {e}")))?;
    if env.ret_code != 0 {
        let mut msg = env.ret_msg;
        if env.ret_code == 10009 {
            msg.push_str(" (Bybit refuses connections from US IP addresses)");
        }
        return Err(FeedError::ExchangeError {
            code: env.ret_code,
            msg,
        });
    }
    Ok((env.result, env.time))
}

/// An error payload in any response body, if there is one.
pub fn parse_error(body: &str) -> Option<FeedError> {
    open::<serde::de::IgnoredAny>(body, "error")
        .err()
        .filter(|e| matches!(e, FeedError::ExchangeError { .. }))
}

/// Klines, reordered oldest first.
pub fn parse_klines(body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError> {
    let (result, _) = open::<KlineResult>(body, "kline")?;
    let rows = result.map(|r| r.list).unwrap_or_default();
    rows_to_candles(&rows, interval).map_err(|e| FeedError::Parse(e.to_string()))
}

/// The server time, ms (from `timeNano`, `timeSecond` or the envelope's `time`).
pub fn parse_time(body: &str) -> Result<i64, FeedError> {
    let (result, time) = open::<TimeResult>(body, "time")?;
    let from_result = result.and_then(|r| {
        r.time_nano
            .and_then(|n| n.parse::<i128>().ok())
            .map(|n| (n / 1_000_000) as i64)
            .or_else(|| {
                r.time_second
                    .and_then(|s| s.parse::<i64>().ok())
                    .map(|s| s * 1000)
            })
    });
    from_result
        .or(time)
        .ok_or_else(|| FeedError::Parse("time: no timeNano, timeSecond or time".into()))
}

/// Checks that `symbol` is listed and trading.
pub fn check_symbol(body: &str, symbol: &str) -> Result<(), FeedError> {
    let (result, _) = open::<InstrumentsResult>(body, "instruments-info")?;
    let list = result.map(|r| r.list).unwrap_or_default();
    match list.iter().find(|i| i.symbol == symbol) {
        Some(i) if i.status.is_empty() || i.status == "Trading" => Ok(()),
        Some(i) => Err(FeedError::Invalid(format!(
            "symbol {symbol} is not trading (status {})",
            i.status
        ))),
        None => Err(FeedError::ExchangeError {
            code: 10001,
            msg: format!("symbol {symbol} is not listed on Bybit spot"),
        }),
    }
}
