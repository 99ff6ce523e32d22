//! Market Manus core: pure and synchronous. No I/O beyond reading a caller's `BufRead`, no
//! clock, no async runtime — so backtests cannot drift from live.
//!
//! Key types: [`model::Candle`], [`model::Interval`], [`indicator::Indicator`],
//! [`strategy::Strategy`], [`confluence::Rule`], [`engine::SignalEngine`] (the one call both live
//! and backtest make) and [`record::SignalRecord`] (the JSON line per closed candle).

pub mod backtest;
pub mod confluence;
pub mod csv;
pub mod engine;
pub mod error;
pub mod graph;
pub mod indicator;
pub mod model;
pub mod record;
pub mod rules;
pub mod smc;
pub mod strategy;
pub mod summary;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use engine::SignalEngine;
pub use error::CoreError;
pub use model::{Action, Candle, Interval};
