//! The adapter seam: one [`Venue`] per exchange folder (`binance/`, `bybit/`, `okx/`), and the
//! [`REGISTRY`] that maps an [`ExchangeKind`] to it. The driver, [`crate::RestClient`], the
//! app's `fetch` and the Lab reach an exchange only through these two: adding an exchange is a
//! folder that implements [`Venue`], its simulator module, and one registry line.

use std::time::Duration;

use manus_core::{Candle, Interval};

use crate::feed::wire::{Control, Lookup, ParseError, WsKline};
use crate::feed::{FeedError, StreamKey};
use crate::{binance, bybit, okx};

/// Which exchange. The registry ([`REGISTRY`]) holds each one's names and adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// Binance.US (`wss://stream.binance.us:9443`, `https://api.binance.us`).
    BinanceUs,
    /// Binance global (`wss://stream.binance.com:9443`, `https://api.binance.com`).
    Binance,
    /// Bybit v5 spot (`wss://stream.bybit.com/v5/public/spot`, `https://api.bybit.com`).
    Bybit,
    /// OKX v5 spot (`wss://ws.okx.com:8443/ws/v5/business`, `https://www.okx.com`).
    Okx,
}

/// One registry line: an exchange's CLI name, accepted aliases and adapter.
#[derive(Debug)]
pub struct Entry {
    /// Which exchange.
    pub kind: ExchangeKind,
    /// The CLI name, e.g. `binanceus`.
    pub name: &'static str,
    /// Other spellings accepted on input (lower-case).
    pub aliases: &'static [&'static str],
    /// The adapter.
    pub venue: &'static dyn Venue,
}

/// Every exchange, in the order menus list them. The only place that maps a kind to code.
pub static REGISTRY: &[Entry] = &[
    Entry {
        kind: ExchangeKind::BinanceUs,
        name: "binanceus",
        aliases: &["binance.us", "binance-us"],
        venue: &binance::BINANCE_US,
    },
    Entry {
        kind: ExchangeKind::Binance,
        name: "binance",
        aliases: &[],
        venue: &binance::BINANCE,
    },
    Entry {
        kind: ExchangeKind::Bybit,
        name: "bybit",
        aliases: &[],
        venue: &bybit::BYBIT,
    },
    Entry {
        kind: ExchangeKind::Okx,
        name: "okx",
        aliases: &["okex"],
        venue: &okx::OKX,
    },
];

impl ExchangeKind {
    /// Every kind's CLI name, comma-separated (for help and error texts).
    pub fn names() -> String {
        REGISTRY
            .iter()
            .map(|e| e.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every kind, in registry order.
    pub fn all() -> impl Iterator<Item = ExchangeKind> {
        REGISTRY.iter().map(|e| e.kind)
    }

    fn entry(self) -> &'static Entry {
        // Every variant has a registry line (checked by a test), so the fallback never runs.
        REGISTRY
            .iter()
            .find(|e| e.kind == self)
            .unwrap_or(&REGISTRY[0])
    }

    /// The CLI name.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// The adapter.
    pub fn venue(self) -> &'static dyn Venue {
        self.entry().venue
    }

    /// Default WebSocket base URL (scheme, host, port; the adapter appends its paths).
    pub fn default_ws_url(self) -> &'static str {
        self.venue().default_ws_url()
    }

    /// Default REST base URL.
    pub fn default_rest_url(self) -> &'static str {
        self.venue().default_rest_url()
    }
}

impl std::fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exchange name that is not in the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown exchange '{given}'; valid exchanges: {valid}")]
pub struct UnknownExchange {
    /// What was given.
    pub given: String,
    /// The valid names.
    pub valid: String,
}

impl std::str::FromStr for ExchangeKind {
    type Err = UnknownExchange;
    fn from_str(s: &str) -> Result<Self, UnknownExchange> {
        let low = s.trim().to_ascii_lowercase();
        REGISTRY
            .iter()
            .find(|e| e.name == low || e.aliases.contains(&low.as_str()))
            .map(|e| e.kind)
            .ok_or_else(|| UnknownExchange {
                given: s.to_string(),
                valid: Self::names(),
            })
    }
}

/// An exchange's documented REST budget per IP: `limit` request weight per `window`, and the
/// response header that reports what is used, when the exchange sends one (Binance's
/// `X-MBX-USED-WEIGHT-1M`). [`crate::RestClient`] keeps its requests under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightRule {
    /// Weight allowed per window.
    pub limit: u32,
    /// The window (Binance one minute, Bybit 5 s, OKX 2 s).
    pub window: Duration,
    /// The header carrying the weight used in the current window (lower-case), if any.
    pub header: Option<&'static str>,
}

/// One exchange's market-data protocol: everything the feed and the REST client need to know,
/// and nothing about I/O (the callers do the sockets and HTTP).
pub trait Venue: Send + Sync + std::fmt::Debug {
    /// A display name for messages, e.g. `Binance.US`.
    fn name(&self) -> &'static str;
    /// Default WebSocket base URL.
    fn default_ws_url(&self) -> &'static str;
    /// Default REST base URL.
    fn default_rest_url(&self) -> &'static str;

    /// The exchange's spelling of an interval, or `None` when it has no such bars (or its bars
    /// would not align with [`Interval`]'s UTC grid).
    fn interval_code(&self, interval: Interval) -> Option<&'static str>;
    /// Whether the exchange serves this interval.
    fn supports(&self, interval: Interval) -> bool {
        self.interval_code(interval).is_some()
    }
    /// The exchange's symbol for one of ours (`BTCUSDT`), or why there is none.
    fn symbol(&self, symbol: &str) -> Result<String, FeedError> {
        Ok(symbol.to_string())
    }

    // --- WebSocket -----------------------------------------------------------------------
    /// Streams one connection may carry; a feed with more opens several connections (see
    /// `feed/shards.rs`).
    fn max_streams(&self) -> usize;
    /// Refuses a WebSocket base this adapter cannot serve (e.g. another product's path), with
    /// the reason; called once before connecting.
    fn check_ws_base(&self, _base: &str) -> Result<(), FeedError> {
        Ok(())
    }

    /// New connections the exchange accepts from one IP: at most this many per this long, if
    /// it documents a limit. A feed paces its connection attempts (all shards together) by it.
    fn connection_rate(&self) -> Option<(u32, Duration)> {
        None
    }
    /// The full socket URL for these streams under `base`.
    fn ws_url(&self, base: &str, streams: &[StreamKey]) -> String;
    /// The name frames of this stream resolve by (the [`Lookup`] key).
    fn stream_name(&self, key: &StreamKey) -> Result<String, FeedError>;
    /// Text frames to send right after connecting (empty when the URL subscribes).
    fn subscribe_messages(&self, streams: &[StreamKey]) -> Result<Vec<String>, FeedError>;
    /// The application-level ping text, if the protocol has one (else a WebSocket Ping).
    fn app_ping(&self) -> Option<&'static str>;
    /// The longest the client may stay quiet before the exchange cuts it.
    fn ping_cap(&self) -> Duration;
    /// How often the server itself pings, if it does (a live connection hears at least that).
    fn server_ping_every(&self) -> Option<Duration> {
        None
    }
    /// Messages (pings, pongs, control) the server accepts from a client per second, if it
    /// cuts a connection above some number.
    fn max_incoming_per_sec(&self) -> Option<u32> {
        None
    }
    /// Parses one text frame; klines are appended to `out`.
    fn parse_frame(
        &self,
        text: &str,
        lookup: &Lookup,
        out: &mut Vec<WsKline>,
    ) -> Result<Control, ParseError>;

    // --- REST ----------------------------------------------------------------------------
    /// Rows one ranged klines request returns at most.
    fn page_limit(&self) -> u32;
    /// The largest body a legal answer can have, in bytes (a longer one is refused).
    fn max_body(&self) -> usize;
    /// Path of the server-time endpoint.
    fn time_path(&self) -> &'static str;
    /// The server time, ms.
    fn parse_time(&self, body: &str) -> Result<i64, FeedError>;
    /// Symbols one instrument request can check.
    fn symbols_per_request(&self) -> usize {
        1
    }
    /// Path of the instrument request for these symbols (at most `symbols_per_request`).
    fn symbols_path(&self, symbols: &[&str]) -> Result<String, FeedError>;
    /// Checks that `symbol` is listed and trading in an instrument answer.
    fn check_symbol(&self, body: &str, symbol: &str) -> Result<(), FeedError>;
    /// Path of a klines request. With `start_ms`, the rows open in `[start_ms, end_ms]`.
    fn klines_path(
        &self,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
    ) -> Result<String, FeedError>;
    /// Klines, oldest first (the newest may still be forming).
    fn parse_klines(&self, body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError>;
    /// An error payload in any response body, if there is one.
    fn parse_error(&self, body: &str) -> Option<FeedError>;
    /// Whether an exchange error code is worth retrying (rate limits, server trouble).
    fn retryable_code(&self, code: i64) -> bool;
    /// Whether a failed request is worth retrying.
    fn is_retryable(&self, e: &FeedError) -> bool {
        match e {
            FeedError::ExchangeError { code, .. } => self.retryable_code(*code),
            other => other.is_retryable(),
        }
    }
    /// Words to add to a bare HTTP error status (e.g. what a 403 or 451 means here).
    fn status_hint(&self, _status: u16) -> Option<&'static str> {
        None
    }
    /// The exchange's documented request budget.
    fn weight_rule(&self) -> WeightRule;
    /// The weight one request to `path` (with its query) costs under [`Venue::weight_rule`].
    fn request_weight(&self, _path: &str) -> u32 {
        1
    }
    /// How long an error answer without `Retry-After` asks every request to wait (Bybit's 403
    /// "access too frequent" means ten minutes), if it is such an answer.
    fn rate_limit_wait(&self, _status: u16, _body: &str) -> Option<Duration> {
        None
    }
}

/// Each stream's protocol name → its index.
pub(crate) fn lookup(venue: &dyn Venue, streams: &[StreamKey]) -> Result<Lookup, FeedError> {
    let mut map = Lookup::with_capacity(streams.len());
    for (i, s) in streams.iter().enumerate() {
        map.insert(venue.stream_name(s)?, i);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_registry_line_and_round_trips_its_name() {
        for kind in [
            ExchangeKind::BinanceUs,
            ExchangeKind::Binance,
            ExchangeKind::Bybit,
            ExchangeKind::Okx,
        ] {
            assert_eq!(REGISTRY.iter().filter(|e| e.kind == kind).count(), 1);
            assert_eq!(kind.as_str().parse::<ExchangeKind>(), Ok(kind));
        }
        assert_eq!("Binance.US".parse(), Ok(ExchangeKind::BinanceUs));
        assert_eq!("OKX".parse(), Ok(ExchangeKind::Okx));
        let e = "kraken".parse::<ExchangeKind>().expect_err("unknown");
        assert_eq!(e.valid, "binanceus, binance, bybit, okx");
    }

    #[test]
    fn retryable_codes_are_each_venues_own() {
        // Each venue judges its own codes; none claims another's "invalid symbol".
        assert!(ExchangeKind::Binance.venue().retryable_code(-1003));
        assert!(!ExchangeKind::Binance.venue().retryable_code(-1121));
        assert!(ExchangeKind::Bybit.venue().retryable_code(10006));
        assert!(!ExchangeKind::Bybit.venue().retryable_code(10001));
        assert!(ExchangeKind::Okx.venue().retryable_code(50011));
        assert!(!ExchangeKind::Okx.venue().retryable_code(51001));
        // Server trouble: Binance -1008 "server busy", Bybit 10000 "server timeout".
        assert!(ExchangeKind::BinanceUs.venue().retryable_code(-1008));
        assert!(ExchangeKind::Bybit.venue().retryable_code(10000));
    }

    #[test]
    fn bybits_403_access_too_frequent_asks_for_ten_minutes() {
        let bybit = ExchangeKind::Bybit.venue();
        assert_eq!(
            bybit.rate_limit_wait(403, "access too frequent"),
            Some(Duration::from_secs(600))
        );
        // A 403 for a US address is final, not a wait.
        let us = r#"{"retCode":10009,"retMsg":"Forbidden","result":{}}"#;
        assert_eq!(bybit.rate_limit_wait(403, us), None);
        assert_eq!(
            ExchangeKind::Binance
                .venue()
                .rate_limit_wait(403, "access too frequent"),
            None
        );
    }
}
