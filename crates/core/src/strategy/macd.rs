//! `macd`: the MACD line crossing above its signal line BUYs, crossing below SELLs.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Cross, Crossed, Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Indicator, Macd};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "macd";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Fast EMA period.
    pub fast: usize,
    /// Slow EMA period.
    pub slow: usize,
    /// Signal EMA period.
    pub signal: usize,
    /// Candles a view lasts after its crossover (the opposite crossover ends it sooner).
    pub hold: usize,
}

/// Default `hold` (reason in `docs/STRATEGIES.md`).
pub const HOLD: usize = 12;

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = MacdCross;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::period("fast", self.fast)?;
        params::period("slow", self.slow)?;
        params::smoothing("signal", self.signal)?;
        params::fast_below_slow(self.fast, self.slow)?;
        params::hold(self.hold)
    }
    fn build(self) -> MacdCross {
        MacdCross::new(self)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fast: 12,
            slow: 26,
            signal: 9,
            hold: HOLD,
        }
    }
}

/// MACD signal-line crossover.
#[derive(Debug, Clone)]
pub struct MacdCross {
    macd: Macd,
    cross: Cross,
    hold: Hold,
}

impl MacdCross {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        MacdCross {
            macd: Macd::new(cfg.fast, cfg.slow, cfg.signal),
            cross: Cross::default(),
            hold: Hold::new(cfg.hold),
        }
    }
}

impl Strategy for MacdCross {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let Some(m) = self.macd.update(c) else {
            return Ok(Decision::WARMING_UP);
        };
        let signal = match self.cross.update(m.hist) {
            Crossed::Above => Some(Decision::new(
                Action::Buy,
                1.0,
                Reason::new("MACD", m.macd, "crossed above", m.signal),
            )),
            Crossed::Below => Some(Decision::new(
                Action::Sell,
                -1.0,
                Reason::new("MACD", m.macd, "crossed below", m.signal),
            )),
            Crossed::None => None,
        };
        let idle = Decision::hold(Reason::new("MACD hist", m.hist, "", f64::NAN));
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
    }
    fn reset(&mut self) {
        self.macd.reset();
        self.cross.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.macd.lookback() + 2
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
