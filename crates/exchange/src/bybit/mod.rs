//! Bybit v5 spot: [`ws`] builds the socket URL and subscriptions and parses pushes, [`rest`]
//! builds REST paths and parses answers (newest first, reordered), [`message`] holds the serde
//! structs and the interval mapping (1m→`1`, 1h→`60`, 1d→`D`, 1w→`W`, 1M→`M`); [`Bybit`] is
//! the [`Venue`] over them.

pub mod message;
pub mod rest;
pub mod ws;

use std::time::Duration;

use manus_core::{Candle, Interval};

use crate::feed::wire::{Control, Lookup, ParseError, WsKline};
use crate::feed::{FeedError, StreamKey};
use crate::venue::{Venue, WeightRule};

/// Bybit v5 spot.
#[derive(Debug)]
pub struct Bybit;

/// The registry's Bybit.
pub static BYBIT: Bybit = Bybit;

impl Venue for Bybit {
    fn name(&self) -> &'static str {
        "Bybit"
    }
    fn default_ws_url(&self) -> &'static str {
        "wss://stream.bybit.com"
    }
    fn default_rest_url(&self) -> &'static str {
        "https://api.bybit.com"
    }
    fn interval_code(&self, interval: Interval) -> Option<&'static str> {
        message::interval_code(interval)
    }
    fn max_streams(&self) -> usize {
        // Public spot: the args of one connection stay under 21,000 characters; 500 topics of
        // up to 38 (`kline.60.` and a 29-character symbol), quoted and comma-separated, fit.
        500
    }
    fn connection_rate(&self) -> Option<(u32, Duration)> {
        // "Do not establish more than 500 connections within 5 minutes" (per WebSocket domain).
        Some((500, Duration::from_secs(300)))
    }
    fn check_ws_base(&self, base: &str) -> Result<(), FeedError> {
        ws::check_base(base)
    }
    fn ws_url(&self, base: &str, _streams: &[StreamKey]) -> String {
        ws::url(base)
    }
    fn stream_name(&self, key: &StreamKey) -> Result<String, FeedError> {
        ws::topic(key)
    }
    fn subscribe_messages(&self, streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
        ws::subscribe_messages(streams)
    }
    fn app_ping(&self) -> Option<&'static str> {
        Some(ws::PING)
    }
    fn ping_cap(&self) -> Duration {
        // Bybit wants a ping every 20 s.
        Duration::from_secs(20)
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
        // 1000 kline rows of seven strings are ~130 KB.
        512 << 10
    }
    fn time_path(&self) -> &'static str {
        rest::TIME_PATH
    }
    fn parse_time(&self, body: &str) -> Result<i64, FeedError> {
        rest::parse_time(body)
    }
    fn symbols_path(&self, symbols: &[&str]) -> Result<String, FeedError> {
        match symbols {
            [one] => Ok(rest::instruments_path(one)),
            _ => Err(FeedError::Invalid(
                "Bybit checks one symbol per request".into(),
            )),
        }
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
        rest::klines_path(symbol, interval, start_ms, end_ms, limit)
    }
    fn parse_klines(&self, body: &str, interval: Interval) -> Result<Vec<Candle>, FeedError> {
        rest::parse_klines(body, interval)
    }
    fn parse_error(&self, body: &str) -> Option<FeedError> {
        rest::parse_error(body)
    }
    fn retryable_code(&self, code: i64) -> bool {
        // 10000 server timeout, 10006 too many visits, 10016 server error.
        matches!(code, 10000 | 10006 | 10016)
    }
    fn status_hint(&self, status: u16) -> Option<&'static str> {
        (status == 403)
            .then_some("Bybit answers 403 to US IP addresses and to clients over its rate limit")
    }
    fn weight_rule(&self) -> WeightRule {
        // "600 requests within a 5-second window per IP"; no usage header on public endpoints.
        WeightRule {
            limit: 600,
            window: Duration::from_secs(5),
            header: None,
        }
    }
    fn rate_limit_wait(&self, status: u16, body: &str) -> Option<Duration> {
        // Over the IP limit Bybit answers 403 "access too frequent" and asks for ten minutes
        // (a 403 for a US address carries retCode 10009 instead, and is final).
        (status == 403 && body.to_ascii_lowercase().contains("too frequent"))
            .then_some(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;

    use super::message::{interval_code, interval_from_code};
    use crate::feed::wire::Control;
    use crate::feed::{FeedError, StreamKey};
    use crate::venue::{Venue, lookup};

    fn load(name: &str) -> String {
        // Payloads from Bybit's documentation; sources and edits in test_data/README.md.
        let path = format!("{}/test_data/bybit/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn key(symbol: &str, interval: Interval) -> StreamKey {
        StreamKey {
            symbol: symbol.into(),
            interval,
        }
    }

    #[test]
    fn maps_intervals_both_ways() {
        struct Case {
            ours: Interval,
            theirs: Option<&'static str>,
        }
        let cases = [
            Case {
                ours: Interval::M1,
                theirs: Some("1"),
            },
            Case {
                ours: Interval::M5,
                theirs: Some("5"),
            },
            Case {
                ours: Interval::H1,
                theirs: Some("60"),
            },
            Case {
                ours: Interval::H4,
                theirs: Some("240"),
            },
            Case {
                ours: Interval::H12,
                theirs: Some("720"),
            },
            Case {
                ours: Interval::D1,
                theirs: Some("D"),
            },
            Case {
                ours: Interval::W1,
                theirs: Some("W"),
            },
            Case {
                ours: Interval::Mo1,
                theirs: Some("M"),
            },
            Case {
                ours: Interval::H8,
                theirs: None,
            },
            Case {
                ours: Interval::D3,
                theirs: None,
            },
        ];
        for c in cases {
            assert_eq!(interval_code(c.ours), c.theirs, "{}", c.ours);
            if let Some(t) = c.theirs {
                assert_eq!(interval_from_code(t), Some(c.ours));
            }
        }
    }

    #[test]
    fn url_and_subscriptions() {
        assert_eq!(
            super::ws::url("ws://127.0.0.1:1/"),
            "ws://127.0.0.1:1/v5/public/spot"
        );
        let streams: Vec<StreamKey> = (0..12)
            .map(|i| key(&format!("S{i}USDT"), Interval::M5))
            .collect();
        let msgs = super::ws::subscribe_messages(&streams).expect("subscribe");
        assert_eq!(msgs.len(), 2, "at most 10 topics per request");
        let first: serde_json::Value = serde_json::from_str(&msgs[0]).expect("json");
        assert_eq!(first["op"], "subscribe");
        assert_eq!(first["args"][0], "kline.5.S0USDT");
        assert_eq!(first["args"].as_array().map(Vec::len), Some(10));
        assert!(super::ws::subscribe_messages(&[key("BTCUSDT", Interval::D3)]).is_err());
    }

    #[test]
    fn parses_pushes_acks_and_pongs() {
        let streams = [key("BTCUSDT", Interval::M5)];
        let lookup = lookup(&super::BYBIT, &streams).expect("lookup");
        let mut out = Vec::new();
        struct Case {
            input: String,
            ok: Option<Control>,
        }
        let push = load("ws_kline.json");
        let cases = [
            Case {
                input: push.clone(),
                ok: Some(Control::Klines),
            },
            Case {
                input: load("ws_subscribe_ack_spot.json"),
                ok: Some(Control::Subscribed),
            },
            Case {
                input: load("ws_subscribe_ack_linear.json"),
                ok: Some(Control::Subscribed),
            },
            Case {
                input: load("ws_pong_spot.json"),
                ok: Some(Control::Ignored),
            },
            Case {
                input: load("ws_pong_linear.json"),
                ok: Some(Control::Ignored),
            },
            Case {
                input: load("ws_subscribe_fail.json"),
                ok: Some(Control::Error(
                    "subscribe failed: error:handler not found,topic:kline.5.NOPEUSDT".into(),
                )),
            },
            Case {
                input: push.replace("kline.5.BTCUSDT", "kline.5.ETHUSDT"),
                ok: None,
            },
            Case {
                input: push.replace("\"16677\"", "\"x\""),
                ok: None,
            },
            // high below low: impossible.
            Case {
                input: push.replace("\"16608\"", "\"20000\""),
                ok: None,
            },
            Case {
                input: push.replace(r#""interval":"5""#, r#""interval":"7""#),
                ok: None,
            },
            Case {
                input: "[1,2".into(),
                ok: None,
            },
            Case {
                input: "{}".into(),
                ok: None,
            },
        ];
        for c in cases {
            let got = super::BYBIT.parse_frame(&c.input, &lookup, &mut out);
            match c.ok {
                Some(expected) => assert_eq!(got, Ok(expected), "{}", c.input),
                None => assert!(got.is_err(), "{} parsed as {got:?}", c.input),
            }
        }
        assert_eq!(out.len(), 1);
        let k = out[0];
        assert!(!k.closed);
        // In the documented push `ts` and the last trade's `timestamp` are equal.
        assert_eq!((k.idx, k.event_time), (0, 1_672_324_988_882));
        assert_eq!(k.candle.open_time, 1_672_324_800_000);
        assert_eq!(k.candle.close_time, 1_672_325_099_999);
        assert_eq!(
            (
                k.candle.open,
                k.candle.high,
                k.candle.low,
                k.candle.close,
                k.candle.volume
            ),
            (16649.5, 16677.0, 16608.0, 16677.0, 2.081)
        );
    }

    #[test]
    fn rest_klines_are_reordered_oldest_first() {
        // The documented answer to `start=1670601600000&end=1670608800000&interval=60`: both
        // ends are included, newest first.
        let rows =
            super::rest::parse_klines(&load("rest_kline.json"), Interval::H1).expect("klines");
        let opens: Vec<i64> = rows.iter().map(|c| c.open_time).collect();
        assert_eq!(
            opens,
            [1_670_601_600_000, 1_670_605_200_000, 1_670_608_800_000]
        );
        assert_eq!(rows[0].volume, 6356.0);
    }

    #[test]
    fn rest_errors_time_and_instruments() {
        for (file, expected) in [
            ("rest_error_period.json", "Invalid period!"),
            ("rest_error_symbol.json", "Not supported symbols"),
        ] {
            match super::rest::parse_klines(&load(file), Interval::M5) {
                Err(FeedError::ExchangeError { code, msg }) => {
                    assert_eq!(code, 10001, "{file}");
                    assert_eq!(msg, expected);
                }
                other => panic!("{file}: {other:?}"),
            }
            assert!(super::rest::parse_error(&load(file)).is_some());
        }
        // timeNano, to the millisecond.
        assert_eq!(
            super::rest::parse_time(&load("time.json")).expect("time"),
            1_688_639_403_423
        );
        assert!(super::rest::check_symbol(&load("instruments.json"), "BTCUSDT").is_ok());
        assert!(matches!(
            super::rest::check_symbol(&load("instruments_empty.json"), "NOPEUSDT"),
            Err(FeedError::ExchangeError { code: 10001, .. })
        ));
        assert!(super::rest::parse_error(&load("time.json")).is_none());
        assert!(super::rest::klines_path("BTCUSDT", Interval::D3, None, None, 10).is_err());
        assert_eq!(
            super::rest::klines_path("BTCUSDT", Interval::D1, Some(1), None, 10).expect("path"),
            "/v5/market/kline?category=spot&symbol=BTCUSDT&interval=D&limit=10&start=1"
        );
    }
}
