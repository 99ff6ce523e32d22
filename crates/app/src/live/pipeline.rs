//! [`Pipeline`]: feed events in, signal records out. Synchronous and allocation-light so one task
//! can drive hundreds of streams; the async loop around it lives in [`super::run`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use manus_core::confluence::Outcome;
use manus_core::record::SignalRecord;
use manus_core::strategy::Decision;
use manus_core::summary::Moves;
use manus_core::{Action, Candle, SignalEngine};
use manus_exchange::feed::{Arrival, CountersSnapshot, FeedEvent, Origin, StreamKey};

use super::breakdown::Breakdown;
use super::prewarm::Prewarm;
pub use crate::stats::ConnState;
use crate::stats::StreamStats;

/// Beyond this many streams a pipeline does not warm (their state would not stay in the
/// caches together anyway, and warming them all would hold the loop too long).
pub const MAX_WARM_STREAMS: usize = 4;

/// Tunables of a [`Pipeline`].
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Closed candles kept per stream in the rolling window (ring buffer).
    pub window: usize,
    /// Stop after this many live closed candles (all streams together).
    pub max_candles: Option<u64>,
    /// Entries kept in the recent-decisions log.
    pub log_len: usize,
    /// Time each live candle's stages (`--latency-breakdown`; see [`super::breakdown`]).
    pub breakdown: bool,
    /// Warm each stream's candle path this long before its next closed candle is due
    /// ([`super::prewarm`]); zero: never.
    pub prewarm: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            window: 1000,
            max_candles: None,
            log_len: 64,
            breakdown: false,
            prewarm: Duration::from_millis(2),
        }
    }
}

/// How serious a feed message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Routine.
    Info,
    /// Something went wrong but the loop goes on.
    Warn,
}

/// A closed candle whose confluence was BUY or SELL, for the recent-decisions log.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEntry {
    /// Which stream.
    pub key: Arc<StreamKey>,
    /// The candle's open time, ms UTC.
    pub open_time: i64,
    /// The candle's close.
    pub close: f64,
    /// The confluence action.
    pub action: Action,
    /// Its confidence.
    pub confidence: f64,
    /// True when the candle came from a backfill.
    pub backfilled: bool,
}

/// One (symbol, interval) stream's state.
#[derive(Debug)]
pub struct StreamState {
    /// Which stream.
    pub key: Arc<StreamKey>,
    engine: SignalEngine,
    window: VecDeque<Candle>,
    /// The forming candle, from the latest update.
    pub forming: Option<Candle>,
    /// The price before the latest update (for "change since previous update").
    pub prev_price: Option<f64>,
    /// The latest emitted record.
    pub last_record: Option<SignalRecord>,
    /// A record refilled by warm-ups, never emitted.
    scratch: Option<SignalRecord>,
    provisional: Option<(Outcome, Vec<Decision>)>,
    provisional_dirty: bool,
    /// True while the feed reports the stream stale: no signals are shown or emitted.
    pub stale: bool,
    /// The next record carries `"stale": true` (first record after a stale period).
    stale_pending: bool,
    /// Open time of the newest closed candle.
    pub last_open_time: Option<i64>,
    /// Live closed candles.
    pub live: u64,
    /// Backfilled closed candles.
    pub backfilled: u64,
    /// Bootstrap (warm-up) candles.
    pub bootstrapped: u64,
    /// Newest exchange event time, ms UTC.
    pub last_event_time: i64,
    /// Decisions over the emitted records (for the no-decision hint at the end of a run).
    moves: Moves,
}

impl StreamState {
    fn new(key: Arc<StreamKey>, engine: SignalEngine, window: usize) -> Self {
        StreamState {
            key,
            engine,
            window: VecDeque::with_capacity(window.min(4096)),
            forming: None,
            prev_price: None,
            last_record: None,
            scratch: None,
            provisional: None,
            provisional_dirty: false,
            stale: false,
            stale_pending: false,
            last_open_time: None,
            live: 0,
            backfilled: 0,
            bootstrapped: 0,
            last_event_time: 0,
            moves: Moves::default(),
        }
    }

    /// The stream's signal engine (strategy slots, last outcome).
    pub fn engine(&self) -> &SignalEngine {
        &self.engine
    }

    /// The rolling window of closed candles, oldest first.
    pub fn window(&self) -> &VecDeque<Candle> {
        &self.window
    }

    /// The latest price: the forming candle's, else the last closed one's.
    pub fn last_price(&self) -> Option<f64> {
        self.forming
            .map(|c| c.close)
            .or_else(|| self.window.back().map(|c| c.close))
    }

    /// The provisional outcome of the forming candle, if any was computed (see
    /// [`Pipeline::refresh_provisional`]).
    pub fn provisional(&self) -> Option<&(Outcome, Vec<Decision>)> {
        self.provisional.as_ref()
    }
}

/// Latency of live closed candles, frame read to record ready, in µs.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            // 1 µs .. 1 h at 3 significant digits: a few tens of KB, fixed.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
        }
    }
}

impl Latency {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(us);
    }
    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }
    /// The value at quantile `q` (0..=1), µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.value_at_quantile(q)
        }
    }
    /// The largest sample, µs.
    pub fn max(&self) -> u64 {
        self.hist.max()
    }
    /// The histogram itself.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

/// Totals over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Records emitted (live + backfilled).
    pub records: u64,
    /// Live closed candles.
    pub live: u64,
    /// Backfilled closed candles.
    pub backfilled: u64,
    /// Bootstrap candles (warm-up only).
    pub bootstrapped: u64,
    /// In-progress updates.
    pub updates: u64,
    /// Closed candles dropped as duplicates or out of order (the feed promises none).
    pub out_of_order: u64,
    /// Events for streams that were not subscribed.
    pub unknown_stream: u64,
    /// Corrections reported by the feed.
    pub corrections: u64,
}

/// Every stream's engine and window, the latency histogram and the recent-decisions log.
#[derive(Debug)]
pub struct Pipeline {
    template: SignalEngine,
    cfg: PipelineConfig,
    streams: Vec<StreamState>,
    index: HashMap<StreamKey, usize>,
    /// The index [`Self::known`] found last.
    last_known: usize,
    latency: Latency,
    totals: Totals,
    conn: ConnState,
    log: VecDeque<DecisionEntry>,
    /// Wall-clock ms minus exchange event time of the newest frame: the feed lag.
    feed_lag_ms: Option<i64>,
    started: Instant,
    breakdown: Option<Box<Breakdown>>,
    prewarm: Prewarm,
}

impl Pipeline {
    /// A pipeline whose streams each get a fresh copy of `template`; `streams` fixes the display
    /// order (streams first seen later are appended).
    pub fn new(template: SignalEngine, streams: &[StreamKey], cfg: PipelineConfig) -> Self {
        let mut p = Pipeline {
            template,
            cfg: PipelineConfig {
                window: cfg.window.max(1),
                ..cfg
            },
            streams: Vec::with_capacity(streams.len()),
            index: HashMap::with_capacity(streams.len()),
            last_known: 0,
            latency: Latency::default(),
            totals: Totals::default(),
            conn: ConnState::Connecting,
            log: VecDeque::with_capacity(cfg.log_len),
            feed_lag_ms: None,
            started: Instant::now(),
            breakdown: cfg.breakdown.then(Box::default),
            prewarm: Prewarm::new(cfg.prewarm),
        };
        for k in streams {
            p.stream_index(k, None);
        }
        p
    }

    /// Adds `streams` (fresh engines; those already here are kept as they are).
    pub fn add_streams(&mut self, streams: &[StreamKey]) {
        for k in streams {
            self.stream_index(k, None);
        }
    }

    /// Drops the streams `gone` picks, state and all (a stream added again later starts
    /// afresh); the others keep their order.
    pub fn remove_streams(&mut self, gone: impl Fn(&StreamKey) -> bool) {
        self.streams.retain(|s| !gone(&s.key));
        self.index.clear();
        for (i, s) in self.streams.iter().enumerate() {
            self.index.insert((*s.key).clone(), i);
        }
    }

    fn stream_index(&mut self, key: &StreamKey, arc: Option<&Arc<StreamKey>>) -> usize {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.streams.len();
        let arc = arc.cloned().unwrap_or_else(|| Arc::new(key.clone()));
        self.streams.push(StreamState::new(
            arc,
            self.template.clone(),
            self.cfg.window,
        ));
        self.index.insert(key.clone(), i);
        i
    }

    /// Handles one feed event; returns the record of a live or backfilled closed candle (the
    /// stream's `last_record`, rebuilt in place: no allocation per candle).
    pub fn on_event(&mut self, ev: FeedEvent) -> Option<&SignalRecord> {
        if let Some((level, text)) = describe(&ev) {
            event(level, text);
        }
        match ev {
            FeedEvent::Update {
                key,
                candle,
                arrival,
            } => {
                let i = self.known(&key)?;
                self.note_arrival(i, &arrival);
                self.totals.updates += 1;
                let st = &mut self.streams[i];
                if st.last_open_time.is_some_and(|t| candle.open_time <= t) {
                    return None; // a late update of a candle already closed
                }
                st.prev_price = st.last_price();
                st.forming = Some(candle);
                st.provisional_dirty = true;
                None
            }
            FeedEvent::Closed {
                key,
                candle,
                origin,
                arrival,
            } => {
                let i = self.known(&key)?;
                self.note_arrival(i, &arrival);
                self.on_closed(i, &candle, origin, arrival.received_at)
            }
            FeedEvent::Connected { url } => {
                self.conn = ConnState::Connected(url);
                None
            }
            FeedEvent::Disconnected { reason } => {
                self.conn = ConnState::Disconnected(reason.to_string());
                None
            }
            FeedEvent::Reconnecting { in_ms, attempt } => {
                self.conn = ConnState::Reconnecting { attempt, in_ms };
                None
            }
            FeedEvent::Backfilled { .. } => None,
            FeedEvent::Stale { key, stale } => {
                let i = self.known(&key)?;
                let st = &mut self.streams[i];
                if stale && !st.stale {
                    st.stale = true;
                    st.provisional = None;
                    event(Level::Warn, format!("{key}: stale, signals paused"));
                } else if !stale && st.stale {
                    st.stale = false;
                    st.stale_pending = true;
                    event(Level::Info, format!("{key}: fresh again"));
                }
                None
            }
            FeedEvent::Correction { .. } => {
                self.totals.corrections += 1;
                None
            }
            FeedEvent::Warning(_) => None,
        }
    }

    fn known(&mut self, key: &Arc<StreamKey>) -> Option<usize> {
        // The stream of the previous event first: comparing a symbol costs far less than
        // hashing it, and with one stream (or a burst of one stream's events) it is the one.
        if let Some(st) = self.streams.get(self.last_known)
            && *st.key == **key
        {
            return Some(self.last_known);
        }
        if let Some(&i) = self.index.get(key.as_ref()) {
            self.last_known = i;
            return Some(i);
        }
        // A stream nobody asked for: count it once, then serve it like any other so nothing is
        // silently lost.
        self.totals.unknown_stream += 1;
        Some(self.stream_index(key, Some(key)))
    }

    fn note_arrival(&mut self, i: usize, a: &Arrival) {
        if a.event_time > 0 {
            self.streams[i].last_event_time = a.event_time;
            self.feed_lag_ms = Some(now_ms() - a.event_time);
        }
    }

    fn on_closed(
        &mut self,
        i: usize,
        candle: &Candle,
        origin: Origin,
        received_at: Instant,
    ) -> Option<&SignalRecord> {
        let window = self.cfg.window;
        // One stream sets the warm-up cadence (the streams of a pipeline close together); past
        // `MAX_WARM_STREAMS` nothing is learned, so nothing is ever due.
        let sets_cadence = i == 0 && self.streams.len() <= MAX_WARM_STREAMS;
        let st = &mut self.streams[i];
        if st.last_open_time.is_some_and(|t| candle.open_time <= t) {
            self.totals.out_of_order += 1;
            tracing::warn!(stream = %st.key, open_time = candle.open_time, "duplicate or out-of-order closed candle skipped");
            return None;
        }
        st.engine.on_closed(candle);
        if origin == Origin::Live
            && let Some(b) = &mut self.breakdown
        {
            b.engine_done(received_at);
        }
        if st.window.len() == window {
            st.window.pop_front();
        }
        st.window.push_back(*candle);
        st.last_open_time = Some(candle.open_time);
        if st.forming.is_some_and(|f| f.open_time <= candle.open_time) {
            st.forming = None;
            st.provisional = None;
        }
        st.provisional_dirty = true;
        if origin == Origin::Bootstrap {
            st.bootstrapped += 1;
            self.totals.bootstrapped += 1;
            return None;
        }
        let moves_before = st.moves.moves;
        st.moves.observe(&st.engine.last());
        let moved = st.moves.moves > moves_before;
        let rec = match &mut st.last_record {
            Some(r) => {
                r.refill_from_engine(&st.key.symbol, st.key.interval, candle, &st.engine);
                r
            }
            slot @ None => slot.insert(SignalRecord::from_engine(
                &st.key.symbol,
                st.key.interval,
                candle,
                &st.engine,
            )),
        };
        // A closed candle proves the stream is flowing again even if the feed has not said so.
        if st.stale || st.stale_pending {
            rec.stale = Some(true);
            st.stale = false;
            st.stale_pending = false;
        }
        let backfilled = origin == Origin::Backfill;
        rec.backfilled = Some(backfilled);
        rec.exchange_time = (st.last_event_time > 0).then_some(st.last_event_time);
        let elapsed = received_at.elapsed();
        rec.latency_us = Some(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        if backfilled {
            st.backfilled += 1;
            self.totals.backfilled += 1;
        } else {
            st.live += 1;
            self.totals.live += 1;
            // Backfilled rows wait behind a REST round trip; only socket frames measure the
            // engine's own latency.
            self.latency.record(elapsed);
            if sets_cadence {
                self.prewarm.arrived(received_at);
            }
            if let Some(b) = &mut self.breakdown {
                b.record_ready(received_at + elapsed);
            }
        }
        self.totals.records += 1;
        // Views persist over candles: the log lists moves (the decision changing to BUY or
        // SELL), not every candle a decision holds.
        if moved {
            let entry = DecisionEntry {
                key: st.key.clone(),
                open_time: candle.open_time,
                close: candle.close,
                action: rec.confluence,
                confidence: rec.confidence,
                backfilled,
            };
            self.push_log(entry);
        }
        self.streams[i].last_record.as_ref()
    }

    /// When the loop should next wake to warm the candle path ([`super::prewarm`]): the first
    /// warm-up for the coming closed candle, then every [`super::prewarm::REWARM`] until it
    /// comes; `None` when nothing is due.
    pub fn next_warm(&self, now: Instant) -> Option<Instant> {
        self.prewarm.next(now)
    }

    /// Warms the candle path of every stream: its engine stepped on a scratch copy over its
    /// last closed candle, a scratch record refilled from the copy. Commits nothing: the
    /// streams' engines, records and counters are as they were.
    pub fn warm(&mut self, now: Instant) {
        for st in &mut self.streams {
            let Some(c) = st.window.back().copied() else {
                continue;
            };
            let mut copy = st.engine.clone();
            copy.on_closed(&c);
            if let Some(r) = &st.last_record {
                st.scratch
                    .get_or_insert_with(|| r.clone())
                    .refill_from_engine(&st.key.symbol, st.key.interval, &c, &copy);
            }
        }
        self.prewarm.ran(now);
    }

    /// Warm-ups run so far.
    pub fn warm_runs(&self) -> u64 {
        self.prewarm.runs()
    }

    fn push_log(&mut self, e: DecisionEntry) {
        if self.cfg.log_len == 0 {
            return;
        }
        if self.log.len() == self.cfg.log_len {
            self.log.pop_back();
        }
        self.log.push_front(e);
    }

    /// Computes the provisional signal of stream `i`'s forming candle if it changed since the
    /// last call (a copy of the engine is evaluated; nothing is committed). Stale streams have
    /// none.
    pub fn refresh_provisional(&mut self, i: usize) {
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        if !st.provisional_dirty {
            return;
        }
        st.provisional_dirty = false;
        st.provisional = match (st.stale, st.forming) {
            (false, Some(c)) => Some(st.engine.provisional(&c)),
            _ => None,
        };
    }

    /// True once `max_candles` live closed candles were processed.
    pub fn done(&self) -> bool {
        self.cfg.max_candles.is_some_and(|n| self.totals.live >= n)
    }

    /// The streams, in display order.
    pub fn streams(&self) -> &[StreamState] {
        &self.streams
    }

    /// The latency histogram of live closed candles.
    pub fn latency(&self) -> &Latency {
        &self.latency
    }

    /// The stage timings, when `--latency-breakdown` is on.
    pub fn breakdown(&self) -> Option<&Breakdown> {
        self.breakdown.as_deref()
    }

    /// The same, to stamp stages outside the pipeline (the writer).
    pub fn breakdown_mut(&mut self) -> Option<&mut Breakdown> {
        self.breakdown.as_deref_mut()
    }

    /// Forgets the latency samples so far (e.g. the candles buffered during start-up).
    pub fn reset_latency(&mut self) {
        self.latency = Latency::default();
    }

    /// Run totals.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The connection state.
    pub fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// Recent moves (the decision changing to BUY or SELL), newest first.
    pub fn log(&self) -> &VecDeque<DecisionEntry> {
        &self.log
    }

    /// Feed lag of the newest frame, ms (wall clock minus exchange event time); `None` when the
    /// exchange's clock runs more than a minute ahead of ours, where the difference is not a lag
    /// (the demo's accelerated market clock, or a badly set local clock).
    pub fn feed_lag_ms(&self) -> Option<i64> {
        self.feed_lag_ms.filter(|&lag| lag > -MAX_CLOCK_LEAD_MS)
    }

    /// The header figures of every stream, with the feed's counters: the pipeline-wide ones
    /// (latency quantiles, totals) are read once, not once per stream.
    pub fn stream_stats<'a>(
        &'a self,
        c: &CountersSnapshot,
    ) -> impl Iterator<Item = (&'a StreamState, StreamStats)> + 'a {
        let lat = &self.latency;
        let shared = StreamStats {
            connection: self.conn.phase(),
            latency_p50_us: lat.quantile(0.5),
            latency_p99_us: lat.quantile(0.99),
            latency_max_us: lat.max(),
            messages_received: c.messages_received,
            messages_processed: c.messages_processed,
            malformed: c.malformed,
            reconnections: c.reconnections,
            backfilled: c.backfilled,
            gaps_pending: c.gaps_pending,
            held_candles: c.held_candles,
            held_late_ms: c.held_late_ms,
            records: self.totals.records,
            strategy_failures: self.strategy_failures(),
            feed_lag_ms: self.feed_lag_ms(),
            uptime_s: self.uptime().as_secs(),
            stale: false,
            live_candles: 0,
            store_written: None,
            store_lost: None,
            store_queued: None,
        };
        self.streams.iter().map(move |st| {
            let stats = StreamStats {
                stale: st.stale,
                live_candles: st.live,
                ..shared
            };
            (st, stats)
        })
    }

    /// Time since the pipeline was built.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Strategy failures over all streams.
    pub fn strategy_failures(&self) -> u64 {
        self.streams.iter().map(|s| s.engine.failures()).sum()
    }

    /// When no stream decided anything in the records emitted, one line saying so and why.
    /// Quiet for short runs: the default moves about 5 times per 100 candles, so fewer than
    /// [`HINT_AFTER`] records without one say nothing yet.
    pub fn no_decision_hint(&self) -> Option<String> {
        let emitted: u64 = self.streams.iter().map(|s| s.moves.candles).sum();
        if emitted < HINT_AFTER || self.streams.iter().any(|s| s.moves.moves > 0) {
            return None;
        }
        let st = self.streams.first()?;
        st.moves
            .no_decision_hint(&st.engine)
            .map(|h| format!("{}: {h}", st.key))
    }

    /// One line summing the run up, for stderr at exit.
    pub fn summary(&self) -> String {
        let t = self.totals;
        format!(
            "{} records ({} live, {} backfilled, {} bootstrap candles) over {} streams; latency p50 {} µs, p99 {} µs, max {} µs; {} strategy failures; {} warm-ups",
            t.records,
            t.live,
            t.backfilled,
            t.bootstrapped,
            self.streams.len(),
            self.latency.quantile(0.5),
            self.latency.quantile(0.99),
            self.latency.max(),
            self.strategy_failures(),
            self.warm_runs(),
        )
    }
}

/// Records a live run emits before a run without any decision is worth a hint.
pub const HINT_AFTER: u64 = 100;

/// How far the exchange's clock may run ahead of ours and still give a feed lag (clock skew).
const MAX_CLOCK_LEAD_MS: i64 = 60_000;

/// Feed messages go to tracing: stderr when headless, the dashboard's message panel otherwise.
/// The one log line for a feed event that is reported as it comes (connection changes,
/// backfills, corrections, warnings); `None` for candles and for staleness, which is reported
/// on a change of state only. The feed itself logs these at debug level, so each appears once.
pub(crate) fn describe(ev: &FeedEvent) -> Option<(Level, String)> {
    Some(match ev {
        FeedEvent::Connected { url } => (Level::Info, format!("connected to {url}")),
        FeedEvent::Disconnected { reason } => (Level::Warn, format!("disconnected: {reason}")),
        FeedEvent::Reconnecting { in_ms, attempt } => (
            Level::Info,
            format!("reconnecting in {in_ms} ms (attempt {attempt})"),
        ),
        FeedEvent::Backfilled { key, count } => (
            Level::Info,
            format!("{key}: backfilled {}", plural(*count, "candle")),
        ),
        FeedEvent::Correction { key, kept, ignored } => (
            Level::Warn,
            format!(
                "{key}: exchange re-sent candle {} with close {} (kept {})",
                kept.open_time, ignored.close, kept.close
            ),
        ),
        FeedEvent::Warning(w) => (Level::Warn, w.to_string()),
        FeedEvent::Update { .. } | FeedEvent::Closed { .. } | FeedEvent::Stale { .. } => {
            return None;
        }
    })
}

/// `1 candle`, `2 candles`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn event(level: Level, text: String) {
    match level {
        Level::Info => tracing::info!("{text}"),
        Level::Warn => tracing::warn!("{text}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
