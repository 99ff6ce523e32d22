//! Per-candle cost of all 11 strategies plus confluence, and the `signals` pipeline (CSV parse,
//! engine, JSON records) over 1,000,000 candles. Figures go in `docs/PERFORMANCE.md`.

use std::hint::black_box;
use std::io::Write;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use manus_core::confluence::{Mode, Rule};
use manus_core::record::RecordWriter;
use manus_core::{Candle, Interval, SignalEngine, csv, strategy};

/// The tests' seeded synthetic series (regime-switching drift, clustered volatility, gaps), so
/// every strategy trades.
fn synthetic(n: usize) -> Vec<Candle> {
    manus_core::testing::synthetic(7, n)
}

fn all_ids() -> Vec<&'static str> {
    strategy::IDS.to_vec()
}

fn engine_per_candle(c: &mut Criterion) {
    let candles = synthetic(100_000);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(candles.len() as u64));
    g.bench_function("all_11_strategies_majority_per_candle", |b| {
        b.iter_batched(
            || {
                SignalEngine::from_ids(&all_ids(), Rule::new(Mode::Majority, strategy::IDS.len()))
                    .expect("engine")
            },
            |mut engine| {
                for c in &candles {
                    black_box(engine.on_closed(c));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn signals_1m(c: &mut Criterion) {
    let candles = synthetic(1_000_000);
    let mut text = Vec::with_capacity(80 << 20);
    writeln!(text, "open_time,open,high,low,close,volume").expect("vec write");
    for k in &candles {
        writeln!(
            text,
            "{},{},{},{},{},{}",
            k.open_time, k.open, k.high, k.low, k.close, k.volume
        )
        .expect("vec write");
    }
    let mut g = c.benchmark_group("signals");
    g.sample_size(10);
    g.throughput(Throughput::Elements(candles.len() as u64));
    g.bench_function("csv_parse_engine_json_1m_candles", |b| {
        b.iter(|| {
            let loaded = csv::load(&text[..], None).expect("csv");
            let interval = csv::infer_interval(&loaded).unwrap_or(Interval::M5);
            let mut engine =
                SignalEngine::from_ids(&all_ids(), Rule::new(Mode::Majority, strategy::IDS.len()))
                    .expect("engine");
            let mut out = std::io::sink();
            let writer = RecordWriter::new("BTCUSDT", interval, &engine);
            let mut buf = Vec::with_capacity(512);
            for k in &loaded {
                engine.on_closed(k);
                buf.clear();
                writer.write(k, &engine, &mut buf);
                out.write_all(&buf).expect("sink");
            }
            black_box(loaded.len())
        })
    });
    g.finish();
}

criterion_group!(benches, engine_per_candle, signals_1m);
criterion_main!(benches);
