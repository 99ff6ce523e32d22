//! Backtest speed: all 11 strategies over 1,000,000 synthetic candles, and a 100-combination
//! `ema_crossover` sweep over 100,000 candles spread over every core with rayon (as
//! `manus backtest --sweep` runs it). Figures go in `docs/PERFORMANCE.md` (## Backtest).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use manus_core::backtest::{self, Config, PositionMode, sweep};
use manus_core::confluence::{Mode, Rule};
use manus_core::engine::StrategySpec;
use manus_core::{Candle, Interval, SignalEngine, strategy};
use rayon::prelude::*;

/// The tests' seeded synthetic series (regime-switching drift, clustered volatility, gaps), so
/// every strategy trades.
fn synthetic(n: usize) -> Vec<Candle> {
    manus_core::testing::synthetic(7, n)
}

fn config() -> Config {
    Config {
        interval: Interval::M5,
        fee_bps: 10.0,
        slippage_bps: 2.0,
        mode: PositionMode::LongShort,
        stop_loss_pct: Some(2.0),
        take_profit_pct: Some(4.0),
        ..Config::default()
    }
}

fn all_strategies(c: &mut Criterion) {
    let candles = synthetic(1_000_000);
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(candles.len() as u64));
    g.bench_function("all_11_strategies_1m_candles", |b| {
        b.iter(|| {
            let engine =
                SignalEngine::from_ids(&strategy::IDS, Rule::new(Mode::Any, strategy::IDS.len()))
                    .expect("engine");
            let r = backtest::run(engine, config(), black_box(&candles)).expect("run");
            black_box(r.metrics.total_return_pct)
        })
    });
    g.finish();
}

fn sweep_100(c: &mut Criterion) {
    let candles = synthetic(100_000);
    let grid =
        sweep::parse("ema_crossover.fast=3..21:2,ema_crossover.slow=30..75:5").expect("grid");
    assert_eq!(grid.len(), 100);
    let specs = vec![StrategySpec {
        id: "ema_crossover".into(),
        params: Default::default(),
    }];
    let rule = Rule::new(Mode::All, 1);
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.throughput(Throughput::Elements((candles.len() * grid.len()) as u64));
    g.bench_function("sweep_100_combinations_100k_candles", |b| {
        b.iter(|| {
            let best = (0..grid.len())
                .into_par_iter()
                .map(|k| {
                    let specs = grid.apply(&specs, k).expect("apply");
                    let engine = SignalEngine::from_specs(&specs, rule.clone()).expect("engine");
                    backtest::run(engine, config(), &candles)
                        .expect("run")
                        .metrics
                        .total_return_pct
                })
                .reduce(|| f64::NEG_INFINITY, f64::max);
            black_box(best)
        })
    });
    g.finish();
}

criterion_group!(benches, all_strategies, sweep_100);
criterion_main!(benches);
