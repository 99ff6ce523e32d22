//! One WebSocket connection as a task: connect, subscribe, read, ping, and pass parsed klines
//! on: straight to the consumer when the stream's lane allows it (see [`super::lanes`]), else
//! to the driver over a bounded channel. A full channel is never waited on (that would stall
//! the socket): the kline is dropped and a [`ConnEvent::Lost`] marker follows, which the driver
//! treats as a gap to backfill.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

use super::keepalive::Keepalive;
use super::lanes::{Direct, Sample, SharedLanes};
use super::pacer::Pacer;
use super::wire::{Control, Lookup, WsKline};
use super::{CloseReason, FeedCounters, FeedEvent};
use crate::venue::Venue;

/// The socket's read buffer. tungstenite zero-fills the free part of its read buffer, up to
/// this size, before every read of the socket — the read that brings a frame and the one
/// after it that finds nothing. At its default of 128 KiB that was a 128 KiB memset per read
/// on the candle thread, about a third of all the instructions of a one-stream demo
/// (callgrind, 100 candles), and the one before each frame came after the wake-up and before
/// the frame was parsed. Frames are ~0.4 KB; a close burst of 1,024 streams (~450 KB) takes
/// more, smaller reads, which cost little beside parsing them.
const READ_BUFFER: usize = 8 * 1024;

/// What a connection task reports.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// Connected and subscribed.
    Connected {
        /// Connection id.
        id: u64,
    },
    /// A kline update.
    Kline {
        /// The update.
        kline: WsKline,
        /// When it was read.
        received_at: std::time::Instant,
    },
    /// Klines were dropped because the channel was full.
    Lost {
        /// Connection id.
        id: u64,
    },
    /// The server announced it is going away (Binance `serverShutdown`).
    ServerShutdown {
        /// Connection id.
        id: u64,
    },
    /// The exchange reported an error on the socket.
    ExchangeMessage {
        /// Connection id.
        id: u64,
        /// The message.
        msg: String,
    },
    /// The connection ended (or never started).
    Closed {
        /// Connection id.
        id: u64,
        /// Why.
        reason: CloseReason,
    },
}

/// Everything a connection needs.
#[derive(Clone)]
pub(crate) struct ConnParams {
    /// The exchange's protocol.
    pub venue: &'static dyn Venue,
    /// Full socket URL.
    pub url: String,
    /// Frames to send after connecting.
    pub subscribe: Vec<String>,
    /// Stream name → index.
    pub lookup: Arc<Lookup>,
    /// Pings, subscription pacing and the silence timeout.
    pub keepalive: Keepalive,
    /// Shared counters.
    pub counters: Arc<FeedCounters>,
    /// Where events for the driver go.
    pub tx: mpsc::Sender<ConnEvent>,
    /// The streams' ordering state, shared with the driver.
    pub lanes: SharedLanes,
    /// The consumer's channel, for klines that need no driver.
    pub out: mpsc::Sender<FeedEvent>,
    /// Connection attempts, paced within the exchange's limit (shared by every shard).
    pub pacer: Pacer,
}

/// A running connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    /// Connection id.
    pub id: u64,
    /// When it reported `Connected`.
    pub connected_at: Option<Instant>,
    stop: Option<oneshot::Sender<()>>,
}

impl ConnHandle {
    /// Asks the task to close the socket gracefully; it reports `Closed` and ends on its own.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ConnHandle {
    fn drop(&mut self) {
        // Also reached when the driver itself is dropped or aborted: no socket outlives it.
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a connection task.
pub(crate) fn spawn(id: u64, p: ConnParams) -> ConnHandle {
    let (stop_tx, stop_rx) = oneshot::channel();
    let tx = p.tx.clone();
    tokio::spawn(async move {
        let reason = run(id, p, stop_rx).await;
        debug!(id, %reason, "connection ended");
        let _ = tx.send(ConnEvent::Closed { id, reason }).await;
    });
    ConnHandle {
        id,
        connected_at: None,
        stop: Some(stop_tx),
    }
}

/// Runs one connection to its end; returns why it ended.
async fn run(id: u64, p: ConnParams, mut stop: oneshot::Receiver<()>) -> CloseReason {
    // TCP_NODELAY: pongs and pings go out at once instead of waiting for an ACK.
    let ka = p.keepalive;
    tokio::select! {
        _ = &mut stop => return CloseReason::Stopped,
        _ = p.pacer.wait() => {}
    }
    let connect = tokio::time::timeout(
        ka.silence,
        tokio_tungstenite::connect_async_with_config(
            p.url.as_str(),
            Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER)),
            true,
        ),
    );
    let mut ws = tokio::select! {
        _ = &mut stop => return CloseReason::Stopped,
        r = connect => match r {
            Err(_) => return CloseReason::ConnectTimeout { url: p.url.clone() },
            Ok(Err(e)) => return CloseReason::Connect { url: p.url.clone(), error: e.to_string() },
            Ok(Ok((ws, _))) => ws,
        },
    };
    // Subscriptions go out paced (Binance counts them against 5 messages a second) while the
    // socket is read, so the first streams flow before the last are asked for.
    let mut to_send = p.subscribe.iter();
    let mut next_send = to_send.next();
    let mut send_at = Instant::now();
    let mut acks = 0usize;
    // Subscribed by URL alone, the stream is live now; else once every message is
    // acknowledged (or a push arrives after the last was sent, whichever is first).
    let mut announced = p.subscribe.is_empty();
    if announced && p.tx.send(ConnEvent::Connected { id }).await.is_err() {
        return CloseReason::Gone("driver");
    }
    // The first ping goes out at once: its pong tells early whether the server answers pings.
    let mut ping = tokio::time::interval(ka.ping_every);
    let mut last_frame = Instant::now();
    // Whether the server answered a ping of ours: until then, a quiet connection gets until
    // the server's own next ping (see `super::keepalive`).
    let mut answered = false;
    // One timer for the silence watchdog, re-armed only when it fires early: re-arming it on
    // every frame would touch the timer wheel on the latency path.
    let silence = tokio::time::sleep_until(last_frame + ka.silence_for(answered));
    tokio::pin!(silence);
    let mut lost = false;
    let mut buf: Vec<WsKline> = Vec::with_capacity(4);
    loop {
        let msg = tokio::select! {
            _ = &mut stop => {
                let _ = ws.close(None).await;
                return CloseReason::Stopped;
            }
            _ = tokio::time::sleep_until(send_at), if next_send.is_some() => {
                let Some(m) = next_send.take() else { continue };
                if let Err(e) = ws.send(Message::text(m.as_str())).await {
                    return CloseReason::Send { what: "subscribe", error: e.to_string() };
                }
                next_send = to_send.next();
                send_at = Instant::now() + ka.subscribe_every;
                continue;
            }
            _ = ping.tick() => {
                let m = match p.venue.app_ping() {
                    Some(text) => Message::text(text),
                    None => Message::Ping(Vec::new().into()),
                };
                if let Err(e) = ws.send(m).await {
                    return CloseReason::Send { what: "ping", error: e.to_string() };
                }
                continue;
            }
            _ = &mut silence => {
                let limit = ka.silence_for(answered);
                let due = last_frame + limit;
                if due > Instant::now() {
                    silence.as_mut().reset(due);
                    continue;
                }
                return CloseReason::Silence { ms: limit.as_millis() as u64 };
            }
            m = ws.next() => m,
        };
        let text = match msg {
            None => return CloseReason::ClosedByExchange { frame: None },
            Some(Err(e)) => return CloseReason::Read(e.to_string()),
            Some(Ok(Message::Close(frame))) => {
                return CloseReason::ClosedByExchange {
                    frame: frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                };
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                last_frame = Instant::now();
                FeedCounters::bump(&p.counters.messages_received);
                FeedCounters::bump(&p.counters.malformed);
                warn!(id, "binary frame on a text protocol; skipped");
                continue;
            }
            Some(Ok(Message::Pong(_))) => {
                last_frame = Instant::now();
                if !answered {
                    answered = true;
                    // The watchdog was armed for the unanswered (longer) limit.
                    silence.as_mut().reset(last_frame + ka.silence_for(true));
                }
                continue;
            }
            Some(Ok(_)) => {
                // A server Ping: the connection is alive. Its pong is queued by tungstenite
                // and goes out with the next poll of the socket, which is at once.
                last_frame = Instant::now();
                continue;
            }
        };
        last_frame = Instant::now();
        let received_at = std::time::Instant::now();
        FeedCounters::bump(&p.counters.messages_received);
        buf.clear();
        let subscribed = match p.venue.parse_frame(text.as_str(), &p.lookup, &mut buf) {
            Err(e) => {
                FeedCounters::bump(&p.counters.malformed);
                let head: String = text.as_str().chars().take(120).collect();
                warn!(id, error = %e, frame = %head, "malformed frame skipped");
                continue;
            }
            Ok(Control::Error(msg)) => {
                FeedCounters::bump(&p.counters.messages_processed);
                let _ = p.tx.send(ConnEvent::ExchangeMessage { id, msg }).await;
                continue;
            }
            Ok(Control::ServerShutdown) => {
                FeedCounters::bump(&p.counters.messages_processed);
                if p.tx.send(ConnEvent::ServerShutdown { id }).await.is_err() {
                    return CloseReason::Gone("driver");
                }
                continue;
            }
            Ok(c) => {
                FeedCounters::bump(&p.counters.messages_processed);
                c == Control::Subscribed
            }
        };
        let parsed_at = super::probe::enabled().then(std::time::Instant::now);
        acks += usize::from(subscribed);
        let all_sent = next_send.is_none();
        if !announced && (acks >= p.subscribe.len() || (all_sent && !buf.is_empty())) {
            announced = true;
            if p.tx.send(ConnEvent::Connected { id }).await.is_err() {
                return CloseReason::Gone("driver");
            }
        }
        let mut handed_close = false;
        for kline in buf.drain(..) {
            p.counters
                .last_event_time
                .fetch_max(kline.event_time.max(0) as u64, Ordering::Relaxed);
            let mut lanes = p.lanes.lock();
            if lanes.sample.is_none() && kline.closed {
                lanes.sample = Some(Sample {
                    text: text.as_str().to_owned(),
                    venue: p.venue,
                    lookup: p.lookup.clone(),
                    buf: Vec::with_capacity(4),
                });
            }
            let kline = if lanes.busy || lost {
                kline
            } else {
                let closed = kline.closed;
                match lanes.direct(kline, received_at, &p.out) {
                    Direct::Done => {
                        handed_close |= closed;
                        if let (true, Some(at)) = (closed, parsed_at) {
                            super::probe::handed(received_at, at);
                        }
                        continue;
                    }
                    Direct::Driver(k) => k,
                    Direct::Gone => return CloseReason::Gone("consumer"),
                }
            };
            // From here until the driver has caught up, everything goes through it, in order.
            // The send happens under the lock, so the driver's emptiness check sees it.
            lanes.busy = true;
            if lost {
                match p.tx.try_send(ConnEvent::Lost { id }) {
                    Ok(()) => lost = false,
                    Err(mpsc::error::TrySendError::Full(_)) => continue,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return CloseReason::Gone("driver");
                    }
                }
            }
            let closed = kline.closed;
            if !closed && p.tx.capacity() < p.tx.max_capacity() / 2 {
                // A forming update only shows progress; the last half of the buffer is kept
                // for finals, whose loss costs a REST call (hundreds of streams fill it fast
                // while the bootstrap runs).
                continue;
            }
            match p.tx.try_send(ConnEvent::Kline { kline, received_at }) {
                Ok(()) => {}
                // A forming update lost to a full channel is no gap: its final carries the
                // whole candle. Only a lost final needs a backfill.
                Err(mpsc::error::TrySendError::Full(_)) if !closed => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !lost {
                        warn!(id, "internal channel full; klines dropped, will backfill");
                    }
                    lost = true;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return CloseReason::Gone("driver"),
            }
        }
        if handed_close {
            // Let the consumer run the candle now, before this task polls its timers and reads
            // the socket again (a syscall that finds nothing): on the current-thread runtime
            // the consumer is next in the queue.
            tokio::task::yield_now().await;
        }
    }
}
