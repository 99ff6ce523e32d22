//! `stochastic`: %K crossing above %D with both below the oversold level BUYs; crossing below
//! with both above the overbought level SELLs.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Cross, Crossed, Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Indicator, Stoch};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "stochastic";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Fast %K look-back.
    pub k_period: usize,
    /// Slow %K smoothing (SMA).
    pub k_smooth: usize,
    /// %D smoothing (SMA).
    pub d_period: usize,
    /// BUY crossings must happen below this.
    pub oversold: f64,
    /// SELL crossings must happen above this.
    pub overbought: f64,
    /// Candles a view lasts after its crossover (any crossing back ends it sooner).
    pub hold: usize,
}

/// Default `hold` (reason in `docs/STRATEGIES.md`).
pub const HOLD: usize = 6;

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = StochasticCross;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::smoothing("k_period", self.k_period)?;
        params::smoothing("k_smooth", self.k_smooth)?;
        params::smoothing("d_period", self.d_period)?;
        params::levels(self.oversold, self.overbought)?;
        params::hold(self.hold)
    }
    fn build(self) -> StochasticCross {
        StochasticCross::new(self)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k_period: 14,
            k_smooth: 3,
            d_period: 3,
            oversold: 20.0,
            overbought: 80.0,
            hold: HOLD,
        }
    }
}

/// Stochastic %K/%D crossover in the extremes.
#[derive(Debug, Clone)]
pub struct StochasticCross {
    cfg: Config,
    stoch: Stoch,
    cross: Cross,
    hold: Hold,
}

impl StochasticCross {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        let stoch = Stoch::new(cfg.k_period, cfg.k_smooth, cfg.d_period);
        StochasticCross {
            hold: Hold::new(cfg.hold),
            cfg,
            stoch,
            cross: Cross::default(),
        }
    }
}

impl Strategy for StochasticCross {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let Some(s) = self.stoch.update(c) else {
            return Ok(Decision::WARMING_UP);
        };
        let Config {
            oversold,
            overbought,
            ..
        } = self.cfg;
        let crossed = self.cross.update(s.k - s.d);
        let signal = match crossed {
            Crossed::Above if s.k < oversold && s.d < oversold => {
                let score = 0.5 + 0.5 * (oversold - s.d) / oversold.max(1e-9);
                Some(Decision::new(
                    Action::Buy,
                    score,
                    Reason::new("%K", s.k, "crossed above %D <", oversold),
                ))
            }
            Crossed::Below if s.k > overbought && s.d > overbought => {
                let score = 0.5 + 0.5 * (s.d - overbought) / (100.0 - overbought).max(1e-9);
                Some(Decision::new(
                    Action::Sell,
                    -score,
                    Reason::new("%K", s.k, "crossed below %D >", overbought),
                ))
            }
            _ => None,
        };
        // %K crossing back through %D, at any level, undoes the turn the view was about.
        let undone = matches!(
            (self.hold.view(), crossed),
            (Action::Buy, Crossed::Below) | (Action::Sell, Crossed::Above)
        );
        if undone {
            self.hold.end();
        }
        let idle = Decision::hold(Reason::new("%K", s.k, "%D", s.d));
        Ok(self.hold.step(c, signal.map(Signal::new), idle))
    }
    fn reset(&mut self) {
        self.stoch.reset();
        self.cross.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.stoch.lookback() + 2
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
