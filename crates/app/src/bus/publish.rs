//! [`Publisher`]: a task off the candle path that publishes candles and records to JetStream in
//! order. The candle path hands messages to a bounded queue through a [`BusTap`] (never
//! blocks: a full queue drops and counts); the task keeps up to [`IN_FLIGHT`] publishes
//! waiting for their acks and, when one fails (bus down, timeout), republishes everything
//! not yet acknowledged in the same order after a backoff. Message ids make the repeats
//! harmless.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_nats::jetstream::{
    self, context::PublishError, message::PublishMessage, publish::PublishAck,
};
use bytes::Bytes;
use manus_core::model::Candle;
use manus_core::record::SignalRecord;
use manus_exchange::feed::StreamKey;
use tokio::sync::{mpsc, oneshot};

use super::{BusConfig, Kind, ensure_streams, msg_id, subject};

/// Messages queued between the candle path and the publisher before new ones are dropped.
pub const QUEUE: usize = 65_536;
/// Publishes awaiting their ack at once.
pub const IN_FLIGHT: usize = 1024;
/// Longest wait between two attempts while the bus is unreachable.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Counters shared by the tap, the task and whoever shows them (`/metrics`, the exit line).
#[derive(Debug, Default)]
pub struct BusStats {
    /// Messages handed to the queue.
    pub queued: AtomicU64,
    /// Messages the bus acknowledged (stored or recognised as duplicates).
    pub published: AtomicU64,
    /// Of those, the ones the bus already had (same message id).
    pub duplicates: AtomicU64,
    /// Messages dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Times the unacknowledged messages were republished after a failure.
    pub retries: AtomicU64,
}

impl BusStats {
    /// Messages queued or in flight, not yet acknowledged.
    pub fn backlog(&self) -> u64 {
        let done = self.published.load(Relaxed) + self.dropped.load(Relaxed);
        (self.queued.load(Relaxed) + self.dropped.load(Relaxed)).saturating_sub(done)
    }

    /// A copy of the counters.
    pub fn report(&self) -> BusReport {
        BusReport {
            published: self.published.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            retries: self.retries.load(Relaxed),
            backlog: self.backlog(),
        }
    }
}

/// The publisher's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusReport {
    /// Acknowledged by the bus.
    pub published: u64,
    /// Of those, already stored.
    pub duplicates: u64,
    /// Dropped on a full queue.
    pub dropped: u64,
    /// Republish rounds after failures.
    pub retries: u64,
    /// Not yet acknowledged (lost if the process stops now).
    pub backlog: u64,
}

impl std::fmt::Display for BusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bus: {} published ({} already there), {} dropped, {} retries, {} unacknowledged",
            self.published, self.duplicates, self.dropped, self.retries, self.backlog
        )
    }
}

/// Header on records: when the frame that closed the candle was read, µs since the Unix
/// epoch (this host's clock), so a subscriber on the same clock sees the end-to-end latency.
pub const READ_AT_HEADER: &str = "Manus-Read-Us";

/// The `tracing` target of the per-message "bus produced SUBJECT ID BODY" lines.
pub const PRODUCED_TARGET: &str = "manus::bus::produced";

/// One message on its way.
#[derive(Debug, Clone)]
struct Outgoing {
    subject: String,
    id: String,
    body: Bytes,
    read_at_us: Option<u64>,
}

enum Item {
    Msg(Outgoing),
    /// Answered once everything queued before it is acknowledged.
    Flush(oneshot::Sender<()>),
}

/// The candle path's handle: queues candles and records, never blocks.
#[derive(Debug, Clone)]
pub struct BusTap {
    tx: mpsc::Sender<Item>,
    stats: Arc<BusStats>,
    exchange: Arc<str>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Msg(m) => write!(f, "Msg({})", m.id),
            Item::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// A closed candle as published on `manus.candles.*`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CandleMsg {
    /// Upper-case symbol.
    pub symbol: String,
    /// Interval, e.g. `5m`.
    pub interval: manus_core::Interval,
    /// The candle.
    #[serde(flatten)]
    pub candle: Candle,
    /// Fetched over REST to fill a gap rather than read off the stream.
    pub backfilled: bool,
}

impl BusTap {
    /// The counters.
    pub fn stats(&self) -> &Arc<BusStats> {
        &self.stats
    }

    fn push(&self, msg: Outgoing) {
        // What this process produced, one line per message (off unless asked for with
        // RUST_LOG=manus::bus::produced=trace): the end-to-end bus tests compare it with the
        // streams.
        tracing::trace!(
            target: PRODUCED_TARGET,
            "bus produced {} {} {}",
            msg.subject,
            msg.id,
            String::from_utf8_lossy(&msg.body)
        );
        match self.tx.try_send(Item::Msg(msg)) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Relaxed);
            }
            Err(_) => {
                // Counted, shown at exit and on /metrics; logging each would flood.
                self.stats.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Queues a closed candle (live or backfilled).
    pub fn candle(&self, key: &StreamKey, candle: &Candle, backfilled: bool) {
        let msg = CandleMsg {
            symbol: key.symbol.clone(),
            interval: key.interval,
            candle: *candle,
            backfilled,
        };
        let Ok(body) = serde_json::to_vec(&msg) else {
            return; // plain numbers and strings: cannot fail
        };
        self.push(Outgoing {
            subject: subject(Kind::Candle, &self.exchange, &key.symbol, key.interval),
            id: msg_id(&self.exchange, &key.symbol, key.interval, candle.open_time),
            body: body.into(),
            read_at_us: None,
        });
    }

    /// Queues a signal record (the same JSON line as `live` writes, without the newline).
    pub fn record(&self, rec: &SignalRecord) {
        let mut body = Vec::with_capacity(256);
        rec.write_json_line(&mut body);
        while body.last() == Some(&b'\n') {
            body.pop();
        }
        // The record's latency runs from the frame read to now: now minus it is the read.
        let read_at_us = rec.latency_us.and_then(|l| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_micros();
            u64::try_from(now).ok()?.checked_sub(l)
        });
        self.push(Outgoing {
            subject: subject(Kind::Signal, &self.exchange, &rec.symbol, rec.interval),
            id: msg_id(&self.exchange, &rec.symbol, rec.interval, rec.open_time),
            body: body.into(),
            read_at_us,
        });
    }
}

/// On the candle path: closed candles (live and backfilled; bootstrap history is not
/// published) and every record go to the bus.
impl crate::live::run::Tap for BusTap {
    fn on_event(&mut self, ev: &manus_exchange::feed::FeedEvent) {
        use manus_exchange::feed::{FeedEvent, Origin};
        if let FeedEvent::Closed {
            key,
            candle,
            origin,
            ..
        } = ev
            && *origin != Origin::Bootstrap
        {
            self.candle(key, candle, *origin == Origin::Backfill);
        }
    }

    fn on_record(&mut self, rec: &SignalRecord) {
        self.record(rec);
    }
}

/// The publishing task and its tap.
#[derive(Debug)]
pub struct Publisher {
    tap: BusTap,
    task: tokio::task::JoinHandle<()>,
}

type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

impl Publisher {
    /// Starts the task on the current runtime (call it on one off the candle path). It
    /// connects in the background, creating the streams if missing, and keeps trying while
    /// the bus is down; messages queue meanwhile.
    pub fn start(cfg: BusConfig, exchange: &str) -> Publisher {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(BusStats::default());
        let task = tokio::spawn(run(cfg, rx, stats.clone()));
        Publisher {
            tap: BusTap {
                tx,
                stats,
                exchange: exchange.into(),
            },
            task,
        }
    }

    /// A handle for the candle path.
    pub fn tap(&self) -> BusTap {
        self.tap.clone()
    }

    /// Waits (at most `grace`) until everything queued so far is acknowledged; false when
    /// the time ran out first.
    pub async fn flush(&self, grace: Duration) -> bool {
        let (done, wait) = oneshot::channel();
        let flushed =
            async { self.tap.tx.send(Item::Flush(done)).await.is_ok() && wait.await.is_ok() };
        tokio::time::timeout(grace, flushed).await.unwrap_or(false)
    }

    /// [`Self::flush`], then stops the task; the report's `backlog` is what was not
    /// acknowledged.
    pub async fn finish(self, grace: Duration) -> BusReport {
        if !self.flush(grace).await {
            tracing::warn!("the bus did not acknowledge everything within {grace:?}");
        }
        self.task.abort();
        self.tap.stats.report()
    }
}

/// Sends one message; a failure to send becomes a failed ack, retried like the others.
async fn send(js: &jetstream::Context, m: &Outgoing) -> AckFuture {
    let mut publish = PublishMessage::build()
        .message_id(m.id.as_str())
        .payload(m.body.clone());
    if let Some(t) = m.read_at_us {
        publish = publish.header(READ_AT_HEADER, t.to_string().as_str());
    }
    match js.send_publish(m.subject.clone(), publish).await {
        Ok(ack) => Box::pin(ack.into_future()),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

async fn run(cfg: BusConfig, mut rx: mpsc::Receiver<Item>, stats: Arc<BusStats>) {
    let mut backoff = Duration::from_millis(100);
    let js = loop {
        match connect(&cfg).await {
            Ok(js) => break js,
            Err(e) => {
                tracing::warn!("{e}; retrying in {backoff:?} (local outputs go on)");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    };
    tracing::info!("publishing to the bus at {}", cfg.urls);
    let mut in_flight: VecDeque<(Outgoing, AckFuture)> = VecDeque::new();
    let mut flushes: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
    // Messages taken off the queue so far; a flush waits until all before it are acked.
    let mut taken = 0u64;
    let mut acked = 0u64;
    let mut backoff = Duration::from_millis(100);
    let mut closed = false;
    loop {
        if closed && in_flight.is_empty() {
            return;
        }
        while flushes.front().is_some_and(|(n, _)| *n <= acked) {
            if let Some((_, done)) = flushes.pop_front() {
                let _ = done.send(());
            }
        }
        tokio::select! {
            biased;
            ack = async { (&mut in_flight.front_mut().expect("checked").1).await }, if !in_flight.is_empty() => {
                match ack {
                    Ok(ack) => {
                        in_flight.pop_front();
                        acked += 1;
                        backoff = Duration::from_millis(100);
                        stats.published.fetch_add(1, Relaxed);
                        if ack.duplicate {
                            stats.duplicates.fetch_add(1, Relaxed);
                        }
                    }
                    Err(e) => {
                        stats.retries.fetch_add(1, Relaxed);
                        tracing::warn!(
                            "bus publish failed ({e}); republishing {} unacknowledged in {backoff:?}",
                            in_flight.len()
                        );
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        // In order, from the oldest: the ids make the ones already stored
                        // duplicates, which the bus acknowledges without storing.
                        for slot in in_flight.iter_mut() {
                            slot.1 = send(&js, &slot.0).await;
                        }
                    }
                }
            }
            item = rx.recv(), if !closed && in_flight.len() < IN_FLIGHT => match item {
                Some(Item::Msg(m)) => {
                    taken += 1;
                    let ack = send(&js, &m).await;
                    in_flight.push_back((m, ack));
                }
                Some(Item::Flush(done)) => flushes.push_back((taken, done)),
                None => closed = true,
            },
        }
    }
}

async fn connect(cfg: &BusConfig) -> Result<jetstream::Context, super::BusError> {
    let js = cfg.connect(false).await?;
    ensure_streams(&js, cfg.retention).await?;
    Ok(js)
}
