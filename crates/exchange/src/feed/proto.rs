//! What the WebSocket adapters hand the driver, and the [`Protocol`] switch between them.

use std::collections::HashMap;
use std::time::Duration;

use manus_core::{Candle, Interval};

use super::{ExchangeKind, StreamKey};
use crate::{binance, bybit};

/// One kline update read off a socket, normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WsKline {
    /// Index of the stream in `FeedConfig::streams`.
    pub idx: usize,
    /// The candle (forming or closed).
    pub candle: Candle,
    /// True on the final update (Binance `x`, Bybit `confirm`).
    pub closed: bool,
    /// The exchange's event time, ms UTC.
    pub event_time: i64,
}

/// A frame that parsed but carries no kline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
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
/// Bybit `kline.1.BTCUSDT`) so frames resolve without allocating.
pub(crate) type Lookup = HashMap<String, usize>;

/// The wire protocol of one exchange family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Binance and Binance.US.
    Binance,
    /// Bybit v5 spot.
    Bybit,
}

impl Protocol {
    /// The protocol an exchange speaks.
    pub fn of(kind: ExchangeKind) -> Self {
        match kind {
            ExchangeKind::Binance | ExchangeKind::BinanceUs => Protocol::Binance,
            ExchangeKind::Bybit => Protocol::Bybit,
        }
    }

    /// The full WebSocket URL for these streams under `base`.
    pub fn ws_url(self, base: &str, streams: &[StreamKey]) -> String {
        match self {
            Protocol::Binance => binance::ws::url(base, streams),
            Protocol::Bybit => bybit::ws::url(base),
        }
    }

    /// Text frames to send right after connecting.
    pub fn subscribe_messages(self, streams: &[StreamKey]) -> Result<Vec<String>, String> {
        match self {
            Protocol::Binance => Ok(Vec::new()),
            Protocol::Bybit => bybit::ws::subscribe_messages(streams),
        }
    }

    /// The application-level ping, if the protocol has one (else a WebSocket Ping is sent).
    pub fn app_ping(self) -> Option<&'static str> {
        match self {
            Protocol::Binance => None,
            Protocol::Bybit => Some(bybit::ws::PING),
        }
    }

    /// How often to ping: Bybit wants one every 20 s; pinging at a third of the silence
    /// timeout means a live but quiet connection always answers before we give up on it.
    pub fn ping_every(self, silence: Duration) -> Duration {
        let cap = match self {
            Protocol::Binance => Duration::from_secs(60),
            Protocol::Bybit => Duration::from_secs(20),
        };
        (silence / 3).clamp(Duration::from_millis(10), cap)
    }

    /// Each stream's protocol name → its index.
    pub fn lookup(self, streams: &[StreamKey]) -> Result<Lookup, String> {
        let mut map = Lookup::with_capacity(streams.len());
        for (i, s) in streams.iter().enumerate() {
            let name = match self {
                Protocol::Binance => binance::ws::stream_name(s),
                Protocol::Bybit => bybit::ws::topic(s)?,
            };
            map.insert(name, i);
        }
        Ok(map)
    }

    /// Parses one text frame; klines are appended to `out`.
    pub fn parse(
        self,
        text: &str,
        lookup: &Lookup,
        out: &mut Vec<WsKline>,
    ) -> Result<Control, String> {
        match self {
            Protocol::Binance => binance::ws::parse_frame(text, lookup, out),
            Protocol::Bybit => bybit::ws::parse_frame(text, lookup, out),
        }
    }
}

/// Parses a decimal string field.
pub(crate) fn num(field: &str, v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| format!("field {field}: '{v}' is not a number"))
}

/// Builds and validates a candle from string fields; `close_time` comes from the interval so
/// both exchanges agree on Binance's inclusive convention.
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
