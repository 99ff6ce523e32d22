//! One WebSocket connection: forwards the market's frames for the streams it subscribed to,
//! answers control messages, and obeys the fault events (drop, silence, malformed frames).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::state::{Event, Shared, bump, lock, stopped};
use super::venue::{Shape, slot};

/// How often Binance connections get a server Ping (Binance global pings every 20 s).
const PING_EVERY: Duration = Duration::from_secs(20);

/// How long a write may block on a client that does not read before it is cut.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-connection state handed to the protocol's control handler.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Subscribed names (Binance streams, Bybit topics, OKX `channel:instId`), as the client
    /// spelled them.
    pub subs: BTreeSet<String>,
    /// Connection id (Bybit's `conn_id`).
    pub id: u64,
    /// Per symbol: does a subscription match it? (Recomputed on every change, so the hot path
    /// is an index, not a string lookup.)
    wanted: Vec<bool>,
}

impl ConnState {
    /// Recomputes `wanted` after `subs` changed.
    pub fn refresh(&mut self, shared: &Shared, slot: usize) {
        self.wanted = (0..shared.symbols.len())
            .map(|i| shared.name(slot, i).is_some_and(|n| self.subs.contains(n)))
            .collect();
    }
}

/// Decrements the open-connection gauge however the connection ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts incoming messages in fixed one-second windows.
#[derive(Debug, Default)]
struct Limiter {
    window: Option<tokio::time::Instant>,
    count: u32,
}

impl Limiter {
    /// Records one message; true when more than `max` arrived in the current second.
    fn over(&mut self, now: tokio::time::Instant, max: u32) -> bool {
        match self.window {
            Some(w) if now.duration_since(w) < Duration::from_secs(1) => self.count += 1,
            _ => {
                self.window = Some(now);
                self.count = 1;
            }
        }
        self.count > max
    }
}

enum Next {
    Continue,
    Close,
}

/// Serves one upgraded socket until the client leaves, a fault drops it, or the server stops.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    shape: &'static dyn Shape,
    subs: BTreeSet<String>,
) {
    let slot = slot(shape);
    bump(&shared.counters.connections_accepted);
    shared
        .counters
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let _guard = OpenGuard(shared.clone());
    let mut rx = shared.events.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut st = ConnState {
        subs,
        id: shared.next_conn.fetch_add(1, Ordering::Relaxed),
        wanted: Vec::new(),
    };
    st.refresh(&shared, slot);
    let silent = *lock(&shared.silent_until);
    if let Some(until) = silent
        && until > tokio::time::Instant::now()
        && let Next::Close = stay_silent(&shared, &mut rx, until).await
    {
        return;
    }
    let mut limiter = Limiter::default();
    // Set by a shutdown announcement: the connection closes then.
    let mut close_at: Option<tokio::time::Instant> = None;
    let ping_every = shared.drills.server_ping().unwrap_or(PING_EVERY);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    // When the unanswered server ping went out (how fast clients answer is a statistic).
    let mut ping_sent: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
                return;
            }
            ev = rx.recv() => {
                let msg = match ev {
                    Ok(Event::Klines(step)) => {
                        let quiet = shared.drills.quiet_now();
                        let frames: Vec<Utf8Bytes> = step
                            .items
                            .iter()
                            .filter(|f| st.wanted.get(f.symbol).copied().unwrap_or(false))
                            .filter(|f| !quiet.as_ref().is_some_and(|q| q.get(f.symbol).copied().unwrap_or(false)))
                            .map(|f| f.frame(&shared, slot, &step))
                            .collect();
                        if frames.is_empty() {
                            continue;
                        }
                        let n = frames.len() as u64;
                        let write = async {
                            for t in frames {
                                socket.feed(Message::Text(t)).await?;
                            }
                            socket.flush().await
                        };
                        // A client that stops reading is cut rather than stalling this task.
                        match tokio::time::timeout(SEND_TIMEOUT, write).await {
                            Ok(Ok(())) => {
                                shared.counters.frames_sent.fetch_add(n, Ordering::Relaxed);
                            }
                            Ok(Err(_)) => return,
                            Err(_) => {
                                bump(&shared.counters.connections_dropped);
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(Event::Drop) => {
                        bump(&shared.counters.connections_dropped);
                        return;
                    }
                    Ok(Event::DropCarrying(i)) => {
                        if st.wanted.get(i).copied().unwrap_or(false) {
                            bump(&shared.counters.connections_dropped);
                            return;
                        }
                        continue;
                    }
                    Ok(Event::Silent(until)) => {
                        match stay_silent(&shared, &mut rx, until).await {
                            Next::Continue => continue,
                            Next::Close => return,
                        }
                    }
                    Ok(Event::ServerShutdown(grace)) => {
                        let Some(notice) = shape.shutdown_notice(shared.clock.now()) else {
                            continue;
                        };
                        if close_at.is_none() {
                            close_at = Some(tokio::time::Instant::now() + grace);
                        }
                        bump(&shared.drills.shutdown_notices);
                        Message::Text(notice.into())
                    }
                    Ok(Event::Malformed(n)) => {
                        bump(&shared.counters.malformed_sent);
                        Message::Text(shape.malformed(n).into())
                    }
                    // A consumer too slow for the bus is cut, as real exchanges do.
                    Err(RecvError::Lagged(_)) => {
                        bump(&shared.counters.connections_dropped);
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                if socket.send(msg).await.is_err() {
                    return;
                }
                bump(&shared.counters.frames_sent);
            }
            msg = socket.recv() => {
                let counted = matches!(msg, Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))));
                let limit = shared.ws_rate_limit.filter(|_| counted && shape.rate_limited());
                if limit.is_some_and(|max| limiter.over(tokio::time::Instant::now(), max)) {
                    // Binance cuts a connection that sends more than 5 messages a second.
                    bump(&shared.counters.rate_limited);
                    return;
                }
                if let (Some(Ok(Message::Pong(_))), Some(t)) = (&msg, ping_sent) {
                    shared.drills.pong(t.elapsed());
                    ping_sent = None;
                }
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let reply = shape.control(&shared, slot, &text, &mut st);
                st.refresh(&shared, slot);
                for r in reply {
                    if socket.send(Message::Text(r.into())).await.is_err() {
                        return;
                    }
                    bump(&shared.counters.frames_sent);
                }
            }
            _ = tokio::time::sleep_until(close_at.unwrap_or_else(tokio::time::Instant::now)), if close_at.is_some() => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutdown".into() }))).await;
                return;
            }
            _ = ping.tick(), if shape.server_pings() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
                ping_sent.get_or_insert_with(tokio::time::Instant::now);
            }
        }
    }
}

/// Neither reads nor writes until `until` (so not even pongs go out), then discards the frames
/// published meanwhile — they are lost, as on a stalled exchange — but still obeys a drop.
async fn stay_silent(
    shared: &Shared,
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    mut until: tokio::time::Instant,
) -> Next {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = stopped(&mut shutdown) => return Next::Close,
        }
        let mut extended = false;
        loop {
            match rx.try_recv() {
                Ok(Event::Drop) => {
                    bump(&shared.counters.connections_dropped);
                    return Next::Close;
                }
                Ok(Event::Silent(u)) if u > until => {
                    until = u;
                    extended = true;
                }
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return Next::Close,
            }
        }
        if !extended {
            return Next::Continue;
        }
    }
}
