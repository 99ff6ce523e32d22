//! Per-candle cost of rule strategies once warm: the `trend_pullback` example alone, and ten
//! rule strategies together in one engine. Figures go in `docs/PERFORMANCE.md`.

use std::hint::black_box;

use criterion::{BatchSize, Bencher, Criterion, Throughput, criterion_group, criterion_main};
use manus_core::confluence::{Mode, Rule};
use manus_core::rules::{RuleDef, parse_file};
use manus_core::strategy::Strategy;
use manus_core::{Candle, SignalEngine};

/// Candles to warm on (the longest warm-up here is 2400 five-minute candles), then to measure.
const WARM: usize = 5_000;
const MEASURED: usize = 100_000;

fn candles() -> Vec<Candle> {
    manus_core::testing::synthetic(7, WARM + MEASURED)
}

const EXAMPLES: &str = include_str!("../../../docs/examples/strategies.toml");

/// Six more, so ten in all, covering the other functions.
const MORE: &str = include_str!("more_rules.toml");

/// Times rule strategy `d` alone over `measured` once it has seen `warm`.
fn alone_per_candle(b: &mut Bencher, d: &RuleDef, warm: &[Candle], measured: &[Candle]) {
    let mut s = d.compile(d.hold).expect("compiles");
    for c in warm {
        black_box(s.on_candle(c).expect("no error"));
    }
    b.iter_batched(
        || s.clone(),
        |mut s| {
            for c in measured {
                black_box(s.on_candle(c).expect("no error"));
            }
            s
        },
        BatchSize::LargeInput,
    )
}

/// Times `engine` over `measured` once it has seen `warm`.
fn engine_per_candle(
    b: &mut Bencher,
    mut engine: SignalEngine,
    warm: &[Candle],
    measured: &[Candle],
) {
    for c in warm {
        engine.on_closed(c);
    }
    b.iter_batched(
        || engine.clone(),
        |mut e| {
            for c in measured {
                black_box(e.on_closed(c));
            }
            e
        },
        BatchSize::LargeInput,
    )
}

fn rules(c: &mut Criterion) {
    let cs = candles();
    let (warm, measured) = cs.split_at(WARM);
    let examples = parse_file(EXAMPLES).expect("examples parse");
    let pullback = examples
        .iter()
        .find(|d| d.id == "trend_pullback")
        .expect("trend_pullback");
    let mut ten = examples.clone();
    ten.extend(parse_file(MORE).expect("more parse"));
    assert_eq!(ten.len(), 10);

    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Elements(measured.len() as u64));
    g.bench_function("trend_pullback_per_candle_warm", |b| {
        alone_per_candle(b, pullback, warm, measured)
    });
    // The same strategy as live and backtests run it: in an engine, its nodes in the engine's
    // graph, with the engine's bookkeeping and confluence.
    g.bench_function("trend_pullback_in_engine_per_candle_warm", |b| {
        let s = pullback.compile(pullback.hold).expect("compiles");
        let strategies = vec![Box::new(s) as Box<dyn Strategy>];
        let engine = SignalEngine::new(strategies, Rule::new(Mode::Any, 1)).expect("engine");
        engine_per_candle(b, engine, warm, measured)
    });
    g.bench_function("ten_rule_strategies_any_per_candle_warm", |b| {
        let strategies: Vec<Box<dyn Strategy>> = ten
            .iter()
            .map(|d| Box::new(d.compile(d.hold).expect("compiles")) as Box<dyn Strategy>)
            .collect();
        let engine = SignalEngine::new(strategies, Rule::new(Mode::Any, 10)).expect("engine");
        engine_per_candle(b, engine, warm, measured)
    });
    // The built-ins on the same candles, for a figure independent of the machine's load.
    g.bench_function("builtin_11_strategies_any_per_candle_warm", |b| {
        let n = manus_core::strategy::IDS.len();
        let engine = SignalEngine::from_ids(&manus_core::strategy::IDS, Rule::new(Mode::Any, n))
            .expect("engine");
        engine_per_candle(b, engine, warm, measured)
    });
    g.finish();

    // Each of the ten alone: where the time goes.
    let mut g = c.benchmark_group("rules_each");
    g.sample_size(10);
    g.throughput(Throughput::Elements(measured.len() as u64));
    for d in &ten {
        g.bench_function(d.id, |b| alone_per_candle(b, d, warm, measured));
    }
    g.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
