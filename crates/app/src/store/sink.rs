//! [`SignalSink`]: the hand-off from the candle loop to the store. The loop calls
//! [`SignalSink::submit`], which never blocks: the record goes into a bounded queue (or is
//! dropped and counted when the queue is full), and a writer thread evaluates the alert rules
//! and stores the record with its outbox rows in one transaction, then wakes the delivery
//! worker. Queue depth and drops are in [`SinkStats`] for the dashboard.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use manus_core::Interval;
use manus_core::record::SignalRecord;
use serde::Serialize;
use tokio::sync::Notify;

use super::{Order, SharedStore, SignalQuery};
use crate::alerts::rules::AlertRules;

/// How many stored records of a series are replayed into the rules before its first new one.
const SEED_RECORDS: usize = 50;

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
    /// Records that could not be stored after retries.
    pub write_errors: AtomicU64,
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
        }
    }
}

/// The candle loop's non-blocking way to store records and queue alerts.
pub struct SignalSink {
    tx: Option<SyncSender<SignalRecord>>,
    stats: Arc<SinkStats>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SignalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalSink")
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl SignalSink {
    /// Starts the writer thread for records from `exchange`, with `rules` deciding alerts and
    /// `wake` (the delivery worker's) notified when alerts were queued.
    pub fn spawn(
        store: SharedStore,
        exchange: &str,
        rules: AlertRules,
        capacity: usize,
        wake: Option<Arc<Notify>>,
    ) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (tx, rx) = sync_channel(capacity);
        let stats = Arc::new(SinkStats::default());
        stats.capacity.store(capacity, Ordering::Relaxed);
        let writer = Writer {
            store,
            exchange: exchange.to_string(),
            rules,
            wake,
            stats: stats.clone(),
            seeded: HashSet::new(),
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(SignalSink {
            tx: Some(tx),
            stats,
            handle: Some(handle),
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
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The counters (shared; read them any time).
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Stores what is queued, then stops the writer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take()
            && h.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

impl Drop for SignalSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Writer {
    store: SharedStore,
    exchange: String,
    rules: AlertRules,
    wake: Option<Arc<Notify>>,
    stats: Arc<SinkStats>,
    seeded: HashSet<(String, Interval)>,
}

impl Writer {
    fn run(mut self, rx: Receiver<SignalRecord>) {
        while let Ok(record) = rx.recv() {
            self.write(&record);
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Replays the series' latest stored records into the rules (once per series), so that a
    /// restart does not alert again on a decision it already alerted.
    fn seed(&mut self, r: &SignalRecord) {
        if self.rules.is_empty() || !self.seeded.insert((r.symbol.clone(), r.interval)) {
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
                self.rules.seed(&self.exchange, &records);
            }
            Err(e) => tracing::warn!("cannot read stored signals to seed alert rules: {e}"),
        }
    }

    fn write(&mut self, record: &SignalRecord) {
        self.seed(record);
        let outbox = self.rules.evaluate(&self.exchange, record);
        let mut delay = Duration::from_millis(50);
        for attempt in 1..=4 {
            let res = {
                let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
                s.insert_signal(&self.exchange, record, &outbox)
            };
            match res {
                Ok(true) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                    if !outbox.is_empty() {
                        self.stats
                            .alerts_queued
                            .fetch_add(outbox.len() as u64, Ordering::Relaxed);
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
                Err(e) if attempt < 4 => {
                    tracing::warn!(attempt, "storing a signal failed, retrying: {e}");
                    std::thread::sleep(delay);
                    delay *= 4;
                }
                Err(e) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        symbol = %record.symbol,
                        open_time = record.open_time,
                        "storing a signal failed: {e}"
                    );
                }
            }
        }
    }
}
