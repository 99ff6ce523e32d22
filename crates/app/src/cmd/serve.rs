//! `manus serve`: the web dashboard. History comes from the store (`--db`); `--demo` adds a
//! live source: a [`LiveSession`] against the simulated exchange, which stores and alerts as
//! `live` does. Loopback by
//! default; any other address needs `--token` (exit 2 otherwise).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use manus_core::{Interval, SignalEngine};
use manus_exchange::feed::Backoff;
use manus_exchange::sim::{FaultPlan, SimConfig, SimSource};

use crate::exit::bad_input;
use crate::live::Shutdown;
use crate::session::LiveSession;
use crate::web::{self, LiveHub, SharedStore};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; anything but loopback requires --token.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub bind: String,
    /// Access token checked on every request (`Authorization: Bearer T` or `?token=T`).
    #[arg(long, env = "MANUS_WEB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Store to read history from: a SQLite file or a postgres:// URL (default: the data dir).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Serve history only, without opening any store.
    #[arg(long, conflicts_with = "db")]
    pub no_store: bool,
    /// Feed the live page from a built-in simulated exchange (records are also stored).
    #[arg(long)]
    pub demo: bool,
    /// Demo: comma-separated symbols.
    #[arg(long, default_value = "BTCUSDT,ETHUSDT", requires = "demo")]
    pub demo_symbols: String,
    /// Demo: real milliseconds per candle.
    #[arg(long, default_value_t = 1000, requires = "demo")]
    pub demo_candle_ms: u64,
    /// Demo: settings file whose `[alerts]` section configures notifiers and rules, as for
    /// `live` (needs the store: not with --no-store).
    #[arg(long, requires = "demo", value_name = "FILE")]
    pub alerts_config: Option<std::path::PathBuf>,
    /// Demo: strategies and confluence (the same flags and defaults as `live`).
    #[command(flatten)]
    pub strategy: crate::cmd::common::StrategyArgs,
    /// Also show every worker's streams from this NATS JetStream bus on the live page.
    #[arg(
        long,
        value_name = "nats://HOST:PORT[,...]",
        env = "MANUS_BUS",
        conflicts_with = "demo"
    )]
    pub bus: Option<String>,
}

/// Parses `--bind`: `IP:PORT`, `[IPv6]:PORT` or `localhost:PORT`.
pub fn parse_bind(s: &str) -> anyhow::Result<SocketAddr> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| bad_input(format!("invalid --bind '{s}': bad port")))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse().map_err(|_| {
        bad_input(format!(
            "invalid --bind '{s}': expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
        ))
    })
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let bind = parse_bind(&args.bind)?;
    let token = args.token.clone().filter(|t| !t.is_empty());
    web::check_policy(bind, token.as_deref()).map_err(|e| {
        bad_input(format!(
            "{e} (the flag is --token, or the MANUS_WEB_TOKEN variable)"
        ))
    })?;
    let symbols = crate::cmd::live::parse_symbols(Some(&args.demo_symbols))?;
    let (strategies, rule) = args.strategy.resolve()?;
    if args.demo {
        crate::ranges::SERVE_DEMO_CANDLE_MS.u64(args.demo_candle_ms)?;
        let engine = SignalEngine::from_specs(&strategies, rule)?;
        return run_demo(&args, bind, token, symbols, engine);
    }
    let bus = args
        .bus
        .as_deref()
        .map(crate::bus::BusConfig::parse)
        .transpose()
        .map_err(|e| bad_input(e.to_string()))?;
    // Opened before the runtime: the Postgres client must not start inside it.
    let store: Option<SharedStore> = if args.no_store {
        None
    } else {
        let s = crate::store::open(args.db.as_deref()).context("opening the store")?;
        Some(Arc::new(Mutex::new(s)))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async move {
        let mut shutdown = Shutdown::install().context("installing signal handlers")?;
        let hub = LiveHub::new();
        let server = web::spawn(bind, hub.clone(), store, token.clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        // Bus reader (issue 16): every worker's candles and records onto the live page.
        let bus_reader = bus.map(|cfg| tokio::spawn(read_bus(cfg, hub)));
        announce(&server.url(), token.is_some());
        shutdown.wait().await;
        if let Some(r) = bus_reader {
            r.abort();
        }
        server.shutdown().await;
        anyhow::Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

/// Feeds the live page from the bus for as long as `serve` runs. The bus may not be up yet
/// when `serve` starts, or may go away: each time the reader stops it starts again after the
/// feeds' reconnect backoff (100 ms doubling to 5 s, jittered; reset once a reader has run for
/// a minute).
async fn read_bus(cfg: crate::bus::BusConfig, hub: LiveHub) {
    use std::time::Duration;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let began = tokio::time::Instant::now();
        match crate::bus::hub::feed_hub(cfg.clone(), hub.clone()).await {
            Ok(()) => tracing::warn!("the live page's bus reader ended; starting it again"),
            Err(e) => tracing::warn!("the live page's bus reader stopped: {e}; trying again"),
        }
        if began.elapsed() > Duration::from_secs(60) {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// What the demo market looks like: the simulated exchange in this process.
fn demo_market(symbols: Vec<String>, candle_ms: u64) -> SimConfig {
    SimConfig {
        symbols,
        interval: Interval::M1,
        candle_ms: candle_ms.max(20),
        updates_per_candle: 5,
        history: DEMO_BOOTSTRAP + 100,
        source: SimSource::Synthetic {
            seed: 7,
            start_price: 30_000.0,
        },
        // The reconnection counter moves, and backfill shows.
        faults: FaultPlan {
            drop_every: Some(60),
            ..FaultPlan::default()
        },
        ..SimConfig::default()
    }
}

/// `--demo`: the live session `live` runs (feed, pipeline, store and alerts), against the
/// simulated exchange, with this dashboard attached; records are stored under exchange `sim`.
fn run_demo(
    args: &Args,
    bind: SocketAddr,
    token: Option<String>,
    symbols: Vec<String>,
    engine: SignalEngine,
) -> anyhow::Result<()> {
    let db = match (&args.db, args.no_store) {
        (_, true) => None,
        (Some(db), false) => Some(db.clone()),
        (None, false) => Some(crate::store::default_db_path().display().to_string()),
    };
    let with_token = token.is_some();
    let mut b = LiveSession::builder()
        .symbols(symbols.clone())
        .interval(Interval::M1)
        .engine(engine)
        .bootstrap(DEMO_BOOTSTRAP)
        .simulated(demo_market(symbols, args.demo_candle_ms))
        // Records go to the page and the store only.
        .on_record(|_| {})
        .web(bind, token)
        .on_web_ready(move |url| announce(url, with_token));
    if let Some(db) = &db {
        b = b.db(db);
    }
    if let Some(path) = &args.alerts_config {
        if db.is_none() {
            return Err(bad_input(
                "--alerts-config needs the store for the alert outbox: drop --no-store",
            ));
        }
        b = b.alerts(path);
    }
    b.build()?.run()
}

/// Closed candles fetched at start (the chart's history).
const DEMO_BOOTSTRAP: usize = 300;

fn announce(url: &str, with_token: bool) {
    eprintln!("dashboard: {url}/");
    if with_token {
        eprintln!(
            "open it with ?token=<your token> appended, or send 'Authorization: Bearer <token>'"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_parse() {
        assert_eq!(parse_bind("127.0.0.1:8080").unwrap().port(), 8080);
        assert!(parse_bind("localhost:9").unwrap().ip().is_loopback());
        assert!(parse_bind("[::1]:80").unwrap().ip().is_loopback());
        assert!(parse_bind("nonsense").is_err());
        assert!(parse_bind("localhost:99999").is_err());
    }
}
