//! A strategy written outside the crate, run in a backtest and live with the built-in ones.
//!
//! `CloseVsSma`: BUY while the close is above its simple moving average, SELL while below.
//! It implements [`Strategy`] (one closed candle in, a view out, O(1)), reuses the crate's
//! streaming SMA, and joins `macd` under ANY confluence.
//!
//! `cargo run --release -p market-manus --example custom_strategy`

use std::fs::File;
use std::io::BufReader;

use manus_core::backtest::{self, Config};
use manus_core::confluence::{Mode, Rule};
use manus_core::indicator::{Indicator, Sma};
use manus_core::strategy::{self, Decision, Reason, Strategy, StrategyError};
use manus_core::{Action, Candle, Interval, SignalEngine, csv};
use manus_exchange::sim::SimConfig;
use market_manus::session::LiveSession;

#[derive(Debug, Clone)]
struct CloseVsSma {
    sma: Sma,
}

impl Strategy for CloseVsSma {
    fn id(&self) -> &'static str {
        "close_vs_sma"
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let Some(avg) = self.sma.update(c) else {
            return Ok(Decision::WARMING_UP);
        };
        let (action, score) = if c.close > avg {
            (Action::Buy, 0.5)
        } else {
            (Action::Sell, -0.5)
        };
        Ok(Decision::new(
            action,
            score,
            Reason::new("close", c.close, "vs SMA", avg),
        ))
    }
    fn reset(&mut self) {
        self.sma.reset();
    }
    fn warmup(&self) -> usize {
        self.sma.lookback() + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}

fn engine() -> anyhow::Result<SignalEngine> {
    let mine: Box<dyn Strategy> = Box::new(CloseVsSma { sma: Sma::new(20) });
    let macd = strategy::build("macd", &Default::default())?;
    Ok(SignalEngine::new(
        vec![mine, macd],
        Rule::new(Mode::Any, 2),
    )?)
}

fn main() -> anyhow::Result<()> {
    // Backtest on the sample file.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    );
    let candles = csv::load(BufReader::new(File::open(path)?), None)?;
    let config = Config {
        interval: Interval::M5,
        ..Config::default()
    };
    let report = backtest::run(engine()?, config, &candles)?;
    println!(
        "backtest: {} trades, total return {:.2} %",
        report.metrics.trades, report.metrics.total_return_pct
    );

    // The same engine live, against the built-in simulated exchange, for 20 candles.
    manus_exchange::tls::install_crypto_provider();
    LiveSession::builder()
        .simulated(SimConfig {
            symbols: vec!["ETHUSDT".into()],
            interval: Interval::M1,
            candle_ms: 50,
            ..SimConfig::default()
        })
        .symbols(["ETHUSDT"])
        .interval(Interval::M1)
        .engine(engine()?)
        .max_candles(20)
        .on_record(|r| println!("live: {} {} {:?}", r.open_time, r.confluence, r.signals.0))
        .build()?
        .run()
}
