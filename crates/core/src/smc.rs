//! Smart-Money-Concepts detectors, streaming and causal.
//!
//! Every detector consumes one closed candle at a time and never revises what it reported
//! about an earlier candle: a swing point is reported only on the candle that confirms it (the
//! `swing_length`-th candle to its right), so nothing here repaints. Work per candle is bounded
//! by the configuration (`swing_length`, `max_zones`), never by the length of the history.
//!
//! - [`swing::Swings`]: confirmed swing highs and lows.
//! - [`structure::Structure`]: market structure over the swings — Break of Structure and Change
//!   of Character.
//! - [`zone::ZoneBook`]: a bounded set of price zones with retest and close-through rules,
//!   shared by order blocks and fair value gaps.
//! - [`order_block::OrderBlocks`], [`fvg::Fvgs`], [`liquidity::Liquidity`]: the three zone-like
//!   detectors behind the order-block, fair-value-gap and liquidity-sweep strategies.
//!
//! The exact definitions are in `docs/STRATEGIES.md`.

pub mod fvg;
pub mod liquidity;
pub mod order_block;
pub mod structure;
pub mod swing;
pub mod zone;

use crate::model::Action;

/// The direction of a structure break, zone or sweep: bullish or bearish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bullish: a BUY when acted on.
    Bull,
    /// Bearish: a SELL when acted on.
    Bear,
}

impl Side {
    /// BUY for bullish, SELL for bearish.
    pub fn action(self) -> Action {
        match self {
            Side::Bull => Action::Buy,
            Side::Bear => Action::Sell,
        }
    }

    /// `+1.0` for bullish, `-1.0` for bearish: the sign of a decision's score.
    pub fn sign(self) -> f64 {
        match self {
            Side::Bull => 1.0,
            Side::Bear => -1.0,
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Bull => Side::Bear,
            Side::Bear => Side::Bull,
        }
    }
}
