//! `rsi_mean_reversion`: RSI below the oversold level BUYs, above the overbought level SELLs.

use serde::{Deserialize, Serialize};

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period: 14,
            oversold: 30.0,
            overbought: 70.0,
        }
    }
}

/// RSI mean reversion.
#[derive(Debug, Clone)]
pub struct RsiMeanReversion {
    cfg: Config,
    rsi: Rsi,
}

impl RsiMeanReversion {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        RsiMeanReversion {
            rsi: Rsi::new(cfg.period),
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
        Ok(if rsi < oversold {
            // Depth below the level, scaled so RSI 0 is a full-strength view.
            let score = 0.5 + 0.5 * (oversold - rsi) / oversold.max(1e-9);
            Decision::new(Action::Buy, score, Reason::new("RSI", rsi, "<", oversold))
        } else if rsi > overbought {
            let score = 0.5 + 0.5 * (rsi - overbought) / (100.0 - overbought).max(1e-9);
            Decision::new(
                Action::Sell,
                -score,
                Reason::new("RSI", rsi, ">", overbought),
            )
        } else {
            Decision::hold(Reason::new("RSI", rsi, "in", f64::NAN))
        })
    }
    fn reset(&mut self) {
        self.rsi.reset();
    }
    fn warmup(&self) -> usize {
        self.rsi.lookback() + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
