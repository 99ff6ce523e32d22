//! Per-candle cost of all 11 strategies plus confluence, and the `signals` pipeline (CSV parse,
//! engine, JSON records) over 1,000,000 candles. Figures go in `docs/PERFORMANCE.md`.

use std::hint::black_box;
use std::io::Write;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use manus_core::confluence::{Mode, Rule};
use manus_core::record::RecordWriter;
use manus_core::{Candle, Interval, SignalEngine, csv, strategy};

/// A deterministic random walk with volatility regimes, so every strategy branch runs.
fn synthetic(n: usize) -> Vec<Candle> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut price = 30_000.0;
    let mut vol = 0.002;
    (0..n)
        .map(|i| {
            if next() < 0.01 {
                vol = 0.0005 + 0.005 * next();
            }
            let open = price;
            let close = open * (1.0 + vol * (next() * 2.0 - 1.0) * 1.7);
            let high = open.max(close) * (1.0 + vol * next());
            let low = open.min(close) * (1.0 - vol * next());
            price = close;
            let t = 1_600_000_000_000 + i as i64 * 300_000;
            Candle {
                open_time: t,
                close_time: t + 299_999,
                open,
                high,
                low,
                close,
                volume: 1.0 + 100.0 * next(),
            }
        })
        .collect()
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
