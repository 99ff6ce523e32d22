//! The `manus` application and its library API: [`session::LiveSession`] runs the live pipeline
//! from your own code (exchange feed, engines, store, alerts, web page; see `examples/`), the
//! command-line commands ([`cmd`]) build on it; also the live pipeline's parts ([`live`]), the
//! terminal dashboard ([`tui`]), the store ([`store`]), alerts ([`alerts`]) and the web page
//! ([`web`]). `anyhow` is used only in this crate.

pub mod alerts;
pub mod bus;
pub mod clock;
pub mod cmd;
pub mod columnar;
pub mod config;
pub mod exit;
pub mod live;
pub mod output;
pub mod ranges;
pub mod session;
pub mod stats;
pub mod store;
pub mod tui;
pub mod web;
pub mod wiring;
