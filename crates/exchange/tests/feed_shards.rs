//! More streams than one connection may carry, against the simulated exchange over loopback:
//! the feed spreads them over several connections (each stream on exactly one), and losing
//! one connection costs only its own streams a backfill.

mod feed_common;

use std::collections::HashSet;
use std::time::Duration;

use feed_common::*;
use manus_core::Interval;
use manus_exchange::sim::{BYBIT_MAX_ARGS_CHARS, FaultPlan, MAX_STREAMS, SimExchange};
use manus_exchange::{ExchangeKind, Feed, FeedEvent, Origin};

/// 2,500 streams (Binance lists about 2,000 symbols): three connections of at most 1,024.
const STREAMS: usize = 2_500;
/// Real milliseconds per candle: slow enough for a debug build to parse every frame of 2,500
/// streams on a shared machine.
const PERIOD_MS: u64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_one_connection_spread_over_several_and_a_drop_costs_only_its_own() {
    let names: Vec<String> = (0..STREAMS).map(|i| format!("S{i:04}USDT")).collect();
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sc = sim_config(&symbols, 20);
    sc.candle_ms = PERIOD_MS;
    sc.updates_per_candle = 1;
    sc.faults = FaultPlan {
        ws_rate_limit: Some(5),
        ..FaultPlan::default()
    };
    let sim = SimExchange::start(sc).await.expect("sim starts");
    let connections = STREAMS.div_ceil(MAX_STREAMS);
    assert_eq!(connections, 3);

    let mut cfg = feed_config(&sim, ExchangeKind::Binance, &symbols, 0);
    cfg.candle_period = Some(Duration::from_millis(PERIOD_MS));
    cfg.silence_timeout = Duration::from_secs(5);
    let mut feed = Feed::connect(cfg).await.expect("connect");

    // Phase 1: every stream streams, over three connections (the simulator refuses a 1,025th
    // stream on one), with no reconnect.
    let mut seen = collect(&mut feed, Duration::from_secs(90), |s| {
        symbols.iter().all(|sym| s.live(sym) >= 2)
    })
    .await;
    let short = symbols.iter().filter(|s| seen.live(s) < 2).count();
    assert_eq!(short, 0, "{short} streams short of 2 live candles");
    let st = sim.stats();
    assert_eq!(st.connections_accepted, connections as u64);
    assert_eq!(st.rate_limited, 0, "cut for more than 5 messages a second");
    assert_eq!(
        seen.events_where(|e| matches!(e, FeedEvent::Connected { .. })),
        connections
    );
    assert_eq!(
        seen.events_where(|e| matches!(
            e,
            FeedEvent::Disconnected { .. } | FeedEvent::Backfilled { .. } | FeedEvent::Warning(_)
        )),
        0,
        "{:?}",
        seen.events
    );

    // Phase 2: the connection carrying the first stream drops. Shards are contiguous and even,
    // so it carries the first ceil(2500 / 3) streams; the others must not notice.
    let first_shard: HashSet<&str> = symbols[..STREAMS.div_ceil(connections)]
        .iter()
        .copied()
        .collect();
    let before = seen.events.len();
    sim.drop_connections_of(symbols[0]);
    // The consumer may still be reading what came before the drop: wait for the reconnect,
    // then for two more live candles on every stream from there.
    let mut at_reconnect: Option<Vec<usize>> = None;
    let more = collect(&mut feed, Duration::from_secs(90), |s| {
        if at_reconnect.is_none()
            && s.events_where(|e| matches!(e, FeedEvent::Connected { .. })) > 0
        {
            at_reconnect = Some(symbols.iter().map(|sym| s.live(sym)).collect());
        }
        at_reconnect.as_ref().is_some_and(|from| {
            symbols
                .iter()
                .zip(from)
                .all(|(sym, n)| s.live(sym) >= n + 2)
        })
    })
    .await;
    assert!(at_reconnect.is_some(), "no reconnect: {:?}", more.events);
    feed.shutdown().await;
    for (sym, v) in more.closed {
        seen.closed.entry(sym).or_default().extend(v);
    }
    seen.events.extend(more.events);
    let after = &seen.events[before..];
    assert_eq!(sim.stats().connections_accepted, connections as u64 + 1);
    let disconnects = after
        .iter()
        .filter(|e| matches!(e, FeedEvent::Disconnected { .. }))
        .count();
    assert_eq!(disconnects, 1, "{after:?}");
    let backfilled: Vec<&str> = after
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Backfilled { key, .. } => Some(key.symbol.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        !backfilled.is_empty(),
        "a reconnect that subscribes 800 streams at 3 messages a second misses candles"
    );
    let strangers: Vec<&&str> = backfilled
        .iter()
        .filter(|s| !first_shard.contains(**s))
        .collect();
    assert!(
        strangers.is_empty(),
        "streams of the connections that stayed were backfilled: {:?}",
        &strangers[..strangers.len().min(5)]
    );
    let other_backfill = symbols
        .iter()
        .filter(|s| !first_shard.contains(**s) && seen.count(s, Origin::Backfill) > 0)
        .count();
    assert_eq!(other_backfill, 0);
    // Nothing lost or duplicated anywhere: every stream matches the exchange's truth.
    for sym in &symbols {
        assert_matches_truth(
            sym,
            &seen.closed[*sym],
            &sim.closed_candles(sym),
            Interval::M1,
        );
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bybit_connection_takes_at_most_21000_characters_of_args() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    // Topics of 20 characters: 23 each in the JSON array, so 913 fit and the 914th does not.
    let symbol = |i: usize| format!("X{i:07}USDT");
    let topic = |i: usize| format!("kline.1.{}", symbol(i));
    assert_eq!(topic(0).len(), 20);
    let fit = (BYBIT_MAX_ARGS_CHARS - 1) / 23;
    // Topics must name listed symbols to be accepted; a slow market keeps the sim idle.
    let names: Vec<String> = (0..fit + 10).map(symbol).collect();
    let listed: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sc = sim_config(&listed, 1);
    sc.candle_ms = 60_000;
    let sim = SimExchange::start(sc).await.expect("sim starts");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/v5/public/spot", sim.ws_url()))
        .await
        .expect("connect");
    let mut sent = 0;
    let mut req = 0;
    let refused_at = loop {
        req += 1;
        let n = 10.min(fit + 10 - sent);
        assert!(n > 0, "never refused");
        let args: Vec<String> = (sent..sent + n).map(topic).collect();
        let msg = serde_json::json!({"req_id": req.to_string(), "op": "subscribe", "args": args});
        ws.send(Message::text(msg.to_string())).await.expect("send");
        let reply = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                    if v.get("op").is_some() {
                        break v;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        };
        if reply["success"] == false
            && reply["ret_msg"]
                .as_str()
                .is_some_and(|m| m.contains("21000"))
        {
            break sent + n;
        }
        assert_eq!(reply["success"], true, "{reply}");
        sent += n;
    };
    // The request that crossed the limit is the one holding topic number `fit + 1`.
    assert!(
        refused_at > fit && refused_at - 10 <= fit,
        "refused at {refused_at}, fit {fit}"
    );
    sim.shutdown().await;
}

/// Bybit carries 500 streams per connection (21,000 characters of args): 600 take two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_streams_past_one_connection_take_two() {
    const N: usize = 600;
    let names: Vec<String> = (0..N).map(|i| format!("S{i:04}USDT")).collect();
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut sc = sim_config(&symbols, 20);
    sc.candle_ms = 500;
    sc.updates_per_candle = 1;
    let sim = SimExchange::start(sc).await.expect("sim starts");
    let mut cfg = feed_config(&sim, ExchangeKind::Bybit, &symbols, 0);
    cfg.candle_period = Some(Duration::from_millis(500));
    cfg.silence_timeout = Duration::from_secs(5);
    let mut feed = Feed::connect(cfg).await.expect("connect");
    let seen = collect(&mut feed, Duration::from_secs(60), |s| {
        symbols.iter().all(|sym| s.live(sym) >= 2)
    })
    .await;
    feed.shutdown().await;
    let short = symbols.iter().filter(|s| seen.live(s) < 2).count();
    assert_eq!(short, 0, "{short} streams short of 2 live candles");
    assert_eq!(sim.stats().connections_accepted, 2);
    assert_eq!(
        seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. } | FeedEvent::Warning(_))),
        0,
        "{:?}",
        seen.events
    );
    for sym in &symbols {
        assert_matches_truth(
            sym,
            &seen.closed[*sym],
            &sim.closed_candles(sym),
            Interval::M1,
        );
    }
    sim.shutdown().await;
}

/// The stream set changes while the feed runs: streams added get a connection of their own (a
/// resumed one backfills after its consumer's last candle), a removed stream yields nothing
/// more, and the streams that stay are never reconnected nor miss a candle; a connection whose
/// streams are all removed closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_added_and_removed_at_run_time_leave_the_others_untouched() {
    use manus_exchange::StreamKey;
    use std::collections::HashMap;

    let names: Vec<String> = (0..6).map(|i| format!("S{i}USDT")).collect();
    let symbols: Vec<&str> = names.iter().map(String::as_str).collect();
    let sim = SimExchange::start(sim_config(&symbols, 50))
        .await
        .expect("sim starts");
    let key = |s: &str| StreamKey {
        symbol: s.to_string(),
        interval: Interval::M1,
    };
    let mut feed = Feed::connect(feed_config(&sim, ExchangeKind::Binance, &symbols[..4], 5))
        .await
        .expect("connect");
    let mut seen = collect(&mut feed, Duration::from_secs(30), |s| {
        symbols[..4].iter().all(|sym| s.live(sym) >= 3)
    })
    .await;

    // S4 resumes after a candle three closes old; S5 starts fresh; S2 goes.
    let truth4 = sim.closed_candles("S4USDT");
    let resume = truth4[truth4.len() - 3].open_time;
    feed.add(
        &[key("S4USDT"), key("S5USDT")],
        &HashMap::from([(key("S4USDT"), resume)]),
    )
    .await
    .expect("add");
    feed.remove(&[key("S2USDT")]);
    let kept = ["S0USDT", "S1USDT", "S3USDT"];
    let from: Vec<usize> = kept.iter().map(|s| seen.live(s)).collect();
    let more = collect(&mut feed, Duration::from_secs(30), |s| {
        ["S4USDT", "S5USDT"].iter().all(|sym| s.live(sym) >= 3)
            && kept
                .iter()
                .zip(&from)
                .all(|(sym, n)| seen.live(sym) + s.live(sym) >= n + 3)
    })
    .await;
    assert!(
        !more.closed.contains_key("S2USDT"),
        "a removed stream yielded a candle"
    );
    let s4: Vec<_> = more.closed["S4USDT"]
        .iter()
        .filter(|(_, o)| *o != Origin::Bootstrap)
        .collect();
    assert_eq!(
        s4[0].0.open_time,
        resume + 60_000,
        "S4 resumes after its last"
    );
    assert_eq!(s4[0].1, Origin::Backfill);
    for (sym, v) in more.closed {
        seen.closed.entry(sym).or_default().extend(v);
    }
    seen.events.extend(more.events);
    // One connection for the first four, one for the two added: nothing reconnected.
    assert_eq!(sim.stats().connections_accepted, 2);
    assert_eq!(
        seen.events_where(|e| matches!(e, FeedEvent::Disconnected { .. })),
        0,
        "{:?}",
        seen.events
    );
    for sym in kept.iter().chain(&["S4USDT", "S5USDT"]) {
        assert_matches_truth(
            sym,
            &seen.closed[*sym],
            &sim.closed_candles(sym),
            Interval::M1,
        );
    }

    // The first connection's streams all go: it closes; the added one goes on.
    feed.remove(&kept.map(key));
    let mut running: Vec<String> = feed.streams().map(|k| k.symbol.clone()).collect();
    running.sort();
    assert_eq!(running, ["S4USDT", "S5USDT"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sim.stats().connections_open != 1 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", sim.stats());
        let _ = tokio::time::timeout(Duration::from_millis(20), feed.next()).await;
    }
    let last = collect(&mut feed, Duration::from_secs(30), |s| {
        s.live("S5USDT") >= 2
    })
    .await;
    assert!(kept.iter().all(|s| !last.closed.contains_key(*s)));
    assert!(last.live("S5USDT") >= 2);
    feed.shutdown().await;
    sim.shutdown().await;
}
