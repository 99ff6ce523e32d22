//! The [`Strategy`] trait, the [`Decision`] a strategy returns, and the registry of the
//! eleven built-in strategies ([`IDS`], [`build`]).
//!
//! A strategy sees closed candles one at a time and nothing else: no clock, no I/O, no
//! knowledge of whether the data is live, replayed or historical.

pub mod adx;
pub mod bollinger;
pub mod ema_crossover;
pub mod macd;
pub mod rsi;
pub mod smc;
pub mod stochastic;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::error::CoreError;
use crate::model::{Action, Candle};

/// Why a strategy said what it said, formatted only when shown: `RSI 27.40 < 30.00`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    /// What is measured, e.g. `RSI`.
    pub label: &'static str,
    /// The measured value (NaN when there is none).
    pub value: f64,
    /// The relation to `level`, e.g. `<` or `crossed above`.
    pub rel: &'static str,
    /// What it is compared with (NaN when there is none).
    pub level: f64,
}

impl Reason {
    /// A reason with a value compared against a level.
    pub const fn new(label: &'static str, value: f64, rel: &'static str, level: f64) -> Self {
        Reason {
            label,
            value,
            rel,
            level,
        }
    }
    /// A reason that is only words, e.g. `warming up`.
    pub const fn text(label: &'static str) -> Self {
        Reason {
            label,
            value: f64::NAN,
            rel: "",
            level: f64::NAN,
        }
    }
}

/// Formats a price or indicator value compactly but without hiding tiny prices.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.6}")
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)?;
        if !self.value.is_nan() {
            write!(f, " {}", fmt_num(self.value))?;
        }
        if !self.rel.is_empty() {
            write!(f, " {}", self.rel)?;
        }
        if !self.level.is_nan() {
            write!(f, " {}", fmt_num(self.level))?;
        }
        Ok(())
    }
}

/// A strategy's view of one closed candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// BUY, SELL or HOLD.
    pub action: Action,
    /// Strength of the view in [-1, 1]: positive bullish, negative bearish.
    pub score: f64,
    /// A short human reason.
    pub reason: Reason,
}

impl Decision {
    /// HOLD with no lean.
    pub const fn hold(reason: Reason) -> Self {
        Decision {
            action: Action::Hold,
            score: 0.0,
            reason,
        }
    }
    /// HOLD during warm-up.
    pub const WARMING_UP: Decision = Decision::hold(Reason::text("warming up"));
    /// A decision with its score clamped to [-1, 1].
    pub fn new(action: Action, score: f64, reason: Reason) -> Self {
        let score = if score.is_finite() {
            score.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        Decision {
            action,
            score,
            reason,
        }
    }
}

/// A strategy that could not decide on a candle; the engine isolates and counts it.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("{0}")]
pub struct StrategyError(pub String);

/// Decision logic over a stream of closed candles. Time comes only from the candle.
pub trait Strategy: Send + fmt::Debug {
    /// The strategy's id, e.g. `rsi_mean_reversion`.
    fn id(&self) -> &'static str;
    /// Consumes one closed candle, O(1) amortised.
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError>;
    /// Forgets all history.
    fn reset(&mut self);
    /// How many closed candles it needs before it can say anything but HOLD.
    fn warmup(&self) -> usize;
    /// An independent copy, used to evaluate a forming candle without committing it.
    fn clone_box(&self) -> Box<dyn Strategy>;
}

impl Clone for Box<dyn Strategy> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Every built-in strategy id, in display order.
pub const IDS: [&str; 11] = [
    rsi::ID,
    ema_crossover::ID,
    bollinger::ID,
    macd::ID,
    stochastic::ID,
    adx::ID,
    smc::BOS_ID,
    smc::CHOCH_ID,
    smc::ORDER_BLOCK_ID,
    smc::FVG_ID,
    smc::LIQUIDITY_SWEEP_ID,
];

/// Comma-separated valid ids, for error messages.
pub fn id_choices() -> String {
    IDS.join(", ")
}

/// Builds a strategy from a config type: `params` override the config's defaults by field
/// name; unknown names or wrong types are errors naming the strategy.
pub fn from_params<C, S>(
    id: &str,
    params: &Map<String, Value>,
    make: fn(C) -> S,
) -> Result<Box<dyn Strategy>, CoreError>
where
    C: Serialize + DeserializeOwned + Default,
    S: Strategy + 'static,
{
    from_params_of(id, params, make, None)
}

/// [`from_params`] for configs shared by several strategies: only the fields in `allowed` (the
/// ones this strategy reads) may be set, so a parameter another strategy owns is an error rather
/// than silently ignored.
fn from_params_of<C, S>(
    id: &str,
    params: &Map<String, Value>,
    make: fn(C) -> S,
    allowed: Option<&[&str]>,
) -> Result<Box<dyn Strategy>, CoreError>
where
    C: Serialize + DeserializeOwned + Default,
    S: Strategy + 'static,
{
    let bad = |reason: String| CoreError::BadParam {
        id: id.to_string(),
        reason,
    };
    let mut base = serde_json::to_value(C::default()).map_err(|e| bad(e.to_string()))?;
    let obj = base
        .as_object_mut()
        .ok_or_else(|| bad("config is not an object".into()))?;
    let known: Vec<String> = obj
        .keys()
        .filter(|k| allowed.is_none_or(|a| a.contains(&k.as_str())))
        .cloned()
        .collect();
    for (k, v) in params {
        if !known.contains(k) {
            return Err(bad(format!(
                "unknown parameter '{k}'; parameters: {}",
                known.join(", ")
            )));
        }
        obj.insert(k.clone(), v.clone());
    }
    let cfg: C = serde_json::from_value(base).map_err(|e| bad(e.to_string()))?;
    Ok(Box::new(make(cfg)))
}

/// The default parameters of a strategy, as JSON (for help, config files and the Lab).
pub fn default_params(id: &str) -> Result<Map<String, Value>, CoreError> {
    let v = match id {
        rsi::ID => serde_json::to_value(rsi::Config::default()),
        ema_crossover::ID => serde_json::to_value(ema_crossover::Config::default()),
        bollinger::ID => serde_json::to_value(bollinger::Config::default()),
        macd::ID => serde_json::to_value(macd::Config::default()),
        stochastic::ID => serde_json::to_value(stochastic::Config::default()),
        adx::ID => serde_json::to_value(adx::Config::default()),
        smc::BOS_ID
        | smc::CHOCH_ID
        | smc::ORDER_BLOCK_ID
        | smc::FVG_ID
        | smc::LIQUIDITY_SWEEP_ID => serde_json::to_value(smc::Config::default()),
        other => return Err(unknown(other)),
    };
    let allowed = smc::params_of(id);
    match v {
        Ok(Value::Object(mut m)) => {
            if let Some(a) = allowed {
                m.retain(|k, _| a.contains(&k.as_str()));
            }
            Ok(m)
        }
        _ => Ok(Map::new()),
    }
}

fn unknown(id: &str) -> CoreError {
    CoreError::UnknownStrategy {
        id: id.to_string(),
        choices: id_choices(),
    }
}

/// Builds the strategy `id` with `params` overriding its defaults.
pub fn build(id: &str, params: &Map<String, Value>) -> Result<Box<dyn Strategy>, CoreError> {
    match id {
        rsi::ID => from_params(id, params, rsi::RsiMeanReversion::new),
        ema_crossover::ID => from_params(id, params, ema_crossover::EmaCrossover::new),
        bollinger::ID => from_params(id, params, bollinger::BollingerBreakout::new),
        macd::ID => from_params(id, params, macd::MacdCross::new),
        stochastic::ID => from_params(id, params, stochastic::StochasticCross::new),
        adx::ID => from_params(id, params, adx::AdxTrend::new),
        smc::BOS_ID => from_params_of(id, params, smc::SmcBos::new, smc::params_of(id)),
        smc::CHOCH_ID => from_params_of(id, params, smc::SmcChoch::new, smc::params_of(id)),
        smc::ORDER_BLOCK_ID => {
            from_params_of(id, params, smc::SmcOrderBlock::new, smc::params_of(id))
        }
        smc::FVG_ID => from_params_of(id, params, smc::SmcFvg::new, smc::params_of(id)),
        smc::LIQUIDITY_SWEEP_ID => {
            from_params_of(id, params, smc::SmcLiquiditySweep::new, smc::params_of(id))
        }
        other => Err(unknown(other)),
    }
}

/// Parses a selection like `rsi_mean_reversion,macd` or `all` into ids (validated, deduplicated,
/// in the order given).
pub fn parse_selection(s: &str) -> Result<Vec<&'static str>, CoreError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("all") {
        return Ok(IDS.to_vec());
    }
    let mut out: Vec<&'static str> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id = IDS
            .iter()
            .copied()
            .find(|id| *id == part)
            .ok_or_else(|| unknown(part))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(CoreError::NoStrategies);
    }
    Ok(out)
}

/// Tracks whether `a` crossed above or below `b` between two consecutive bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cross {
    prev: Option<f64>,
}

/// The direction of a crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossed {
    /// `a - b` went from ≤ 0 to > 0.
    Above,
    /// `a - b` went from ≥ 0 to < 0.
    Below,
    /// No crossing this bar.
    None,
}

impl Cross {
    /// Feeds `a - b` for the newest bar and reports a crossing.
    pub fn update(&mut self, diff: f64) -> Crossed {
        let out = Self::classify(self.prev, diff);
        self.prev = Some(diff);
        out
    }
    /// As [`Cross::update`] without remembering `diff`.
    pub fn peek(&self, diff: f64) -> Crossed {
        Self::classify(self.prev, diff)
    }
    fn classify(prev: Option<f64>, diff: f64) -> Crossed {
        match prev {
            Some(p) if p <= 0.0 && diff > 0.0 => Crossed::Above,
            Some(p) if p >= 0.0 && diff < 0.0 => Crossed::Below,
            _ => Crossed::None,
        }
    }
    /// Forgets the previous bar.
    pub fn reset(&mut self) {
        self.prev = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_builds_with_defaults() {
        for id in IDS {
            let s = build(id, &Map::new()).unwrap();
            assert_eq!(s.id(), id);
            assert!(default_params(id).is_ok());
        }
    }

    #[test]
    fn unknown_id_and_param_are_clear_errors() {
        let e = build("rsi", &Map::new()).unwrap_err().to_string();
        assert!(
            e.contains("unknown strategy 'rsi'") && e.contains("rsi_mean_reversion"),
            "{e}"
        );
        let mut p = Map::new();
        p.insert("nope".into(), Value::from(3));
        let e = build(rsi::ID, &p).unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter 'nope'") && e.contains("period"),
            "{e}"
        );
        let e = parse_selection("macd,foo").unwrap_err().to_string();
        assert!(e.contains("'foo'"), "{e}");
        assert!(matches!(
            parse_selection(" , "),
            Err(CoreError::NoStrategies)
        ));
        assert_eq!(parse_selection("all").unwrap().len(), 11);
        assert_eq!(parse_selection("macd,macd").unwrap(), vec!["macd"]);
    }

    #[test]
    fn smc_strategies_accept_only_the_parameters_they_read() {
        let mut p = Map::new();
        p.insert("fvg_min_size_pct".into(), Value::from(0.1));
        assert!(build(smc::FVG_ID, &p).is_ok());
        let e = build(smc::BOS_ID, &p).unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter 'fvg_min_size_pct'") && e.contains("swing_length"),
            "{e}"
        );
        let keys: Vec<String> = default_params(smc::BOS_ID)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["swing_length"]);
        assert!(
            default_params(smc::LIQUIDITY_SWEEP_ID)
                .unwrap()
                .contains_key("eq_tolerance_pct")
        );
    }

    #[test]
    fn cross_detects_both_directions_once() {
        let mut x = Cross::default();
        let seq = [-1.0, -0.5, 0.5, 1.0, -1.0, 0.0, 2.0];
        let got: Vec<_> = seq.iter().map(|d| x.update(*d)).collect();
        use Crossed::*;
        assert_eq!(got, vec![None, None, Above, None, Below, None, Above]);
    }

    #[test]
    fn reason_formats_compactly() {
        assert_eq!(
            Reason::new("RSI", 27.4, "<", 30.0).to_string(),
            "RSI 27.40 < 30.00"
        );
        assert_eq!(Reason::text("warming up").to_string(), "warming up");
        assert_eq!(
            Reason::new("close", 0.00001234, ">", f64::NAN).to_string(),
            "close 0.000012 >"
        );
    }
}
