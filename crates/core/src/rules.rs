//! User-written strategies: a small rule language over the streaming indicators and the SMC
//! detectors, with multi-timeframe conditions (`docs/RULES.md` is the reference).
//!
//! A strategy file holds `[[strategy]]` tables ([`RuleDef`]); each expression is parsed
//! ([`parse`]), type-checked and compiled once into a flat program of streaming nodes
//! (`compile.rs`, `eval.rs`), evaluated in O(size of the expressions) per candle without
//! allocation. `on("1h", expr)` runs `expr` over higher-timeframe candles aggregated from the
//! stream ([`mtf`]). A compiled strategy is a [`RuleStrategy`], a [`crate::strategy::Strategy`]
//! like the built-ins; [`crate::strategy::registry::load_rules`] makes its id selectable.

pub(crate) mod compile;
pub(crate) mod eval;
pub mod mtf;
pub mod parse;
mod strategy;

use std::collections::BTreeSet;

use serde::Deserialize;
use thiserror::Error;

use crate::indicator::Indicator;
use crate::model::{Candle, Interval};
use crate::strategy::params::MAX_HOLD;
use crate::strategy::registry;

pub use compile::{FUNCTIONS, MAX_HISTORY, MAX_NODES};
pub use strategy::RuleStrategy;

use compile::{Compiler, Ty};

/// The nodes of a strategy's `buy`, `sell` and `score`.
pub(crate) type Roots = (eval::Ix, eval::Ix, Option<eval::Ix>);

/// Why a strategy file or one of its expressions is not valid.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum RuleError {
    /// An expression that does not parse or type-check.
    #[error("strategy '{id}', {key}, column {col}: {message}")]
    Expr {
        /// Strategy id.
        id: String,
        /// `buy`, `sell` or `score`.
        key: &'static str,
        /// 1-based column of the offending token in the expression.
        col: usize,
        /// What is wrong.
        message: String,
    },
    /// A `[[strategy]]` table with a bad id or `hold`.
    #[error("strategy '{id}': {message}")]
    Def {
        /// Strategy id (as written).
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A file that is not valid TOML or has unknown keys.
    #[error("{0}")]
    File(String),
}

/// One `[[strategy]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    /// Lower-case id, unique, not a built-in id or preset name. Leaked once when the file is
    /// loaded: [`crate::strategy::Strategy::id`] is `&'static str` and a file is loaded once.
    pub id: &'static str,
    /// When to BUY.
    pub buy: String,
    /// When to SELL.
    pub sell: String,
    /// Candles a view lasts from each candle its condition is true (1: only while true).
    pub hold: usize,
    /// Strength of a view for weighted confluence (its absolute value, at most 1).
    pub score: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    strategy: Vec<RawDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDef {
    id: String,
    buy: String,
    sell: String,
    #[serde(default = "one")]
    hold: usize,
    score: Option<String>,
}

fn one() -> usize {
    1
}

/// What `manus strategy check` prints about one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Strategy id.
    pub id: &'static str,
    /// Warm-up, in candles of the interval it was computed for.
    pub warmup: usize,
    /// The indicators and detectors used, as written (`ema(close, 50) on 1h`).
    pub uses: Vec<String>,
}

/// Parses a strategy file's text and compiles every strategy in it (so every error is found
/// now, not on the first candle).
pub fn parse_file(text: &str) -> Result<Vec<RuleDef>, RuleError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| RuleError::File(e.to_string()))?;
    if raw.strategy.is_empty() {
        return Err(RuleError::File(
            "no [[strategy]] table in the file".to_string(),
        ));
    }
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.strategy.len());
    for r in raw.strategy {
        check_id(&r.id)?;
        if !seen.insert(r.id.clone()) {
            return Err(def(&r.id, "defined twice in the file"));
        }
        if !(1..=MAX_HOLD).contains(&r.hold) {
            return Err(def(
                &r.id,
                format!("hold must be in 1..={MAX_HOLD}, got {}", r.hold),
            ));
        }
        let d = RuleDef {
            id: Box::leak(r.id.into_boxed_str()),
            buy: r.buy,
            sell: r.sell,
            hold: r.hold,
            score: r.score,
        };
        d.compile(d.hold)?;
        out.push(d);
    }
    Ok(out)
}

fn def(id: &str, message: impl Into<String>) -> RuleError {
    RuleError::Def {
        id: id.to_string(),
        message: message.into(),
    }
}

fn check_id(id: &str) -> Result<(), RuleError> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        return Err(def(
            id,
            "an id is 1 to 64 characters of a-z, 0-9 and _, starting with a letter",
        ));
    }
    if registry::IDS.contains(&id) {
        return Err(def(id, "is a built-in strategy id"));
    }
    if registry::preset(id).is_some() {
        return Err(def(id, "is a preset name"));
    }
    Ok(())
}

impl RuleDef {
    /// Compiles the strategy with this `hold`.
    pub fn compile(&self, hold: usize) -> Result<RuleStrategy, RuleError> {
        let (strategy, _) = self.compile_with_uses(hold)?;
        Ok(strategy)
    }

    fn compile_with_uses(&self, hold: usize) -> Result<(RuleStrategy, Vec<String>), RuleError> {
        let mut c = Compiler::default();
        let roots = self.compile_into(&mut c)?;
        let uses = c.uses.iter().cloned().collect();
        let def = std::sync::Arc::new(self.clone());
        Ok((RuleStrategy::new(def, c.prog, roots, hold), uses))
    }

    /// Compiles `buy`, `sell` and `score` into `c`'s program (a strategy's own, or an engine's
    /// shared graph, where identical nodes of other strategies are reused).
    pub(crate) fn compile_into(&self, c: &mut Compiler) -> Result<Roots, RuleError> {
        let buy = self.one(c, "buy", &self.buy, Ty::Bool)?;
        let sell = self.one(c, "sell", &self.sell, Ty::Bool)?;
        c.eager.extend([buy, sell]);
        let score = match &self.score {
            Some(s) => Some(self.one(c, "score", s, Ty::Num)?),
            None => None,
        };
        Ok((buy, sell, score))
    }

    fn one(
        &self,
        c: &mut Compiler,
        key: &'static str,
        src: &str,
        ty: Ty,
    ) -> Result<eval::Ix, RuleError> {
        let err = |col, message| RuleError::Expr {
            id: self.id.to_string(),
            key,
            col,
            message,
        };
        let e = parse::parse(src).map_err(|e| err(e.col, e.message))?;
        c.expect(&e, ty).map_err(|f| err(f.col, f.message))
    }

    /// The warm-up on `interval` and the indicators used, for `manus strategy check`.
    pub fn summary(&self, interval: Interval) -> Result<Summary, RuleError> {
        let (s, uses) = self.compile_with_uses(self.hold)?;
        self.check_interval(interval)?;
        Ok(Summary {
            id: self.id,
            warmup: s.warmup_at(Some(interval.duration_ms())),
            uses,
        })
    }

    /// Every `on(tf, ...)` must be a multiple of the stream's interval.
    pub fn check_interval(&self, interval: Interval) -> Result<(), RuleError> {
        let s = self.compile(self.hold)?;
        for node in &s.prog.nodes {
            if let eval::Node::On(on) = node
                && !mtf::tiles(on.tf, interval.duration_ms())
            {
                return Err(def(
                    self.id,
                    format!(
                        "on(\"{}\"): {} is not a multiple of the stream's interval ({interval})",
                        on.tf, on.tf
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// One numeric expression of the language as an [`Indicator`], e.g. `ema(rsi(close, 14), 5)`
/// or `on("1h", atr(14))`: for tests, and anywhere a derived series is wanted.
#[derive(Debug, Clone)]
pub struct Formula {
    prog: eval::Program,
    root: eval::Ix,
    lookback: usize,
}

impl Formula {
    /// Compiles a numeric expression (errors name the key `expr`).
    pub fn new(src: &str) -> Result<Self, RuleError> {
        let err = |col, message| RuleError::Expr {
            id: "formula".to_string(),
            key: "expr",
            col,
            message,
        };
        let e = parse::parse(src).map_err(|e| err(e.col, e.message))?;
        let mut c = Compiler::default();
        let root = c.expect(&e, Ty::Num).map_err(|f| err(f.col, f.message))?;
        let lookback = compile::lookbacks(&c.prog, None)[root as usize];
        Ok(Formula {
            prog: c.prog,
            root,
            lookback,
        })
    }
}

impl Indicator for Formula {
    type Output = f64;
    fn update(&mut self, c: &Candle) -> Option<f64> {
        // A timeframe the stream does not tile has no value (the strategy reports the error).
        self.prog.step(c).ok()?;
        Some(self.prog.value(self.root)).filter(|v| !v.is_nan())
    }
    fn peek(&self, c: &Candle) -> Option<f64> {
        self.clone().update(c)
    }
    fn reset(&mut self) {
        self.prog.reset();
    }
    /// Exact for expressions without `on(...)`; with it, in higher-timeframe candles.
    fn lookback(&self) -> usize {
        self.lookback
    }
}

/// `300000` → `5m`: an interval's name when it is one, else milliseconds.
pub(crate) fn fmt_ms(ms: i64) -> String {
    Interval::ALL
        .iter()
        .find(|i| i.duration_ms() == ms)
        .map_or_else(|| format!("{ms} ms"), |i| i.to_string())
}

#[cfg(test)]
mod tests;
