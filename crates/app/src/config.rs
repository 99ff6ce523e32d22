//! The TOML settings file shared by `lab`, `backtest` and `live` (`--config FILE`; flags
//! override it). Example:
//!
//! ```toml
//! exchange = "binanceus"
//! symbols = ["BTCUSDT"]
//! interval = "5m"
//! db = "manus.db"
//!
//! [[strategies]]
//! id = "ema_crossover"
//! params = { fast = 9, slow = 21 }
//!
//! [confluence]
//! mode = "weighted"
//! threshold = 0.3
//! weights = { ema_crossover = 2.0 }
//!
//! [backtest]
//! fee_bps = 10.0
//! slippage_bps = 0.0
//! mode = "long-only"
//!
//! [alerts]   # free-form: read by the alerts module
//! ```
//!
//! Any other top-level key is an error (a misspelt `exchnage = ...` must not be ignored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cmd::common::StrategyArgs;
use crate::exit::bad_input;

/// One selected strategy and its parameter overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyEntry {
    /// Strategy id, e.g. `ema_crossover`.
    pub id: String,
    /// Parameter overrides by name (the rest keep their defaults).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub params: toml::Table,
}

/// How strategy decisions combine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfluenceSettings {
    /// all, any, majority or weighted.
    pub mode: String,
    /// Weights under `weighted`, by strategy id (default 1).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, f64>,
    /// The `weighted` threshold.
    pub threshold: f64,
}

impl Default for ConfluenceSettings {
    fn default() -> Self {
        ConfluenceSettings {
            mode: manus_core::confluence::Mode::default().as_str().into(),
            weights: BTreeMap::new(),
            threshold: 0.3,
        }
    }
}

/// Backtest costs and exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestSettings {
    /// Fee per fill, basis points.
    pub fee_bps: f64,
    /// Slippage per fill, basis points.
    pub slippage_bps: f64,
    /// long-only or long-short.
    pub mode: String,
    /// Stop-loss distance from entry, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss_pct: Option<f64>,
    /// Take-profit distance from entry, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit_pct: Option<f64>,
    /// Starting equity, quote currency.
    pub initial_equity: f64,
    /// Close the position when the decision goes back to HOLD.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exit_on_hold: bool,
}

impl Default for BacktestSettings {
    fn default() -> Self {
        BacktestSettings {
            fee_bps: 10.0,
            slippage_bps: 0.0,
            mode: "long-only".into(),
            stop_loss_pct: None,
            take_profit_pct: None,
            initial_equity: 10_000.0,
            exit_on_hold: false,
        }
    }
}

/// The whole settings file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Exchange name: binanceus, binance, bybit or okx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    /// Symbols, e.g. `["BTCUSDT"]`; the first is the Lab's asset.
    pub symbols: Vec<String>,
    /// Kline interval, e.g. `5m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Candle CSV the Lab backtests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// Selected strategies, in order.
    pub strategies: Vec<StrategyEntry>,
    /// Confluence rule.
    pub confluence: ConfluenceSettings,
    /// Backtest costs and exits.
    pub backtest: BacktestSettings,
    /// Path of the signal store (database file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<PathBuf>,
    /// Alert notifier settings; free-form here, interpreted by the alerts module.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<toml::Value>,
    /// NATS JetStream bus to publish to (`--bus`), e.g. `nats://127.0.0.1:4222`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
}

/// Longest piece of the offending line an error quotes.
const SNIPPET: usize = 80;

/// A TOML error as `line L, column C: MESSAGE` with at most `SNIPPET` characters of the
/// offending line: the parser's own text quotes the whole line, however long.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().trim().to_string();
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[line_start..line_end];
    let col = text[line_start..start].chars().count() + 1;
    // A window of the line around the error.
    let skip = (col - 1).saturating_sub(SNIPPET / 2);
    let shown: String = line.chars().skip(skip).take(SNIPPET).collect();
    let total = line.chars().count();
    let snippet = format!(
        "{}{}{}",
        if skip > 0 { "..." } else { "" },
        shown.trim_end(),
        if skip + SNIPPET < total { "..." } else { "" }
    );
    format!(
        "line {line_no}, column {col}: {} (near `{snippet}`)",
        e.message().trim()
    )
}

impl Settings {
    /// Parses settings from TOML text.
    pub fn from_toml(text: &str) -> anyhow::Result<Settings> {
        toml::from_str(text)
            .map_err(|e| bad_input(format!("bad settings: {}", toml_error(text, &e))))
    }

    /// Reads and parses a settings file (a bad file is bad input, exit code 2).
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            bad_input(format!(
                "bad settings in {}: {}",
                path.display(),
                toml_error(&text, &e)
            ))
        })
    }

    /// Serialises to TOML text.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Writes the settings file (creating parent folders).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.to_toml()?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// The strategy flags these settings amount to, with `flags` laid on top: a flag's
    /// selection replaces the file's, flag params and weights override the file's, and the
    /// file's params for strategies no longer selected are dropped.
    pub fn strategy_args(&self, flags: &StrategyFlags) -> StrategyArgs {
        let file_ids: Vec<&str> = self.strategies.iter().map(|s| s.id.as_str()).collect();
        let strategies = match (&flags.strategies, file_ids.is_empty()) {
            (Some(s), _) => s.clone(),
            (None, false) => file_ids.join(","),
            (None, true) => manus_core::strategy::registry::DEFAULT_SELECTION.into(),
        };
        let selected: Vec<String> = manus_core::strategy::parse_selection(&strategies)
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        let mut params: Vec<String> = self
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
        let mut weights: Vec<String> = self
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
                .unwrap_or_else(|| self.confluence.mode.clone()),
            params,
            weights,
            threshold: flags.threshold.unwrap_or(self.confluence.threshold),
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
exchange = "bybit"
symbols = ["ETHUSDT"]
interval = "15m"

[[strategies]]
id = "ema_crossover"
params = { fast = 5, slow = 30 }

[[strategies]]
id = "macd"

[confluence]
mode = "weighted"
threshold = 0.5
weights = { ema_crossover = 2.0, macd = 1.0 }

[backtest]
fee_bps = 7.5
mode = "long-short"

[alerts]
telegram = { chat = "1" }
"#;

    #[test]
    fn round_trips() {
        let s = Settings::from_toml(SAMPLE).unwrap();
        assert_eq!(s.exchange.as_deref(), Some("bybit"));
        assert_eq!(s.strategies.len(), 2);
        assert_eq!(s.backtest.fee_bps, 7.5);
        assert_eq!(s.backtest.slippage_bps, 0.0, "default kept");
        assert!(s.alerts.is_some());
        let back = Settings::from_toml(&s.to_toml().unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn flags_override_the_file() {
        let s = Settings::from_toml(SAMPLE).unwrap();
        let a = s.strategy_args(&StrategyFlags::default());
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
        let a = s.strategy_args(&flags);
        let (specs, rule) = a.resolve().unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].params["fast"], serde_json::json!(3));
        assert_eq!(rule.mode, manus_core::confluence::Mode::All);
        assert_eq!(
            rule.weights,
            vec![1.0],
            "file weight of a dropped strategy is ignored"
        );
    }

    #[test]
    fn unknown_top_level_keys_are_errors() {
        for (text, key) in [
            ("exchnage = \"bybit\"", "exchnage"),
            ("[web]\nport = 8080", "web"),
        ] {
            let e = Settings::from_toml(text).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(key), "{msg}");
            assert!(msg.contains("exchange"), "names the known keys: {msg}");
            assert!(crate::exit::message(&e).contains("line 1"), "{msg}");
        }
    }

    #[test]
    fn a_huge_bad_line_is_quoted_briefly() {
        let text = format!("symbols = [\"{}\", 1 2]\n", "A".repeat(200_000));
        let e = Settings::from_toml(&text).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.len() < 400, "{} bytes: {:.200}", msg.len(), msg);
        assert!(msg.contains("line 1, column"), "{msg}");
        assert!(msg.contains("..."), "{msg}");
    }

    #[test]
    fn bad_files_are_clear() {
        let e = Settings::from_toml("[confluence]\nmood = 1").unwrap_err();
        assert!(format!("{e:#}").contains("mood"), "{e:#}");
        let e = Settings::load(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
