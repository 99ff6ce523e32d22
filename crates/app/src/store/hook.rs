//! [`StoreHook`]: what `live` and `demo` attach for `--db`: the store, the [`SignalSink`]
//! writer thread, and (when notifiers are configured) the alert delivery worker on the current
//! tokio runtime. The candle loop only calls [`StoreHook::submit`], which never blocks.

use std::sync::Arc;
use std::time::Duration;

use manus_core::record::SignalRecord;
use tokio::sync::{Notify, watch};

use super::sink::{SignalSink, SinkStats, StoreReport};
use super::{SharedStore, shared};
use crate::alerts::config::AlertsConfig;
use crate::alerts::rules::AlertRules;
use crate::alerts::worker::{AlertWorker, DeliveryPolicy, DeliveryStats};

/// How long shutdown waits for queued records to be stored before counting them as lost.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Where a live run stores records (`--db`) and which alerts it sends (`--alerts-config`).
#[derive(Debug, Clone)]
pub struct StoreTarget {
    /// A SQLite path or postgres:// URL.
    pub db: String,
    /// The exchange name records are stored under.
    pub exchange: String,
    /// The `[alerts]` settings, if any.
    pub alerts: Option<AlertsConfig>,
}

impl StoreTarget {
    /// A target for `--db` and an optional settings file with an `[alerts]` section (read and
    /// checked now, so a bad file stops the run before it starts).
    pub fn new(
        db: &str,
        exchange: &str,
        alerts_config: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let alerts = match alerts_config {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    crate::exit::bad_input(format!("cannot read {}: {e}", p.display()))
                })?;
                let cfg = AlertsConfig::from_settings_toml(&text)
                    .map_err(|e| crate::exit::bad_input(format!("{}: {e}", p.display())))?;
                let names: Vec<String> = cfg
                    .notifiers(&|k| std::env::var(k).ok())
                    .map_err(|e| crate::exit::bad_input(e.to_string()))?
                    .iter()
                    .map(|n| n.name().to_string())
                    .collect();
                cfg.rules(&names)
                    .map_err(|e| crate::exit::bad_input(e.to_string()))?;
                Some(cfg)
            }
        };
        Ok(StoreTarget {
            db: db.to_string(),
            exchange: exchange.to_string(),
            alerts,
        })
    }

    /// Starts the hook (inside a tokio runtime).
    pub fn start(&self) -> anyhow::Result<StoreHook> {
        StoreHook::start(&self.db, &self.exchange, self.alerts.as_ref())
    }
}

/// The store writer's and alert worker's counters (shared atomics, read once per dashboard
/// frame): owned here, so the live loop and the dashboard both depend on the store, not on each
/// other.
#[derive(Debug, Clone)]
pub struct StoreStats {
    /// Writer queue depth, drops and writes.
    pub sink: Arc<SinkStats>,
    /// Delivery counters; `None` when no notifier is configured.
    pub delivery: Option<Arc<crate::alerts::worker::DeliveryStats>>,
}

/// The store side of a live run.
pub struct StoreHook {
    sink: Option<SignalSink>,
    store: SharedStore,
    delivery: Option<Arc<DeliveryStats>>,
    stop: Option<watch::Sender<bool>>,
}

impl std::fmt::Debug for StoreHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHook")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl StoreHook {
    /// Opens `db` (a SQLite path or postgres:// URL) and starts the writer, storing records
    /// under `exchange`; with `alerts`, also evaluates its rules and starts delivery. Must be
    /// called inside a tokio runtime when `alerts` has notifiers.
    pub fn start(db: &str, exchange: &str, alerts: Option<&AlertsConfig>) -> anyhow::Result<Self> {
        // The Postgres client must not be created on a runtime thread.
        let db_owned = db.to_string();
        let store = std::thread::scope(|s| s.spawn(|| super::open(Some(&db_owned))).join())
            .map_err(|_| anyhow::anyhow!("opening the store panicked"))??;
        let store = shared(store);
        let default = AlertsConfig::default();
        let cfg = alerts.unwrap_or(&default);
        let notifiers = cfg.notifiers(&|k| std::env::var(k).ok())?;
        let names: Vec<String> = notifiers.iter().map(|n| n.name().to_string()).collect();
        let rules = if notifiers.is_empty() {
            AlertRules::default()
        } else {
            cfg.rules(&names)?
        };
        let (wake, delivery, stop) = if notifiers.is_empty() {
            (None, None, None)
        } else {
            let wake = Arc::new(Notify::new());
            let worker = AlertWorker::new(
                store.clone(),
                notifiers,
                DeliveryPolicy::from_config(&cfg.delivery),
            );
            let stats = worker.stats();
            let (tx, rx) = watch::channel(false);
            let poll = Duration::from_millis(cfg.delivery.poll_interval_ms.max(10));
            tokio::spawn(worker.run(wake.clone(), poll, rx));
            tracing::info!(notifiers = ?names, rules = rules.rules().len(), "alerts enabled");
            (Some(wake), Some(stats), Some(tx))
        };
        let sink = SignalSink::spawn(
            store.clone(),
            exchange,
            rules,
            cfg.delivery.queue_capacity,
            wake,
        )?;
        Ok(StoreHook {
            sink: Some(sink),
            store,
            delivery,
            stop,
        })
    }

    /// Queues a record for the store; never blocks (a full queue drops and counts).
    pub fn submit(&self, record: &SignalRecord) -> bool {
        self.sink.as_ref().is_some_and(|s| s.submit(record))
    }

    /// Writer counters (queue depth, drops, writes).
    pub fn sink_stats(&self) -> Option<Arc<SinkStats>> {
        self.sink.as_ref().map(SignalSink::stats)
    }

    /// Delivery counters, when alerts are enabled.
    pub fn delivery_stats(&self) -> Option<Arc<DeliveryStats>> {
        self.delivery.clone()
    }

    /// Stops taking records and stores what is queued, for at most `grace` or until `abort`
    /// resolves (a second Ctrl+C); then stops delivery (undelivered alerts wait in the
    /// outbox). Returns what happened to the run's records.
    pub async fn finish(
        mut self,
        grace: Duration,
        abort: impl Future<Output = ()>,
    ) -> Option<StoreReport> {
        let sink = self.sink.take()?;
        Some(sink.drain(grace, abort).await)
    }

    /// The store (for history reads); lock it only off the candle loop.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }
}

impl Drop for StoreHook {
    /// Stores what is queued (waiting at most [`DRAIN_GRACE`]), then stops delivery
    /// (undelivered alerts wait in the outbox).
    fn drop(&mut self) {
        if let Some(s) = self.sink.take() {
            let report = s.close_within(DRAIN_GRACE);
            match report.loss() {
                Some(loss) => tracing::error!("{loss}"),
                None => tracing::info!(
                    written = report.stats.written,
                    duplicates = report.stats.duplicates,
                    "store writer stopped"
                ),
            }
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
    }
}
