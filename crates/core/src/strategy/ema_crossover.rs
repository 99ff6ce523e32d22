//! `ema_crossover`: the fast EMA crossing above the slow EMA BUYs, crossing below SELLs.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Cross, Crossed, Decision, Reason, Strategy, StrategyError};
use crate::indicator::{ExpAvg, Indicator};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "ema_crossover";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Fast EMA period.
    pub fast: usize,
    /// Slow EMA period.
    pub slow: usize,
    /// Candles a view lasts after its crossover (the opposite crossover ends it sooner).
    pub hold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fast: 9,
            slow: 21,
            hold: HOLD,
        }
    }
}

/// Default `hold` (reason in `docs/STRATEGIES.md`).
pub const HOLD: usize = 12;

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = EmaCrossover;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::period("fast", self.fast)?;
        params::period("slow", self.slow)?;
        params::fast_below_slow(self.fast, self.slow)?;
        params::hold(self.hold)
    }
    fn build(self) -> EmaCrossover {
        EmaCrossover::new(self)
    }
}

/// EMA crossover.
#[derive(Debug, Clone)]
pub struct EmaCrossover {
    // TA-Lib's EMA, transcribed in-house (bit-identical to the crate's stream, cheaper).
    fast: ExpAvg,
    slow: ExpAvg,
    cross: Cross,
    hold: Hold,
}

impl EmaCrossover {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        EmaCrossover {
            fast: ExpAvg::new(cfg.fast),
            slow: ExpAvg::new(cfg.slow),
            cross: Cross::default(),
            hold: Hold::new(cfg.hold),
        }
    }
}

impl Strategy for EmaCrossover {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let fast = self.fast.update(c);
        let slow = self.slow.update(c);
        let (Some(fast), Some(slow)) = (fast, slow) else {
            return Ok(Decision::WARMING_UP);
        };
        let diff = fast - slow;
        let signal = match self.cross.update(diff) {
            Crossed::Above => Some(Decision::new(
                Action::Buy,
                1.0,
                Reason::new("EMA fast", fast, "crossed above", slow),
            )),
            Crossed::Below => Some(Decision::new(
                Action::Sell,
                -1.0,
                Reason::new("EMA fast", fast, "crossed below", slow),
            )),
            Crossed::None => None,
        };
        let idle = Decision::hold(Reason::new("EMA fast-slow", diff, "", f64::NAN));
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
    }
    fn reset(&mut self) {
        self.fast.reset();
        self.slow.reset();
        self.cross.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.fast.lookback().max(self.slow.lookback()) + 2
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
