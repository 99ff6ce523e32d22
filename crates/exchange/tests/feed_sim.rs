//! The live feed against the simulated exchange over loopback, for both protocols: bootstrap
//! paging and merge, drops with backfill, silence, malformed frames, 429, invalid symbols and
//! intervals, channel overflow and the proactive handover.

mod feed_common;

use std::time::{Duration, Instant};

use feed_common::*;
use manus_core::Interval;
use manus_exchange::feed::{CloseReason, FeedWarning};
use manus_exchange::sim::{FaultPlan, SimExchange};
use manus_exchange::{ExchangeKind, Feed, FeedError, FeedEvent, Origin, RestClient, StreamKey};

const KINDS: [ExchangeKind; 2] = [ExchangeKind::BinanceUs, ExchangeKind::Bybit];

async fn sim(cfg: manus_exchange::sim::SimConfig) -> SimExchange {
    SimExchange::start(cfg).await.expect("sim starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_pages_past_1000_then_merges_the_stream_without_a_gap() {
    for kind in KINDS {
        let sim = sim(sim_config(&["BTCUSDT"], 1300)).await;
        let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT"], 1200))
            .await
            .expect("connect");
        let seen = collect(&mut feed, Duration::from_secs(20), |s| {
            s.live("BTCUSDT") >= 30
        })
        .await;
        feed.shutdown().await;
        let got = &seen.closed["BTCUSDT"];
        assert_eq!(seen.count("BTCUSDT", Origin::Bootstrap), 1200, "{kind:?}");
        assert!(
            seen.live("BTCUSDT") >= 30,
            "{kind:?}: {} live",
            seen.live("BTCUSDT")
        );
        // Bootstrap first, then nothing but stream (or gap fill) candles.
        assert!(got[..1200].iter().all(|(_, o)| *o == Origin::Bootstrap));
        assert_eq!(
            seen.bad_updates, 0,
            "{kind:?}: a forming update overwrote a closed candle"
        );
        assert!(seen.events_where(|e| matches!(e, FeedEvent::Connected { .. })) >= 1);
        assert_matches_truth("BTCUSDT", got, &sim.closed_candles("BTCUSDT"), Interval::M1);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_are_backfilled_with_no_gap_and_no_duplicate_over_hundreds_of_candles() {
    for kind in KINDS {
        let mut cfg = sim_config(&["BTCUSDT", "ETHUSDT"], 100);
        cfg.faults = FaultPlan {
            drop_every: Some(15),
            duplicate_final_every: Some(4),
            ..FaultPlan::default()
        };
        let sim = sim(cfg).await;
        let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT", "ETHUSDT"], 50))
            .await
            .expect("connect");
        let counters = feed.counters();
        let seen = collect(&mut feed, Duration::from_secs(30), |s| {
            s.count("BTCUSDT", Origin::Live) + s.count("BTCUSDT", Origin::Backfill) >= 200
                && s.count("ETHUSDT", Origin::Live) + s.count("ETHUSDT", Origin::Backfill) >= 200
        })
        .await;
        feed.shutdown().await;
        let c = counters.snapshot();
        assert!(sim.stats().drops >= 5, "{kind:?}: {:?}", sim.stats());
        assert!(c.reconnections >= 5, "{kind:?}: {c:?}");
        assert!(c.backfilled > 0, "{kind:?}: {c:?}");
        assert!(seen.count("BTCUSDT", Origin::Backfill) > 0);
        assert!(seen.events_where(|e| matches!(e, FeedEvent::Backfilled { .. })) > 0);
        assert!(seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })) >= 5);
        assert!(seen.events_where(|e| matches!(e, FeedEvent::Reconnecting { .. })) >= 5);
        assert_eq!(
            seen.events_where(|e| matches!(e, FeedEvent::Correction { .. })),
            0,
            "identical re-sends are not corrections"
        );
        assert_eq!(seen.bad_updates, 0);
        for sym in ["BTCUSDT", "ETHUSDT"] {
            assert!(
                seen.closed[sym].len() >= 250,
                "{kind:?} {sym}: {}",
                seen.closed[sym].len()
            );
            assert_matches_truth(
                sym,
                &seen.closed[sym],
                &sim.closed_candles(sym),
                Interval::M1,
            );
        }
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_triggers_a_reconnect_a_backfill_and_a_stale_mark() {
    for kind in KINDS {
        let sim = sim(sim_config(&["BTCUSDT"], 100)).await;
        let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT"], 20))
            .await
            .expect("connect");
        let mut seen = collect(&mut feed, Duration::from_secs(10), |s| {
            s.live("BTCUSDT") >= 5
        })
        .await;
        // Longer than Binance's silence floor: pings at most once a second (5 incoming
        // messages a second), silence at least a ping interval and a half.
        sim.go_silent(Duration::from_millis(2500));
        let more = collect(&mut feed, Duration::from_secs(15), |s| {
            s.events_where(|e| matches!(e, FeedEvent::Backfilled { .. })) > 0
                && s.live("BTCUSDT") >= 10
        })
        .await;
        feed.shutdown().await;
        let silent_drop = more.events_where(|e| {
            matches!(
                e,
                FeedEvent::Disconnected {
                    reason: CloseReason::Silence { .. }
                }
            )
        });
        assert!(silent_drop >= 1, "{kind:?}: {:?}", more.events);
        let stale_on = more
            .events
            .iter()
            .position(|e| matches!(e, FeedEvent::Stale { stale: true, .. }));
        let stale_off = more
            .events
            .iter()
            .rposition(|e| matches!(e, FeedEvent::Stale { stale: false, .. }));
        assert!(
            stale_on.is_some() && stale_off > stale_on,
            "{kind:?}: stale then fresh: {:?}",
            more.events
        );
        assert!(more.count("BTCUSDT", Origin::Backfill) > 0, "{kind:?}");
        for (sym, v) in more.closed {
            seen.closed.entry(sym).or_default().extend(v);
        }
        assert_matches_truth(
            "BTCUSDT",
            &seen.closed["BTCUSDT"],
            &sim.closed_candles("BTCUSDT"),
            Interval::M1,
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_counted_and_survived() {
    for kind in KINDS {
        let mut cfg = sim_config(&["BTCUSDT"], 100);
        cfg.faults.malformed_every = Some(3);
        let sim = sim(cfg).await;
        let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT"], 10))
            .await
            .expect("connect");
        let seen = collect(&mut feed, Duration::from_secs(15), |s| {
            s.live("BTCUSDT") >= 40
        })
        .await;
        sim.send_malformed();
        let c = feed.counters().snapshot();
        feed.shutdown().await;
        assert!(c.malformed >= 5, "{kind:?}: {c:?}");
        assert!(c.messages_processed > c.malformed && c.messages_received >= c.messages_processed);
        assert_eq!(
            c.reconnections, 0,
            "{kind:?}: a malformed frame is not fatal: {c:?}"
        );
        assert!(c.last_event_time > 0);
        assert_matches_truth(
            "BTCUSDT",
            &seen.closed["BTCUSDT"],
            &sim.closed_candles("BTCUSDT"),
            Interval::M1,
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429_is_honoured_then_succeeds() {
    for kind in KINDS {
        let sim = sim(sim_config(&["BTCUSDT"], 100)).await;
        sim.fail_rest(1, 429, Some(1));
        let t0 = Instant::now();
        let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT"], 10))
            .await
            .expect("connect after 429");
        assert!(
            t0.elapsed() >= Duration::from_millis(950),
            "{kind:?}: Retry-After ignored: {:?}",
            t0.elapsed()
        );
        assert_eq!(sim.stats().rest_failures, 1);
        let seen = collect(&mut feed, Duration::from_secs(10), |s| {
            s.live("BTCUSDT") >= 3
        })
        .await;
        feed.shutdown().await;
        assert_eq!(seen.count("BTCUSDT", Origin::Bootstrap), 10);

        // Without retries the typed error surfaces with the exchange's wait.
        let rest = RestClient::new(kind, &sim.rest_url())
            .expect("client")
            .with_max_retries(0);
        sim.fail_rest(1, 429, Some(7));
        match rest.klines("BTCUSDT", Interval::M1, None, None, 5).await {
            Err(FeedError::RateLimited {
                status: 429,
                retry_after,
            }) => assert_eq!(retry_after, Duration::from_secs(7)),
            other => panic!("{kind:?}: {other:?}"),
        }
        // A 5xx is retried.
        let rest = rest.with_max_retries(3);
        sim.fail_rest(2, 500, None);
        let rows = rest
            .klines("BTCUSDT", Interval::M1, None, None, 5)
            .await
            .expect("retried");
        assert_eq!(rows.len(), 5);
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbol_and_interval_give_the_exchanges_error_before_streaming() {
    let sim = sim(sim_config(&["BTCUSDT"], 50)).await;
    for kind in KINDS {
        let cfg = feed_config(&sim, kind, &["NOPEUSDT"], 10);
        match Feed::connect(cfg).await {
            Err(FeedError::ExchangeError { code, msg }) => {
                if kind == ExchangeKind::BinanceUs {
                    assert_eq!((code, msg.as_str()), (-1121, "Invalid symbol."));
                } else {
                    assert!(code != 0 && !msg.is_empty(), "{code} {msg}");
                }
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        let mut cfg = feed_config(&sim, kind, &["BTCUSDT"], 10);
        cfg.streams[0].interval = Interval::M5; // the simulator serves only 1m
        match Feed::connect(cfg).await {
            Err(FeedError::ExchangeError { code, msg }) => {
                if kind == ExchangeKind::BinanceUs {
                    assert_eq!(code, -1120, "{msg}");
                }
                let msg = msg.to_lowercase();
                assert!(
                    msg.contains("interval") || msg.contains("period"),
                    "{kind:?}: {msg}"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    // An interval Bybit does not have is refused without asking.
    let mut cfg = feed_config(&sim, ExchangeKind::Bybit, &["BTCUSDT"], 10);
    cfg.streams = vec![StreamKey {
        symbol: "BTCUSDT".into(),
        interval: Interval::D3,
    }];
    assert!(matches!(
        Feed::connect(cfg).await,
        Err(FeedError::Invalid(_))
    ));
    assert_eq!(
        sim.stats().connections_accepted,
        0,
        "nothing streamed before validation"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_overflow_is_a_gap_that_gets_backfilled() {
    let sim = sim(sim_config(&["BTCUSDT"], 100)).await;
    let mut cfg = feed_config(&sim, ExchangeKind::BinanceUs, &["BTCUSDT"], 10);
    cfg.channel_capacity = 4;
    let mut feed = Feed::connect(cfg).await.expect("connect");
    let mut seen = collect(&mut feed, Duration::from_secs(10), |s| {
        s.live("BTCUSDT") >= 3
    })
    .await;
    // A consumer that lags: nothing read while the socket delivers 25 candles' worth of frames
    // (4 per candle), far more than the 4-event channel holds. Waits on the feed's own counter
    // rather than on a guessed time.
    let counters = feed.counters();
    let target = counters.snapshot().messages_received + 25 * 4;
    let lagged = tokio::time::timeout(Duration::from_secs(10), async {
        while counters.snapshot().messages_received < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(lagged.is_ok(), "the socket stopped delivering frames");
    let more = collect(&mut feed, Duration::from_secs(10), |s| {
        s.live("BTCUSDT") >= 10
    })
    .await;
    feed.shutdown().await;
    assert!(
        more.events_where(|e| matches!(e, FeedEvent::Warning(FeedWarning::Overflow))) >= 1,
        "{:?}",
        more.events
    );
    assert!(more.count("BTCUSDT", Origin::Backfill) > 0);
    for (sym, v) in more.closed {
        seen.closed.entry(sym).or_default().extend(v);
    }
    assert_matches_truth(
        "BTCUSDT",
        &seen.closed["BTCUSDT"],
        &sim.closed_candles("BTCUSDT"),
        Interval::M1,
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_reconnect_hands_over_without_a_gap() {
    for kind in KINDS {
        let sim = sim(sim_config(&["BTCUSDT"], 100)).await;
        let mut cfg = feed_config(&sim, kind, &["BTCUSDT"], 10);
        cfg.max_connection_age = Duration::from_millis(250);
        let mut feed = Feed::connect(cfg).await.expect("connect");
        let counters = feed.counters();
        let seen = collect(&mut feed, Duration::from_secs(15), |_| {
            counters.snapshot().reconnections >= 4
        })
        .await;
        feed.shutdown().await;
        let c = counters.snapshot();
        assert!(c.reconnections >= 4, "{kind:?}: {c:?}");
        assert_eq!(
            seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })),
            0,
            "{kind:?}: {:?}",
            seen.events
        );
        assert!(sim.stats().connections_accepted >= 4);
        assert_matches_truth(
            "BTCUSDT",
            &seen.closed["BTCUSDT"],
            &sim.closed_candles("BTCUSDT"),
            Interval::M1,
        );
        sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klines_range_pages_and_drops_nothing() {
    for kind in KINDS {
        let sim = sim(sim_config(&["BTCUSDT"], 2500)).await;
        let rest = RestClient::new(kind, &sim.rest_url()).expect("client");
        let truth = sim.closed_candles("BTCUSDT");
        let (from, to) = (truth[10].open_time, truth[2405].open_time);
        let mut pages = Vec::new();
        let got = rest
            .klines_range("BTCUSDT", Interval::M1, from, to, |n| pages.push(n))
            .await
            .expect("range");
        assert_eq!(got.len(), 2396, "{kind:?}");
        assert_eq!(pages.len(), 3, "{kind:?}: {pages:?}");
        let got: Vec<_> = got.into_iter().map(|c| (c, Origin::Backfill)).collect();
        assert_matches_truth("BTCUSDT", &got, &truth, Interval::M1);
        sim.shutdown().await;
    }
}

/// A Binance raw kline frame.
fn frame(open_time: i64, close: f64, closed: bool) -> String {
    format!(
        r#"{{"e":"kline","E":{e},"s":"BTCUSDT","k":{{"t":{open_time},"T":{t},"s":"BTCUSDT","i":"1m","f":1,"L":2,"o":"100.0","c":"{close}","h":"200.0","l":"50.0","v":"1.5","n":2,"x":{closed},"q":"150","V":"1","Q":"100","B":"0"}}}}"#,
        e = open_time + 59_000,
        t = open_time + 59_999,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_final_is_a_correction_and_stale_updates_are_dropped() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    // REST (validation) from the simulator; the socket from a scripted server.
    let sim = sim(sim_config(&["BTCUSDT"], 50)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t = 1_000 * 60_000;
    let script = vec![
        frame(t, 110.0, false),
        frame(t, 120.0, true),
        frame(t, 130.0, true),   // conflicting re-send: a correction
        frame(t, 120.0, true),   // identical re-send: silently dropped
        frame(t, 140.0, false),  // stale update of a closed candle: dropped
        "{not json".to_string(), // malformed: counted
        frame(t + 60_000, 150.0, false),
        frame(t + 60_000, 160.0, true),
    ];
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        for f in script {
            ws.send(Message::text(f)).await.expect("send");
        }
        // Holds the socket open until the test aborts this task.
        std::future::pending::<()>().await;
    });
    let mut cfg = feed_config(&sim, ExchangeKind::BinanceUs, &["BTCUSDT"], 0);
    cfg.ws_url = format!("ws://{addr}");
    cfg.silence_timeout = Duration::from_secs(5);
    cfg.candle_period = Some(Duration::from_secs(5));
    let mut feed = Feed::connect(cfg).await.expect("connect");
    let mut events = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(3), feed.next()).await {
        let last =
            matches!(&ev, FeedEvent::Closed { candle, .. } if candle.open_time == t + 60_000);
        events.push(ev);
        if last {
            break;
        }
    }
    let counters = feed.counters().snapshot();
    feed.shutdown().await;
    server.abort();
    let summary: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Update { candle, .. } => {
                Some(format!("update {} {}", candle.open_time - t, candle.close))
            }
            FeedEvent::Closed { candle, origin, .. } => Some(format!(
                "closed {} {} {origin:?}",
                candle.open_time - t,
                candle.close
            )),
            FeedEvent::Correction { kept, ignored, .. } => Some(format!(
                "correction {} kept {} ignored {}",
                kept.open_time - t,
                kept.close,
                ignored.close
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        summary,
        [
            "update 0 110",
            "closed 0 120 Live",
            "correction 0 kept 120 ignored 130",
            "update 60000 150",
            "closed 60000 160 Live",
        ]
    );
    assert_eq!(counters.malformed, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bootstrap_warns_and_the_stream_goes_on() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let sim = sim(sim_config(&["BTCUSDT"], 50)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let t = 2_000 * 60_000;
    let server = tokio::spawn(async move {
        let _ = go_rx.await;
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        for i in 0..3 {
            ws.send(Message::text(frame(t + i * 60_000, 120.0, true)))
                .await
                .expect("send");
        }
        // Holds the socket open until the test aborts this task.
        std::future::pending::<()>().await;
    });
    let mut cfg = feed_config(&sim, ExchangeKind::BinanceUs, &["BTCUSDT"], 100);
    cfg.ws_url = format!("ws://{addr}");
    cfg.silence_timeout = Duration::from_secs(5);
    cfg.candle_period = Some(Duration::from_secs(5));
    let mut feed = Feed::connect(cfg).await.expect("connect");
    // The exchange's REST goes away after validation: history cannot be fetched.
    sim.shutdown().await;
    let _ = go_tx.send(());
    let seen = collect(&mut feed, Duration::from_secs(10), |s| {
        s.live("BTCUSDT") >= 3
    })
    .await;
    feed.shutdown().await;
    server.abort();
    let warned = seen.events_where(|e| {
        matches!(
            e,
            FeedEvent::Warning(
                FeedWarning::BootstrapFailed { .. } | FeedWarning::BootstrapSkipped(_)
            )
        )
    });
    assert_eq!(warned, 1, "{:?}", seen.events);
    assert_eq!(seen.count("BTCUSDT", Origin::Bootstrap), 0);
    let opens: Vec<i64> = seen.closed["BTCUSDT"]
        .iter()
        .map(|(c, _)| c.open_time - t)
        .collect();
    assert_eq!(opens, [0, 60_000, 120_000]);
}
