//! OKX v5 end to end against the simulated exchange: bootstrap over `history-candles` pages of
//! 100, the live `candle1m` stream on the business socket, drops with backfill (gapless, no
//! duplicates, equal to the exchange's truth), the text heartbeat, and OKX's error answers.

mod feed_common;

use std::time::Duration;

use feed_common::*;
use futures_util::{SinkExt, StreamExt};
use manus_core::Interval;
use manus_exchange::sim::{FaultPlan, SimExchange};
use manus_exchange::{ExchangeKind, Feed, FeedError, FeedEvent, Origin, RestClient};
use tokio_tungstenite::tungstenite::Message;

const OKX: ExchangeKind = ExchangeKind::Okx;

async fn sim(cfg: manus_exchange::sim::SimConfig) -> SimExchange {
    SimExchange::start(cfg).await.expect("sim starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_pages_history_then_streams_live_without_a_gap() {
    let sim = sim(sim_config(&["BTCUSDT", "ETHBTC"], 400)).await;
    let mut feed = Feed::connect(feed_config(&sim, OKX, &["BTCUSDT", "ETHBTC"], 350))
        .await
        .expect("connect");
    let seen = collect(&mut feed, Duration::from_secs(20), |s| {
        s.live("BTCUSDT") >= 20 && s.live("ETHBTC") >= 20
    })
    .await;
    feed.shutdown().await;
    for symbol in ["BTCUSDT", "ETHBTC"] {
        // 350 rows take four history pages of at most 100.
        assert_eq!(seen.count(symbol, Origin::Bootstrap), 350, "{symbol}");
        assert!(
            seen.live(symbol) >= 20,
            "{symbol}: {} live",
            seen.live(symbol)
        );
        let got = &seen.closed[symbol];
        assert!(got[..350].iter().all(|(_, o)| *o == Origin::Bootstrap));
        assert_matches_truth(symbol, got, &sim.closed_candles(symbol), Interval::M1);
    }
    assert_eq!(
        seen.bad_updates, 0,
        "a forming update overwrote a closed candle"
    );
    assert!(seen.events_where(|e| matches!(e, FeedEvent::Connected { .. })) >= 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_are_backfilled_gapless_and_without_duplicates() {
    let mut cfg = sim_config(&["BTCUSDT"], 100);
    cfg.faults = FaultPlan {
        drop_every: Some(12),
        duplicate_final_every: Some(5),
        ..FaultPlan::default()
    };
    let sim = sim(cfg).await;
    let mut feed = Feed::connect(feed_config(&sim, OKX, &["BTCUSDT"], 50))
        .await
        .expect("connect");
    let counters = feed.counters();
    let seen = collect(&mut feed, Duration::from_secs(30), |s| {
        s.count("BTCUSDT", Origin::Live) + s.count("BTCUSDT", Origin::Backfill) >= 120
    })
    .await;
    feed.shutdown().await;
    let c = counters.snapshot();
    assert!(sim.stats().drops >= 4, "{:?}", sim.stats());
    assert!(c.reconnections >= 4, "{c:?}");
    assert!(seen.count("BTCUSDT", Origin::Backfill) > 0);
    assert!(seen.events_where(|e| matches!(e, FeedEvent::Backfilled { .. })) > 0);
    assert!(seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })) >= 4);
    assert_eq!(
        seen.events_where(|e| matches!(e, FeedEvent::Correction { .. })),
        0,
        "a duplicated final is not a correction"
    );
    let got = &seen.closed["BTCUSDT"];
    assert!(got.len() >= 170, "{}", got.len());
    assert_matches_truth("BTCUSDT", got, &sim.closed_candles("BTCUSDT"), Interval::M1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_time_ranges_and_typed_errors() {
    let sim = sim(sim_config(&["BTCUSDT"], 500)).await;
    let rest = RestClient::new(OKX, &sim.rest_url())
        .expect("client")
        .with_retry_delay(Duration::from_millis(5));
    let now = rest.server_time().await.expect("time");
    let truth = sim.closed_candles("BTCUSDT");
    // 250 closed candles in one range: three pages, oldest first, equal to the truth.
    let from = truth[100].open_time;
    let to = truth[349].open_time;
    let rows = rest
        .klines_range("BTCUSDT", Interval::M1, from, to, |_| {})
        .await
        .expect("range");
    assert_eq!(rows.len(), 250);
    assert_eq!(rows, truth[100..350]);
    assert!(rows.iter().all(|c| c.close_time < now));
    // The latest rows come from `candles`, the forming one included.
    let latest = rest
        .klines("BTCUSDT", Interval::M1, None, None, 3)
        .await
        .expect("latest");
    assert_eq!(latest.len(), 3);
    assert!(latest[2].close_time >= now, "the newest row is forming");
    rest.check_symbol("BTCUSDT").await.expect("listed");
    rest.check_symbol("BTC-USDT")
        .await
        .expect("listed as given");
    struct Case {
        what: &'static str,
        err: FeedError,
        code: Option<i64>,
    }
    let cases = [
        Case {
            what: "unknown instrument",
            err: rest.check_symbol("NOPEUSDT").await.expect_err("unknown"),
            code: Some(51001),
        },
        Case {
            what: "interval not served",
            err: rest
                .klines("BTCUSDT", Interval::M5, None, None, 1)
                .await
                .expect_err("5m"),
            code: Some(51000),
        },
        Case {
            what: "no quote asset",
            err: rest.check_symbol("BTCXYZ").await.expect_err("unmappable"),
            code: None,
        },
    ];
    for c in cases {
        match (&c.err, c.code) {
            (FeedError::ExchangeError { code, .. }, Some(want)) => {
                assert_eq!(*code, want, "{}", c.what)
            }
            (FeedError::Invalid(_), None) => {}
            (other, _) => panic!("{}: {other:?}", c.what),
        }
        assert!(!c.err.is_retryable(), "{}", c.what);
    }
    // A 429 with Retry-After is waited out and retried.
    sim.fail_rest(2, 429, Some(0));
    assert!(rest.server_time().await.is_ok());
    assert!(sim.stats().rest_failures >= 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_answers_ping_with_pong_and_unknown_channels_with_an_error() {
    let sim = sim(sim_config(&["BTCUSDT"], 10)).await;
    let url = format!("{}/ws/v5/business", sim.ws_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let next_text = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no text frame: {other:?}"),
        }
    };
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next_text(&mut ws).await, "pong");
    ws.send(Message::text(
        r#"{"op":"subscribe","args":[{"channel":"candle1m","instId":"NOPE-USDT"}]}"#,
    ))
    .await
    .expect("send");
    let v: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
    assert_eq!(
        (v["event"].as_str(), v["code"].as_str()),
        (Some("error"), Some("60018"))
    );
    ws.send(Message::text(
        r#"{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"}]}"#,
    ))
    .await
    .expect("send");
    let ack: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
    assert_eq!(ack["event"], "subscribe");
    assert_eq!(ack["arg"]["instId"], "BTC-USDT");
    let push: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).expect("json");
    assert_eq!(push["arg"]["channel"], "candle1m");
    assert_eq!(push["data"][0].as_array().map(Vec::len), Some(9));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_refuses_unknown_symbols_and_unaligned_intervals_before_connecting() {
    let sim = sim(sim_config(&["BTCUSDT"], 10)).await;
    let err = Feed::connect(feed_config(&sim, OKX, &["NOPEUSDT"], 0))
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, FeedError::ExchangeError { code: 51001, .. }),
        "{err:?}"
    );
    let mut cfg = feed_config(&sim, OKX, &["BTCUSDT"], 0);
    cfg.streams[0].interval = Interval::H8;
    let err = Feed::connect(cfg).await.expect_err("8h");
    assert!(matches!(err, FeedError::Invalid(_)), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_counted_and_skipped() {
    let mut cfg = sim_config(&["BTCUSDT"], 50);
    cfg.faults = FaultPlan {
        malformed_every: Some(2),
        ..FaultPlan::default()
    };
    let sim = sim(cfg).await;
    let mut feed = Feed::connect(feed_config(&sim, OKX, &["BTCUSDT"], 20))
        .await
        .expect("connect");
    let counters = feed.counters();
    let seen = collect(&mut feed, Duration::from_secs(20), |s| {
        s.live("BTCUSDT") >= 30
    })
    .await;
    feed.shutdown().await;
    let c = counters.snapshot();
    assert!(sim.stats().malformed_sent >= 5, "{:?}", sim.stats());
    assert!(c.malformed >= 5, "{c:?}");
    assert_matches_truth(
        "BTCUSDT",
        &seen.closed["BTCUSDT"],
        &sim.closed_candles("BTCUSDT"),
        Interval::M1,
    );
    sim.shutdown().await;
}
