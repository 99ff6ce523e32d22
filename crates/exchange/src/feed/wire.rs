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
}

/// Stream name → index, keyed by each protocol's own name (Binance `btcusdt@kline_1m`,
/// Bybit `kline.1.BTCUSDT`, OKX `candle1m:BTC-USDT`).
pub type Lookup = HashMap<String, usize>;

/// Parses a decimal string field.
pub(crate) fn num(field: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("field {field}: '{v}' is not a number"))
}

/// Builds and validates a candle from string fields; `close_time` comes from the interval so
/// every exchange agrees on Binance's inclusive convention.
pub(crate) fn candle(
    interval: Interval,
    open_time: i64,
    [o, h, l, c, v]: [&str; 5],
) -> Result<Candle, String> {
    let candle = Candle {
        open_time,
        close_time: interval.close_time(open_time),
        open: num("open", o)?,
        high: num("high", h)?,
        low: num("low", l)?,
        close: num("close", c)?,
        volume: num("volume", v)?,
    };
    candle.validate()?;
    Ok(candle)
}
