//! [`SignalSink`]: the hand-off from the candle loop to the store. The loop calls
//! [`SignalSink::submit`], which never blocks: the record goes into a bounded queue (or is
//! dropped and counted when the queue is full), and a writer thread asks its
//! [`RecordObserver`] (the alert rules, in a run with alerts) for the record's outbox rows and
//! stores the record with them in one transaction, then wakes the delivery worker. The store
//! knows nothing about alerts beyond the outbox rows it keeps. Queue depth, drops and write failures are in [`SinkStats`] for the dashboard,
//! `/metrics` and the run's summary.
//!
//! A failing store never hangs the run nor loses records silently: a failure is logged the
//! first time its kind (disk full, read-only, ...) occurs and counted every time; only a
//! transient failure (a lock, an I/O hiccup) is retried, briefly; and [`SignalSink::drain`]
//! waits a bounded time for the queue at shutdown, giving up at once on a second signal, so
//! what is left is counted as lost instead of holding the exit.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use manus_core::Interval;
use manus_core::record::SignalRecord;
use serde::Serialize;
use tokio::sync::Notify;

use super::{FailureKind, NewAlert, Order, SharedStore, SignalQuery, StoreError};

/// What the writer asks about each record before storing it: the outbox rows stored in the
/// same transaction. The alert rules implement it; [`NoOutbox`] stores records alone.
pub trait RecordObserver: Send + 'static {
    /// Whether the series' latest stored records should be [`replay`](Self::replay)ed into
    /// the observer before its first new record (once per series).
    fn wants_history(&self) -> bool;
    /// Stored records of one series (oldest first), so that after a restart the observer does
    /// not act again on what it already saw.
    fn replay(&mut self, exchange: &str, records: &[SignalRecord]);
    /// The outbox rows `record` produces (rows with `skipped` set are stored, not delivered).
    fn outbox(&mut self, exchange: &str, record: &SignalRecord) -> Vec<NewAlert>;
}

/// A [`RecordObserver`] that produces nothing: records are stored without outbox rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutbox;

impl RecordObserver for NoOutbox {
    fn wants_history(&self) -> bool {
        false
    }
    fn replay(&mut self, _: &str, _: &[SignalRecord]) {}
    fn outbox(&mut self, _: &str, _: &SignalRecord) -> Vec<NewAlert> {
        Vec::new()
    }
}

/// How many stored records of a series are replayed into the observer before its first new one.
const SEED_RECORDS: usize = 50;

/// Attempts at storing one record when the failure is transient.
const ATTEMPTS: u32 = 3;

/// Writer counters, for the dashboard.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records waiting in the queue.
    pub depth: AtomicUsize,
    /// Queue capacity.
    pub capacity: AtomicUsize,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records stored.
    pub written: AtomicU64,
    /// Records already stored (replays), skipped with their alerts.
    pub duplicates: AtomicU64,
    /// Alert outbox rows queued.
    pub alerts_queued: AtomicU64,
    /// Records that could not be stored.
    pub write_errors: AtomicU64,
    /// Records still queued when the shutdown drain gave up.
    pub abandoned: AtomicU64,
    /// Write failures by kind.
    failures: Mutex<Vec<Failure>>,
}

/// The write failures of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Records it cost.
    pub count: u64,
    /// The first one's message.
    pub first: String,
}

/// A copy of [`SinkStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SinkSnapshot {
    /// Records waiting.
    pub depth: usize,
    /// Queue capacity.
    pub capacity: usize,
    /// Records dropped.
    pub dropped: u64,
    /// Records stored.
    pub written: u64,
    /// Replays skipped.
    pub duplicates: u64,
    /// Alerts queued.
    pub alerts_queued: u64,
    /// Write failures.
    pub write_errors: u64,
    /// Records abandoned in the queue at shutdown.
    pub abandoned: u64,
}

impl SinkSnapshot {
    /// Records that were handed to the store and are not stored: dropped (queue full), failed,
    /// or abandoned at shutdown.
    pub fn lost(&self) -> u64 {
        self.dropped + self.write_errors + self.abandoned
    }
}

impl SinkStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> SinkSnapshot {
        SinkSnapshot {
            depth: self.depth.load(Ordering::Relaxed),
            capacity: self.capacity.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            alerts_queued: self.alerts_queued.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }

    /// Write failures so far, one entry per kind, in the order they first occurred.
    pub fn failures(&self) -> Vec<Failure> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a failed record; returns `true` when it is the first of its kind.
    fn record_failure(&self, kind: FailureKind, message: impl FnOnce() -> String) -> bool {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match f.iter_mut().find(|f| f.kind == kind) {
            Some(f) => {
                f.count += 1;
                false
            }
            None => {
                f.push(Failure {
                    kind,
                    count: 1,
                    first: message(),
                });
                true
            }
        }
    }
}

/// What the store did with a run's records: counters, failures by kind and where the data
/// lives. [`StoreReport::loss`] says what was lost and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreReport {
    /// The database (path or redacted URL).
    pub location: String,
    /// The counters at the end.
    pub stats: SinkSnapshot,
    /// Write failures by kind.
    pub failures: Vec<Failure>,
}

impl StoreReport {
    /// Records not stored.
    pub fn lost(&self) -> u64 {
        self.stats.lost()
    }

    /// `None` when every record was stored (or was already); else one sentence saying how many
    /// were lost and why, naming the database.
    pub fn loss(&self) -> Option<String> {
        let s = &self.stats;
        if s.lost() == 0 {
            return None;
        }
        let mut why = Vec::new();
        for f in &self.failures {
            why.push(format!("{} failed ({})", f.count, f.first));
        }
        if s.dropped > 0 {
            why.push(format!(
                "{} dropped because the write queue ({}) was full",
                s.dropped, s.capacity
            ));
        }
        if s.abandoned > 0 {
            why.push(format!(
                "{} still queued when shutdown stopped waiting",
                s.abandoned
            ));
        }
        Some(format!(
            "{} of {} signal records were not stored in {}: {}",
            s.lost(),
            s.lost() + s.written + s.duplicates,
            self.location,
            why.join("; ")
        ))
    }
}

/// The candle loop's non-blocking way to store records and queue alerts.
pub struct SignalSink {
    tx: Option<SyncSender<SignalRecord>>,
    stats: Arc<SinkStats>,
    handle: Option<JoinHandle<()>>,
    abandon: Arc<AtomicBool>,
    location: String,
}

impl std::fmt::Debug for SignalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalSink")
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl SignalSink {
    /// Starts the writer thread for records from `exchange`, with `observer` deciding each
    /// record's outbox rows and `wake` (the delivery worker's) notified when rows were queued.
    pub fn spawn(
        store: SharedStore,
        exchange: &str,
        observer: impl RecordObserver,
        capacity: usize,
        wake: Option<Arc<Notify>>,
    ) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let stats = Arc::new(SinkStats::default());
        stats.capacity.store(capacity, Ordering::Relaxed);
        let location = store.lock().unwrap_or_else(|p| p.into_inner()).location();
        let abandon = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            store,
            exchange: exchange.to_string(),
            observer: Box::new(observer),
            wake,
            stats: stats.clone(),
            seeded: HashSet::new(),
            abandon: abandon.clone(),
            location: location.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(SignalSink {
            tx: Some(tx),
            stats,
            handle: Some(handle),
            abandon,
            location,
        })
    }

    /// Queues a record; never blocks. Returns `false` (and counts a drop) when the queue is
    /// full or the writer is gone.
    pub fn submit(&self, record: &SignalRecord) -> bool {
        let Some(tx) = &self.tx else { return false };
        // Count before sending, so the writer's decrement can never run first.
        self.stats.depth.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(record.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.depth.fetch_sub(1, Ordering::Relaxed);
                if self.stats.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "the store cannot keep up: its write queue ({}) is full and records are \
                         being dropped (counted on the dashboard and in the summary)",
                        self.stats.capacity.load(Ordering::Relaxed)
                    );
                }
                false
            }
        }
    }

    /// The counters (shared; read them any time).
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// The counters, failures and database now.
    pub fn report(&self) -> StoreReport {
        StoreReport {
            location: self.location.clone(),
            stats: self.stats.snapshot(),
            failures: self.stats.failures(),
        }
    }

    /// Stops taking records and lets the writer store what is queued, for at most `grace` or
    /// until `abort` resolves (a second Ctrl+C); what is still queued then is counted as
    /// abandoned and the writer is left to stop on its own. Returns the final report.
    pub async fn drain(mut self, grace: Duration, abort: impl Future<Output = ()>) -> StoreReport {
        self.tx.take();
        let finished = match &self.handle {
            None => true,
            Some(h) => {
                let done = async {
                    // The writer is a plain thread: poll its end (shutdown only, a few ms).
                    while !h.is_finished() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                tokio::select! {
                    () = done => true,
                    () = tokio::time::sleep(grace) => {
                        tracing::warn!(
                            "the store did not finish writing within {grace:?}; giving up on \
                             what is still queued"
                        );
                        false
                    }
                    () = abort => {
                        tracing::warn!("second signal: not waiting for the store any longer");
                        false
                    }
                }
            }
        };
        self.finish(finished)
    }

    /// Stores what is queued (waiting at most a few seconds), then stops the writer.
    pub fn close(self) -> StoreReport {
        self.close_within(DROP_GRACE)
    }

    /// [`SignalSink::drain`] for synchronous callers: waits at most `grace`.
    pub fn close_within(mut self, grace: Duration) -> StoreReport {
        let finished = self.wait_sync(grace);
        self.finish(finished)
    }

    /// Stops taking records and waits up to `grace` for the writer; `true` if it finished.
    fn wait_sync(&mut self, grace: Duration) -> bool {
        self.tx.take();
        let deadline = Instant::now() + grace;
        loop {
            match &self.handle {
                None => return true,
                Some(h) if h.is_finished() => return true,
                Some(_) if Instant::now() >= deadline => return false,
                Some(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn finish(&mut self, finished: bool) -> StoreReport {
        if let Some(h) = self.handle.take() {
            if finished {
                if h.join().is_err() {
                    tracing::error!("store writer thread panicked");
                }
            } else {
                // The writer may be stuck inside the database call: leave it (it stops after
                // that call) and count what it did not confirm as lost.
                self.abandon.store(true, Ordering::SeqCst);
                let left = self.stats.depth.load(Ordering::SeqCst) as u64;
                self.stats.abandoned.fetch_add(left, Ordering::SeqCst);
            }
        }
        // A writer that died leaves its queue behind: that is lost too.
        let left = self.stats.depth.swap(0, Ordering::SeqCst) as u64;
        if finished && left > 0 {
            self.stats.abandoned.fetch_add(left, Ordering::SeqCst);
        }
        self.report()
    }
}

impl Drop for SignalSink {
    /// Bounded like [`SignalSink::drain`], so an unfinished sink never holds the exit.
    fn drop(&mut self) {
        if self.handle.is_some() {
            let finished = self.wait_sync(DROP_GRACE);
            self.finish(finished);
        }
    }
}

/// How long dropping a sink (instead of draining it) waits for the writer.
const DROP_GRACE: Duration = Duration::from_secs(5);

struct Writer {
    store: SharedStore,
    exchange: String,
    observer: Box<dyn RecordObserver>,
    wake: Option<Arc<Notify>>,
    stats: Arc<SinkStats>,
    seeded: HashSet<(String, Interval)>,
    abandon: Arc<AtomicBool>,
    location: String,
}

impl Writer {
    fn run(mut self, rx: Receiver<SignalRecord>) {
        while let Ok(record) = rx.recv() {
            if self.abandon.load(Ordering::SeqCst) {
                // Shutdown stopped waiting and counted the queue as lost.
                return;
            }
            self.write(&record);
            // Saturating: after an abandon the queue was already counted (and zeroed).
            let _ = self
                .stats
                .depth
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1));
        }
    }

    /// Replays the series' latest stored records into the observer (once per series), so
    /// that a restart does not alert again on a decision it already alerted.
    fn seed(&mut self, r: &SignalRecord) {
        if !self.observer.wants_history() || !self.seeded.insert((r.symbol.clone(), r.interval)) {
            return;
        }
        let q = SignalQuery {
            exchange: Some(self.exchange.clone()),
            symbol: Some(r.symbol.clone()),
            interval: Some(r.interval),
            until: Some(r.open_time),
            limit: Some(SEED_RECORDS),
            order: Order::Desc,
            ..SignalQuery::default()
        };
        let found = {
            let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
            s.signals(&q)
        };
        match found {
            Ok(mut rows) => {
                rows.reverse();
                let records: Vec<_> = rows.into_iter().map(|s| s.record).collect();
                self.observer.replay(&self.exchange, &records);
            }
            Err(e) => tracing::warn!("cannot read stored signals to seed alert rules: {e}"),
        }
    }

    fn write(&mut self, record: &SignalRecord) {
        self.seed(record);
        let outbox = self.observer.outbox(&self.exchange, record);
        let queued = outbox.iter().filter(|a| a.skipped.is_none()).count();
        let mut delay = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            let res = {
                let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
                s.insert_signal(&self.exchange, record, &outbox)
            };
            match res {
                Ok(true) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                    if queued > 0 {
                        self.stats
                            .alerts_queued
                            .fetch_add(queued as u64, Ordering::Relaxed);
                        if let Some(w) = &self.wake {
                            w.notify_one();
                        }
                    }
                    return;
                }
                Ok(false) => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                // Only a transient failure is worth another try; a full disk or a read-only
                // file fails the same way at once, and waiting would back the queue up.
                Err(e)
                    if e.kind().is_transient()
                        && attempt < ATTEMPTS
                        && !self.abandon.load(Ordering::SeqCst) =>
                {
                    std::thread::sleep(delay);
                    delay *= 4;
                    attempt += 1;
                }
                Err(e) => {
                    self.fail(&e, record);
                    return;
                }
            }
        }
    }

    /// Counts a record that could not be stored; the first failure of each kind is logged at
    /// once, the rest only counted (one line per record would flood the log).
    fn fail(&self, e: &StoreError, record: &SignalRecord) {
        let kind = e.kind();
        if self.stats.record_failure(kind, || format!("{kind}: {e}")) {
            tracing::error!(
                symbol = %record.symbol,
                open_time = record.open_time,
                "cannot store signal records: {kind} at {}: {e}; they are being lost (further \
                 {kind} failures are counted on the dashboard and in the summary, not logged)",
                self.location
            );
        }
    }
}

#[cfg(test)]
mod tests {
    //! Fault injection through the [`Store`](super::super::Store) seam: a store whose writes
    //! fail (or hang) on command, behind the real writer thread.

    use std::sync::mpsc;

    use manus_core::record::Signals;
    use manus_core::{Action, Candle};

    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        Alert, AlertStatus, BacktestRun, NewAlert, NewBacktestRun, Result, Rows, Store,
        StoredSignal, shared,
    };

    /// What the next write does.
    #[derive(Clone, Copy)]
    enum Fault {
        /// Fails with this SQLite code `n` times, then writes.
        FailTimes(i32, u32),
        /// Blocks until the test sends on the gate, then writes.
        Hang,
    }

    /// A real in-memory SQLite store whose `insert_signal` fails or hangs by script.
    struct FaultyStore {
        inner: SqliteStore,
        fault: Option<Fault>,
        /// Alternates between these codes when set (one failure kind per record in turn).
        alternate: Vec<i32>,
        calls: Arc<AtomicU64>,
        gate: Option<Mutex<mpsc::Receiver<()>>>,
    }

    fn sqlite_error(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    impl Store for FaultyStore {
        fn backend(&self) -> &'static str {
            "faulty"
        }
        fn location(&self) -> String {
            "/data/live.db".into()
        }
        fn schema_version(&mut self) -> Result<i64> {
            self.inner.schema_version()
        }
        fn upsert_candles(&mut self, e: &str, s: &str, i: Interval, c: &[Candle]) -> Result<usize> {
            self.inner.upsert_candles(e, s, i, c)
        }
        fn candles_range(
            &mut self,
            e: &str,
            s: &str,
            i: Interval,
            from: i64,
            to: i64,
        ) -> Result<Vec<Candle>> {
            self.inner.candles_range(e, s, i, from, to)
        }
        fn insert_signal(&mut self, e: &str, r: &SignalRecord, o: &[NewAlert]) -> Result<bool> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if !self.alternate.is_empty() {
                let code = self.alternate[n as usize % self.alternate.len()];
                return Err(sqlite_error(code));
            }
            match self.fault {
                Some(Fault::FailTimes(code, k)) if n < u64::from(k) => {
                    return Err(sqlite_error(code));
                }
                Some(Fault::Hang) => {
                    if let Some(g) = &self.gate {
                        let _ = g.lock().unwrap().recv();
                    }
                }
                _ => {}
            }
            self.inner.insert_signal(e, r, o)
        }
        fn read_signals(&mut self, q: &SignalQuery) -> Result<Rows<StoredSignal>> {
            self.inner.read_signals(q)
        }
        fn insert_backtest_run(&mut self, run: &NewBacktestRun) -> Result<i64> {
            self.inner.insert_backtest_run(run)
        }
        fn read_backtest_runs(&mut self, limit: usize) -> Result<Rows<BacktestRun>> {
            self.inner.read_backtest_runs(limit)
        }
        fn due_alerts(&mut self, now: i64, limit: usize) -> Result<Vec<Alert>> {
            self.inner.due_alerts(now, limit)
        }
        fn mark_delivered(&mut self, id: i64, now: i64) -> Result<()> {
            self.inner.mark_delivered(id, now)
        }
        fn mark_retry(&mut self, id: i64, at: i64, e: &str) -> Result<()> {
            self.inner.mark_retry(id, at, e)
        }
        fn mark_failed(&mut self, id: i64, e: &str) -> Result<()> {
            self.inner.mark_failed(id, e)
        }
        fn alerts(&mut self, s: Option<AlertStatus>, limit: usize) -> Result<Vec<Alert>> {
            self.inner.alerts(s, limit)
        }
        fn signal_open_times(&mut self, e: Option<&str>, s: &str, i: Interval) -> Result<Vec<i64>> {
            self.inner.signal_open_times(e, s, i)
        }
    }

    struct Rig {
        sink: SignalSink,
        calls: Arc<AtomicU64>,
        gate: mpsc::Sender<()>,
    }

    fn rig(fault: Option<Fault>, alternate: Vec<i32>, capacity: usize) -> Rig {
        let calls = Arc::new(AtomicU64::new(0));
        let (gate_tx, gate_rx) = mpsc::channel();
        let store = FaultyStore {
            inner: SqliteStore::open_in_memory().unwrap(),
            fault,
            alternate,
            calls: calls.clone(),
            gate: Some(Mutex::new(gate_rx)),
        };
        let sink =
            SignalSink::spawn(shared(Box::new(store)), "sim", NoOutbox, capacity, None).unwrap();
        Rig {
            sink,
            calls,
            gate: gate_tx,
        }
    }

    fn record(i: i64) -> SignalRecord {
        SignalRecord {
            symbol: "BTCUSDT".into(),
            interval: Interval::M1,
            open_time: i * 60_000,
            close: 100.0,
            signals: Signals::default(),
            confluence: Action::Hold,
            confidence: 0.0,
            agreeing: Vec::new(),
            events: Vec::new(),
            votes: Default::default(),
            warming_up: false,
            latency_us: None,
            backfilled: None,
            stale: None,
            exchange_time: None,
        }
    }

    const FULL: i32 = rusqlite::ffi::SQLITE_FULL;
    const READONLY: i32 = rusqlite::ffi::SQLITE_READONLY;
    const BUSY: i32 = rusqlite::ffi::SQLITE_BUSY;

    #[test]
    fn failures_are_counted_by_kind_and_reported_with_the_database() {
        struct Case {
            name: &'static str,
            alternate: Vec<i32>,
            expected: Vec<(FailureKind, u64)>,
        }
        let cases = [
            Case {
                name: "disk full",
                alternate: vec![FULL],
                expected: vec![(FailureKind::DiskFull, 10)],
            },
            Case {
                name: "two kinds in turn",
                alternate: vec![FULL, READONLY],
                expected: vec![(FailureKind::DiskFull, 5), (FailureKind::ReadOnly, 5)],
            },
        ];
        for c in cases {
            let r = rig(None, c.alternate, 64);
            for i in 0..10 {
                assert!(r.sink.submit(&record(i)), "{}", c.name);
            }
            let report = r.sink.close_within(Duration::from_secs(30));
            // A full disk or a read-only file is not retried: one attempt per record.
            assert_eq!(r.calls.load(Ordering::SeqCst), 10, "{}", c.name);
            assert_eq!(report.stats.written, 0, "{}", c.name);
            assert_eq!(report.stats.write_errors, 10, "{}", c.name);
            assert_eq!(report.lost(), 10, "{}", c.name);
            let got: Vec<_> = report.failures.iter().map(|f| (f.kind, f.count)).collect();
            assert_eq!(got, c.expected, "{}", c.name);
            let loss = report.loss().unwrap();
            assert!(
                loss.starts_with("10 of 10 signal records were not stored in /data/live.db"),
                "{}: {loss}",
                c.name
            );
            assert!(loss.contains("disk full"), "{}: {loss}", c.name);
        }
    }

    #[test]
    fn the_first_failure_of_each_kind_is_flagged_for_the_log_once() {
        let stats = SinkStats::default();
        let firsts: Vec<bool> = [
            FailureKind::DiskFull,
            FailureKind::DiskFull,
            FailureKind::ReadOnly,
            FailureKind::DiskFull,
            FailureKind::ReadOnly,
        ]
        .into_iter()
        .map(|k| stats.record_failure(k, || k.to_string()))
        .collect();
        assert_eq!(firsts, [true, false, true, false, false]);
        assert_eq!(stats.snapshot().write_errors, 5);
    }

    #[test]
    fn a_transient_lock_is_retried_and_the_record_stored() {
        let r = rig(Some(Fault::FailTimes(BUSY, 1)), Vec::new(), 8);
        assert!(r.sink.submit(&record(1)));
        let report = r.sink.close_within(Duration::from_secs(30));
        assert_eq!(r.calls.load(Ordering::SeqCst), 2);
        assert_eq!(report.stats.written, 1);
        assert_eq!(report.loss(), None);
    }

    #[test]
    fn a_full_queue_drops_and_the_report_says_so() {
        // The writer hangs on the first record, so the queue (2) fills behind it.
        let r = rig(Some(Fault::Hang), Vec::new(), 2);
        let accepted = (0..6).filter(|&i| r.sink.submit(&record(i))).count() as u64;
        assert!(accepted <= 3, "{accepted}");
        for _ in 0..accepted {
            r.gate.send(()).unwrap();
        }
        let report = r.sink.close_within(Duration::from_secs(30));
        assert_eq!(report.stats.written, accepted);
        assert_eq!(report.stats.dropped, 6 - accepted);
        let loss = report.loss().unwrap();
        assert!(loss.contains("write queue (2) was full"), "{loss}");
    }

    #[tokio::test]
    async fn shutdown_waits_a_bounded_time_for_a_hung_store() {
        let r = rig(Some(Fault::Hang), Vec::new(), 16);
        for i in 0..5 {
            assert!(r.sink.submit(&record(i)));
        }
        let t = Instant::now();
        let report = r
            .sink
            .drain(Duration::from_millis(200), std::future::pending())
            .await;
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(report.stats.abandoned, 5);
        assert_eq!(report.lost(), 5);
        assert!(report.loss().unwrap().contains("5 still queued"));
        let _ = r.gate.send(());
    }

    #[tokio::test]
    async fn a_second_signal_stops_the_drain_at_once() {
        let r = rig(Some(Fault::Hang), Vec::new(), 16);
        for i in 0..3 {
            assert!(r.sink.submit(&record(i)));
        }
        let t = Instant::now();
        // The grace is an hour: only the "second signal" can end the wait.
        let report = r
            .sink
            .drain(Duration::from_secs(3600), std::future::ready(()))
            .await;
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(report.stats.abandoned, 3);
        let _ = r.gate.send(());
    }

    #[tokio::test]
    async fn a_healthy_store_is_drained_completely() {
        let r = rig(None, Vec::new(), 256);
        for i in 0..100 {
            assert!(r.sink.submit(&record(i)));
        }
        let report = r
            .sink
            .drain(Duration::from_secs(60), std::future::pending())
            .await;
        assert_eq!(report.stats.written, 100);
        assert_eq!(report.stats.depth, 0);
        assert_eq!(report.loss(), None);
    }
}
