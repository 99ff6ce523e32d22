//! How a Binance connection subscribes to many streams without a URL the servers refuse.
//!
//! Binance allows 1024 streams per connection, but its servers reject request lines past
//! roughly 8,000 characters (reported by long-standing client libraries; not in the docs), and
//! 400 `xxx@kline_15m` names already make an 8,844-character `/stream?streams=` URL. So the
//! URL carries only the streams that fit in [`URL_BUDGET`] (all of them for small feeds, which
//! then need no control message at all), and the rest follow as `SUBSCRIBE` messages of
//! [`PER_MESSAGE`] streams each, which the connection paces within Binance's 5 incoming
//! messages a second (see `feed::keepalive`).

use crate::feed::StreamKey;

use super::ws::stream_name;

/// Most characters of path and query the URL may have: half of what servers are reported to
/// accept, leaving room for the host and for proxies.
pub const URL_BUDGET: usize = 4_000;

/// Streams per `SUBSCRIBE` message (Binance documents no limit; a 100-name message is ~2.5 KB).
pub const PER_MESSAGE: usize = 100;

const COMBINED: &str = "/stream?streams=";

/// How many of `streams` (from the front) the URL carries.
pub fn in_url(streams: &[StreamKey]) -> usize {
    let mut len = COMBINED.len();
    for (i, s) in streams.iter().enumerate() {
        // A separator before every name but the first.
        len += stream_name(s).len() + usize::from(i > 0);
        if len > URL_BUDGET {
            return i;
        }
    }
    streams.len()
}

/// The socket URL under `base`: raw `/ws/<name>` for one stream, combined for many. A base
/// given with Binance's endpoint path (`.../ws` or `.../stream`, as the docs list the base
/// endpoints) is taken without it: appended to, it would name a stream called `ws` or
/// `stream`, which connects and never sends a candle.
pub fn url(base: &str, streams: &[StreamKey]) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_suffix("/ws")
        .or_else(|| base.strip_suffix("/stream"))
        .unwrap_or(base);
    let n = in_url(streams);
    match &streams[..n] {
        [one] if streams.len() == 1 => format!("{base}/ws/{}", stream_name(one)),
        [] => format!("{base}/stream"),
        some => {
            let names: Vec<String> = some.iter().map(stream_name).collect();
            format!("{base}{COMBINED}{}", names.join("/"))
        }
    }
}

/// `SUBSCRIBE` messages for the streams the URL does not carry, ids from 1.
pub fn messages(streams: &[StreamKey]) -> Vec<String> {
    streams[in_url(streams)..]
        .chunks(PER_MESSAGE)
        .enumerate()
        .map(|(i, chunk)| {
            let params: Vec<String> = chunk.iter().map(stream_name).collect();
            serde_json::json!({ "method": "SUBSCRIBE", "params": params, "id": i + 1 }).to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;

    use super::*;

    fn keys(n: usize, interval: Interval) -> Vec<StreamKey> {
        (0..n)
            .map(|i| StreamKey {
                symbol: format!("SYM{i:04}USDT"),
                interval,
            })
            .collect()
    }

    #[test]
    fn small_feeds_subscribe_by_url_alone() {
        let streams = keys(20, Interval::M15);
        assert_eq!(in_url(&streams), 20);
        assert!(messages(&streams).is_empty());
        assert!(
            url("ws://h", &streams).starts_with("ws://h/stream?streams=sym0000usdt@kline_15m/")
        );
    }

    #[test]
    fn a_base_with_the_endpoint_path_is_taken_without_it() {
        for n in [1, 3] {
            let streams = keys(n, Interval::M1);
            let want = url("wss://stream.binance.com:9443", &streams);
            for base in [
                "wss://stream.binance.com:9443/",
                "wss://stream.binance.com:9443/ws",
                "wss://stream.binance.com:9443/ws/",
                "wss://stream.binance.com:9443/stream",
            ] {
                assert_eq!(url(base, &streams), want, "{base}");
            }
        }
        assert_eq!(
            url("ws://h/ws", &keys(1, Interval::M1)),
            "ws://h/ws/sym0000usdt@kline_1m"
        );
    }

    #[test]
    fn large_feeds_keep_the_url_in_budget_and_subscribe_the_rest_once() {
        for n in [400, 500, 1024] {
            let streams = keys(n, Interval::M15);
            let u = url("wss://stream.binance.com:9443", &streams);
            let path = &u["wss://stream.binance.com:9443".len()..];
            assert!(path.len() <= URL_BUDGET, "{n}: {} chars", path.len());
            // Every stream exactly once: in the URL or in one message.
            let mut names: Vec<String> = path[COMBINED.len()..]
                .split('/')
                .map(str::to_string)
                .collect();
            let msgs = messages(&streams);
            for (i, m) in msgs.iter().enumerate() {
                let v: serde_json::Value = serde_json::from_str(m).expect("json");
                assert_eq!(v["method"], "SUBSCRIBE");
                assert_eq!(v["id"], i + 1);
                let params = v["params"].as_array().expect("params");
                assert!(params.len() <= PER_MESSAGE);
                names.extend(params.iter().map(|p| p.as_str().expect("str").to_string()));
            }
            let mut expected: Vec<String> = streams.iter().map(stream_name).collect();
            expected.sort();
            names.sort();
            assert_eq!(names, expected, "{n}");
        }
    }
}
