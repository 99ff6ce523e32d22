//! The `manus` application: command-line commands ([`cmd`]), the live pipeline ([`live`]), the
//! terminal dashboard ([`tui`]). `anyhow` is used only in this crate.

pub mod cmd;
pub mod exit;
pub mod live;
pub mod tui;
