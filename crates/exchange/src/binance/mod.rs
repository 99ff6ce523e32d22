//! Binance and Binance.US: the same protocol on different hosts. [`ws`] builds stream URLs and
//! parses kline frames, [`rest`] builds REST paths and parses answers, [`message`] holds the
//! serde structs; [`Binance`] is the [`Venue`] over them.

mod fast;
pub mod message;
pub mod rest;
pub mod subscribe;
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
    /// How often the server pings.
    server_ping: Duration,
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
    // "The WebSocket server will send a ping frame every 3 minutes" (Binance.US API docs).
    server_ping: Duration::from_secs(180),
    klines_weight: 1,
    info_weight: 10,
};

/// Binance global: 6000 request weight per minute; answers US addresses with HTTP 451.
pub static BINANCE: Binance = Binance {
    name: "Binance",
    ws: "wss://stream.binance.com:9443",
    rest: "https://api.binance.com",
    weight_limit: 6000,
    // "The WebSocket server will send a ping frame every 20 seconds" (spot API docs).
    server_ping: Duration::from_secs(20),
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
        // "A single connection can listen to a maximum of 1024 streams."
        1024
    }
    fn connection_rate(&self) -> Option<(u32, Duration)> {
        // "There is a limit of 300 connections per attempt every 5 minutes per IP."
        Some((300, Duration::from_secs(300)))
    }
    fn ws_url(&self, base: &str, streams: &[StreamKey]) -> String {
        subscribe::url(base, streams)
    }
    fn stream_name(&self, key: &StreamKey) -> Result<String, FeedError> {
        Ok(ws::stream_name(key))
    }
    fn subscribe_messages(&self, streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
        // The URL subscribes to what fits in it; messages carry the rest.
        Ok(subscribe::messages(streams))
    }
    fn app_ping(&self) -> Option<&'static str> {
        None
    }
    fn server_ping_every(&self) -> Option<Duration> {
        Some(self.server_ping)
    }
    fn max_incoming_per_sec(&self) -> Option<u32> {
        // "WebSocket connections have a limit of 5 incoming messages per second" (pings,
        // pongs and control messages count).
        Some(5)
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
        // Payloads from Binance's documentation; sources and edits in test_data/README.md.
        let path = format!("{}/test_data/binance/{name}", env!("CARGO_MANIFEST_DIR"));
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
            super::subscribe::url("ws://127.0.0.1:9000/", &one),
            "ws://127.0.0.1:9000/ws/btcusdt@kline_1m"
        );
        let two = [key("BTCUSDT", Interval::M1), key("ETHUSDT", Interval::Mo1)];
        assert_eq!(
            super::subscribe::url("wss://stream.binance.us:9443", &two),
            "wss://stream.binance.us:9443/stream?streams=btcusdt@kline_1m/ethusdt@kline_1M"
        );
    }

    #[test]
    fn parses_raw_and_combined_kline_frames() {
        let streams = [key("BNBBTC", Interval::M1), key("ETHUSDT", Interval::M5)];
        let lookup = lookup(&streams);
        let mut out = Vec::new();
        let raw = load("ws_kline_raw.json");
        assert_eq!(
            super::BINANCE_US.parse_frame(&raw, &lookup, &mut out),
            Ok(Control::Klines)
        );
        let combined = load("ws_kline_combined.json");
        assert_eq!(
            super::BINANCE_US.parse_frame(&combined, &lookup, &mut out),
            Ok(Control::Klines)
        );
        assert_eq!(out.len(), 2);
        let (a, b) = (out[0], out[1]);
        assert_eq!(
            (a.idx, a.closed, a.event_time),
            (0, false, 1_672_515_782_136)
        );
        assert_eq!(a.candle.open_time, 1_672_515_780_000);
        assert_eq!(a.candle.close_time, 1_672_515_839_999);
        assert_eq!(
            (a.candle.open, a.candle.high, a.candle.low, a.candle.close),
            (0.0010, 0.0025, 0.0010, 0.0020)
        );
        assert_eq!(a.candle.volume, 1000.0);
        // The final update of the same candle, sent after its close time.
        assert_eq!((b.idx, b.closed), (0, true));
        assert!(b.event_time > b.candle.close_time);
    }

    #[test]
    fn the_documented_kline_example_is_itself_impossible() {
        // Binance's WebSocket kline example has open 0.0010 below low 0.0015: Candle::validate
        // stays strict and the frame counts as malformed.
        let streams = [key("BNBBTC", Interval::M1)];
        let mut out = Vec::new();
        let got =
            super::BINANCE_US.parse_frame(&load("ws_kline_doc.json"), &lookup(&streams), &mut out);
        assert!(
            matches!(got, Err(crate::feed::wire::ParseError::Candle(_))),
            "{got:?}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn server_shutdown_in_both_forms() {
        let streams = [key("BTCUSDT", Interval::M1), key("ETHUSDT", Interval::M1)];
        let mut out = Vec::new();
        for file in [
            "ws_server_shutdown_raw.json",
            "ws_server_shutdown_combined.json",
        ] {
            assert_eq!(
                super::BINANCE.parse_frame(&load(file), &lookup(&streams), &mut out),
                Ok(Control::ServerShutdown),
                "{file}"
            );
        }
        assert!(out.is_empty());
    }

    #[test]
    fn control_and_malformed_frames() {
        let streams = [key("BNBBTC", Interval::M1)];
        let lookup = lookup(&streams);
        let mut out = Vec::new();
        struct Case {
            input: String,
            ok: Option<Control>,
        }
        let raw = load("ws_kline_raw.json");
        let cases = [
            Case {
                input: load("ws_subscribe_ack.json"),
                ok: Some(Control::Subscribed),
            },
            Case {
                input: load("ws_error_invalid_json.json"),
                ok: Some(Control::Error(
                    "3: Invalid JSON: expected value at line 1 column 1".into(),
                )),
            },
            Case {
                input: load("ws_error_request_id.json"),
                ok: Some(Control::Error(
                    "2: Invalid request: request ID must be an unsigned integer".into(),
                )),
            },
            // The nested form the simulator answers a bad request with.
            Case {
                input: r#"{"error":{"code":2,"msg":"Invalid request"},"id":1}"#.into(),
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
                input: raw.replace("\"0.0025\"", "\"abc\""),
                ok: None,
            },
            // high below low: an impossible candle is malformed, not data.
            Case {
                input: raw.replace("\"0.0025\"", "\"0.0001\""),
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
    fn parses_the_documented_rest_kline_row() {
        // The documented row is a weekly candle: Monday 2017-07-03 to the next Monday.
        let rows =
            super::rest::parse_klines(&load("rest_klines.json"), Interval::W1).expect("klines");
        assert_eq!(rows.len(), 1);
        let c = rows[0];
        assert_eq!(c.open_time, 1_499_040_000_000);
        assert_eq!(
            c.close_time, 1_499_644_799_999,
            "our weekly grid is Binance's"
        );
        assert_eq!(
            (c.open, c.high, c.low, c.close, c.volume),
            (0.0163479, 0.8, 0.015758, 0.015771, 148976.11427815)
        );
        // The documented server time is after its close: the row is not the forming one.
        let now = super::rest::parse_time(&load("time.json")).expect("time");
        assert_eq!(now, 1_499_827_319_559);
        assert!(c.close_time < now);
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
                file: "error_invalid_symbol.json",
                code: -1121,
                retryable: false,
            },
            Case {
                file: "error_invalid_interval.json",
                code: -1120,
                retryable: false,
            },
            Case {
                file: "error_too_much_weight.json",
                code: -1003,
                retryable: true,
            },
            Case {
                file: "error_banned.json",
                code: -1003,
                retryable: true,
            },
            // Binance global from a US address (HTTP 451): code 0, never worth retrying.
            Case {
                file: "error_451.json",
                code: 0,
                retryable: false,
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
        let e = super::rest::parse_klines(&load("error_invalid_symbol.json"), Interval::M1)
            .expect_err("error");
        assert_eq!(e.to_string(), "exchange error -1121: Invalid symbol.");
    }

    #[test]
    fn exchange_info_checks_symbol_and_status() {
        let info = load("exchange_info.json");
        assert!(super::rest::check_symbol(&info, "ETHBTC").is_ok());
        assert!(matches!(
            super::rest::check_symbol(&info, "NOPEUSDT"),
            Err(FeedError::ExchangeError { code: -1121, .. })
        ));
        let halted = info.replace("TRADING", "BREAK");
        assert!(matches!(
            super::rest::check_symbol(&halted, "ETHBTC"),
            Err(FeedError::Invalid(_))
        ));
        assert!(matches!(
            super::rest::check_symbol(&load("error_invalid_symbol.json"), "X"),
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
