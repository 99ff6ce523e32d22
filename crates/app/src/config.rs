//! The TOML settings file shared by `lab`, `backtest` and `live` (`--config FILE`; flags
//! override it). Example:
//!
//! ```toml
//! exchange = "binanceus"
//! symbols = ["BTCUSDT"]
//! interval = "5m"
//! db = "manus.db"
//!
//! strategy_files = ["my_rules.toml"]   # rule strategies (docs/RULES.md), relative to this file
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
//! Values arrive typed (`exchange`, `interval`, `[confluence] mode`, `[backtest] mode` through
//! their own parsers, `threshold` checked against [`crate::ranges`]), so a bad value is an
//! error naming its line, not a string some command trips over later. This module knows no
//! command: `cmd` turns [`Settings`] into its flags, not the other way round.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use manus_core::Interval;
use manus_core::backtest::PositionMode;
use manus_core::confluence::Mode;
use manus_exchange::ExchangeKind;
use manus_exchange::venue::UnknownExchange;
use serde::{Deserialize, Serialize};

/// Why a settings file could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid settings: bad TOML, an unknown key, a value of the wrong type or out of range.
    #[error("bad settings{}: {detail}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// `line L, column C: what` (see [`toml_error`]).
        detail: String,
    },
    /// The file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings could not be serialised (a value TOML cannot hold).
    #[error("cannot serialise the settings: {0}")]
    Serialize(#[from] toml::ser::Error),
}

impl ConfigError {
    /// Whether the user's input is at fault (exit code 2), not the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ConfigError::Read { .. } | ConfigError::Parse { .. })
    }
}

/// The exchange a settings file names: a registered exchange, or `sim`, the built-in simulated
/// exchange the Lab's real-time test runs offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeChoice {
    /// A registered exchange.
    Venue(ExchangeKind),
    /// The built-in simulated exchange (the Lab only).
    Sim,
}

impl ExchangeChoice {
    /// The Lab's name for the built-in simulated exchange.
    pub const SIM: &'static str = "sim";

    /// The name as written in settings and flags.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeChoice::Venue(k) => k.as_str(),
            ExchangeChoice::Sim => Self::SIM,
        }
    }
}

impl Default for ExchangeChoice {
    fn default() -> Self {
        ExchangeChoice::Venue(ExchangeKind::BinanceUs)
    }
}

impl fmt::Display for ExchangeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExchangeChoice {
    type Err = UnknownExchange;
    fn from_str(s: &str) -> Result<Self, UnknownExchange> {
        if s.trim().eq_ignore_ascii_case(Self::SIM) {
            return Ok(ExchangeChoice::Sim);
        }
        s.parse()
            .map(ExchangeChoice::Venue)
            .map_err(|e: UnknownExchange| UnknownExchange {
                valid: format!("{}, {}", e.valid, Self::SIM),
                ..e
            })
    }
}

/// Serde through a type's own `FromStr` and `Display`, so a file accepts exactly what the flag
/// does and a bad value gets the flag's error text (with the file's line added by `toml`).
mod via_str {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }

    /// The same for an optional value (absent keys stay `None` through `#[serde(default)]`).
    pub mod opt {
        use super::*;

        pub fn serialize<T: Display, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
        where
            T: FromStr<Err: Display>,
            D: Deserializer<'de>,
        {
            super::deserialize(d).map(Some)
        }
    }
}

/// The weighted threshold, checked against [`crate::ranges::THRESHOLD`] as it is read.
fn threshold<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    crate::ranges::THRESHOLD
        .f64(v)
        .map_err(serde::de::Error::custom)
}

/// One selected strategy and its parameter overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyEntry {
    /// Strategy id, e.g. `ema_crossover`.
    pub id: String,
    /// Parameter overrides by name (the rest keep their defaults; the strategy's own `Config`
    /// checks them when the engine is built).
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub params: toml::Table,
}

/// How strategy decisions combine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfluenceSettings {
    /// all, any, majority or weighted.
    #[serde(with = "via_str")]
    pub mode: Mode,
    /// Weights under `weighted`, by strategy id (default 1).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, f64>,
    /// The `weighted` threshold.
    #[serde(deserialize_with = "threshold")]
    pub threshold: f64,
}

impl Default for ConfluenceSettings {
    fn default() -> Self {
        ConfluenceSettings {
            mode: Mode::default(),
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
    #[serde(with = "via_str")]
    pub mode: PositionMode,
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
            mode: PositionMode::LongOnly,
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
    /// Exchange: binanceus, binance, bybit, okx, or sim (the Lab's built-in simulator).
    #[serde(with = "via_str::opt", skip_serializing_if = "Option::is_none")]
    pub exchange: Option<ExchangeChoice>,
    /// Symbols, e.g. `["BTCUSDT"]`; the first is the Lab's asset.
    pub symbols: Vec<String>,
    /// Kline interval, e.g. `5m`.
    #[serde(with = "via_str::opt", skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// Candle CSV the Lab backtests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// Files of rule strategies whose ids become selectable (relative to the settings file).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strategy_files: Vec<PathBuf>,
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
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Self::parse(text, None)
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.map(Path::to_path_buf),
            detail: toml_error(text, &e),
        })
    }

    /// Reads and parses a settings file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut s = Self::parse(&text, Some(path))?;
        // Strategy files are named relative to the settings file.
        let dir = path.parent().unwrap_or(Path::new(""));
        for f in &mut s.strategy_files {
            if f.is_relative() {
                *f = dir.join(&*f);
            }
        }
        Ok(s)
    }

    /// Serialises to TOML text.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Writes the settings file (creating parent folders).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let write = |source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        std::fs::write(path, self.to_toml()?).map_err(write)
    }
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
    fn round_trips_typed_values() {
        let s = Settings::from_toml(SAMPLE).unwrap();
        assert_eq!(s.exchange, Some(ExchangeChoice::Venue(ExchangeKind::Bybit)));
        assert_eq!(s.interval, Some(Interval::M15));
        assert_eq!(s.confluence.mode, Mode::Weighted);
        assert_eq!(s.backtest.mode, PositionMode::LongShort);
        assert_eq!(s.strategies.len(), 2);
        assert_eq!(s.backtest.fee_bps, 7.5);
        assert_eq!(s.backtest.slippage_bps, 0.0, "default kept");
        assert!(s.alerts.is_some());
        let text = s.to_toml().unwrap();
        assert!(text.contains("interval = \"15m\""), "{text}");
        let back = Settings::from_toml(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn sim_is_an_exchange_choice() {
        let s = Settings::from_toml("exchange = \"sim\"").unwrap();
        assert_eq!(s.exchange, Some(ExchangeChoice::Sim));
        assert_eq!(Settings::from_toml(&s.to_toml().unwrap()).unwrap(), s);
    }

    /// Each bad value is a parse error naming its line and what was wrong.
    #[test]
    fn bad_values_are_parse_errors_with_their_line() {
        struct Case {
            text: &'static str,
            names: &'static str,
        }
        let cases = [
            Case {
                text: "symbols = []\nexchange = \"kraken\"",
                names: "kraken",
            },
            Case {
                text: "symbols = []\ninterval = \"7m\"",
                names: "7m",
            },
            Case {
                text: "symbols = []\n[confluence]\nmode = \"most\"",
                names: "most",
            },
            Case {
                text: "symbols = []\n[backtest]\nmode = \"short-only\"",
                names: "short-only",
            },
            Case {
                text: "symbols = []\n[confluence]\nthreshold = 1.5",
                names: "threshold",
            },
        ];
        for c in cases {
            let e = Settings::from_toml(c.text).unwrap_err();
            let ConfigError::Parse { path, detail } = &e else {
                panic!("{}: not a parse error: {e:?}", c.text);
            };
            assert_eq!(path, &None);
            assert!(e.is_bad_input());
            let line = c.text.lines().count();
            assert!(detail.contains(&format!("line {line}")), "{detail}");
            assert!(detail.contains(c.names), "{detail}");
        }
    }

    #[test]
    fn unknown_top_level_keys_are_errors() {
        for (text, key) in [
            ("exchnage = \"bybit\"", "exchnage"),
            ("[web]\nport = 8080", "web"),
        ] {
            let e = Settings::from_toml(text).unwrap_err();
            let ConfigError::Parse { detail, .. } = &e else {
                panic!("not a parse error: {e:?}");
            };
            assert!(detail.contains(key), "{detail}");
            assert!(
                detail.contains("exchange"),
                "names the known keys: {detail}"
            );
            assert!(detail.contains("line 1"), "{detail}");
        }
    }

    #[test]
    fn a_huge_bad_line_is_quoted_briefly() {
        let text = format!("symbols = [\"{}\", 1 2]\n", "A".repeat(200_000));
        let e = Settings::from_toml(&text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.len() < 400, "{} bytes: {:.200}", msg.len(), msg);
        assert!(msg.contains("line 1, column"), "{msg}");
        assert!(msg.contains("..."), "{msg}");
    }

    #[test]
    fn bad_files_are_clear() {
        let e = Settings::from_toml("[confluence]\nmood = 1").unwrap_err();
        assert!(
            matches!(&e, ConfigError::Parse { detail, .. } if detail.contains("mood")),
            "{e}"
        );
        let e = Settings::load(Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(e.is_bad_input());
    }
}
