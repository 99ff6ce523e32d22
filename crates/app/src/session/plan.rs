//! [`Plan`]: a checked live run, what every command and the builder turn their settings into.

use std::net::SocketAddr;
use std::path::PathBuf;

use manus_core::SignalEngine;
use manus_exchange::feed::FeedConfig;

use crate::live::PipelineConfig;
use crate::live::run::RecordFn;
use crate::wiring::StoreTarget;

/// A checked `--web` request.
#[derive(Debug)]
pub struct WebPlan {
    /// Where to bind.
    pub addr: SocketAddr,
    /// The token, if any.
    pub token: Option<String>,
    /// Called once with the dashboard's URL (`http://ADDR`) when it listens.
    pub on_ready: Option<WebReadyFn>,
}

/// Receives the dashboard's URL once it listens (the real port when asked for port 0).
pub struct WebReadyFn(pub Box<dyn FnOnce(&str) + Send>);

impl std::fmt::Debug for WebReadyFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebReadyFn")
    }
}

/// A validated run: what to connect to and what to compute.
#[derive(Debug)]
pub struct Plan {
    /// The feed's configuration.
    pub feed: FeedConfig,
    /// Engine template cloned per stream.
    pub engine: SignalEngine,
    /// Pipeline tunables.
    pub pipeline: PipelineConfig,
    /// JSON lines instead of the dashboard.
    pub headless: bool,
    /// Records file.
    pub signals_out: Option<PathBuf>,
    /// Store and alerts (`--db`), if any.
    pub store: Option<StoreTarget>,
    /// Serve the web dashboard from this run (`--web`).
    pub web: Option<WebPlan>,
    /// Dashboard title.
    pub title: String,
    /// Records go to this callback instead of stdout or a file (library use).
    pub on_record: Option<RecordFn>,
    /// Also publish candles and records to this bus (`--bus`).
    pub bus: Option<crate::bus::BusTarget>,
}
