//! OKX v5 spot: [`ws`] builds the business-socket URL and `candle{bar}` subscriptions and
//! parses pushes, [`rest`] builds REST paths and parses answers (newest first, reordered),
//! [`message`] holds the serde structs, the UTC-aligned bar spellings and the symbol mapping;
//! [`Okx`] is the [`Venue`] over them.
//!
//! Symbols: users type `BTCUSDT` as everywhere else; it is split before a known quote asset
//! ([`message::QUOTES`], none a suffix of another, so the split is unambiguous) into OKX's
//! `BTC-USDT`. `BTC-USDT` is also accepted as given.

pub mod message;
pub mod rest;
pub mod ws;

use std::time::Duration;

use manus_core::{Candle, Interval};

use crate::feed::wire::{Control, Lookup, ParseError, WsKline};
use crate::feed::{FeedError, StreamKey};
use crate::venue::{Venue, WeightRule};

/// OKX v5 spot.
#[derive(Debug)]
pub struct Okx;

/// The registry's OKX.
pub static OKX: Okx = Okx;

impl Venue for Okx {
    fn name(&self) -> &'static str {
        "OKX"
    }
    fn default_ws_url(&self) -> &'static str {
        "wss://ws.okx.com:8443"
    }
    fn default_rest_url(&self) -> &'static str {
        "https://www.okx.com"
    }
    fn interval_code(&self, interval: Interval) -> Option<&'static str> {
        message::interval_code(interval)
    }
    fn symbol(&self, symbol: &str) -> Result<String, FeedError> {
        message::inst_id(symbol)
    }
    fn max_streams(&self) -> usize {
        // No documented cap on channels per connection; subscribing takes requests of 100 args
        // (64 KB each at most), 11 for 1024, far within 480 per connection per hour.
        1024
    }
    fn connection_rate(&self) -> Option<(u32, Duration)> {
        // "Connection limit: 3 requests per second (based on IP)".
        Some((3, Duration::from_secs(1)))
    }
    fn ws_url(&self, base: &str, _streams: &[StreamKey]) -> String {
        ws::url(base)
    }
    fn stream_name(&self, key: &StreamKey) -> Result<String, FeedError> {
        let channel = ws::channel(key)?;
        Ok(ws::stream_name(&channel, &self.symbol(&key.symbol)?))
    }
    fn subscribe_messages(&self, streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
        ws::subscribe_messages(streams)
    }
    fn app_ping(&self) -> Option<&'static str> {
        Some(ws::PING)
    }
    fn ping_cap(&self) -> Duration {
        // OKX cuts a connection quiet for 30 s.
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
        rest::MAX_LIMIT_HISTORY
    }
    fn max_body(&self) -> usize {
        // 300 candle rows of nine strings are ~45 KB; an instrument ~1 KB.
        256 << 10
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
                "OKX checks one instrument per request".into(),
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
    fn weight_rule(&self) -> WeightRule {
        // OKX limits each endpoint per IP per 2 s: candles 40, history-candles 20, instruments
        // 20, time 10. One budget of 40 with weights 1, 2, 2 and 4 keeps every one of them.
        WeightRule {
            limit: 40,
            window: Duration::from_secs(2),
            header: None,
        }
    }
    fn request_weight(&self, path: &str) -> u32 {
        if path.starts_with("/api/v5/market/history-candles")
            || path.starts_with("/api/v5/public/instruments")
        {
            2
        } else if path.starts_with("/api/v5/public/time") {
            4
        } else {
            1
        }
    }
    fn retryable_code(&self, code: i64) -> bool {
        // 50001 service temporarily unavailable, 50004 endpoint timeout, 50011 rate limit,
        // 50013 system busy, 50026 system error.
        matches!(code, 50001 | 50004 | 50011 | 50013 | 50026)
    }
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;

    use super::message::{QUOTES, inst_id, interval_code, interval_from_code};
    use crate::feed::wire::{Control, ParseError};
    use crate::feed::{FeedError, StreamKey};
    use crate::venue::{Venue, lookup};

    fn load(name: &str) -> String {
        let path = format!("{}/test_data/okx/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn key(symbol: &str, interval: Interval) -> StreamKey {
        StreamKey {
            symbol: symbol.into(),
            interval,
        }
    }

    #[test]
    fn symbols_map_unambiguously() {
        for (i, a) in QUOTES.iter().enumerate() {
            for (j, b) in QUOTES.iter().enumerate() {
                assert!(i == j || !a.ends_with(b), "{b} is a suffix of {a}");
            }
        }
        struct Case {
            input: &'static str,
            expected: Option<&'static str>,
        }
        let cases = [
            Case {
                input: "BTCUSDT",
                expected: Some("BTC-USDT"),
            },
            Case {
                input: "ethbtc",
                expected: Some("ETH-BTC"),
            },
            Case {
                input: "USDCUSDT",
                expected: Some("USDC-USDT"),
            },
            Case {
                input: "BTCUSDC",
                expected: Some("BTC-USDC"),
            },
            Case {
                input: "BTCUSD",
                expected: Some("BTC-USD"),
            },
            Case {
                input: "BTC-USDT",
                expected: Some("BTC-USDT"),
            },
            Case {
                input: "SIM0003USDT",
                expected: Some("SIM0003-USDT"),
            },
            Case {
                input: "USDT",
                expected: None,
            },
            Case {
                input: "BTCXYZ",
                expected: None,
            },
            Case {
                input: "BTC-",
                expected: None,
            },
            Case {
                input: "-USDT",
                expected: None,
            },
        ];
        for c in cases {
            assert_eq!(inst_id(c.input).ok().as_deref(), c.expected, "{}", c.input);
        }
    }

    #[test]
    fn bars_are_utc_aligned_and_map_both_ways() {
        assert_eq!(interval_code(Interval::H1), Some("1H"));
        assert_eq!(interval_code(Interval::D1), Some("1Dutc"));
        assert_eq!(interval_code(Interval::W1), Some("1Wutc"));
        assert_eq!(interval_code(Interval::H8), None);
        assert_eq!(interval_code(Interval::D3), None);
        for i in Interval::ALL {
            if let Some(code) = interval_code(i) {
                assert_eq!(interval_from_code(code), Some(i));
            }
        }
        let msgs = super::ws::subscribe_messages(&[key("BTCUSDT", Interval::D1)]).expect("sub");
        let v: serde_json::Value = serde_json::from_str(&msgs[0]).expect("json");
        assert_eq!(v["op"], "subscribe");
        assert_eq!(v["args"][0]["channel"], "candle1Dutc");
        assert_eq!(v["args"][0]["instId"], "BTC-USDT");
        assert!(super::ws::subscribe_messages(&[key("BTCUSDT", Interval::H8)]).is_err());
        assert_eq!(
            super::OKX.ws_url("ws://127.0.0.1:1/", &[]),
            "ws://127.0.0.1:1/ws/v5/business"
        );
    }

    #[test]
    fn parses_pushes_acks_errors_and_pong() {
        let streams = [key("BTCUSDT", Interval::M1), key("BTCUSDT", Interval::D1)];
        let lookup = lookup(&super::OKX, &streams).expect("lookup");
        let mut out = Vec::new();
        struct Case {
            input: String,
            ok: Option<Control>,
        }
        let push = load("ws_candle.json");
        let cases = [
            Case { input: push.clone(), ok: Some(Control::Klines) },
            Case { input: load("ws_candle_1dutc.json"), ok: Some(Control::Klines) },
            Case { input: load("ws_subscribe_ack.json"), ok: Some(Control::Subscribed) },
            Case { input: "pong".into(), ok: Some(Control::Ignored) },
            Case {
                input: load("ws_error.json"),
                ok: Some(Control::Error(
                    r#"60012: Invalid request: {"op": "subscribe", "argss":[{ "channel" : "candle1m", "instId" : "BTC-USDT"}]}"#.into(),
                )),
            },
            // Another instrument, a bar not subscribed, a bad number, a forming flag that is
            // neither 0 nor 1, a short row, an off-grid ts, not JSON.
            Case { input: push.replace("BTC-USDT", "ETH-USDT"), ok: None },
            Case { input: push.replace("candle1m", "candle5m"), ok: None },
            Case { input: push.replace("\"8553.74\"", "\"x\""), ok: None },
            Case { input: push.replace(",\"1\"]]", ",\"2\"]]"), ok: None },
            Case { input: push.replace(",\"529.5858061\",\"1\"]]", "]]"), ok: None },
            Case { input: push.replace("1597026360000", "1597026383085"), ok: None },
            Case { input: "ping".into(), ok: None },
            Case { input: "{}".into(), ok: None },
        ];
        for c in cases {
            let got = super::OKX.parse_frame(&c.input, &lookup, &mut out);
            match c.ok {
                Some(expected) => assert_eq!(got, Ok(expected), "{}", c.input),
                None => assert!(got.is_err(), "{} parsed as {got:?}", c.input),
            }
        }
        assert_eq!(out.len(), 2);
        let k = out[0];
        assert!(k.closed);
        assert_eq!((k.idx, k.event_time), (0, 0));
        assert_eq!(k.candle.open_time, 1_597_026_360_000);
        assert_eq!(k.candle.close_time, 1_597_026_419_999);
        assert_eq!(
            (
                k.candle.open,
                k.candle.high,
                k.candle.low,
                k.candle.close,
                k.candle.volume
            ),
            (8533.02, 8553.74, 8527.17, 8548.26, 45247.0)
        );
        let d = out[1];
        assert_eq!((d.idx, d.closed), (1, false));
        assert_eq!(d.candle.close_time, 1_596_931_200_000 + 86_400_000 - 1);
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let lookup = lookup(&super::OKX, &[key("BTCUSDT", Interval::M1)]).expect("lookup");
        let push = load("ws_candle.json");
        let parse = |text: &str| super::OKX.parse_frame(text, &lookup, &mut Vec::new());
        assert_eq!(
            parse(&push.replace("BTC-USDT", "ETH-USDT")),
            Err(ParseError::Unsubscribed("candle1m:ETH-USDT".into()))
        );
        assert_eq!(
            parse(&push.replace("\"8553.74\"", "\"x\"")),
            Err(ParseError::Number {
                field: "high",
                value: "x".into()
            })
        );
        assert!(matches!(
            parse(&push.replace("\"8553.74\"", "\"1\"")),
            Err(ParseError::Candle(_))
        ));
        assert!(matches!(parse("ping"), Err(ParseError::Json(_))));
        assert!(matches!(parse("{}"), Err(ParseError::Shape(_))));
    }

    #[test]
    fn rest_candles_are_reordered_oldest_first_with_the_forming_row() {
        let rows =
            super::rest::parse_klines(&load("rest_candles.json"), Interval::M1).expect("candles");
        let opens: Vec<i64> = rows.iter().map(|c| c.open_time).collect();
        assert_eq!(opens, [1_597_026_360_000, 1_597_026_420_000]);
        assert_eq!((rows[0].open, rows[0].volume), (3.731, 24_912_403.0));
        // At server time 1597026443085 the second row is still forming.
        let now = super::rest::parse_time(&load("time.json")).expect("time");
        assert_eq!(now, 1_597_026_443_085);
        assert_eq!(rows.iter().filter(|c| c.close_time < now).count(), 1);
        let repeated = load("rest_candles.json").replace("1597026420000", "1597026360000");
        assert!(matches!(
            super::rest::parse_klines(&repeated, Interval::M1),
            Err(FeedError::Parse(_))
        ));
    }

    #[test]
    fn rest_errors_are_typed_and_classified() {
        struct Case {
            file: &'static str,
            code: i64,
            retryable: bool,
        }
        let cases = [
            Case {
                file: "rest_error_instrument.json",
                code: 51001,
                retryable: false,
            },
            Case {
                file: "rest_error_rate_limit.json",
                code: 50011,
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
            assert_eq!(super::OKX.is_retryable(&err), c.retryable, "{}", c.file);
            assert!(super::OKX.parse_error(&load(c.file)).is_some());
        }
        assert!(super::OKX.parse_error(&load("time.json")).is_none());
    }

    #[test]
    fn instruments_check_listing_and_state() {
        let body = load("instruments.json");
        assert!(super::rest::check_symbol(&body, "BTC-USDT").is_ok());
        assert!(matches!(
            super::rest::check_symbol(&body, "ETH-USDT"),
            Err(FeedError::ExchangeError { code: 51001, .. })
        ));
        assert!(matches!(
            super::rest::check_symbol(&body.replace("\"live\"", "\"suspend\""), "BTC-USDT"),
            Err(FeedError::Invalid(_))
        ));
        assert!(matches!(
            super::rest::check_symbol(&load("rest_error_instrument.json"), "BTC-USDT"),
            Err(FeedError::ExchangeError { code: 51001, .. })
        ));
    }

    #[test]
    fn paths_pick_the_endpoint_and_exclusive_bounds() {
        assert_eq!(
            super::rest::klines_path("BTC-USDT", Interval::M1, None, None, 1).expect("path"),
            "/api/v5/market/candles?instId=BTC-USDT&bar=1m&limit=1"
        );
        assert_eq!(
            super::rest::klines_path("BTC-USDT", Interval::D1, Some(10), Some(20), 1000)
                .expect("path"),
            "/api/v5/market/history-candles?instId=BTC-USDT&bar=1Dutc&limit=100&after=21&before=9"
        );
        assert!(super::rest::klines_path("BTC-USDT", Interval::H8, None, None, 1).is_err());
        assert_eq!(
            super::OKX.symbols_path(&["BTC-USDT"]).expect("path"),
            "/api/v5/public/instruments?instType=SPOT&instId=BTC-USDT"
        );
    }
}
