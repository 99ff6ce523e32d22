//! `rsi_mean_reversion`: RSI below the oversold level BUYs, above the overbought level SELLs.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Indicator, Rsi};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "rsi_mean_reversion";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// RSI period.
    pub period: usize,
    /// BUY below this.
    pub oversold: f64,
    /// SELL above this.
    pub overbought: f64,
    /// Candles a view lasts from the last candle beyond a level (1: while beyond it).
    pub hold: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period: 14,
            oversold: 30.0,
            overbought: 70.0,
            hold: 1,
        }
    }
}

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = RsiMeanReversion;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::period("period", self.period)?;
        params::levels(self.oversold, self.overbought)?;
        params::hold(self.hold)
    }
    fn build(self) -> RsiMeanReversion {
        RsiMeanReversion::new(self)
    }
}

/// RSI mean reversion.
#[derive(Debug, Clone)]
pub struct RsiMeanReversion {
    cfg: Config,
    rsi: Rsi,
    hold: Hold,
}

impl RsiMeanReversion {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        RsiMeanReversion {
            rsi: Rsi::new(cfg.period),
            hold: Hold::new(cfg.hold),
            cfg,
        }
    }
}

impl Strategy for RsiMeanReversion {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let Some(rsi) = self.rsi.update(c) else {
            return Ok(Decision::WARMING_UP);
        };
        let Config {
            oversold,
            overbought,
            ..
        } = self.cfg;
        let signal = if rsi < oversold {
            // Depth below the level, scaled so RSI 0 is a full-strength view.
            let score = 0.5 + 0.5 * (oversold - rsi) / oversold.max(1e-9);
            Some(Decision::new(
                Action::Buy,
                score,
                Reason::new("RSI", rsi, "<", oversold),
            ))
        } else if rsi > overbought {
            let score = 0.5 + 0.5 * (rsi - overbought) / (100.0 - overbought).max(1e-9);
            Some(Decision::new(
                Action::Sell,
                -score,
                Reason::new("RSI", rsi, ">", overbought),
            ))
        } else {
            None
        };
        let idle = Decision::hold(Reason::new("RSI", rsi, "neutral", f64::NAN));
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
    }
    fn reset(&mut self) {
        self.rsi.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.rsi.lookback() + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
