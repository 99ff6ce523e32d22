//! The web dashboard: `manus serve` and the `--web` side of live runs.
//!
//! Key types: [`hub::LiveHub`] (the publish side a live session feeds; bounded, never blocks),
//! [`spawn`] / [`WebServer`] (an axum server on a background task), [`routes`] (pages, `/api/...`,
//! the Server-Sent Events stream), [`metrics`] (`/metrics`, OpenMetrics text), [`auth`]
//! (loopback by default, a token for any other address) and [`assets`] (the embedded page and the
//! vendored lightweight-charts). The web side knows nothing of the live pipeline: the session
//! feeds the hub (`session::web_tap`).

pub mod assets;
pub mod auth;
pub mod conns;
pub mod hub;
pub mod metrics;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use auth::{PolicyError, check_policy};
pub use conns::ConnLimits;
pub use hub::LiveHub;
pub use metrics::WebMetrics;
pub use routes::{AppState, SharedStore};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The bind address and token break the access policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A running web server.
#[derive(Debug)]
pub struct WebServer {
    addr: SocketAddr,
    handle: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl WebServer {
    /// The bound address (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the server task ends (it runs until [`WebServer::shutdown`] or an error).
    pub async fn wait(&mut self) {
        let _ = (&mut self.handle).await;
    }

    /// Stops accepting, gives open requests a moment, then closes every connection (open
    /// event streams never end on their own).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_millis(300), &mut self.handle)
            .await
            .is_err()
        {
            self.handle.abort();
        }
    }
}

/// Checks the access policy, binds `addr` and serves the dashboard on a background task: live
/// pages from `hub`, history from `store` (503 on history endpoints when `None`), every request
/// checked against `token` when set. Connections are limited by [`ConnLimits::default`].
pub async fn spawn(
    addr: SocketAddr,
    hub: LiveHub,
    store: Option<SharedStore>,
    token: Option<String>,
) -> Result<WebServer, WebError> {
    spawn_with(addr, hub, store, token, ConnLimits::default()).await
}

/// [`spawn`] with explicit connection limits.
pub async fn spawn_with(
    addr: SocketAddr,
    hub: LiveHub,
    store: Option<SharedStore>,
    token: Option<String>,
    limits: ConnLimits,
) -> Result<WebServer, WebError> {
    check_policy(addr, token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    let metrics: Arc<WebMetrics> = Arc::default();
    let state = AppState {
        exposition: Arc::new(metrics::registry(hub.clone(), metrics.clone())),
        hub,
        store,
        token: token.map(Arc::from),
        metrics: metrics.clone(),
    };
    let app = routes::router(state);
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(conns::serve(listener, app, limits, metrics, rx));
    tracing::info!("web dashboard on http://{bound}");
    Ok(WebServer {
        addr: bound,
        handle,
        stop: Some(tx),
    })
}
