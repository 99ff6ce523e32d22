//! A gap is filled or it stays pending: the simulator fails every REST call for a long spell
//! after a drop (a 418 ban whose `Retry-After` is far beyond any retry cap, Bybit's 403
//! "access too frequent", 5xx), and the feed must hold the live candles in order and deliver
//! every one of them once REST answers again.

mod feed_common;

use std::time::Duration;

use feed_common::*;
use manus_core::Interval;
use manus_exchange::feed::FeedWarning;
use manus_exchange::sim::{FaultPlan, RestOutage, SimExchange};
use manus_exchange::{ExchangeKind, Feed, FeedEvent, Origin};

/// Live or backfilled candles of `symbol` seen so far.
fn streamed(s: &Seen, symbol: &str) -> usize {
    s.count(symbol, Origin::Live) + s.count(symbol, Origin::Backfill)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_candle_is_lost_while_every_rest_call_fails_after_a_drop() {
    struct Case {
        kind: ExchangeKind,
        status: u16,
        retry_after: Option<u64>,
    }
    let cases = [
        // A ban of an hour (market time): six times the 600 s a request would sleep through.
        Case {
            kind: ExchangeKind::BinanceUs,
            status: 418,
            retry_after: Some(3600),
        },
        Case {
            kind: ExchangeKind::Bybit,
            status: 403,
            retry_after: None,
        },
        Case {
            kind: ExchangeKind::Binance,
            status: 503,
            retry_after: None,
        },
    ];
    for case in cases {
        let mut cfg = sim_config(&["BTCUSDT", "ETHUSDT"], 100);
        // Every REST call fails for 60 candles (an hour of market time) after the drop.
        let outage = Duration::from_millis(60 * CANDLE_MS);
        cfg.faults = FaultPlan {
            drop_at: vec![10],
            rest_outage_after_drop: Some(RestOutage {
                duration: outage,
                status: case.status,
                retry_after: case.retry_after,
            }),
            ..FaultPlan::default()
        };
        let sim: SimExchange = SimExchange::start(cfg).await.expect("sim starts");
        let mut feed = Feed::connect(feed_config(&sim, case.kind, &["BTCUSDT", "ETHUSDT"], 20))
            .await
            .expect("connect");
        let counters = feed.counters();
        let mut held_seen = 0u64;
        // Well past the outage: 150 streamed candles per stream take 150 candles of time.
        let seen = collect(&mut feed, Duration::from_secs(30), |s| {
            held_seen = held_seen.max(counters.snapshot().held_candles);
            streamed(s, "BTCUSDT") >= 150 && streamed(s, "ETHUSDT") >= 150
        })
        .await;
        feed.shutdown().await;
        let name = format!("{:?} {}", case.kind, case.status);
        assert!(sim.stats().drops >= 1, "{name}: {:?}", sim.stats());
        assert!(sim.stats().rest_failures > 0, "{name}: no REST call failed");
        let pending =
            seen.events_where(|e| matches!(e, FeedEvent::Warning(FeedWarning::GapPending { .. })));
        assert!(pending > 0, "{name}: no gap reported pending");
        assert!(held_seen > 0, "{name}: no candle was held behind the gap");
        assert_eq!(
            seen.events_where(|e| matches!(e, FeedEvent::Warning(FeedWarning::Unfillable { .. }))),
            0,
            "{name}: a gap was given up"
        );
        let c = counters.snapshot();
        assert_eq!((c.gaps_pending, c.held_candles), (0, 0), "{name}: {c:?}");
        for sym in ["BTCUSDT", "ETHUSDT"] {
            assert!(
                streamed(&seen, sym) >= 150,
                "{name} {sym}: {}",
                streamed(&seen, sym)
            );
            assert!(
                seen.count(sym, Origin::Backfill) > 0,
                "{name} {sym}: nothing backfilled"
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
