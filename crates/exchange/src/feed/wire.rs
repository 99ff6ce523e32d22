//! The shared wire types: what a [`crate::venue::Venue`] hands the driver from a socket frame,
//! and the field helpers every adapter parses with. Adapters import this module; it imports
//! none of them (the dispatch is [`crate::venue::REGISTRY`]).

use std::collections::HashMap;

use manus_core::{Candle, Interval};

/// One kline update read off a socket, normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WsKline {
    /// Index of the stream in `FeedConfig::streams`.
    pub idx: usize,
    /// The candle (forming or closed).
    pub candle: Candle,
    /// True on the final update (Binance `x`, Bybit `confirm`, OKX `confirm` "1").
    pub closed: bool,
    /// The exchange's event time, ms UTC (0 when the exchange sends none, as OKX).
    pub event_time: i64,
}

/// A frame that parsed but carries no kline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Klines were appended to the output buffer.
    Klines,
    /// A subscription was acknowledged.
    Subscribed,
    /// A pong or an event we do not use.
    Ignored,
    /// The exchange reported an error on the socket (e.g. a failed subscription).
    Error(String),
    /// The server is about to go away (Binance `serverShutdown`): hand over to a new socket.
    ServerShutdown,
}

/// Stream name → index, keyed by each protocol's own name (Binance `btcusdt@kline_1m`,
/// Bybit `kline.1.BTCUSDT`, OKX `candle1m:BTC-USDT`).
pub type Lookup = HashMap<String, usize>;

/// Why a frame or a REST row did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or not the documented JSON shape.
    #[error("not the documented JSON: {0}")]
    Json(String),
    /// A price or volume that is not a finite number.
    #[error("field {field}: '{value}' is not a number")]
    Number {
        /// The field.
        field: &'static str,
        /// What was sent.
        value: String,
    },
    /// Numbers that make no candle (e.g. high below low).
    #[error("impossible candle: {0}")]
    Candle(manus_core::model::CandleError),
    /// A field missing, of the wrong kind or off the grid.
    #[error("{0}")]
    Shape(String),
    /// A push for a stream this connection did not subscribe to.
    #[error("push for unsubscribed stream {0}")]
    Unsubscribed(String),
}

impl ParseError {
    /// A serde error.
    pub(crate) fn json(e: serde_json::Error) -> Self {
        ParseError::Json(e.to_string())
    }
}

/// Parses a decimal string field.
pub(crate) fn num(field: &'static str, v: &str) -> Result<f64, ParseError> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| ParseError::Number {
            field,
            value: v.to_string(),
        })
}

/// Builds and validates a candle from string fields; `close_time` comes from the interval so
/// every exchange agrees on Binance's inclusive convention.
pub(crate) fn candle(
    interval: Interval,
    open_time: i64,
    [o, h, l, c, v]: [&str; 5],
) -> Result<Candle, ParseError> {
    let candle = Candle {
        open_time,
        close_time: interval.close_time(open_time),
        open: num("open", o)?,
        high: num("high", h)?,
        low: num("low", l)?,
        close: num("close", c)?,
        volume: num("volume", v)?,
    };
    candle.validate().map_err(ParseError::Candle)?;
    Ok(candle)
}
