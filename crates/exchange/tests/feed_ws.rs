//! What real exchanges do to a WebSocket that the plain market does not, against the simulated
//! exchange over loopback: hundreds of Binance streams (a URL the servers would refuse, 5
//! incoming messages a second), a `serverShutdown` announcement, and a quiet market.

mod feed_common;

use std::time::Duration;

use feed_common::*;
use manus_core::Interval;
use manus_exchange::sim::{FaultPlan, MAX_REQUEST_LINE, SimExchange};
use manus_exchange::{ExchangeKind, Feed, FeedEvent, Origin};

async fn sim(cfg: manus_exchange::sim::SimConfig) -> SimExchange {
    SimExchange::start(cfg).await.expect("sim starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_binance_streams_subscribe_within_the_limits_and_stream() {
    many_binance_streams(500).await;
}

/// 1024 streams need nine `SUBSCRIBE` messages: sent at once they would break the 5 messages a
/// second the simulator enforces, so this one shows the pacing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_binance_connection_paces_its_subscriptions() {
    many_binance_streams(1024).await;
}

async fn many_binance_streams(n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("S{i:04}USDT")).collect();
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sc = sim_config(&symbols, 20);
    // Slow enough for a debug build to parse every stream's frames on a shared machine.
    sc.candle_ms = 400;
    sc.updates_per_candle = 1;
    sc.faults = FaultPlan {
        ws_rate_limit: Some(5),
        ..FaultPlan::default()
    };
    let sim = sim(sc).await;

    // The old way, every stream in the URL, is refused like the real servers refuse it.
    let all: Vec<String> = symbols
        .iter()
        .map(|s| format!("{}@kline_1m", s.to_ascii_lowercase()))
        .collect();
    let long = format!("{}/stream?streams={}", sim.ws_url(), all.join("/"));
    assert!(long.len() > MAX_REQUEST_LINE);
    let refused = tokio_tungstenite::connect_async(long.as_str()).await;
    assert!(
        refused.is_err(),
        "a {}-character URL was accepted",
        long.len()
    );
    assert_eq!(sim.stats().urls_refused, 1);

    let mut cfg = feed_config(&sim, ExchangeKind::Binance, &symbols, 0);
    cfg.candle_period = Some(Duration::from_millis(400));
    cfg.silence_timeout = Duration::from_secs(5);
    let mut feed = Feed::connect(cfg).await.expect("connect");
    let seen = collect(&mut feed, Duration::from_secs(60), |s| {
        symbols.iter().all(|sym| s.live(sym) >= 3)
    })
    .await;
    feed.shutdown().await;
    let short: Vec<&&str> = symbols.iter().filter(|s| seen.live(s) < 3).collect();
    assert!(
        short.is_empty(),
        "{} streams short of 3 live candles: {:?}",
        short.len(),
        &short[..short.len().min(5)]
    );
    let st = sim.stats();
    assert_eq!(st.rate_limited, 0, "cut for more than 5 messages a second");
    assert_eq!(st.urls_refused, 1, "only the probe above was refused");
    assert_eq!(st.connections_accepted, 1, "one connection, no reconnects");
    assert_eq!(
        seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })),
        0,
        "{:?}",
        seen.events
    );
    for sym in [symbols[0], symbols[n / 2], symbols[n - 1]] {
        assert_matches_truth(
            sym,
            &seen.closed[sym],
            &sim.closed_candles(sym),
            Interval::M1,
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutdown_hands_over_with_no_gap_raw_and_combined() {
    // One stream: a raw `/ws/..` socket; two: combined `/stream?streams=..`.
    for symbols in [&["BTCUSDT"][..], &["BTCUSDT", "ETHUSDT"][..]] {
        let sim = sim(sim_config(symbols, 100)).await;
        let mut feed = Feed::connect(feed_config(&sim, ExchangeKind::BinanceUs, symbols, 20))
            .await
            .expect("connect");
        let counters = feed.counters();
        let mut seen = collect(&mut feed, Duration::from_secs(10), |s| {
            symbols.iter().all(|sym| s.live(sym) >= 5)
        })
        .await;
        // The old socket is closed 20 candles after the notice: the feed must have moved on.
        sim.server_shutdown(Duration::from_millis(20 * CANDLE_MS));
        let more = collect(&mut feed, Duration::from_secs(10), |s| {
            symbols.iter().all(|sym| s.live(sym) >= 40)
        })
        .await;
        feed.shutdown().await;
        let st = sim.stats();
        assert_eq!(st.shutdown_notices, 1, "{symbols:?}");
        assert_eq!(st.connections_accepted, 2, "{symbols:?}: one handover");
        assert_eq!(counters.snapshot().reconnections, 1, "{symbols:?}");
        assert_eq!(
            more.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })),
            0,
            "{symbols:?}: {:?}",
            more.events
        );
        assert_eq!(
            more.events_where(|e| matches!(e, FeedEvent::Connected { .. })),
            1,
            "{symbols:?}: {:?}",
            more.events
        );
        for sym in symbols {
            // No gap to fill: every candle after the notice came live.
            assert_eq!(more.count(sym, Origin::Backfill), 0, "{sym}");
            let mut all = seen.closed.remove(*sym).unwrap_or_default();
            all.extend(more.closed.get(*sym).cloned().unwrap_or_default());
            assert_matches_truth(sym, &all, &sim.closed_candles(sym), Interval::M1);
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_market_marks_streams_stale_without_reconnecting() {
    for kind in [ExchangeKind::BinanceUs, ExchangeKind::Bybit] {
        let sim = sim(sim_config(&["BTCUSDT", "ETHUSDT"], 100)).await;
        // Binance's server pings (every 20 s for real) come every 200 ms here.
        sim.set_server_ping(Duration::from_millis(200));
        let mut cfg = feed_config(&sim, kind, &["BTCUSDT", "ETHUSDT"], 20);
        cfg.silence_timeout = Duration::from_secs(1);
        let mut feed = Feed::connect(cfg).await.expect("connect");
        let counters = feed.counters();
        let mut seen = collect(&mut feed, Duration::from_secs(10), |s| {
            s.live("BTCUSDT") >= 5 && s.live("ETHUSDT") >= 5
        })
        .await;
        // No kline frame for six silence timeouts (300 candles): only pongs keep it alive.
        let quiet = Duration::from_secs(6);
        sim.quiet(&[], quiet);
        let during = collect(&mut feed, quiet, |_| false).await;
        let after = collect(&mut feed, Duration::from_secs(10), |s| {
            s.live("BTCUSDT") >= 5 && s.live("ETHUSDT") >= 5
        })
        .await;
        feed.shutdown().await;
        let st = sim.stats();
        assert_eq!(st.connections_accepted, 1, "{kind:?}: reconnected");
        if kind == ExchangeKind::BinanceUs {
            // Every server ping was answered, quiet or not, and promptly (Binance allows a
            // minute).
            assert!(st.pongs >= 30, "{kind:?}: {} pongs", st.pongs);
            assert!(
                st.slowest_pong_us < 1_000_000,
                "{kind:?}: slowest pong {} µs",
                st.slowest_pong_us
            );
        }
        assert_eq!(counters.snapshot().reconnections, 0, "{kind:?}");
        for ev in during.events.iter().chain(&after.events) {
            assert!(
                !matches!(ev, FeedEvent::Disconnected { .. }),
                "{kind:?}: {ev:?}"
            );
        }
        // Each stream said it was stale, and fresh again once klines returned.
        assert_eq!(
            during.events_where(|e| matches!(e, FeedEvent::Stale { stale: true, .. })),
            2,
            "{kind:?}: {:?}",
            during.events
        );
        // The quiet spell and the first window end together: under load a stream's first
        // fresh kline can land in either, so count both.
        let fresh = during
            .events
            .iter()
            .chain(&after.events)
            .filter(|e| matches!(e, FeedEvent::Stale { stale: false, .. }))
            .count();
        assert_eq!(
            fresh, 2,
            "{kind:?}: {:?} then {:?}",
            during.events, after.events
        );
        for sym in ["BTCUSDT", "ETHUSDT"] {
            let mut all = seen.closed.remove(sym).unwrap_or_default();
            all.extend(during.closed.get(sym).cloned().unwrap_or_default());
            all.extend(after.closed.get(sym).cloned().unwrap_or_default());
            assert_matches_truth(sym, &all, &sim.closed_candles(sym), Interval::M1);
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binance_connection_takes_at_most_1024_streams() {
    use futures_util::{SinkExt, StreamExt};
    use manus_exchange::sim::MAX_STREAMS;
    use tokio_tungstenite::tungstenite::Message;

    let sim = sim(sim_config(&["BTCUSDT"], 10)).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/stream", sim.ws_url()))
        .await
        .expect("connect");
    let names = |from: usize, n: usize| -> Vec<String> {
        (from..from + n)
            .map(|i| format!("s{i}usdt@kline_1m"))
            .collect()
    };
    let mut reply = async |params: Vec<String>, id: u64| -> serde_json::Value {
        let req = serde_json::json!({"method": "SUBSCRIBE", "params": params, "id": id});
        ws.send(Message::text(req.to_string())).await.expect("send");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                    if v.get("id").is_some() {
                        return v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
    };
    let ok = reply(names(0, MAX_STREAMS), 1).await;
    assert_eq!(ok, serde_json::json!({"result": null, "id": 1}));
    let refused = reply(names(MAX_STREAMS, 1), 2).await;
    assert_eq!(refused["error"]["code"], 2, "{refused}");
    sim.shutdown().await;
}
