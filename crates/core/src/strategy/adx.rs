//! `adx`: a strong trend (ADX above the threshold) BUYs when +DI leads and SELLs when −DI leads.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Adx, Indicator, MinusDi, PlusDi};
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
    adx: Adx,
    plus: PlusDi,
    minus: MinusDi,
    hold: Hold,
}

impl AdxTrend {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        AdxTrend {
            adx: Adx::new(cfg.period),
            plus: PlusDi::new(cfg.period),
            minus: MinusDi::new(cfg.period),
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
        let plus = self.plus.update(c);
        let minus = self.minus.update(c);
        let adx = self.adx.update(c);
        let (Some(adx), Some(plus), Some(minus)) = (adx, plus, minus) else {
            return Ok(Decision::WARMING_UP);
        };
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
        self.adx.reset();
        self.plus.reset();
        self.minus.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.adx.lookback() + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
