//! Binance REST: request paths and response parsing (the HTTP itself is in
//! [`crate::feed::rest`]).

use manus_core::{Candle, Interval};

use super::message::{self, ApiError, ExchangeInfo, ServerTime};
use crate::feed::FeedError;

/// Largest `limit` `/api/v3/klines` accepts.
pub const MAX_LIMIT: u32 = 1000;

/// `/api/v3/klines` path and query.
pub fn klines_path(
    symbol: &str,
    interval: Interval,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: u32,
) -> String {
    let mut p = format!(
        "/api/v3/klines?symbol={symbol}&interval={interval}&limit={}",
        limit.clamp(1, MAX_LIMIT)
    );
    if let Some(s) = start_ms {
        p.push_str(&format!("&startTime={s}"));
    }
    if let Some(e) = end_ms {
        p.push_str(&format!("&endTime={e}"));
    }
    p
}

/// `/api/v3/exchangeInfo` path for one symbol.
pub fn exchange_info_path(symbol: &str) -> String {
    format!("/api/v3/exchangeInfo?symbol={symbol}")
}

/// `/api/v3/exchangeInfo?symbols=["A","B"]` (URL-encoded): several symbols for one request's
/// weight.
pub fn exchange_info_many_path(symbols: &[&str]) -> String {
    let list: Vec<String> = symbols.iter().map(|s| format!("%22{s}%22")).collect();
    format!("/api/v3/exchangeInfo?symbols=%5B{}%5D", list.join(","))
}

/// `/api/v3/time`.
pub const TIME_PATH: &str = "/api/v3/time";

/// An error payload in any response body, if there is one.
pub fn parse_error(body: &str) -> Option<FeedError> {
    serde_json::from_str::<ApiError>(body)
        .ok()
        .map(|e| FeedError::ExchangeError {
            code: e.code,
            msg: e.msg,
        })
}

/// Klines, oldest first.
pub fn parse_klines(body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError> {
    if let Some(e) = parse_error(body) {
        return Err(e);
    }
    message::parse_klines(body, interval).map_err(|e| FeedError::Parse(e.to_string()))
}

/// The server time, ms.
pub fn parse_time(body: &str) -> Result<i64, FeedError> {
    serde_json::from_str::<ServerTime>(body)
        .map(|t| t.server_time)
        .map_err(|e| FeedError::Parse(format!("time: {e}")))
}

/// Checks that `symbol` is listed and trading.
pub fn check_symbol(body: &str, symbol: &str) -> Result<(), FeedError> {
    if let Some(e) = parse_error(body) {
        return Err(e);
    }
    let info: ExchangeInfo =
        serde_json::from_str(body).map_err(|e| FeedError::Parse(format!("exchangeInfo: {e}")))?;
    match info.symbols.iter().find(|s| s.symbol == symbol) {
        Some(s) if s.status == "TRADING" => Ok(()),
        Some(s) => Err(FeedError::Invalid(format!(
            "symbol {symbol} is not trading (status {})",
            s.status
        ))),
        None => Err(FeedError::ExchangeError {
            code: -1121,
            msg: "Invalid symbol.".into(),
        }),
    }
}
