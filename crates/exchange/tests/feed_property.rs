//! Property: whatever the fault schedule (drops, silences, malformed frames, duplicate finals,
//! REST errors), the closed candles the feed yields equal the exchange's truth — gapless, in
//! order, no duplicates — for both protocols.

mod feed_common;

use std::time::Duration;

use feed_common::*;
use manus_core::Interval;
use manus_exchange::sim::{FaultPlan, SimExchange};
use manus_exchange::{ExchangeKind, Feed, Origin};
use proptest::prelude::*;

fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    (
        proptest::collection::vec(3u64..45, 0..4),
        proptest::option::of(2u64..7),
        proptest::option::of(2u64..6),
        proptest::option::of((4u64..40, 50u64..600)),
        proptest::option::of(1u32..3),
    )
        .prop_map(|(drop_at, malformed, dup, silent, r5xx)| FaultPlan {
            drop_at,
            malformed_every: malformed,
            duplicate_final_every: dup,
            silent_at: silent.map(|(c, ms)| (c, Duration::from_millis(ms))),
            rest_5xx: r5xx,
            ..FaultPlan::default()
        })
}

async fn run(kind: ExchangeKind, faults: FaultPlan) {
    let mut cfg = sim_config(&["BTCUSDT"], 60);
    cfg.faults = faults.clone();
    let sim = SimExchange::start(cfg).await.expect("sim starts");
    let mut feed = Feed::connect(feed_config(&sim, kind, &["BTCUSDT"], 30))
        .await
        .expect("connect");
    let seen = collect(&mut feed, Duration::from_secs(20), |s| {
        s.count("BTCUSDT", Origin::Live) + s.count("BTCUSDT", Origin::Backfill) >= 50
    })
    .await;
    feed.shutdown().await;
    let yielded = seen.count("BTCUSDT", Origin::Live) + seen.count("BTCUSDT", Origin::Backfill);
    assert!(yielded >= 50, "{kind:?} {faults:?}: only {yielded} candles");
    assert_eq!(seen.bad_updates, 0, "{kind:?} {faults:?}");
    assert_matches_truth(
        "BTCUSDT",
        &seen.closed["BTCUSDT"],
        &sim.closed_candles("BTCUSDT"),
        Interval::M1,
    );
    sim.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn closed_sequence_equals_the_exchanges_truth(faults in fault_plan(), bybit in any::<bool>()) {
        let kind = if bybit { ExchangeKind::Bybit } else { ExchangeKind::BinanceUs };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run(kind, faults));
    }
}
