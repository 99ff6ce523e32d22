//! Drills for what real exchanges do that a plain market does not: a server announcing its
//! shutdown (Binance `serverShutdown`), streams going quiet while nothing trades, request lines
//! too long for the servers, Binance's cap of 1024 streams per connection and Bybit's 21,000
//! characters of args per connection.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::state::{Shared, bump, lock};
use std::sync::Arc;

/// Longest request line (`GET <path?query> HTTP/1.1`) served. Binance's servers are reported
/// by long-standing client libraries to refuse lines past roughly 8,000 characters (no
/// documented figure); common servers default to 8 KiB.
pub const MAX_REQUEST_LINE: usize = 8_192;

/// Streams one Binance connection may carry ("a single connection can listen to a maximum of
/// 1024 streams").
pub const MAX_STREAMS: usize = 1024;

/// Characters the subscribed args of one Bybit public connection may take ("the args array
/// length limit of 21,000 characters per connection"); counted as the JSON array of every
/// topic on the connection, quotes and commas included.
pub const BYBIT_MAX_ARGS_CHARS: usize = 21_000;

/// The length of `topics` as a JSON array of strings (`["a","b"]`).
pub(crate) fn args_chars<'a>(topics: impl Iterator<Item = &'a String>) -> usize {
    topics.map(|t| t.len() + 3).sum::<usize>().max(1) + 1
}

/// Drill state shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct Drills {
    /// Per symbol: quiet (no kline frames) until then.
    quiet: Mutex<Vec<Option<Instant>>>,
    /// Fast path: false when no symbol has ever been made quiet.
    any_quiet: AtomicBool,
    /// `serverShutdown` notices sent (one per connection).
    pub shutdown_notices: AtomicU64,
    /// Requests refused for a too long request line.
    pub urls_refused: AtomicU64,
    /// Server ping interval for connections opened from now on, ms (0: the default).
    server_ping_ms: AtomicU64,
    /// Pongs received in answer to a server ping.
    pub pongs: AtomicU64,
    /// The slowest of those answers, µs.
    pub slowest_pong_us: AtomicU64,
}

impl Drills {
    /// Makes these symbols (indices) quiet until `until`.
    pub fn quiet(&self, symbols: &[usize], n: usize, until: Instant) {
        let mut q = lock(&self.quiet);
        q.resize(n, None);
        for &i in symbols {
            if let Some(slot) = q.get_mut(i) {
                *slot = Some(until);
            }
        }
        self.any_quiet.store(true, Ordering::Release);
    }

    /// Sets the server ping interval of connections opened from now on.
    pub fn set_server_ping(&self, every: Duration) {
        let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self.server_ping_ms.store(ms, Ordering::Relaxed);
    }

    /// The server ping interval, if one was set.
    pub fn server_ping(&self) -> Option<Duration> {
        match self.server_ping_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Records the answer to a server ping sent `after` ago.
    pub fn pong(&self, after: Duration) {
        bump(&self.pongs);
        let us = u64::try_from(after.as_micros()).unwrap_or(u64::MAX);
        self.slowest_pong_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Which symbols are quiet now, or `None` when none is (the common case costs one load).
    pub fn quiet_now(&self) -> Option<Vec<bool>> {
        if !self.any_quiet.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let q = lock(&self.quiet);
        let mask: Vec<bool> = q.iter().map(|u| u.is_some_and(|u| u > now)).collect();
        mask.contains(&true).then_some(mask)
    }
}

/// Refuses a request whose request line is longer than [`MAX_REQUEST_LINE`] with HTTP 414, as
/// a real server does before any route (WebSocket handshakes included) sees it.
pub(crate) async fn request_line_limit(
    State(s): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1".len();
    if line > MAX_REQUEST_LINE {
        bump(&s.drills.urls_refused);
        return (
            StatusCode::URI_TOO_LONG,
            format!("request line of {line} characters; at most {MAX_REQUEST_LINE}"),
        )
            .into_response();
    }
    next.run(req).await
}
