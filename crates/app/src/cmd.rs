//! One module per subcommand.

pub mod alerts;
pub mod backtest;
pub mod candle_reader;
pub mod common;
pub mod convert;
pub mod demo;
pub mod exchange_sim;
pub mod fetch;
pub mod history;
pub mod indicators;
pub mod lab;
pub mod live;
pub mod serve;
pub mod signals;
pub mod sink;
pub mod strategy;
pub mod tail;
pub mod worker;
