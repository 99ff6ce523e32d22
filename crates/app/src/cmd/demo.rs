//! `manus demo`: the simulated exchange in this process on a free loopback port, and `live`
//! against it over real sockets — signals within seconds, a dropped connection every
//! `--drop-every` candles so reconnection and backfill show.

use std::path::PathBuf;
use std::time::Duration;

use manus_core::Interval;
use manus_exchange::feed::{ExchangeKind, FeedConfig, StreamKey};
use manus_exchange::sim::{FaultPlan, SimConfig, SimSource};

use super::common::StrategyArgs;
use super::live::engine_from;
use crate::exit::bad_input;
use crate::live::{PipelineConfig, scripted::synthetic_candles};
use crate::ranges;
use crate::session::Plan;

/// The demo's named symbols; more (`--symbols N`) are numbered.
const NAMED: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

/// Arguments. Strategies and confluence default as everywhere else (`trend`, `majority`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// No dashboard: JSON lines on stdout (also when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Stop after this many live closed candles (all streams together).
    #[arg(long)]
    pub max_candles: Option<u64>,
    /// Write the JSON lines to this file instead of stdout.
    #[arg(long, value_name = "FILE.jsonl")]
    pub signals_out: Option<PathBuf>,
    /// Store records in this database (a SQLite file or a postgres:// URL), under exchange `sim`.
    #[arg(long, env = "MANUS_DB")]
    pub db: Option<String>,
    /// Which exchange protocol the simulated exchange speaks and the feed uses: binanceus,
    /// binance, bybit or okx.
    #[arg(long, default_value = "binanceus")]
    pub exchange: String,
    /// How many simulated symbols (streams) to run, 1..=1000.
    #[arg(long, default_value_t = 3)]
    pub symbols: usize,
    /// Real milliseconds per simulated candle.
    #[arg(long, default_value_t = 250)]
    pub candle_ms: u64,
    /// Drop every connection every N candles (0: never).
    #[arg(long, default_value_t = 40)]
    pub drop_every: u64,
    /// Closed candles kept per stream in the rolling window.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// Warm the candle path every 100 µs from this many µs before each expected closed
    /// candle until it comes: a lower latency for about a fifth of a core while it waits
    /// (0: never).
    #[arg(long, default_value_t = 2000, value_name = "US")]
    pub prewarm_us: u64,
    /// Debug: time each live candle's stages (frame read, parse, hand-over, engine, record,
    /// write, flush) and log the breakdown at exit.
    #[arg(long)]
    pub latency_breakdown: bool,
    #[command(flatten)]
    pub strategy: StrategyArgs,
    #[command(flatten)]
    pub web: super::live::WebArgs,
    #[command(flatten)]
    pub bus: crate::bus::BusArgs,
}

/// Symbol names for `n` streams.
fn symbols(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match NAMED.get(i) {
            Some(s) => s.to_string(),
            None => format!("SIM{i:04}USDT"),
        })
        .collect()
}

/// The price source for `n` symbols whose `history` closed candles end now.
fn source(n: usize, interval: Interval, history: usize, now_ms: i64) -> SimSource {
    // The random walk scales each further symbol's price down tenfold: fine for the three
    // named ones, not for hundreds, which replay one synthetic series instead.
    if n <= NAMED.len() {
        return SimSource::Synthetic {
            seed: 7,
            start_price: 30_000.0,
        };
    }
    let k = StreamKey {
        symbol: "SIM".into(),
        interval,
    };
    // The replay's times are the market's: start it `history` candles before now (it once
    // started at 0, and the demo stored 1970 timestamps).
    let start = interval.floor(now_ms) - history as i64 * interval.duration_ms();
    SimSource::Replay(synthetic_candles(&k, start, history + 5000))
}

impl Args {
    fn validate(&self) -> anyhow::Result<(SimConfig, Plan)> {
        ranges::DEMO_SYMBOLS.usize(self.symbols)?;
        ranges::DEMO_CANDLE_MS.u64(self.candle_ms)?;
        ranges::DEMO_DROP_EVERY.u64(self.drop_every)?;
        ranges::WINDOW.usize(self.window)?;
        ranges::PREWARM_US.u64(self.prewarm_us)?;
        if let Some(n) = self.max_candles {
            ranges::MAX_CANDLES.u64(n)?;
        }
        let exchange: ExchangeKind = self
            .exchange
            .parse()
            .map_err(|e| bad_input(format!("{e}")))?;
        let engine = engine_from(&self.strategy)?;
        let interval = Interval::M1;
        manus_core::strategy::registry::check_interval(&engine.ids(), interval)
            .map_err(|e| bad_input(e.to_string()))?;
        let names = symbols(self.symbols);
        let history = 1000;
        let source = source(self.symbols, interval, history, crate::clock::now_ms());
        let sim = SimConfig {
            symbols: names.clone(),
            interval,
            candle_ms: self.candle_ms,
            updates_per_candle: 4,
            history,
            source,
            faults: FaultPlan {
                drop_every: (self.drop_every > 0).then_some(self.drop_every),
                ..FaultPlan::default()
            },
            ..SimConfig::default()
        };
        let streams = names
            .iter()
            .map(|s| StreamKey {
                symbol: s.clone(),
                interval,
            })
            .collect();
        let mut feed = FeedConfig::new(exchange, streams);
        let candle = Duration::from_millis(self.candle_ms);
        feed.candle_period = Some(candle);
        feed.bootstrap = 500;
        // Accelerated time: react in candles, not in the minutes a real exchange needs.
        feed.silence_timeout = (candle * 8).max(Duration::from_secs(2));
        feed.backoff_initial = Duration::from_millis(100);
        feed.backoff_max = Duration::from_secs(2);
        feed.stable_after = (candle * 4).max(Duration::from_millis(500));
        let plan = Plan {
            feed,
            engine,
            pipeline: PipelineConfig {
                window: self.window,
                max_candles: self.max_candles,
                breakdown: self.latency_breakdown,
                prewarm: Duration::from_micros(self.prewarm_us),
                ..PipelineConfig::default()
            },
            headless: self.headless || !std::io::IsTerminal::is_terminal(&std::io::stdout()),
            signals_out: self.signals_out.clone(),
            store: self
                .db
                .as_deref()
                .map(|db| crate::wiring::StoreTarget::new(db, crate::session::SIM_EXCHANGE, None))
                .transpose()?,
            web: self.web.plan()?,
            title: format!(
                "demo · simulated {} · {} symbols · {}",
                exchange, self.symbols, interval
            ),
            on_record: None,
            bus: self
                .bus
                .config(None)
                .map_err(|e| bad_input(e.to_string()))?
                .map(|config| crate::bus::BusTarget {
                    config,
                    exchange: "sim".into(),
                }),
        };
        Ok((sim, plan))
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (sim_cfg, plan) = args.validate()?;
    if args.latency_breakdown {
        manus_exchange::feed::probe::enable();
    }
    crate::session::LiveSession::from_plan(plan)
        .simulated(sim_cfg)
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_symbol_count_starts_the_market_now() {
        let now = 1_764_000_000_123;
        for n in [1, 3, 4, 1000] {
            match source(n, Interval::M1, 1000, now) {
                SimSource::Synthetic { .. } => assert!(n <= 3),
                SimSource::Replay(list) => {
                    assert!(n > 3);
                    // History ends at the current minute: live candles open from now on.
                    let live = &list[1000];
                    assert_eq!(live.open_time, Interval::M1.floor(now), "{n} symbols");
                    assert_eq!(list[0].open_time, Interval::M1.floor(now) - 1000 * 60_000);
                }
                SimSource::ReplayOnce(_) => panic!("not used"),
            }
        }
    }
}
