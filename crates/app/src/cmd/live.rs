//! `manus live`: stream klines for many symbols × intervals on one combined connection, run the
//! strategies on every closed candle and show the dashboard or write JSON lines.
//!
//! Everything is validated before anything starts (no symbol, interval or strategy → exit 2).
//! SIGINT/SIGTERM (or `q`) stop the run gracefully: outputs flushed, queued records stored
//! (for at most [`DRAIN_GRACE`](crate::wiring::DRAIN_GRACE); a second signal stops waiting), exit 0 unless records were
//! lost, which exits 1 saying how many and why. This file turns flags into a
//! [`Plan`]; [`crate::session`] runs it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use manus_core::model::interval_choices;
use manus_core::{Interval, SignalEngine, strategy};
use manus_exchange::feed::{ExchangeKind, FeedConfig, StreamKey};

use super::common::{StrategyArgs, StrategyFlags};
use crate::config::{ExchangeChoice, Settings};
use crate::exit::bad_input;
use crate::live::PipelineConfig;
use crate::ranges;
use crate::session::{LiveSession, Plan, WebPlan};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Settings file (TOML, as `manus lab` saves it): exchange, symbols, interval, strategies,
    /// confluence, db; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Exchange: binanceus, binance, bybit or okx (default: the config's, else binanceus).
    #[arg(long)]
    pub exchange: Option<String>,
    /// Comma-separated symbols, e.g. `BTCUSDT,ETHUSDT`.
    #[arg(long, value_name = "SYMBOL[,SYMBOL...]")]
    pub symbol: Option<String>,
    /// Comma-separated intervals, e.g. `5m,1h`.
    #[arg(long, value_name = "INTERVAL[,INTERVAL...]")]
    pub interval: Option<String>,
    #[command(flatten)]
    pub strategy: StrategyFlags,
    /// WebSocket base URL (default: the exchange's).
    #[arg(long)]
    pub ws_url: Option<String>,
    /// REST base URL (default: the exchange's).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Closed candles fetched per stream to warm the strategies up.
    #[arg(long, default_value_t = 500)]
    pub bootstrap: usize,
    /// With --db: on start each stream resumes from its newest stored record, fetching and
    /// storing (as backfilled) what closed while the program was down; at most this many
    /// candles per stream, beyond which the oldest stay a gap (listed by `history --gaps`).
    #[arg(long, default_value_t = 1000)]
    pub resume_max: usize,
    /// Warm the candle path every 100 µs from this many µs before each expected closed
    /// candle until it comes: a lower latency for about a fifth of a core while it waits
    /// (0: never).
    #[arg(long, default_value_t = 2000, value_name = "US")]
    pub prewarm_us: u64,
    /// Closed candles kept per stream in the rolling window.
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// No dashboard: JSON lines on stdout, messages on stderr (also when stdout is not a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Write the JSON lines to this file instead of stdout.
    #[arg(long, value_name = "FILE.jsonl")]
    pub signals_out: Option<PathBuf>,
    /// Stop after this many live closed candles (all streams together).
    #[arg(long)]
    pub max_candles: Option<u64>,
    /// Store records (and queue alerts) in this database: a SQLite file or a postgres:// URL.
    #[arg(long, env = "MANUS_DB")]
    pub db: Option<String>,
    /// Settings file whose `[alerts]` section configures notifiers and rules (needs a database:
    /// --db or the config's db).
    #[arg(long)]
    pub alerts_config: Option<PathBuf>,
    /// UTC time of day of the daily reconnect made before the exchange's 24-hour cut-off, handed
    /// over without a gap (default 03:00:30, a quiet minute away from candle closes).
    #[arg(long, value_name = "HH:MM[:SS]", value_parser = parse_time_of_day)]
    pub reconnect_at: Option<Duration>,
    /// Reconnect delays after a drop: the first delay's ceiling and the cap, doubling in
    /// between with full jitter (default 500ms..30s). Units: ms, s, m.
    #[arg(long, value_name = "FIRST..CAP", value_parser = parse_backoff)]
    pub reconnect_backoff: Option<(Duration, Duration)>,
    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub bus: crate::bus::BusArgs,
}

/// A `--reconnect-at` or `--reconnect-backoff` value that does not parse (clap takes any
/// error type for a value parser, so these need no `String`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingFlagError {
    /// Not `HH:MM` or `HH:MM:SS` within a day.
    #[error("'{0}': expected a UTC time of day as HH:MM or HH:MM:SS, e.g. 03:00:30")]
    TimeOfDay(String),
    /// Not `FIRST..CAP` with units.
    #[error("'{0}': expected FIRST..CAP with units ms, s or m, e.g. 500ms..30s")]
    BackoffFormat(String),
    /// A zero first delay, or a cap below it.
    #[error("'{0}': the first delay must be positive and the cap at least the first")]
    BackoffOrder(String),
}

/// Parses `HH:MM` or `HH:MM:SS` (UTC) into the offset from midnight.
fn parse_time_of_day(s: &str) -> Result<Duration, TimingFlagError> {
    let bad = || TimingFlagError::TimeOfDay(s.to_string());
    let parts: Vec<u64> = s
        .split(':')
        .map(|p| p.parse::<u64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (h, m, sec) = match parts[..] {
        [h, m] => (h, m, 0),
        [h, m, sec] => (h, m, sec),
        _ => return Err(bad()),
    };
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    Ok(Duration::from_secs(h * 3600 + m * 60 + sec))
}

/// Parses a duration such as `250ms`, `2s` or `1m`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

/// Parses `FIRST..CAP`, e.g. `500ms..30s`: both positive, the cap not below the first.
fn parse_backoff(s: &str) -> Result<(Duration, Duration), TimingFlagError> {
    let bad = || TimingFlagError::BackoffFormat(s.to_string());
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (first, cap) = (
        parse_duration(a).ok_or_else(bad)?,
        parse_duration(b).ok_or_else(bad)?,
    );
    if first.is_zero() || cap < first {
        return Err(TimingFlagError::BackoffOrder(s.to_string()));
    }
    Ok((first, cap))
}

/// `--web ADDR [--web-token T]`: serve the web dashboard from this run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebArgs {
    /// Also serve the web dashboard here, e.g. 127.0.0.1:8080 (beyond loopback needs --web-token).
    #[arg(long, value_name = "ADDR")]
    pub web: Option<SocketAddr>,
    /// Token the dashboard requires on every request and stream.
    #[arg(long, env = "MANUS_WEB_TOKEN", hide_env_values = true)]
    pub web_token: Option<String>,
}

impl WebArgs {
    /// Checks the access policy before anything starts (a public bind without a token → exit 2).
    pub fn plan(&self) -> anyhow::Result<Option<WebPlan>> {
        let Some(addr) = self.web else {
            return Ok(None);
        };
        crate::web::check_policy(addr, self.web_token.as_deref()).map_err(|e| {
            bad_input(format!(
                "--web {addr}: {e} (the flag is --web-token, or the MANUS_WEB_TOKEN variable)"
            ))
        })?;
        Ok(Some(WebPlan {
            addr,
            token: self.web_token.clone(),
            on_ready: None,
        }))
    }
}

/// Splits a comma list, trimming and dropping empty parts.
fn list(s: Option<&str>) -> Vec<&str> {
    s.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parses `--symbol`: upper-cased, letters and digits only, at least one.
pub fn parse_symbols(s: Option<&str>) -> anyhow::Result<Vec<String>> {
    let parts = list(s);
    if parts.is_empty() {
        return Err(bad_input(
            "no symbol selected: pass --symbol BTCUSDT (several: --symbol BTCUSDT,ETHUSDT)",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if !p.chars().all(|c| c.is_ascii_alphanumeric()) || p.len() > 30 {
            return Err(bad_input(format!(
                "invalid symbol '{p}': expected letters and digits, e.g. BTCUSDT"
            )));
        }
        let up = p.to_ascii_uppercase();
        if !out.contains(&up) {
            out.push(up);
        }
    }
    Ok(out)
}

/// Checks a base URL flag (`--ws-url`, `--rest-url`) at once: it parses, has a host and one
/// of `schemes`. Returns it without a trailing `/`. (Left to the feed, `notaurl` was retried
/// for 15 s and `ftp://...` forever.)
pub fn parse_base_url(flag: &str, s: &str, schemes: &[&str]) -> anyhow::Result<String> {
    let expected = || schemes.join(" or ");
    let url = reqwest::Url::parse(s.trim()).map_err(|e| {
        bad_input(format!(
            "{flag} '{s}': not a URL ({e}); expected {}://HOST[:PORT]",
            expected()
        ))
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(bad_input(format!(
            "{flag} '{s}': scheme '{}' is not supported; expected {}",
            url.scheme(),
            expected()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad_input(format!("{flag} '{s}': no host")));
    }
    Ok(s.trim().trim_end_matches('/').to_string())
}

/// Parses `--interval`: at least one valid interval.
pub fn parse_intervals(s: Option<&str>) -> anyhow::Result<Vec<Interval>> {
    let parts = list(s);
    if parts.is_empty() {
        return Err(bad_input(format!(
            "no interval selected: pass --interval 5m (several: --interval 5m,1h); valid: {}",
            interval_choices()
        )));
    }
    let mut out = Vec::new();
    for p in parts {
        let i: Interval = p.parse()?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// Validates the strategy flags, with a clear message for an empty selection.
pub fn engine_from(args: &StrategyArgs) -> anyhow::Result<SignalEngine> {
    if args.strategies.trim().trim_matches(',').trim().is_empty() {
        return Err(bad_input(format!(
            "no strategy selected: pass --strategies all or a list of: {}",
            strategy::id_choices()
        )));
    }
    let (specs, rule) = args.resolve()?;
    Ok(SignalEngine::from_specs(&specs, rule)?)
}

impl Args {
    /// Validates every flag into a [`Plan`]; nothing is started.
    pub fn plan(&self) -> anyhow::Result<Plan> {
        let settings = match &self.config {
            Some(p) => Settings::load(p)?,
            None => Settings::default(),
        };
        let exchange: ExchangeKind = match (&self.exchange, settings.exchange) {
            (Some(e), _) => e.parse().map_err(|e| bad_input(format!("{e}")))?,
            (None, Some(ExchangeChoice::Venue(k))) => k,
            (None, Some(ExchangeChoice::Sim)) => {
                return Err(bad_input(
                    "exchange = \"sim\" is the Lab's built-in simulator; `live` needs a real \
                     exchange (pass --exchange, or run `manus demo`)",
                ));
            }
            (None, None) => ExchangeKind::BinanceUs,
        };
        let file_symbols = (!settings.symbols.is_empty()).then(|| settings.symbols.join(","));
        let symbols = parse_symbols(self.symbol.as_deref().or(file_symbols.as_deref()))?;
        let file_interval = settings.interval.map(|i| i.as_str());
        let intervals = parse_intervals(self.interval.as_deref().or(file_interval))?;
        let engine = engine_from(&StrategyArgs::from_settings(&settings, &self.strategy))?;
        for &i in &intervals {
            strategy::registry::check_interval(&engine.ids(), i)
                .map_err(|e| bad_input(e.to_string()))?;
        }
        let db = self
            .db
            .clone()
            .or_else(|| settings.db.as_ref().map(|p| p.display().to_string()));
        if self.alerts_config.is_some() && db.is_none() {
            return Err(bad_input(
                "--alerts-config needs a database for the alert outbox: pass --db PATH",
            ));
        }
        ranges::WINDOW.usize(self.window)?;
        ranges::PREWARM_US.u64(self.prewarm_us)?;
        ranges::BOOTSTRAP.usize(self.bootstrap)?;
        ranges::RESUME_MAX.usize(self.resume_max)?;
        if let Some(n) = self.max_candles {
            ranges::MAX_CANDLES.u64(n)?;
        }
        let streams: Vec<StreamKey> = symbols
            .iter()
            .flat_map(|s| {
                intervals.iter().map(|&interval| StreamKey {
                    symbol: s.clone(),
                    interval,
                })
            })
            .collect();
        let mut feed = FeedConfig::new(exchange, streams);
        if let Some(u) = &self.ws_url {
            feed.ws_url = parse_base_url("--ws-url", u, &["ws", "wss"])?;
        }
        if let Some(u) = &self.rest_url {
            feed.rest_url = parse_base_url("--rest-url", u, &["http", "https"])?;
        }
        feed.bootstrap = self.bootstrap;
        feed.resume_max = self.resume_max;
        if let Some(at) = self.reconnect_at {
            feed.rotate_at = Some(at);
        }
        if let Some((first, cap)) = self.reconnect_backoff {
            feed.backoff_initial = first;
            feed.backoff_max = cap;
        }
        let title = format!(
            "{} · {} · {}",
            exchange.as_str(),
            symbols.join(","),
            intervals
                .iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(Plan {
            feed,
            engine,
            pipeline: PipelineConfig {
                window: self.window,
                max_candles: self.max_candles,
                prewarm: Duration::from_micros(self.prewarm_us),
                ..PipelineConfig::default()
            },
            headless: self.headless || !std::io::stdout().is_terminal(),
            signals_out: self.signals_out.clone(),
            store: db
                .as_deref()
                .map(|db| {
                    crate::wiring::StoreTarget::new(
                        db,
                        exchange.as_str(),
                        self.alerts_config.as_deref(),
                    )
                })
                .transpose()?,
            web: self.web.plan()?,
            title,
            on_record: None,
            bus: self
                .bus
                .config(settings.bus.as_deref())
                .map_err(|e| bad_input(e.to_string()))?
                .map(|config| crate::bus::BusTarget {
                    config,
                    exchange: exchange.as_str().to_string(),
                }),
        })
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    LiveSession::from_plan(args.plan()?).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_parses_and_rejects_clearly() {
        assert_eq!(
            parse_time_of_day("03:00:30"),
            Ok(Duration::from_secs(3 * 3600 + 30))
        );
        assert_eq!(
            parse_time_of_day("23:59"),
            Ok(Duration::from_secs(23 * 3600 + 59 * 60))
        );
        for bad in ["24:00", "3", "03:60", "03:00:61", "aa:bb", "1:2:3:4"] {
            assert_eq!(
                parse_time_of_day(bad),
                Err(TimingFlagError::TimeOfDay(bad.into()))
            );
        }
    }

    #[test]
    fn base_urls_are_checked_at_once() {
        struct Case {
            input: &'static str,
            schemes: &'static [&'static str],
            expected: Result<&'static str, &'static str>,
        }
        let ws: &[&str] = &["ws", "wss"];
        let http: &[&str] = &["http", "https"];
        let cases = [
            Case {
                input: "ws://127.0.0.1:9000/",
                schemes: ws,
                expected: Ok("ws://127.0.0.1:9000"),
            },
            Case {
                input: "https://api.binance.us",
                schemes: http,
                expected: Ok("https://api.binance.us"),
            },
            Case {
                input: "notaurl",
                schemes: http,
                expected: Err("not a URL"),
            },
            Case {
                input: "ftp://example.com",
                schemes: ws,
                expected: Err("scheme 'ftp' is not supported; expected ws or wss"),
            },
            Case {
                input: "http://x",
                schemes: ws,
                expected: Err("scheme 'http'"),
            },
            Case {
                input: "http://",
                schemes: http,
                expected: Err("--flag 'http://'"),
            },
        ];
        for c in cases {
            let got = parse_base_url("--flag", c.input, c.schemes).map_err(|e| e.to_string());
            match (got, c.expected) {
                (Ok(u), Ok(want)) => assert_eq!(u, want),
                (Err(e), Err(want)) => assert!(e.contains(want), "{}: {e}", c.input),
                (got, want) => panic!("{}: {got:?}, expected {want:?}", c.input),
            }
        }
    }

    #[test]
    fn reconnect_backoff_parses_and_rejects_clearly() {
        let ms = Duration::from_millis;
        assert_eq!(parse_backoff("20ms..200ms"), Ok((ms(20), ms(200))));
        assert_eq!(parse_backoff("1s..2m"), Ok((ms(1_000), ms(120_000))));
        for bad in [
            "", "20ms", "20..200", "20ms..", "x..1s", "1h..2h", "-1s..2s",
        ] {
            assert_eq!(
                parse_backoff(bad),
                Err(TimingFlagError::BackoffFormat(bad.into()))
            );
        }
        for bad in ["0ms..1s", "2s..1s"] {
            assert_eq!(
                parse_backoff(bad),
                Err(TimingFlagError::BackoffOrder(bad.into()))
            );
        }
    }
}
