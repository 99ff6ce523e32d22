//! Flags shared by every command that runs strategies: selection, parameters, confluence.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::Path;

use anyhow::Context;
use manus_core::confluence::{Mode, Rule};
use manus_core::engine::StrategySpec;
use manus_core::model::parse_iso8601_ms;
use manus_core::{Candle, Interval, SignalEngine, strategy};
use manus_exchange::ExchangeKind;
use serde_json::{Map, Value};

use crate::clock::format_ms;
use crate::config::Settings;
use crate::exit::bad_input;
use crate::store::cache::{Source, summary, sync};

/// Strategy selection and confluence flags.
#[derive(Debug, Clone, clap::Args)]
pub struct StrategyArgs {
    /// Comma-separated strategy ids and presets: trend (ema_crossover, macd, adx,
    /// bollinger_breakout, smc_bos), reversal, smc, all.
    #[arg(long, default_value = strategy::registry::DEFAULT_SELECTION)]
    pub strategies: String,
    /// How views combine: all, any, majority or weighted.
    #[arg(long, default_value = "majority")]
    pub confluence: String,
    /// Override a strategy parameter, e.g. `--param rsi_mean_reversion.period=7` (repeatable).
    #[arg(long = "param", value_name = "ID.NAME=VALUE")]
    pub params: Vec<String>,
    /// Weight of a strategy under `weighted`, e.g. `--weight macd=2` (repeatable; default 1).
    #[arg(long = "weight", value_name = "ID=W")]
    pub weights: Vec<String>,
    /// Threshold of the weighted mean score under `weighted`.
    #[arg(long, default_value_t = 0.3)]
    pub threshold: f64,
    /// A file of rule strategies whose ids become selectable (repeatable; `docs/RULES.md`).
    #[arg(long = "strategy-file", value_name = "FILE")]
    pub strategy_files: Vec<std::path::PathBuf>,
}

impl StrategyArgs {
    /// Validates the flags into strategy specs and a confluence rule.
    pub fn resolve(&self) -> anyhow::Result<(Vec<StrategySpec>, Rule)> {
        super::strategy::load_files(&self.strategy_files)?;
        let ids = strategy::parse_selection(&self.strategies)?;
        let mode: Mode = self.confluence.parse()?;
        let mut specs: Vec<StrategySpec> = ids
            .iter()
            .map(|id| StrategySpec {
                id: id.to_string(),
                params: Map::new(),
            })
            .collect();
        for p in &self.params {
            let (lhs, value) = p
                .split_once('=')
                .ok_or_else(|| bad_input(format!("--param '{p}': expected ID.NAME=VALUE")))?;
            let (id, name) = lhs
                .split_once('.')
                .ok_or_else(|| bad_input(format!("--param '{p}': expected ID.NAME=VALUE")))?;
            let spec = specs.iter_mut().find(|s| s.id == id).ok_or_else(|| {
                bad_input(format!("--param '{p}': strategy '{id}' is not selected"))
            })?;
            spec.params.insert(name.to_string(), parse_value(value));
        }
        let mut rule = Rule::new(mode, specs.len());
        rule.threshold = crate::ranges::THRESHOLD.f64(self.threshold)?;
        for w in &self.weights {
            let (id, v) = w
                .split_once('=')
                .ok_or_else(|| bad_input(format!("--weight '{w}': expected ID=W")))?;
            let idx = specs.iter().position(|s| s.id == id).ok_or_else(|| {
                bad_input(format!("--weight '{w}': strategy '{id}' is not selected"))
            })?;
            rule.weights[idx] = v
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    bad_input(format!("--weight '{w}': weight must be a number >= 0"))
                })?;
        }
        // Build once now so a bad parameter is reported before anything starts.
        SignalEngine::from_specs(&specs, rule.clone())?;
        Ok((specs, rule))
    }
}

/// Strategy flags without defaults, so a settings file can fill what was not given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StrategyFlags {
    /// Comma-separated strategy ids and presets (trend, reversal, smc, all) (default: the
    /// config's, else trend).
    #[arg(long)]
    pub strategies: Option<String>,
    /// How decisions combine: all, any, majority or weighted (default: the config's, else majority).
    #[arg(long)]
    pub confluence: Option<String>,
    /// Override a strategy parameter, e.g. `--param rsi_mean_reversion.period=7` (repeatable).
    #[arg(long = "param", value_name = "ID.NAME=VALUE")]
    pub params: Vec<String>,
    /// Weight of a strategy under `weighted`, e.g. `--weight macd=2` (repeatable; default 1).
    #[arg(long = "weight", value_name = "ID=W")]
    pub weights: Vec<String>,
    /// Threshold of the weighted mean score under `weighted` (default: the config's, else 0.3).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// A file of rule strategies whose ids become selectable (repeatable; adds to the config's
    /// `strategy_files`).
    #[arg(long = "strategy-file", value_name = "FILE")]
    pub strategy_files: Vec<std::path::PathBuf>,
}

impl StrategyArgs {
    /// The strategy flags `settings` amount to, with `flags` laid on top: a flag's selection
    /// replaces the file's, flag params and weights override the file's, and the file's params
    /// for strategies no longer selected are dropped.
    pub fn from_settings(settings: &Settings, flags: &StrategyFlags) -> StrategyArgs {
        let mut strategy_files = settings.strategy_files.clone();
        strategy_files.extend(flags.strategy_files.iter().cloned());
        // Their ids must be known to sort the file's params and weights; a bad file is
        // reported by `resolve`, which loads them again (loading is idempotent).
        let _ = super::strategy::load_files(&strategy_files);
        let file_ids: Vec<&str> = settings.strategies.iter().map(|s| s.id.as_str()).collect();
        let strategies = match (&flags.strategies, file_ids.is_empty()) {
            (Some(s), _) => s.clone(),
            (None, false) => file_ids.join(","),
            (None, true) => strategy::registry::DEFAULT_SELECTION.into(),
        };
        // An unknown id fails later, in `resolve`, with the registry's message.
        let selected: Vec<String> = strategy::parse_selection(&strategies)
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        let mut params: Vec<String> = settings
            .strategies
            .iter()
            .filter(|s| selected.contains(&s.id))
            .flat_map(|s| {
                s.params.iter().map(move |(k, v)| {
                    let json = serde_json::to_string(v).unwrap_or_else(|_| v.to_string());
                    format!("{}.{k}={json}", s.id)
                })
            })
            .collect();
        params.extend(flags.params.iter().cloned());
        let mut weights: Vec<String> = settings
            .confluence
            .weights
            .iter()
            .filter(|(id, _)| selected.contains(id))
            .map(|(id, w)| format!("{id}={w}"))
            .collect();
        weights.extend(flags.weights.iter().cloned());
        StrategyArgs {
            strategies,
            confluence: flags
                .confluence
                .clone()
                .unwrap_or_else(|| settings.confluence.mode.as_str().into()),
            params,
            weights,
            threshold: flags.threshold.unwrap_or(settings.confluence.threshold),
            strategy_files,
        }
    }
}

/// `7` → number, `true` → bool, anything else → string.
pub fn parse_value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Parses an interval flag with a clear error.
pub fn parse_interval(s: &str) -> anyhow::Result<Interval> {
    Ok(s.parse::<Interval>()?)
}

/// Loads a candle CSV, naming the file and the line on error; a `.parquet` file is read as
/// Parquet ([`crate::columnar`]).
pub fn load_csv(path: &Path, interval: Option<Interval>) -> anyhow::Result<Vec<Candle>> {
    if crate::columnar::is_parquet(path) {
        return load_parquet(path, interval);
    }
    let file =
        File::open(path).map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
    manus_core::csv::load(BufReader::with_capacity(1 << 16, file), interval)
        .with_context(|| format!("in {}", path.display()))
}

/// Loads a candle Parquet file; close times it lacks are filled as [`manus_core::csv::load`]
/// fills a CSV's.
fn load_parquet(path: &Path, interval: Option<Interval>) -> anyhow::Result<Vec<Candle>> {
    let mut out = Vec::new();
    crate::columnar::read_chunks(path, |chunk| {
        out.extend(chunk);
        true
    })
    .with_context(|| format!("in {}", path.display()))?;
    match interval {
        Some(iv) => out
            .iter_mut()
            .filter(|c| c.close_time == c.open_time)
            .for_each(|c| c.close_time = iv.close_time(c.open_time)),
        None => manus_core::csv::fill_close_times(&mut out),
    }
    Ok(out)
}

/// Checks `--interval` against the step between the file's candles: a 5m flag on a 1m file
/// would label every record wrongly. `None` when they agree or the file's step is not an
/// interval (gaps, too few candles); the message otherwise.
pub fn interval_conflict(path: &Path, given: Interval, candles: &[Candle]) -> Option<String> {
    let found = manus_core::csv::infer_interval(candles)?;
    (found != given).then(|| {
        format!(
            "--interval {given} contradicts {}, whose candles are {found} apart",
            path.display()
        )
    })
}

/// Treats a closed stdout (e.g. piped into `head`) as a normal end.
pub fn ignore_broken_pipe(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

impl Source {
    /// Validates the command-line spellings into a source (bad input → exit 2).
    pub fn from_flags(
        exchange: &str,
        symbol: &str,
        interval: Interval,
        from: &str,
        to: Option<&str>,
        rest_url: Option<&str>,
        db: Option<&str>,
    ) -> anyhow::Result<Source> {
        let exchange: ExchangeKind = exchange.parse().map_err(|e| bad_input(format!("{e}")))?;
        let symbol = symbol.trim().to_ascii_uppercase();
        if symbol.is_empty() {
            return Err(bad_input("--symbol is empty"));
        }
        let venue = exchange.venue();
        if !venue.supports(interval) {
            return Err(bad_input(format!(
                "{} has no {interval} klines",
                venue.name()
            )));
        }
        let from_ms = parse_time("--from", from)?;
        let to_ms = to.map(|t| parse_time("--to", t)).transpose()?;
        if let Some(t) = to_ms
            && from_ms >= t
        {
            return Err(bad_input(format!(
                "--from ({}) must be before --to ({})",
                format_ms(from_ms),
                format_ms(t)
            )));
        }
        Ok(Source {
            exchange,
            symbol,
            interval,
            from_ms,
            to_ms,
            rest_url: match rest_url {
                Some(u) => crate::cmd::live::parse_base_url("--rest-url", u, &["http", "https"])?,
                None => exchange.default_rest_url().to_string(),
            },
            db: db.map(str::to_string),
        })
    }
}

/// Parses a time flag: ms since the epoch, `YYYY-MM-DD` or an ISO 8601 date-time (UTC).
pub fn parse_time(flag: &str, s: &str) -> anyhow::Result<i64> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse()
            .map_err(|_| bad_input(format!("{flag} '{s}': number out of range")));
    }
    parse_iso8601_ms(t).ok_or_else(|| {
        bad_input(format!(
            "{flag} '{s}': expected YYYY-MM-DD, an ISO 8601 date-time (2024-01-31T12:00:00Z) or ms since the epoch"
        ))
    })
}

/// The candles `backtest --exchange` runs on: the range is brought into the cache (progress
/// and summary on stderr, stdout stays the backtest's), then read back from it.
pub fn load_for_backtest(
    exchange: &str,
    symbol: Option<&str>,
    interval: Option<Interval>,
    from: Option<&str>,
    to: Option<&str>,
    rest_url: Option<&str>,
    db: Option<&str>,
) -> anyhow::Result<(Vec<Candle>, Interval)> {
    let missing = |flag: &str| bad_input(format!("--exchange needs {flag}"));
    let interval = interval.ok_or_else(|| missing("--interval"))?;
    let src = Source::from_flags(
        exchange,
        symbol.ok_or_else(|| missing("--symbol"))?,
        interval,
        from.ok_or_else(|| missing("--from"))?,
        to,
        rest_url,
        db,
    )?;
    let synced = sync(&src, true)?;
    tracing::info!("{}", summary(&src, &synced));
    if synced.candles.len() < 2 {
        return Err(bad_input(format!(
            "{} candle(s) in the range; a backtest needs at least 2",
            synced.candles.len()
        )));
    }
    Ok((synced.candles, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_settings_file() {
        let s = Settings::from_toml(
            r#"
[[strategies]]
id = "ema_crossover"
params = { fast = 5, slow = 30 }

[[strategies]]
id = "macd"

[confluence]
mode = "weighted"
threshold = 0.5
weights = { ema_crossover = 2.0, macd = 1.0 }
"#,
        )
        .unwrap();
        let a = StrategyArgs::from_settings(&s, &StrategyFlags::default());
        assert_eq!(a.strategies, "ema_crossover,macd");
        assert_eq!(a.confluence, "weighted");
        assert_eq!(a.threshold, 0.5);
        assert!(a.params.contains(&"ema_crossover.fast=5".to_string()));
        let (specs, rule) = a.resolve().unwrap();
        assert_eq!(specs[0].params["slow"], serde_json::json!(30));
        assert_eq!(rule.weights, vec![2.0, 1.0]);

        let flags = StrategyFlags {
            strategies: Some("macd".into()),
            confluence: Some("all".into()),
            params: vec!["macd.fast=3".into()],
            ..StrategyFlags::default()
        };
        let a = StrategyArgs::from_settings(&s, &flags);
        let (specs, rule) = a.resolve().unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].params["fast"], serde_json::json!(3));
        assert_eq!(rule.mode, Mode::All);
        assert_eq!(
            rule.weights,
            vec![1.0],
            "file weight of a dropped strategy is ignored"
        );
    }

    #[test]
    fn parses_time_flags() {
        assert_eq!(
            parse_time("--from", "1700000000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_time("--from", "1970-01-02").unwrap(), 86_400_000);
        assert_eq!(
            parse_time("--from", "1970-01-01T00:01:00Z").unwrap(),
            60_000
        );
        assert!(parse_time("--from", "yesterday").is_err());
        assert!(parse_time("--from", "").is_err());
    }
}
