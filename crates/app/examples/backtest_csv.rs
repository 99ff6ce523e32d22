//! A backtest from your own code over a candle CSV, with the same engine `manus live` runs.
//!
//! `cargo run --release -p market-manus --example backtest_csv [-- FILE.csv]`
//! (default: the repository's `data/btcusdt_5m_sample.csv`).

use std::fs::File;
use std::io::BufReader;

use manus_core::backtest::{self, Config, PositionMode};
use manus_core::confluence::{Mode, Rule};
use manus_core::{Interval, SignalEngine, csv, strategy};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/btcusdt_5m_sample.csv"
        )
        .to_string()
    });
    let candles = csv::load(BufReader::new(File::open(&path)?), None)?;
    let interval = csv::infer_interval(&candles).unwrap_or(Interval::M5);
    let ids = strategy::parse_selection("trend")?;
    let engine = SignalEngine::from_ids(&ids, Rule::new(Mode::Majority, ids.len()))?;
    let report = backtest::run(
        engine,
        Config {
            interval,
            fee_bps: 10.0,
            mode: PositionMode::LongOnly,
            ..Config::default()
        },
        &candles,
    )?;
    let m = report.metrics;
    println!(
        "{} candles of {path}: {} trades, total return {:.2} % (buy and hold {:.2} %), max drawdown {:.2} %",
        m.candles, m.trades, m.total_return_pct, m.buy_hold_return_pct, m.max_drawdown_pct
    );
    Ok(())
}
