//! One module per subcommand.

pub mod common;
pub mod demo;
pub mod exchange_sim;
pub mod indicators;
pub mod live;
pub mod signals;
