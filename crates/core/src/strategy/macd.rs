//! `macd`: the MACD line crossing above its signal line BUYs, crossing below SELLs.

use serde::{Deserialize, Serialize};

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fast: 12,
            slow: 26,
            signal: 9,
        }
    }
}

/// MACD signal-line crossover.
#[derive(Debug, Clone)]
pub struct MacdCross {
    macd: Macd,
    cross: Cross,
}

impl MacdCross {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        MacdCross {
            macd: Macd::new(cfg.fast, cfg.slow, cfg.signal),
            cross: Cross::default(),
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
        Ok(match self.cross.update(m.hist) {
            Crossed::Above => Decision::new(
                Action::Buy,
                1.0,
                Reason::new("MACD", m.macd, "crossed above", m.signal),
            ),
            Crossed::Below => Decision::new(
                Action::Sell,
                -1.0,
                Reason::new("MACD", m.macd, "crossed below", m.signal),
            ),
            Crossed::None => Decision::hold(Reason::new("MACD hist", m.hist, "", f64::NAN)),
        })
    }
    fn reset(&mut self) {
        self.macd.reset();
        self.cross.reset();
    }
    fn warmup(&self) -> usize {
        self.macd.lookback() + 2
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
