//! `adx`: a strong trend (ADX above the threshold) BUYs when +DI leads and SELLs when −DI leads.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Dmi, Indicator};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "adx";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// ADX and DI period.
    pub period: usize,
    /// Minimum ADX for a trend.
    pub threshold: f64,
    /// Candles a view lasts from the last candle of a strong trend (1: while strong).
    pub hold: usize,
}

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = AdxTrend;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::period("period", self.period)?;
        params::num_in("threshold", self.threshold, 0.0, 100.0)?;
        params::hold(self.hold)
    }
    fn build(self) -> AdxTrend {
        AdxTrend::new(self)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period: 14,
            threshold: 25.0,
            hold: 1,
        }
    }
}

/// ADX trend strength with DI direction.
#[derive(Debug, Clone)]
pub struct AdxTrend {
    cfg: Config,
    dmi: Dmi,
    hold: Hold,
}

impl AdxTrend {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        AdxTrend {
            dmi: Dmi::new(cfg.period),
            hold: Hold::new(cfg.hold),
            cfg,
        }
    }
}

impl Strategy for AdxTrend {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let Some(v) = self.dmi.update(c) else {
            return Ok(Decision::WARMING_UP);
        };
        let (adx, plus, minus) = (v.adx, v.plus_di, v.minus_di);
        let t = self.cfg.threshold;
        let strength = 0.5 + 0.5 * ((adx - t) / (100.0 - t).max(1e-9)).min(1.0);
        let signal = if adx > t && plus > minus {
            Some(Decision::new(
                Action::Buy,
                strength,
                Reason::new("ADX", adx, "> threshold, +DI leads", t),
            ))
        } else if adx > t && minus > plus {
            Some(Decision::new(
                Action::Sell,
                -strength,
                Reason::new("ADX", adx, "> threshold, -DI leads", t),
            ))
        } else {
            None
        };
        let idle = Decision::hold(Reason::new("ADX", adx, "<=", t));
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
    }
    fn reset(&mut self) {
        self.dmi.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.dmi.lookback() + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
