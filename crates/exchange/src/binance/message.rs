//! Binance (and Binance.US) payloads as serde structs, converted at the edge into [`Candle`]s.
//!
//! Docs: <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams> and
//! <https://developers.binance.com/docs/binance-spot-api-docs/rest-api>.

use manus_core::{Candle, Interval};
use serde::Deserialize;

use crate::feed::wire::{self as proto, ParseError};

/// Any frame on a kline socket. Raw streams send the event itself; combined streams wrap it as
/// `{"stream":"btcusdt@kline_1m","data":{..}}`; control answers look like `{"result":null,"id":1}`
/// and errors like `{"code":2,"msg":"Invalid request"}` (the documented table) or
/// `{"error":{"code":2,"msg":".."},"id":1}` (what the servers answer a bad request with). A
/// server about to go away sends `{"e":"serverShutdown","E":..}` raw, or
/// `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":..}}` combined.
#[derive(Debug, Deserialize)]
pub struct WsFrame<'a> {
    /// Combined-stream name.
    #[serde(borrow, default)]
    pub stream: Option<&'a str>,
    /// Combined-stream payload.
    #[serde(borrow, default)]
    pub data: Option<Event<'a>>,
    /// Raw-stream event type (`kline`).
    #[serde(rename = "e", borrow, default)]
    pub event: Option<&'a str>,
    /// Raw-stream event time, ms.
    #[serde(rename = "E", default)]
    pub event_time: Option<i64>,
    /// Raw-stream kline.
    #[serde(rename = "k", borrow, default)]
    pub kline: Option<Kline<'a>>,
    /// Control-message id (`{"result":null,"id":1}`).
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// Error code on the socket.
    #[serde(default)]
    pub code: Option<i64>,
    /// Error message on the socket.
    #[serde(default)]
    pub msg: Option<String>,
    /// Error of a control request, `{"code":2,"msg":".."}`.
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// A combined stream's payload: a kline event `{"e":"kline","E":1672515782136,"s":"BTCUSDT",
/// "k":{..}}`, or another event such as `{"e":"serverShutdown","E":1770123456789}`.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    /// Event type, e.g. `kline`.
    #[serde(rename = "e", borrow)]
    pub event: &'a str,
    /// Event time, ms.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// The kline (kline events only).
    #[serde(rename = "k", borrow, default)]
    pub kline: Option<Kline<'a>>,
}

/// The `k` object: `{"t":..,"T":..,"s":"BTCUSDT","i":"1m","o":"..","c":"..","h":"..","l":"..",
/// "v":"..","x":false,..}` (prices and volumes are strings).
#[derive(Debug, Deserialize)]
pub struct Kline<'a> {
    /// Open time, ms.
    #[serde(rename = "t")]
    pub open_time: i64,
    /// Symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: &'a str,
    /// Interval, e.g. `1m`.
    #[serde(rename = "i", borrow)]
    pub interval: &'a str,
    /// Open price.
    #[serde(rename = "o", borrow)]
    pub open: &'a str,
    /// Close (last) price.
    #[serde(rename = "c", borrow)]
    pub close: &'a str,
    /// High price.
    #[serde(rename = "h", borrow)]
    pub high: &'a str,
    /// Low price.
    #[serde(rename = "l", borrow)]
    pub low: &'a str,
    /// Base volume.
    #[serde(rename = "v", borrow)]
    pub volume: &'a str,
    /// True on the candle's final update.
    #[serde(rename = "x")]
    pub closed: bool,
}

impl Kline<'_> {
    /// The interval, parsed.
    pub fn interval(&self) -> Result<Interval, ParseError> {
        self.interval
            .parse()
            .map_err(|_| ParseError::Shape(format!("unknown interval '{}'", self.interval)))
    }

    /// The normalised candle.
    pub fn to_candle(&self) -> Result<Candle, ParseError> {
        proto::candle(
            self.interval()?,
            self.open_time,
            [self.open, self.high, self.low, self.close, self.volume],
        )
    }
}

/// An error payload: `{"code":-1121,"msg":"Invalid symbol."}`.
#[derive(Debug, Deserialize)]
pub struct ApiError {
    /// Binance's error code (negative).
    pub code: i64,
    /// The message, verbatim.
    pub msg: String,
}

/// `GET /api/v3/time`: `{"serverTime":1499827319559}`.
#[derive(Debug, Deserialize)]
pub struct ServerTime {
    /// Server time, ms UTC.
    #[serde(rename = "serverTime")]
    pub server_time: i64,
}

/// `GET /api/v3/exchangeInfo?symbol=..`: only the fields we check.
#[derive(Debug, Deserialize)]
pub struct ExchangeInfo {
    /// Matching symbols.
    pub symbols: Vec<SymbolInfo>,
}

/// One symbol in [`ExchangeInfo`].
#[derive(Debug, Deserialize)]
pub struct SymbolInfo {
    /// E.g. `BTCUSDT`.
    pub symbol: String,
    /// `TRADING` when live.
    pub status: String,
}

/// `GET /api/v3/klines` rows: `[openTime,"o","h","l","c","v",closeTime,"q",n,"V","Q","ignore"]`,
/// oldest first. The last row may be the candle still forming.
pub fn parse_klines(body: &str, interval: Interval) -> Result<Vec<Candle>, ParseError> {
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_str(body).map_err(ParseError::json)?;
    rows.iter()
        .map(|row| {
            if row.len() < 6 {
                return Err(ParseError::Shape(format!(
                    "klines row has {} fields, expected 12",
                    row.len()
                )));
            }
            let open_time = row[0].as_i64().ok_or_else(|| {
                ParseError::Shape(format!("klines row open time {} is not an integer", row[0]))
            })?;
            let s = |i: usize| {
                row[i].as_str().ok_or_else(|| {
                    ParseError::Shape(format!("klines row field {i} is not a string"))
                })
            };
            proto::candle(interval, open_time, [s(1)?, s(2)?, s(3)?, s(4)?, s(5)?])
        })
        .collect()
}
