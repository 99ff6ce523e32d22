//! The five Smart-Money-Concepts strategies over the detectors in [`crate::smc`].
//! (Placeholder: the SMC work replaces this file; ids and config shape are fixed.)

use serde::{Deserialize, Serialize};

use super::{Decision, Strategy, StrategyError};
use crate::model::Candle;

/// Break of Structure.
pub const BOS_ID: &str = "smc_bos";
/// Change of Character.
pub const CHOCH_ID: &str = "smc_choch";
/// Order Block retest.
pub const ORDER_BLOCK_ID: &str = "smc_order_block";
/// Fair Value Gap retrace.
pub const FVG_ID: &str = "smc_fvg";
/// Liquidity Sweep.
pub const LIQUIDITY_SWEEP_ID: &str = "smc_liquidity_sweep";

/// Parameters shared by the SMC strategies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Candles on each side of a swing point; it is confirmed only after the right side closed.
    pub swing_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { swing_length: 5 }
    }
}

macro_rules! placeholder {
    ($name:ident, $id:ident) => {
        /// Placeholder SMC strategy.
        #[derive(Debug, Clone)]
        pub struct $name {
            cfg: Config,
        }
        impl $name {
            /// A new strategy with these parameters.
            pub fn new(cfg: Config) -> Self {
                $name { cfg }
            }
        }
        impl Strategy for $name {
            fn id(&self) -> &'static str {
                $id
            }
            fn on_candle(&mut self, _c: &Candle) -> Result<Decision, StrategyError> {
                Ok(Decision::WARMING_UP)
            }
            fn reset(&mut self) {}
            fn warmup(&self) -> usize {
                2 * self.cfg.swing_length + 1
            }
            fn clone_box(&self) -> Box<dyn Strategy> {
                Box::new(self.clone())
            }
        }
    };
}

placeholder!(SmcBos, BOS_ID);
placeholder!(SmcChoch, CHOCH_ID);
placeholder!(SmcOrderBlock, ORDER_BLOCK_ID);
placeholder!(SmcFvg, FVG_ID);
placeholder!(SmcLiquiditySweep, LIQUIDITY_SWEEP_ID);
