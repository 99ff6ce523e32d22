//! Live pipeline benchmarks.
//!
//! 1. `pipeline/closed_candle/*`: one closed candle through [`Pipeline::on_event`] (all 11
//!    strategies + confluence + record), in memory.
//! 2. Loopback: the simulated exchange at full speed, the real [`Feed`] over WebSocket, the
//!    pipeline; prints frame-read → record-ready latency percentiles of live candles.
//!
//! Run: `cargo bench -p market-manus --bench live_pipeline`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use manus_core::confluence::{Mode, Rule};
use manus_core::{Interval, SignalEngine, strategy};
use manus_exchange::Feed;
use manus_exchange::feed::{Arrival, ExchangeKind, FeedConfig, FeedEvent, Origin, StreamKey};
use manus_exchange::sim::{SimConfig, SimExchange};
use market_manus::live::scripted::synthetic_candles;
use market_manus::live::{Pipeline, PipelineConfig};

fn engine(ids: &[&str]) -> SignalEngine {
    SignalEngine::from_ids(ids, Rule::new(Mode::Majority, ids.len())).unwrap()
}

fn bench_pipeline(c: &mut Criterion) {
    let key = Arc::new(StreamKey {
        symbol: "BTCUSDT".into(),
        interval: Interval::M1,
    });
    let series = synthetic_candles(&key, 0, 100_000);
    let mut g = c.benchmark_group("pipeline/closed_candle");
    for (name, ids) in [
        ("all_11", strategy::IDS.to_vec()),
        ("rsi_only", vec!["rsi_mean_reversion"]),
    ] {
        let mut p = Pipeline::new(engine(&ids), &[(*key).clone()], PipelineConfig::default());
        let mut i = 0usize;
        let mut offset = 0i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                if i == series.len() {
                    // Keep open times increasing past the end of the series.
                    i = 0;
                    offset += series.len() as i64 * 60_000;
                }
                let mut candle = series[i];
                candle.open_time += offset;
                candle.close_time += offset;
                i += 1;
                let ev = FeedEvent::Closed {
                    key: key.clone(),
                    candle,
                    origin: Origin::Live,
                    arrival: Arrival {
                        event_time: 0,
                        received_at: Instant::now(),
                    },
                };
                black_box(p.on_event(ev).is_some())
            })
        });
    }
    g.finish();
}

/// The sim at `candle_ms` per candle for `symbols` streams, `n` live candles measured after a
/// warm-up; returns the pipeline for its histogram.
async fn loopback(
    sim_rt: &tokio::runtime::Handle,
    symbols: usize,
    candle_ms: u64,
    n: u64,
) -> Pipeline {
    let names: Vec<String> = (0..symbols).map(|i| format!("SYM{i}USDT")).collect();
    // The exchange runs on its own runtime (its own thread), as a remote exchange would.
    let sim = sim_rt
        .spawn(SimExchange::start(SimConfig {
            symbols: names.clone(),
            interval: Interval::M1,
            candle_ms,
            updates_per_candle: 4,
            history: 600,
            ..SimConfig::default()
        }))
        .await
        .unwrap()
        .unwrap();
    let streams: Vec<StreamKey> = names
        .iter()
        .map(|s| StreamKey {
            symbol: s.clone(),
            interval: Interval::M1,
        })
        .collect();
    let mut cfg = FeedConfig::new(ExchangeKind::BinanceUs, streams.clone());
    cfg.ws_url = sim.ws_url();
    cfg.rest_url = sim.rest_url();
    cfg.candle_period = Some(Duration::from_millis(candle_ms));
    cfg.bootstrap = 500;
    let mut feed = Feed::connect(cfg).await.unwrap();
    let mut p = Pipeline::new(
        engine(&strategy::IDS),
        &streams,
        PipelineConfig {
            max_candles: None,
            ..PipelineConfig::default()
        },
    );
    // Candles buffered while bootstrapping wait behind REST: not the steady state.
    let warmup = 5 * symbols as u64;
    while p.totals().live < warmup {
        let Some(ev) = feed.next().await else { break };
        p.on_event(ev);
    }
    p.reset_latency();
    let start = p.totals().live;
    let mut buf = Vec::with_capacity(1024);
    let mut hop = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    while p.totals().live < start + n {
        let Some(ev) = feed.next().await else { break };
        if let FeedEvent::Closed {
            arrival,
            origin: Origin::Live,
            ..
        } = &ev
        {
            let _ = hop.record(arrival.received_at.elapsed().as_micros() as u64);
        }
        if let Some(r) = p.on_event(ev) {
            buf.clear();
            r.write_json_line(&mut buf);
            black_box(&buf);
        }
    }
    // The share of the latency spent inside the feed (socket task → consumer, or through the
    // driver when it has work pending).
    println!(
        "loopback/{symbols}_streams: frame→consumer (feed hops only) p50 {} µs, p99 {} µs",
        hop.value_at_quantile(0.5),
        hop.value_at_quantile(0.99)
    );
    feed.shutdown().await;
    let _ = sim_rt.spawn(sim.shutdown()).await;
    p
}

/// Resident memory of this process, KB (Linux; 0 elsewhere).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Memory of `n` streams with all 11 strategies and full 1000-candle windows.
fn memory(n: usize) {
    let before = rss_kb();
    let keys: Vec<StreamKey> = (0..n)
        .map(|i| StreamKey {
            symbol: format!("SYM{i}USDT"),
            interval: Interval::M1,
        })
        .collect();
    let mut p = Pipeline::new(engine(&strategy::IDS), &keys, PipelineConfig::default());
    let series = synthetic_candles(&keys[0], 0, 1200);
    for k in &keys {
        let k = Arc::new(k.clone());
        for c in &series {
            p.on_event(FeedEvent::Closed {
                key: k.clone(),
                candle: *c,
                origin: Origin::Live,
                arrival: Arrival {
                    event_time: 0,
                    received_at: Instant::now(),
                },
            });
        }
    }
    let after = rss_kb();
    println!(
        "memory/{n}_streams: RSS {after} KB ({} KB for the pipeline, {} candles in windows)",
        after.saturating_sub(before),
        p.streams().iter().map(|s| s.window().len()).sum::<usize>()
    );
    drop(black_box(p));
}

fn main() {
    if std::env::args().any(|a| a == "--memory-only") {
        memory(1);
        memory(500);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_pipeline(&mut c);
    c.final_summary();
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The client on the runtime `manus live` uses (current-thread: the socket task and the
    // pipeline share one thread, so handing a candle over is a task switch) and, for
    // comparison, on a multi-thread runtime where the hand-over may wake another thread.
    let runtimes = [
        (
            "current_thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi_thread",
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
    ];
    for ((symbols, candle_ms, n), (rt_name, rt)) in [(1, 20, 1000), (10, 20, 2000), (1, 100, 300)]
        .into_iter()
        .flat_map(|case| runtimes.iter().map(move |r| (case, r)))
    {
        let p = rt.block_on(loopback(sim_rt.handle(), symbols, candle_ms, n));
        let l = p.latency();
        println!(
            "loopback/{symbols}_streams candle_ms={candle_ms} client={rt_name}: {} live candles, frame→record latency p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
            l.count(),
            l.quantile(0.5),
            l.quantile(0.9),
            l.quantile(0.99),
            l.max()
        );
    }
}
