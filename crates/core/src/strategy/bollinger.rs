//! `bollinger_breakout`: a close above the upper band BUYs, below the lower band SELLs.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Decision, Reason, Strategy, StrategyError};
use crate::indicator::{Bands, Indicator, Mean, Stddev};
use crate::model::{Action, Candle};

/// Strategy id.
pub const ID: &str = "bollinger_breakout";

/// Parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SMA period of the middle band.
    pub period: usize,
    /// Band width in population standard deviations.
    pub std_dev: f64,
    /// Candles a view lasts from the last close outside the bands (1: while outside).
    pub hold: usize,
}

impl Params for Config {
    const ID: &'static str = ID;
    type Strategy = BollingerBreakout;
    fn validate(&self) -> Result<(), params::ParamError> {
        params::period("period", self.period)?;
        params::num_in("std_dev", self.std_dev, 0.01, 10.0)?;
        params::hold(self.hold)
    }
    fn build(self) -> BollingerBreakout {
        BollingerBreakout::new(self)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period: 20,
            std_dev: 2.0,
            hold: 1,
        }
    }
}

/// Bollinger band breakout.
#[derive(Debug, Clone)]
pub struct BollingerBreakout {
    // TA-Lib's BBANDS is its SMA ± k·STDDEV to the bit (tested in `indicator`); the two
    // streams cost less than the crate's bands stream.
    mean: Mean,
    sigma: Stddev,
    k: f64,
    hold: Hold,
}

impl BollingerBreakout {
    /// A new strategy with these parameters.
    pub fn new(cfg: Config) -> Self {
        BollingerBreakout {
            mean: Mean::new(cfg.period),
            sigma: Stddev::new(cfg.period),
            k: cfg.std_dev,
            hold: Hold::new(cfg.hold),
        }
    }
}

impl Strategy for BollingerBreakout {
    fn id(&self) -> &'static str {
        ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        let (m, s) = (self.mean.update(c), self.sigma.update(c));
        let Some(b) = m.zip(s).map(|(m, s)| Bands::of(m, s, self.k)) else {
            return Ok(Decision::WARMING_UP);
        };
        let half_width = (b.upper - b.middle).max(f64::MIN_POSITIVE);
        let signal = if c.close > b.upper {
            let score = 0.5 + 0.5 * (c.close - b.upper) / half_width;
            Some(Decision::new(
                Action::Buy,
                score,
                Reason::new("close", c.close, "> upper", b.upper),
            ))
        } else if c.close < b.lower {
            let score = 0.5 + 0.5 * (b.lower - c.close) / half_width;
            Some(Decision::new(
                Action::Sell,
                -score,
                Reason::new("close", c.close, "< lower", b.lower),
            ))
        } else {
            None
        };
        let idle = Decision::hold(Reason::new(
            "%B",
            (c.close - b.lower) / (2.0 * half_width),
            "",
            f64::NAN,
        ));
        // A held view ends when the close is back on the other side of the middle band.
        let level = b.middle;
        Ok(self.hold.step(
            c,
            signal.map(|d| Signal::until_close_beyond(d, level)),
            idle,
        ))
    }
    fn reset(&mut self) {
        self.mean.reset();
        self.sigma.reset();
        self.hold.reset();
    }
    fn warmup(&self) -> usize {
        self.mean.lookback().max(self.sigma.lookback()) + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
}
