//! Flags shared by every command that runs strategies: selection, parameters, confluence.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::Path;

use anyhow::Context;
use manus_core::confluence::{Mode, Rule};
use manus_core::engine::StrategySpec;
use manus_core::{Candle, Interval, SignalEngine, strategy};
use serde_json::{Map, Value};

use crate::exit::bad_input;

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
}

impl StrategyArgs {
    /// Validates the flags into strategy specs and a confluence rule.
    pub fn resolve(&self) -> anyhow::Result<(Vec<StrategySpec>, Rule)> {
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

/// `7` → number, `true` → bool, anything else → string.
pub fn parse_value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Parses an interval flag with a clear error.
pub fn parse_interval(s: &str) -> anyhow::Result<Interval> {
    Ok(s.parse::<Interval>()?)
}

/// Loads a candle CSV, naming the file and the line on error.
pub fn load_csv(path: &Path, interval: Option<Interval>) -> anyhow::Result<Vec<Candle>> {
    let file =
        File::open(path).map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
    manus_core::csv::load(BufReader::with_capacity(1 << 16, file), interval)
        .with_context(|| format!("in {}", path.display()))
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
