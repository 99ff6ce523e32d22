//! The feed seam: [`FeedConfig`] in, a [`Feed`] of [`FeedEvent`]s out.
//!
//! A feed never ends on a drop: disconnects, reconnects, backfills and staleness are events in
//! the same stream as candles, and the closed candles it yields for each stream are gapless,
//! strictly increasing by one interval and free of duplicates.
//!
//! [`Feed`] is the live implementation of [`MarketFeed`] for every exchange in
//! [`crate::venue::REGISTRY`];
//! [`RestClient`] fetches klines (also for `fetch`/`backtest`); [`FeedError`] classifies what
//! can go wrong; [`FeedWarning`] and [`CloseReason`] are the typed diagnostics a feed reports.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use manus_core::{Candle, Interval};

mod backoff;
mod conn;
mod diag;
mod driver;
mod error;
mod keepalive;
mod lanes;
mod pacer;
mod pending;
pub mod probe;
pub mod rest;
mod rotation;
mod sequencer;
mod shards;
pub(crate) mod weight;
pub mod wire;

pub use crate::venue::ExchangeKind;
pub use backoff::Backoff;
pub use diag::{CloseReason, FeedWarning};
pub use driver::Feed;
pub use error::FeedError;
pub use rest::RestClient;

/// The default daily connection renewal, 03:00:30 UTC: off-peak for crypto volume and 30 s
/// away from every candle close, so the handover never straddles one.
pub const DEFAULT_ROTATE_AT: Duration = Duration::from_secs(3 * 3600 + 30);

/// One (symbol, interval) stream. Symbols are upper-case, e.g. `BTCUSDT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Upper-case symbol.
    pub symbol: String,
    /// Kline interval.
    pub interval: Interval,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.symbol, self.interval)
    }
}

/// Where a closed candle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Start-up history over REST (warms strategies up; not a live signal).
    Bootstrap,
    /// Fetched over REST to fill a gap after a reconnect, overflow or stale period.
    Backfill,
    /// The final update of a candle on the WebSocket.
    Live,
}

/// When and how a frame arrived.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The exchange's event time, ms UTC (0 when unknown, e.g. REST rows).
    pub event_time: i64,
    /// When the frame was read off the socket.
    pub received_at: Instant,
}

/// What a feed yields.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// An in-progress update of the forming candle.
    Update {
        /// Which stream.
        key: Arc<StreamKey>,
        /// The forming candle so far.
        candle: Candle,
        /// Arrival metadata.
        arrival: Arrival,
    },
    /// A closed candle, in order, exactly once.
    Closed {
        /// Which stream.
        key: Arc<StreamKey>,
        /// The closed candle.
        candle: Candle,
        /// Where it came from.
        origin: Origin,
        /// Arrival metadata.
        arrival: Arrival,
    },
    /// The WebSocket is connected and subscribed.
    Connected {
        /// The URL connected to.
        url: String,
    },
    /// The WebSocket dropped.
    Disconnected {
        /// Why.
        reason: CloseReason,
    },
    /// A reconnect is scheduled.
    Reconnecting {
        /// Delay before the attempt, ms.
        in_ms: u64,
        /// Attempt number since the last stable connection.
        attempt: u32,
    },
    /// `count` missing candles were fetched over REST and yielded as `Closed` with
    /// `Origin::Backfill`.
    Backfilled {
        /// Which stream.
        key: Arc<StreamKey>,
        /// How many candles.
        count: usize,
    },
    /// A stream went stale (no closed candle for two and a half intervals) or fresh again.
    Stale {
        /// Which stream.
        key: Arc<StreamKey>,
        /// True when it became stale, false when fresh again.
        stale: bool,
    },
    /// The exchange re-sent a final candle with different values; the first one stands.
    Correction {
        /// Which stream.
        key: Arc<StreamKey>,
        /// The candle already yielded.
        kept: Candle,
        /// The conflicting re-send.
        ignored: Candle,
    },
    /// A non-fatal problem worth showing (bootstrap failed and the feed goes on, a REST error
    /// that will be retried, ...).
    Warning(FeedWarning),
}

/// Counters a dashboard shows; shared, lock-free.
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// Frames read off the socket.
    pub messages_received: AtomicU64,
    /// Frames that parsed into an event.
    pub messages_processed: AtomicU64,
    /// Frames that did not parse (counted, logged, skipped).
    pub malformed: AtomicU64,
    /// Reconnections made.
    pub reconnections: AtomicU64,
    /// Candles fetched to fill gaps.
    pub backfilled: AtomicU64,
    /// The newest exchange event time seen, ms UTC.
    pub last_event_time: AtomicU64,
    /// Streams with a gap that is not filled yet (REST failing); it will be.
    pub gaps_pending: AtomicU64,
    /// Live closed candles held back, in order, behind pending gaps.
    pub held_candles: AtomicU64,
    /// How long the oldest held candle has waited, ms (0 when none is held).
    pub held_late_ms: AtomicU64,
}

impl FeedCounters {
    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// A plain snapshot.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            messages_received: self.messages_received.load(Ordering::Relaxed),
            messages_processed: self.messages_processed.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            reconnections: self.reconnections.load(Ordering::Relaxed),
            backfilled: self.backfilled.load(Ordering::Relaxed),
            last_event_time: self.last_event_time.load(Ordering::Relaxed),
            gaps_pending: self.gaps_pending.load(Ordering::Relaxed),
            held_candles: self.held_candles.load(Ordering::Relaxed),
            held_late_ms: self.held_late_ms.load(Ordering::Relaxed),
        }
    }
}

/// A copy of [`FeedCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CountersSnapshot {
    /// Frames read off the socket.
    pub messages_received: u64,
    /// Frames that parsed into an event.
    pub messages_processed: u64,
    /// Frames that did not parse.
    pub malformed: u64,
    /// Reconnections made.
    pub reconnections: u64,
    /// Candles fetched to fill gaps.
    pub backfilled: u64,
    /// The newest exchange event time seen, ms UTC.
    pub last_event_time: u64,
    /// Streams with a gap not filled yet.
    pub gaps_pending: u64,
    /// Live closed candles held back behind pending gaps.
    pub held_candles: u64,
    /// How long the oldest held candle has waited, ms.
    pub held_late_ms: u64,
}

/// Everything a feed needs; every URL is overridable.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Protocol and defaults.
    pub exchange: ExchangeKind,
    /// The streams; more than the exchange allows on one connection are spread over several
    /// (each stream on exactly one).
    pub streams: Vec<StreamKey>,
    /// WebSocket base URL, e.g. `ws://127.0.0.1:9000` (protocol paths are appended).
    pub ws_url: String,
    /// REST base URL, e.g. `http://127.0.0.1:9000`.
    pub rest_url: String,
    /// Closed candles to fetch before the first live one (default 500; pages past 1000).
    pub bootstrap: usize,
    /// Reconnect when no frame (kline, pong, server ping) arrives for this long (default 30 s;
    /// at least a ping interval and a half, and until the server's own next ping while it has
    /// not answered one of ours: see `feed/keepalive.rs`).
    pub silence_timeout: Duration,
    /// First reconnect delay (default 500 ms), doubling with full jitter.
    pub backoff_initial: Duration,
    /// Reconnect delay cap (default 30 s).
    pub backoff_max: Duration,
    /// A connection this old counts as stable and resets the backoff (default 60 s).
    pub stable_after: Duration,
    /// How long one candle lasts in real time; `None` means the interval's own length. The
    /// simulated exchange runs accelerated and sets this (e.g. 200 ms); the exchange's own
    /// durations (`Retry-After`, rate-limit windows) are then read in its market time too.
    pub candle_period: Option<Duration>,
    /// Without `rotate_at`: reconnect proactively after this long, before the exchange's 24 h
    /// cut-off (default 23 h).
    pub max_connection_age: Duration,
    /// UTC time of day for the daily proactive reconnect, once a day (default
    /// [`DEFAULT_ROTATE_AT`]); when set it replaces `max_connection_age` (the next occurrence
    /// is always less than a day away). The new socket is live before the old one closes.
    pub rotate_at: Option<Duration>,
    /// Events buffered inside the feed, both between a socket and the driver and between the
    /// driver and the consumer (default 4096, or 64 per stream when more). An overflow is a gap, backfilled over REST.
    pub channel_capacity: usize,
    /// Per stream, the open time of the newest closed candle the consumer already has (e.g.
    /// from its store after a restart). The bootstrap then also fetches every candle closed
    /// since, at most `resume_max` of them, and delivers those as [`Origin::Backfill`] after
    /// `bootstrap` warm-up candles, so a restart leaves no hole.
    pub resume_after: HashMap<StreamKey, i64>,
    /// Most missed candles fetched per stream on resume (default 1000); beyond it the oldest
    /// are left as a gap, reported once as [`FeedWarning::ResumeCapped`].
    pub resume_max: usize,
}

impl FeedConfig {
    /// A config with the exchange's default URLs and the documented defaults.
    pub fn new(exchange: ExchangeKind, streams: Vec<StreamKey>) -> Self {
        // Frames of every stream queue up while the bootstrap runs; size the buffer by stream
        // count so that start-up does not overflow it (an overflow is backfilled, but costs
        // request weight that hundreds of streams cannot afford).
        let channel_capacity = 4096.max(streams.len() * 64);
        FeedConfig {
            exchange,
            streams,
            ws_url: exchange.default_ws_url().to_string(),
            rest_url: exchange.default_rest_url().to_string(),
            bootstrap: 500,
            silence_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            candle_period: None,
            max_connection_age: Duration::from_secs(23 * 3600),
            rotate_at: Some(DEFAULT_ROTATE_AT),
            channel_capacity,
            resume_after: HashMap::new(),
            resume_max: 1000,
        }
    }
}

/// Live market data for one or many streams: the seam between exchange adapters (and test
/// doubles) and the engine. The stream does not end on a drop: disconnects, reconnects and
/// backfills are events. `next` returns `None` only after shutdown or a fatal start-up error.
pub trait MarketFeed: Send {
    /// The next event; cancel-safe (safe to use in `tokio::select!`).
    fn next(&mut self) -> impl std::future::Future<Output = Option<FeedEvent>> + Send;
    /// Shared counters for dashboards.
    fn counters(&self) -> Arc<FeedCounters>;
    /// Runs the path of the next frame once on a sample, sending nothing, so that its code
    /// and state are in the caches when the frame comes (called just before a closed candle
    /// is due). By default nothing.
    fn warm(&mut self) {}
}
