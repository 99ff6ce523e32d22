//! The `manus` application: command-line commands ([`cmd`]), the live pipeline ([`live`]), the
//! terminal dashboard ([`tui`]). `anyhow` is used only in this crate.

pub mod alerts;
pub mod cmd;
pub mod config;
pub mod exit;
pub mod live;
pub mod output;
pub mod ranges;
pub mod session;
pub mod store;
pub mod tui;
pub mod web;
