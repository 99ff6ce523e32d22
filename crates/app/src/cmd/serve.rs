//! `manus serve`: the web dashboard. History comes from the store (`--db`); `--demo` adds a
//! live source (the simulated exchange through the real feed and pipeline). Loopback by
//! default; any other address needs `--token` (exit 2 otherwise).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::exit::bad_input;
use crate::live::Shutdown;
use crate::web::{self, LiveHub, SharedStore, demo};

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
    /// Demo: strategies and confluence (the same flags and defaults as `live`).
    #[command(flatten)]
    pub strategy: crate::cmd::common::StrategyArgs,
    /// Also show every worker's streams from this NATS JetStream bus on the live page.
    #[arg(long, value_name = "nats://HOST:PORT[,...]", env = "MANUS_BUS")]
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
        let server = web::spawn(bind, hub.clone(), store.clone(), token.clone())
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        // Bus reader (issue 16): every worker's candles and records onto the live page.
        let bus_reader = bus.map(|cfg| {
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::bus::hub::feed_hub(cfg, hub).await {
                    tracing::error!("the live page's bus reader stopped: {e}");
                }
            })
        });
        let live = if args.demo {
            let cfg = demo::DemoConfig {
                symbols,
                candle_ms: args.demo_candle_ms,
                strategies,
                rule,
                ..demo::DemoConfig::default()
            };
            Some(
                demo::start(cfg, hub, store)
                    .await
                    .context("starting the demo source")?,
            )
        } else {
            None
        };
        eprintln!("dashboard: {}/", server.url());
        if token.is_some() {
            eprintln!(
                "open it with ?token=<your token> appended, or send 'Authorization: Bearer <token>'"
            );
        }
        shutdown.wait().await;
        if let Some(r) = bus_reader {
            r.abort();
        }
        if let Some(d) = live {
            d.shutdown().await;
        }
        server.shutdown().await;
        anyhow::Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    result
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
