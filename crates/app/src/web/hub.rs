//! [`LiveHub`]: the publish side a live session calls (its web tap, on the candle path), and the
//! subscribe side the web pages read. Publishing never blocks: events go into a bounded [`tokio::sync::broadcast`] channel,
//! and a browser that falls behind loses its place and is sent a fresh snapshot instead.
//!
//! The hub also keeps a small per-stream snapshot (recent closed candles, the forming candle,
//! recent records, the latest stats) so a page that connects mid-run draws the chart at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use manus_core::record::SignalRecord;
use manus_core::{Action, Candle, Interval};
use manus_exchange::feed::{FeedEvent, StreamKey};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::stats::StreamStats;
use crate::store::sink::SinkStats;

/// Events buffered per subscriber before it counts as lagging.
pub const CHANNEL_CAPACITY: usize = 1024;
/// Closed candles kept per stream for new subscribers.
pub const SNAPSHOT_CANDLES: usize = 500;
/// Records kept per stream for new subscribers (the chart's markers and the table).
pub const SNAPSHOT_RECORDS: usize = 500;
/// Minimum time between two stats publications ([`LiveHub::stats_due`]).
pub const STATS_EVERY: Duration = Duration::from_millis(250);

/// One message to the pages: already serialised once, shared by every subscriber.
#[derive(Debug, Clone)]
pub struct HubEvent {
    /// The stream it belongs to.
    pub stream: Arc<StreamKey>,
    /// `candle`, `record` or `stats` (the SSE event name).
    pub kind: &'static str,
    /// The JSON payload.
    pub json: Arc<str>,
}

/// Per-stream snapshot kept for late subscribers.
#[derive(Debug, Default)]
struct StreamSnap {
    candles: VecDeque<Candle>,
    forming: Option<Candle>,
    records: VecDeque<SignalRecord>,
    stats: Option<StreamStats>,
    buys: u64,
    sells: u64,
    holds: u64,
}

/// Counters of the hub, for `/metrics`.
#[derive(Debug, Default)]
pub struct HubCounters {
    /// Candle events published (forming and closed).
    pub candles: AtomicU64,
    /// Record events published.
    pub records: AtomicU64,
    /// Stats events published.
    pub stats: AtomicU64,
    /// Times a subscriber lagged and was resynchronised.
    pub lagged: AtomicU64,
    /// Event-stream subscribers connected now.
    pub subscribers: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    tx: broadcast::Sender<HubEvent>,
    streams: Mutex<BTreeMap<StreamKey, StreamSnap>>,
    counters: HubCounters,
    last_stats: Mutex<Option<Instant>>,
    // The run's store writer counters, when it stores records (`--db`).
    store: Mutex<Option<Arc<SinkStats>>>,
}

/// The live side of the web dashboard: cheap to clone, safe to call from the candle loop.
#[derive(Debug, Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

/// The JSON shape of a candle on the wire (times in ms, as in the record).
#[derive(Debug, Serialize)]
struct CandleMsg<'a> {
    symbol: &'a str,
    interval: Interval,
    forming: bool,
    candle: &'a Candle,
}

/// A stream's snapshot as sent to a page.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Symbol.
    pub symbol: String,
    /// Interval.
    pub interval: Interval,
    /// Recent closed candles, oldest first.
    pub candles: Vec<Candle>,
    /// The forming candle.
    pub forming: Option<Candle>,
    /// Recent records, oldest first.
    pub records: Vec<SignalRecord>,
    /// The latest stats.
    pub stats: Option<StreamStats>,
}

/// One stream's summary for the stream list.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Symbol.
    pub symbol: String,
    /// Interval.
    pub interval: Interval,
    /// Latest price (forming, else last close).
    pub last_price: Option<f64>,
    /// Latest confluence decision.
    pub last_decision: Option<Action>,
    /// Records with BUY / SELL / HOLD confluence since start.
    pub buys: u64,
    /// SELL records.
    pub sells: u64,
    /// HOLD records.
    pub holds: u64,
}

/// One stream's numbers for `/metrics` ([`LiveHub::stream_figures`]).
#[derive(Debug, Clone)]
pub struct StreamFigures {
    /// Symbol.
    pub symbol: String,
    /// Interval.
    pub interval: Interval,
    /// Latest price (forming, else last close).
    pub last_price: Option<f64>,
    /// BUY records since start.
    pub buys: u64,
    /// SELL records.
    pub sells: u64,
    /// HOLD records.
    pub holds: u64,
    /// The latest header figures.
    pub stats: Option<StreamStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

impl LiveHub {
    /// A hub with no streams yet.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        LiveHub {
            inner: Arc::new(Inner {
                tx,
                streams: Mutex::new(BTreeMap::new()),
                counters: HubCounters::default(),
                last_stats: Mutex::new(None),
                store: Mutex::new(None),
            }),
        }
    }

    fn send(&self, stream: &StreamKey, kind: &'static str, json: String) {
        // No subscriber is not an error: the page may simply not be open.
        let _ = self.inner.tx.send(HubEvent {
            stream: Arc::new(stream.clone()),
            kind,
            json: json.into(),
        });
    }

    /// Publishes a candle of `stream`: the forming one (`forming`, replaces the previous
    /// forming candle on the chart) or a closed one (appended).
    pub fn publish_candle(&self, stream: &StreamKey, candle: &Candle, forming: bool) {
        {
            let mut s = lock(&self.inner.streams);
            let snap = s.entry(stream.clone()).or_default();
            if forming {
                if snap
                    .candles
                    .back()
                    .is_some_and(|c| c.open_time >= candle.open_time)
                {
                    return; // a late update of a candle already closed
                }
                snap.forming = Some(*candle);
            } else {
                if snap
                    .candles
                    .back()
                    .is_some_and(|c| c.open_time >= candle.open_time)
                {
                    return; // duplicate or out of order: the chart would reject it
                }
                if snap
                    .forming
                    .is_some_and(|f| f.open_time <= candle.open_time)
                {
                    snap.forming = None;
                }
                push_bounded(&mut snap.candles, *candle, SNAPSHOT_CANDLES);
            }
        }
        self.inner.counters.candles.fetch_add(1, Ordering::Relaxed);
        let msg = CandleMsg {
            symbol: &stream.symbol,
            interval: stream.interval,
            forming,
            candle,
        };
        self.send(stream, "candle", to_json(&msg));
    }

    /// Publishes a closed candle's signal record (the chart's markers, the strategy table).
    pub fn publish_record(&self, rec: &SignalRecord) {
        let key = StreamKey {
            symbol: rec.symbol.clone(),
            interval: rec.interval,
        };
        {
            let mut s = lock(&self.inner.streams);
            let snap = s.entry(key.clone()).or_default();
            match rec.confluence {
                Action::Buy => snap.buys += 1,
                Action::Sell => snap.sells += 1,
                Action::Hold => snap.holds += 1,
            }
            push_bounded(&mut snap.records, rec.clone(), SNAPSHOT_RECORDS);
        }
        self.inner.counters.records.fetch_add(1, Ordering::Relaxed);
        self.send(&key, "record", to_json(rec));
    }

    /// Publishes the header figures of `stream`, with the attached store writer's counters
    /// filled in.
    pub fn publish_stats(&self, stream: &StreamKey, mut stats: StreamStats) {
        if let Some(st) = self.store_stats() {
            let s = st.snapshot();
            stats.store_written = Some(s.written);
            stats.store_lost = Some(s.lost());
            stats.store_queued = Some(s.depth as u64);
        }
        let text = to_json(&json!({
            "symbol": stream.symbol,
            "interval": stream.interval,
            "stats": &stats,
        }));
        lock(&self.inner.streams)
            .entry(stream.clone())
            .or_default()
            .stats = Some(stats);
        self.inner.counters.stats.fetch_add(1, Ordering::Relaxed);
        self.send(stream, "stats", text);
    }

    /// True at most once per [`STATS_EVERY`]: whether to compute and publish the header
    /// figures now (cheap to ask after every event).
    pub fn stats_due(&self) -> bool {
        let mut last = lock(&self.inner.last_stats);
        if last.is_some_and(|t| t.elapsed() < STATS_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// The one-line hook before `pipeline.on_event(ev)`: publishes the candle of an `Update`
    /// (forming) or `Closed` event (bootstrap candles included, so the chart has history).
    pub fn on_feed_event(&self, ev: &FeedEvent) {
        match ev {
            FeedEvent::Update { key, candle, .. } => self.publish_candle(key, candle, true),
            FeedEvent::Closed { key, candle, .. } => self.publish_candle(key, candle, false),
            _ => {}
        }
    }

    /// Shows the store writer's counters (written, lost, queued) with the header figures and
    /// on `/metrics`.
    pub fn attach_store_stats(&self, stats: Arc<SinkStats>) {
        *lock(&self.inner.store) = Some(stats);
    }

    /// The store writer's counters, when attached.
    pub fn store_stats(&self) -> Option<Arc<SinkStats>> {
        lock(&self.inner.store).clone()
    }

    /// A new subscriber to every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.tx.subscribe()
    }

    /// The snapshot of `stream`, or `None` when nothing was published for it.
    pub fn snapshot(&self, stream: &StreamKey) -> Option<Snapshot> {
        let s = lock(&self.inner.streams);
        let snap = s.get(stream)?;
        Some(Snapshot {
            symbol: stream.symbol.clone(),
            interval: stream.interval,
            candles: snap.candles.iter().copied().collect(),
            forming: snap.forming,
            records: snap.records.iter().cloned().collect(),
            stats: snap.stats,
        })
    }

    /// Every stream published so far, sorted by symbol then interval.
    pub fn streams(&self) -> Vec<StreamSummary> {
        lock(&self.inner.streams)
            .iter()
            .map(|(k, s)| StreamSummary {
                symbol: k.symbol.clone(),
                interval: k.interval,
                last_price: s
                    .forming
                    .map(|c| c.close)
                    .or_else(|| s.candles.back().map(|c| c.close)),
                last_decision: s.records.back().map(|r| r.confluence),
                buys: s.buys,
                sells: s.sells,
                holds: s.holds,
            })
            .collect()
    }

    /// Every stream's few numbers `/metrics` shows, copied out under the lock the candle
    /// path publishes through (no candles or records are cloned).
    pub fn stream_figures(&self) -> Vec<StreamFigures> {
        lock(&self.inner.streams)
            .iter()
            .map(|(k, s)| StreamFigures {
                symbol: k.symbol.clone(),
                interval: k.interval,
                last_price: s
                    .forming
                    .map(|c| c.close)
                    .or_else(|| s.candles.back().map(|c| c.close)),
                buys: s.buys,
                sells: s.sells,
                holds: s.holds,
                stats: s.stats,
            })
            .collect()
    }

    /// The hub's counters.
    pub fn counters(&self) -> &HubCounters {
        &self.inner.counters
    }
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    // Plain data (no maps with non-string keys) always serialises.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use manus_core::testing::candle;

    fn key() -> StreamKey {
        StreamKey {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
        }
    }

    #[test]
    fn snapshot_keeps_closed_candles_and_replaces_forming() {
        let hub = LiveHub::new();
        let k = key();
        hub.publish_candle(&k, &candle(1, 10.0), false);
        hub.publish_candle(&k, &candle(2, 11.0), true);
        hub.publish_candle(&k, &candle(2, 12.0), true);
        let s = hub.snapshot(&k).unwrap();
        assert_eq!(s.candles.len(), 1);
        assert_eq!(s.forming.unwrap().close, 12.0);
        hub.publish_candle(&k, &candle(2, 12.5), false);
        // A late forming update of a closed candle and a duplicate close are ignored.
        hub.publish_candle(&k, &candle(2, 13.0), true);
        hub.publish_candle(&k, &candle(2, 14.0), false);
        let s = hub.snapshot(&k).unwrap();
        assert_eq!(s.candles.len(), 2);
        assert_eq!(s.candles[1].close, 12.5);
        assert!(s.forming.is_none());
        assert_eq!(hub.streams()[0].last_price, Some(12.5));
    }

    #[test]
    fn snapshot_is_bounded() {
        let hub = LiveHub::new();
        let k = key();
        for i in 0..(SNAPSHOT_CANDLES as i64 + 10) {
            hub.publish_candle(&k, &candle(i, 1.0), false);
        }
        let s = hub.snapshot(&k).unwrap();
        assert_eq!(s.candles.len(), SNAPSHOT_CANDLES);
        assert_eq!(s.candles[0].open_time, 10 * 60_000);
    }

    #[test]
    fn publishing_never_blocks_and_a_slow_subscriber_lags() {
        let hub = LiveHub::new();
        let mut rx = hub.subscribe();
        let k = key();
        for i in 0..(CHANNEL_CAPACITY as i64 * 3) {
            hub.publish_candle(&k, &candle(i, 1.0), false);
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        // After the lag the receiver continues with the newest events.
        let ev = rx.try_recv().unwrap();
        assert_eq!(ev.kind, "candle");
    }

    #[test]
    fn record_events_carry_the_record_json() {
        let hub = LiveHub::new();
        let mut rx = hub.subscribe();
        let rec = SignalRecord {
            symbol: "ETHUSDT".into(),
            interval: Interval::M5,
            open_time: 300_000,
            close: 2.5,
            signals: manus_core::record::Signals(vec![("macd".into(), Action::Buy)]),
            confluence: Action::Buy,
            confidence: 1.0,
            agreeing: vec!["macd".into()],
            events: Vec::new(),
            votes: Default::default(),
            warming_up: false,
            latency_us: Some(12),
            backfilled: Some(false),
            stale: None,
            exchange_time: None,
        };
        hub.publish_record(&rec);
        let ev = rx.try_recv().unwrap();
        assert_eq!(ev.kind, "record");
        let back: SignalRecord = serde_json::from_str(&ev.json).unwrap();
        assert_eq!(back, rec);
        assert_eq!(hub.streams()[0].buys, 1);
        assert_eq!(hub.streams()[0].last_decision, Some(Action::Buy));
    }
}
