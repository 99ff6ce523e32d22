//! `manus exchange-sim`: serves the simulated exchange (Binance, Bybit v5 and OKX v5 protocols)
//! in the foreground on a loopback port until Ctrl+C, with fault drills by flag. Point a client at the
//! URLs it prints on stderr (`--ws-url`, `--rest-url`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use manus_exchange::sim::{FaultPlan, RestOutage, SimConfig, SimExchange, SimSource};

use super::common::{load_csv, parse_interval};
use crate::exit::bad_input;
use crate::ranges;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Symbols served, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "BTCUSDT")]
    pub symbols: Vec<String>,
    /// Kline interval served (1m, 5m, 1h, ...).
    #[arg(long, default_value = "1m")]
    pub interval: String,
    /// Real milliseconds per candle (market time runs interval/candle-ms times faster).
    #[arg(long, default_value_t = 200)]
    pub candle_ms: u64,
    /// In-progress updates per candle before the final.
    #[arg(long, default_value_t = 4)]
    pub updates: u32,
    /// Candles already closed at start (for REST bootstrap).
    #[arg(long, default_value_t = 1500)]
    pub history: usize,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 7, conflicts_with = "replay")]
    pub seed: u64,
    /// Starting price of the first symbol (the next ones start 10x lower each).
    #[arg(long, default_value_t = 30_000.0, conflicts_with = "replay")]
    pub start_price: f64,
    /// Replay this candle CSV (or `.parquet` file) instead of a synthetic market (loops at the end).
    #[arg(long, value_name = "FILE.csv")]
    pub replay: Option<PathBuf>,
    /// With --replay: stop producing candles at the end of the file instead of looping.
    #[arg(long, requires = "replay")]
    pub replay_once: bool,
    /// Drop every connection every N candles.
    #[arg(long, value_name = "N")]
    pub drop_every: Option<u64>,
    /// Drop every connection at these candles (0 = first live candle), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "C,C,...")]
    pub drop_at: Vec<u64>,
    /// Send a malformed frame every N candles.
    #[arg(long, value_name = "N")]
    pub malformed_every: Option<u64>,
    /// Send the final frame twice every N candles.
    #[arg(long, value_name = "N")]
    pub duplicate_final_every: Option<u64>,
    /// Go silent at candle C for SECS seconds.
    #[arg(long, value_name = "C:SECS")]
    pub silent_at: Option<String>,
    /// Answer the first N REST calls with HTTP 429 and `Retry-After: SECS`.
    #[arg(long, value_name = "N:SECS")]
    pub rest_429: Option<String>,
    /// Answer the next N REST calls with HTTP 500.
    #[arg(long, value_name = "N")]
    pub rest_5xx: Option<u32>,
    /// After every drop, answer every REST call with HTTP STATUS for SECS seconds, with
    /// `Retry-After: RETRY` seconds when given (e.g. `30:418:3600`, a ban past any retry cap).
    #[arg(long, value_name = "SECS:STATUS[:RETRY]")]
    pub rest_outage_after_drop: Option<String>,
    /// Cut a Binance connection that sends more than N messages a second (Binance: 5).
    #[arg(long, value_name = "N")]
    pub ws_rate_limit: Option<u32>,
}

/// Parses `A:B` with a clear error naming the flag.
fn pair<A: std::str::FromStr, B: std::str::FromStr>(
    flag: &str,
    s: &str,
    shape: &str,
) -> anyhow::Result<(A, B)> {
    let err = || bad_input(format!("--{flag} expects {shape}, got '{s}'"));
    let (a, b) = s.split_once(':').ok_or_else(err)?;
    Ok((
        a.trim().parse().map_err(|_| err())?,
        b.trim().parse().map_err(|_| err())?,
    ))
}

/// Parses `SECS:STATUS[:RETRY]` for `--rest-outage-after-drop`.
fn outage(s: &str) -> anyhow::Result<RestOutage> {
    let flag = "rest-outage-after-drop";
    let (secs, rest) = pair::<f64, String>(flag, s, "SECS:STATUS[:RETRY]")?;
    let (status, retry) = match rest.split_once(':') {
        Some((st, r)) => (st.to_string(), Some(r.to_string())),
        None => (rest, None),
    };
    let err = || {
        bad_input(format!(
            "--{flag} expects SECS:STATUS[:RETRY] (seconds, an HTTP status 400-599, seconds), got '{s}'"
        ))
    };
    let status: u16 = status.trim().parse().map_err(|_| err())?;
    let retry_after = retry
        .map(|r| r.trim().parse::<u64>().map_err(|_| err()))
        .transpose()?;
    // The range check also refuses NaN.
    let valid = (0.0..=86_400.0).contains(&secs) && (400..600).contains(&status);
    if !valid {
        return Err(err());
    }
    Ok(RestOutage {
        duration: std::time::Duration::from_secs_f64(secs),
        status,
        retry_after,
    })
}

impl Args {
    fn config(&self) -> anyhow::Result<SimConfig> {
        let interval = parse_interval(&self.interval)?;
        let symbols: Vec<String> = self
            .symbols
            .iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        if symbols.is_empty() {
            return Err(bad_input("--symbols needs at least one symbol"));
        }
        ranges::SIM_CANDLE_MS.u64(self.candle_ms)?;
        ranges::SIM_UPDATES.u32(self.updates)?;
        ranges::SIM_HISTORY.usize(self.history)?;
        for n in [
            self.drop_every,
            self.malformed_every,
            self.duplicate_final_every,
        ]
        .into_iter()
        .flatten()
        {
            ranges::SIM_EVERY.u64(n)?;
        }
        if let Some(n) = self.ws_rate_limit {
            ranges::SIM_WS_RATE_LIMIT.u32(n)?;
        }
        let source = match &self.replay {
            Some(path) => {
                let candles = load_csv(path, Some(interval))?;
                if candles.is_empty() {
                    return Err(bad_input(format!("{} has no candles", path.display())));
                }
                // Replaying onto another grid is a use (the simulator regrids), so only warn.
                if let Some(msg) = super::common::interval_conflict(path, interval, &candles) {
                    tracing::warn!("{msg}; replaying it as {interval} candles");
                }
                if self.replay_once {
                    SimSource::ReplayOnce(candles)
                } else {
                    SimSource::Replay(candles)
                }
            }
            None => {
                if !(self.start_price.is_finite() && self.start_price > 0.0) {
                    return Err(bad_input("--start-price must be positive"));
                }
                SimSource::Synthetic {
                    seed: self.seed,
                    start_price: self.start_price,
                }
            }
        };
        let silent_at = self
            .silent_at
            .as_deref()
            .map(|s| pair::<u64, f64>("silent-at", s, "CANDLE:SECS"))
            .transpose()?
            .map(|(c, secs)| {
                if secs.is_finite() && secs >= 0.0 {
                    Ok((c, Duration::from_secs_f64(secs)))
                } else {
                    Err(bad_input("--silent-at seconds must be non-negative"))
                }
            })
            .transpose()?;
        let rest_429 = self
            .rest_429
            .as_deref()
            .map(|s| pair::<u32, u64>("rest-429", s, "N:SECS"))
            .transpose()?;
        let rest_outage_after_drop = self
            .rest_outage_after_drop
            .as_deref()
            .map(outage)
            .transpose()?;
        Ok(SimConfig {
            bind: SocketAddr::new(self.bind, self.port),
            symbols,
            interval,
            candle_ms: self.candle_ms,
            updates_per_candle: self.updates,
            history: self.history,
            source,
            faults: FaultPlan {
                drop_every: self.drop_every.filter(|&n| n > 0),
                drop_at: self.drop_at.clone(),
                malformed_every: self.malformed_every.filter(|&n| n > 0),
                duplicate_final_every: self.duplicate_final_every.filter(|&n| n > 0),
                silent_at,
                rest_429,
                rest_5xx: self.rest_5xx,
                ws_rate_limit: self.ws_rate_limit,
                rest_outage_after_drop,
            },
        })
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(cfg))
}

async fn serve(cfg: SimConfig) -> anyhow::Result<()> {
    let symbols = cfg.symbols.clone();
    let interval = cfg.interval;
    let sim = match SimExchange::start(cfg).await {
        Ok(s) => s,
        Err(e @ manus_exchange::sim::SimError::Config(_)) => return Err(bad_input(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "simulated exchange serving {} {interval}",
        symbols.join(",")
    );
    eprintln!(
        "  ws:   {}  (Binance /ws/<symbol>@kline_{interval}, /stream?streams=..., Bybit /v5/public/spot, OKX /ws/v5/business)",
        sim.ws_url()
    );
    eprintln!(
        "  rest: {}  (Binance /api/v3/..., Bybit /v5/market/..., OKX /api/v5/...)",
        sim.rest_url()
    );
    eprintln!(
        "  try:  manus live --ws-url {} --rest-url {}",
        sim.ws_url(),
        sim.rest_url()
    );
    eprintln!("Ctrl+C to stop");
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                r.context("waiting for Ctrl+C")?;
                break;
            }
            _ = tick.tick() => {
                let s = sim.stats();
                tracing::info!(
                    candles = s.candles_closed,
                    connections = s.connections_open,
                    frames = s.frames_sent,
                    drops = s.drops,
                    rest_calls = s.rest_calls,
                    rest_failures = s.rest_failures,
                    "simulated exchange"
                );
            }
        }
    }
    let s = sim.stats();
    eprintln!(
        "stopping: {} candles closed, {} connections accepted, {} frames sent, {} REST calls",
        s.candles_closed, s.connections_accepted, s.frames_sent, s.rest_calls
    );
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<SimConfig> {
        let mut full = vec!["x"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full)?.args.config()
    }

    #[test]
    fn flags_become_a_config() {
        let c = parse(&[
            "--port",
            "0",
            "--symbols",
            "btcusdt,ETHUSDT",
            "--interval",
            "1m",
            "--drop-at",
            "10,20",
            "--silent-at",
            "5:1.5",
            "--rest-429",
            "3:2",
            "--rest-5xx",
            "1",
            "--drop-every",
            "0",
        ])
        .unwrap();
        assert_eq!(c.symbols, ["BTCUSDT", "ETHUSDT"]);
        assert_eq!(c.bind.port(), 0);
        assert_eq!(c.faults.drop_at, [10, 20]);
        assert_eq!(c.faults.drop_every, None);
        assert_eq!(c.faults.silent_at, Some((5, Duration::from_millis(1500))));
        assert_eq!(c.faults.rest_429, Some((3, 2)));
        assert_eq!(c.faults.rest_5xx, Some(1));
    }

    #[test]
    fn bad_values_are_bad_input() {
        for argv in [
            &["--interval", "7m"][..],
            &["--silent-at", "5"],
            &["--rest-429", "x:1"],
            &["--rest-outage-after-drop", "30:200"],
            &["--rest-outage-after-drop", "NaN:500"],
            &["--rest-outage-after-drop", "30"],
            &["--candle-ms", "0"],
            &["--symbols", ","],
        ] {
            let e = parse(argv).unwrap_err();
            assert!(
                e.chain().any(|c| c.is::<crate::exit::BadInput>()
                    || c.is::<manus_core::CoreError>()
                    || c.is::<crate::ranges::RangeError>()),
                "{argv:?}: {e}"
            );
        }
    }

    #[test]
    fn outage_flag_reads_secs_status_and_an_optional_retry_after() {
        struct Case {
            input: &'static str,
            expected: (u64, u16, Option<u64>),
        }
        let cases = [
            Case {
                input: "30:418:3600",
                expected: (30_000, 418, Some(3600)),
            },
            Case {
                input: "1.5:503",
                expected: (1_500, 503, None),
            },
        ];
        for c in cases {
            let o = outage(c.input).expect(c.input);
            let got = (o.duration.as_millis() as u64, o.status, o.retry_after);
            assert_eq!(got, c.expected, "{}", c.input);
        }
    }
}
