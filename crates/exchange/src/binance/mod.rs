//! Binance and Binance.US: the same protocol on different hosts. [`ws`] builds stream URLs and
//! parses kline frames, [`rest`] builds REST paths and parses answers, [`message`] holds the
//! serde structs; [`Binance`] is the [`Venue`] over them.

pub mod message;
pub mod rest;
pub mod ws;

use std::time::Duration;

use manus_core::{Candle, Interval};

use crate::feed::wire::{Control, Lookup, ParseError, WsKline};
use crate::feed::{FeedError, StreamKey};
use crate::venue::{Venue, WeightRule};

/// The Binance protocol on one host.
#[derive(Debug)]
pub struct Binance {
    name: &'static str,
    ws: &'static str,
    rest: &'static str,
    /// Request weight per minute the host allows.
    weight_limit: u32,
    /// Weight of one `GET /api/v3/klines` (any `limit`).
    klines_weight: u32,
    /// Weight of one `GET /api/v3/exchangeInfo` with `symbols`.
    info_weight: u32,
}

/// Binance.US: 1200 request weight per minute.
pub static BINANCE_US: Binance = Binance {
    name: "Binance.US",
    ws: "wss://stream.binance.us:9443",
    rest: "https://api.binance.us",
    weight_limit: 1200,
    klines_weight: 1,
    info_weight: 10,
};

/// Binance global: 6000 request weight per minute; answers US addresses with HTTP 451.
pub static BINANCE: Binance = Binance {
    name: "Binance",
    ws: "wss://stream.binance.com:9443",
    rest: "https://api.binance.com",
    weight_limit: 6000,
    klines_weight: 2,
    info_weight: 20,
};

impl Venue for Binance {
    fn name(&self) -> &'static str {
        self.name
    }
    fn default_ws_url(&self) -> &'static str {
        self.ws
    }
    fn default_rest_url(&self) -> &'static str {
        self.rest
    }
    fn interval_code(&self, interval: Interval) -> Option<&'static str> {
        // Our intervals are Binance's.
        Some(interval.as_str())
    }
    fn max_streams(&self) -> usize {
        1024
    }
    fn ws_url(&self, base: &str, streams: &[StreamKey]) -> String {
        ws::url(base, streams)
    }
    fn stream_name(&self, key: &StreamKey) -> Result<String, FeedError> {
        Ok(ws::stream_name(key))
    }
    fn subscribe_messages(&self, _streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
        // The URL subscribes.
        Ok(Vec::new())
    }
    fn app_ping(&self) -> Option<&'static str> {
        None
    }
    fn ping_cap(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn parse_frame(
        &self,
        text: &str,
        lookup: &Lookup,
        out: &mut Vec<WsKline>,
    ) -> Result<Control, ParseError> {
        ws::parse_frame(text, lookup, out)
    }
    fn page_limit(&self) -> u32 {
        rest::MAX_LIMIT
    }
    fn max_body(&self) -> usize {
        // 1000 kline rows are ~200 KB; exchangeInfo for 100 symbols with their filters ~500 KB.
        2 << 20
    }
    fn time_path(&self) -> &'static str {
        rest::TIME_PATH
    }
    fn parse_time(&self, body: &str) -> Result<i64, FeedError> {
        rest::parse_time(body)
    }
    fn symbols_per_request(&self) -> usize {
        // `exchangeInfo?symbols=[..]` answers 100 symbols for one request's weight.
        100
    }
    fn symbols_path(&self, symbols: &[&str]) -> Result<String, FeedError> {
        Ok(match symbols {
            [one] => rest::exchange_info_path(one),
            many => rest::exchange_info_many_path(many),
        })
    }
    fn check_symbol(&self, body: &str, symbol: &str) -> Result<(), FeedError> {
        rest::check_symbol(body, symbol)
    }
    fn klines_path(
        &self,
        symbol: &str,
        interval: Interval,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
        limit: u32,
    ) -> Result<String, FeedError> {
        Ok(rest::klines_path(symbol, interval, start_ms, end_ms, limit))
    }
    fn parse_klines(&self, body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError> {
        rest::parse_klines(body, interval)
    }
    fn parse_error(&self, body: &str) -> Option<FeedError> {
        rest::parse_error(body)
    }
    fn retryable_code(&self, code: i64) -> bool {
        // -1000 unknown, -1001 disconnected, -1003 too much weight, -1006/-1007 backend timeouts,
        // -1008 server busy ("Server is currently overloaded with other requests").
        matches!(code, -1000 | -1001 | -1003 | -1006 | -1007 | -1008)
    }
    fn status_hint(&self, status: u16) -> Option<&'static str> {
        (status == 451).then_some(
            "unavailable from this location: Binance global refuses US IP addresses; use binanceus",
        )
    }
    fn weight_rule(&self) -> WeightRule {
        WeightRule {
            limit: self.weight_limit,
            window: Duration::from_secs(60),
            header: Some("x-mbx-used-weight-1m"),
        }
    }
    fn request_weight(&self, path: &str) -> u32 {
        if path.starts_with("/api/v3/klines") {
            self.klines_weight
        } else if path.starts_with("/api/v3/exchangeInfo") {
            self.info_weight
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;

    use crate::feed::wire::Control;
    use crate::feed::{FeedError, StreamKey};
    use crate::venue::Venue;

    fn load(name: &str) -> String {
        let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn lookup(streams: &[StreamKey]) -> crate::feed::wire::Lookup {
        streams
            .iter()
            .enumerate()
            .map(|(i, s)| (super::ws::stream_name(s), i))
            .collect()
    }

    fn key(symbol: &str, interval: Interval) -> StreamKey {
        StreamKey {
            symbol: symbol.into(),
            interval,
        }
    }

    #[test]
    fn urls_raw_for_one_stream_combined_for_many() {
        let one = [key("BTCUSDT", Interval::M1)];
        assert_eq!(
            super::ws::url("ws://127.0.0.1:9000/", &one),
            "ws://127.0.0.1:9000/ws/btcusdt@kline_1m"
        );
        let two = [key("BTCUSDT", Interval::M1), key("ETHUSDT", Interval::Mo1)];
        assert_eq!(
            super::ws::url("wss://stream.binance.us:9443", &two),
            "wss://stream.binance.us:9443/stream?streams=btcusdt@kline_1m/ethusdt@kline_1M"
        );
    }

    #[test]
    fn parses_raw_and_combined_kline_frames() {
        let streams = [key("BTCUSDT", Interval::M1), key("ETHUSDT", Interval::M5)];
        let lookup = lookup(&streams);
        let mut out = Vec::new();
        let raw = load("binance_ws_kline_raw.json");
        assert_eq!(
            super::BINANCE_US.parse_frame(&raw, &lookup, &mut out),
            Ok(Control::Klines)
        );
        let combined = load("binance_ws_kline_combined.json");
        assert_eq!(
            super::BINANCE_US.parse_frame(&combined, &lookup, &mut out),
            Ok(Control::Klines)
        );
        assert_eq!(out.len(), 2);
        let (a, b) = (out[0], out[1]);
        assert_eq!(
            (a.idx, a.closed, a.event_time),
            (0, true, 1_718_000_059_990)
        );
        assert_eq!(a.candle.open_time, 1_718_000_000_000);
        assert_eq!(a.candle.close_time, 1_718_000_059_999);
        assert_eq!(
            (a.candle.open, a.candle.high, a.candle.low, a.candle.close),
            (69012.55, 69031.0, 69005.12, 69020.10)
        );
        assert_eq!(a.candle.volume, 3.4125);
        assert_eq!((b.idx, b.closed), (1, false));
        assert_eq!(b.candle.close_time, 1_718_000_299_999);
    }

    #[test]
    fn control_and_malformed_frames() {
        let streams = [key("BTCUSDT", Interval::M1)];
        let lookup = lookup(&streams);
        let mut out = Vec::new();
        struct Case {
            input: String,
            ok: Option<Control>,
        }
        let raw = load("binance_ws_kline_raw.json");
        let cases = [
            Case {
                input: load("binance_ws_subscribe_ack.json"),
                ok: Some(Control::Ignored),
            },
            Case {
                input: r#"{"code":2,"msg":"Invalid request"}"#.into(),
                ok: Some(Control::Error("2: Invalid request".into())),
            },
            Case {
                input: r#"{"e":"trade","E":1}"#.into(),
                ok: Some(Control::Ignored),
            },
            Case {
                input: "not json".into(),
                ok: None,
            },
            Case {
                input: raw[..raw.len() / 2].into(),
                ok: None,
            },
            Case {
                input: raw.replace("\"69031.00\"", "\"abc\""),
                ok: None,
            },
            // high below low: an impossible candle is malformed, not data.
            Case {
                input: raw.replace("\"69031.00\"", "\"1.0\""),
                ok: None,
            },
            Case {
                input: r#"{"e":"kline","E":1}"#.into(),
                ok: None,
            },
            Case {
                input: "{}".into(),
                ok: None,
            },
        ];
        for c in cases {
            let got = super::BINANCE_US.parse_frame(&c.input, &lookup, &mut out);
            match c.ok {
                Some(expected) => assert_eq!(got, Ok(expected), "{}", c.input),
                None => assert!(got.is_err(), "{} parsed as {got:?}", c.input),
            }
        }
        assert!(out.is_empty());
    }

    #[test]
    fn parses_rest_klines_oldest_first_including_the_forming_row() {
        let rows = super::rest::parse_klines(&load("binance_rest_klines.json"), Interval::M1)
            .expect("klines");
        assert_eq!(rows.len(), 3);
        assert!(
            rows.windows(2)
                .all(|w| w[1].open_time == w[0].open_time + 60_000)
        );
        assert_eq!(rows[2].close_time, 1_718_000_179_999);
        // At server time 1718000125000 the third row is still forming.
        let now = super::rest::parse_time(&load("binance_time.json")).expect("time");
        assert_eq!(rows.iter().filter(|c| c.close_time < now).count(), 2);
    }

    #[test]
    fn error_payloads_become_typed_errors() {
        struct Case {
            file: &'static str,
            code: i64,
            retryable: bool,
        }
        let cases = [
            Case {
                file: "binance_error_invalid_symbol.json",
                code: -1121,
                retryable: false,
            },
            Case {
                file: "binance_error_invalid_interval.json",
                code: -1120,
                retryable: false,
            },
            Case {
                file: "binance_error_too_much_weight.json",
                code: -1003,
                retryable: true,
            },
        ];
        for c in cases {
            let err = super::rest::parse_klines(&load(c.file), Interval::M1).expect_err(c.file);
            match &err {
                FeedError::ExchangeError { code, msg } => {
                    assert_eq!(*code, c.code);
                    assert!(!msg.is_empty());
                }
                other => panic!("{}: {other:?}", c.file),
            }
            assert_eq!(err.is_retryable(), c.retryable, "{}", c.file);
        }
        let e = super::rest::parse_klines(&load("binance_error_invalid_symbol.json"), Interval::M1)
            .expect_err("error");
        assert_eq!(e.to_string(), "exchange error -1121: Invalid symbol.");
    }

    #[test]
    fn exchange_info_checks_symbol_and_status() {
        let info = load("binance_exchange_info.json");
        assert!(super::rest::check_symbol(&info, "BTCUSDT").is_ok());
        assert!(matches!(
            super::rest::check_symbol(&info, "NOPEUSDT"),
            Err(FeedError::ExchangeError { code: -1121, .. })
        ));
        let halted = info.replace("TRADING", "BREAK");
        assert!(matches!(
            super::rest::check_symbol(&halted, "BTCUSDT"),
            Err(FeedError::Invalid(_))
        ));
        assert!(matches!(
            super::rest::check_symbol(&load("binance_error_invalid_symbol.json"), "X"),
            Err(FeedError::ExchangeError { code: -1121, .. })
        ));
    }

    #[test]
    fn klines_path_carries_the_query() {
        assert_eq!(
            super::rest::klines_path("BTCUSDT", Interval::H1, Some(10), Some(20), 5000),
            "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1000&startTime=10&endTime=20"
        );
    }
}
