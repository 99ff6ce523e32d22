//! The [`Strategy`] trait, the [`Decision`] (a *view* with an *event* flag) a strategy returns,
//! and the registry of built-in strategies and presets ([`registry`]: [`IDS`], [`build`],
//! [`parse_selection`]).
//!
//! A strategy sees closed candles one at a time and nothing else: no clock, no I/O, no
//! knowledge of whether the data is live, replayed or historical.

pub mod adx;
pub mod bollinger;
pub mod ema_crossover;
pub mod hold;
pub mod macd;
pub mod params;
pub mod registry;
pub mod rsi;
pub mod smc;
pub mod stochastic;

use std::fmt;

use thiserror::Error;

use crate::graph::{Graph, GraphBuilder};
use crate::model::{Action, Candle};

pub use hold::Hold;
pub use params::Params;
pub use registry::{
    Entry, IDS, PRESETS, Preset, REGISTRY, build, default_params, id_choices, load_rules,
    parse_selection,
};

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

/// A strategy's view after one closed candle: BUY, SELL or none (HOLD), and whether the view
/// began on this candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The view: BUY, SELL or HOLD (no view).
    pub action: Action,
    /// Strength of the view in [-1, 1]: positive bullish, negative bearish.
    pub score: f64,
    /// A short human reason.
    pub reason: Reason,
    /// True when the view began on this candle (it was none or the opposite before).
    pub event: bool,
}

impl Decision {
    /// HOLD with no lean.
    pub const fn hold(reason: Reason) -> Self {
        Decision {
            action: Action::Hold,
            score: 0.0,
            reason,
            event: false,
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
            event: false,
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
    /// Moves the strategy's streaming nodes into an engine's shared graph (reusing identical
    /// ones other strategies added) and returns true; from then on the engine steps the graph
    /// once per candle and calls [`Strategy::decide`] instead of [`Strategy::on_candle`], and
    /// [`Strategy::reset`] forgets only the strategy's own state. Only a strategy that has seen
    /// no candle may share. The default keeps everything private.
    fn share(&mut self, _graph: &mut GraphBuilder) -> bool {
        false
    }
    /// Once the engine's graph is finished, which reorders its nodes for stepping: takes each
    /// node index [`Strategy::share`] got to its final place ([`Graph::place`]). The default,
    /// for strategies that keep no index, does nothing.
    fn placed(&mut self, _graph: &Graph) {}
    /// Decides on a closed candle once the engine stepped its graph over it. The default, for
    /// strategies that do not share, is [`Strategy::on_candle`].
    fn decide(&mut self, c: &Candle, _graph: &Graph) -> Result<Decision, StrategyError> {
        self.on_candle(c)
    }
}

impl Clone for Box<dyn Strategy> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
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
