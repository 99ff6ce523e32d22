//! The accept loop and per-connection limits, so idle or half-open connections cannot lock
//! everyone out (before authentication, anyone can open a socket):
//!
//! - a header-read timeout: a connection gets [`ConnLimits::header_timeout`] to send a complete
//!   request head, counted from when it connected or its last response ended (so it is also the
//!   keep-alive idle timeout);
//! - a connection cap: at [`ConnLimits::max_connections`], a new connection closes the oldest
//!   idle one (no request in progress; an open event stream is a request in progress), and is
//!   refused with a 503 when every connection is busy;
//! - when `accept` fails (out of descriptors), the oldest idle connection is closed too, and the
//!   loop retries in milliseconds instead of stalling.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;
use tower_service::Service;

/// Connection limits of the web server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections held at once.
    pub max_connections: usize,
    /// Time to send a complete request head (from connect, or from the end of the last
    /// response on a kept-alive connection).
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Connection counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections open now.
    pub open: AtomicUsize,
    /// Idle connections closed to make room.
    pub evicted: AtomicU64,
    /// Connections refused because every connection was busy.
    pub refused: AtomicU64,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: AtomicU64,
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests in progress (until their response body has been sent or dropped).
    busy: AtomicUsize,
    /// When it last became idle (milliseconds since the server started).
    idle_since: AtomicU64,
    /// Set once it was chosen for closing.
    closing: AtomicBool,
    close: Notify,
}

/// The open connections.
struct Registry {
    started: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    metrics: Arc<super::WebMetrics>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Connections not already being closed.
    fn live(&self) -> usize {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns
            .values()
            .filter(|c| !c.closing.load(Ordering::Relaxed))
            .count()
    }

    /// Closes the connection idle the longest; false when every connection is busy.
    fn evict_oldest_idle(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = conns
            .values()
            .filter(|c| !c.closing.load(Ordering::Relaxed) && c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match oldest {
            Some(c) => {
                c.closing.store(true, Ordering::Relaxed);
                // A stored permit: the connection's task sees it even if not waiting yet.
                c.close.notify_one();
                self.metrics.conns.evicted.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// Marks a connection busy for as long as it lives (a request and then its response body).
struct BusyGuard {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl BusyGuard {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard { conn, registry }
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct TrackedBody {
    inner: Body,
    _guard: BusyGuard,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A tiny answer written straight to a refused socket (it never reaches the router).
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
connection: close\r\ncontent-length: 37\r\n\r\ntoo many connections; try again later\n";

/// Serves `app` on `listener` until `stop` fires, within `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    metrics: Arc<super::WebMetrics>,
    stop: oneshot::Receiver<()>,
) {
    let registry = Arc::new(Registry {
        started: Instant::now(),
        conns: Mutex::default(),
        metrics,
    });
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Most likely out of descriptors: free one, and retry soon rather than after
                // the usual second, so a flood cannot hold the server shut.
                let n = registry
                    .metrics
                    .conns
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!("web server: accept failed ({e}); closing idle connections");
                }
                registry.evict_oldest_idle();
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if registry.live() >= limits.max_connections && !registry.evict_oldest_idle() {
            registry
                .metrics
                .conns
                .refused
                .fetch_add(1, Ordering::Relaxed);
            // Best effort and never waits: a full socket buffer just gets the close.
            let _ = stream.try_write(BUSY_RESPONSE);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(registry.now_ms()),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        registry
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(next_id, conn.clone());
        registry.metrics.conns.open.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(connection(
            next_id,
            stream,
            app.clone(),
            conn,
            registry.clone(),
            limits,
            shutdown_rx.clone(),
        ));
    }
    // Stop: let open requests finish (the caller bounds how long), then drop the rest.
    let _ = shutdown_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Serves one connection until it ends, is evicted, or the server stops.
async fn connection(
    id: u64,
    stream: TcpStream,
    app: Router,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    limits: ConnLimits,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let service = {
        let conn = conn.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = BusyGuard::new(conn.clone(), registry.clone());
            let mut app = app.clone();
            async move {
                let resp = match app.call(req.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp.map(|inner| {
                    Body::new(TrackedBody {
                        inner,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let stopping = tokio::select! {
        _ = served.as_mut() => false,
        _ = conn.close.notified() => false,
        r = shutdown.wait_for(|s| *s) => r.is_ok(),
    };
    if stopping {
        served.as_mut().graceful_shutdown();
        let _ = served.await;
    }
    registry
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    registry.metrics.conns.open.fetch_sub(1, Ordering::Relaxed);
}
