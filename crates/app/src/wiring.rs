//! [`StoreHook`]: what a live session attaches for `--db`: the store, the [`SignalSink`]
//! writer thread, and (when notifiers are configured) the alert rules as the writer's observer
//! and the alert delivery worker on the current tokio runtime. The candle loop only calls
//! [`StoreHook::submit`], which never blocks.
//!
//! This is where the store and the alerts meet: the store knows only its outbox rows and a
//! [`RecordObserver`](crate::store::sink::RecordObserver), the alerts know the store, and
//! neither reads the other's settings.

use std::sync::Arc;
use std::time::Duration;

use manus_core::record::SignalRecord;
use tokio::sync::{Notify, watch};

use crate::alerts::config::{AlertConfigError, AlertsConfig};
use crate::alerts::rules::AlertRules;
use crate::alerts::worker::{AlertWorker, DeliveryPolicy, DeliveryStats};
use crate::store::sink::{SignalSink, SinkStats, StoreReport};
use crate::store::{self, SharedStore, StoreError, shared};

/// Why a store target could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The alerts settings file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadAlerts {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `[alerts]` settings are invalid (file named when there is one).
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Alerts {
        /// The settings file.
        path: Option<std::path::PathBuf>,
        /// What is wrong.
        #[source]
        source: AlertConfigError,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Opening the store panicked.
    #[error("opening the store panicked")]
    OpenPanicked,
    /// The writer thread could not start.
    #[error("starting the store writer: {0}")]
    Writer(#[source] std::io::Error),
}

impl WiringError {
    /// Whether the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            WiringError::ReadAlerts { .. } | WiringError::Alerts { .. }
        )
    }
}

/// An `[alerts]` error without a file.
fn alerts(source: AlertConfigError) -> WiringError {
    WiringError::Alerts { path: None, source }
}

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
    ) -> Result<Self, WiringError> {
        let alerts = match alerts_config {
            None => None,
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| WiringError::ReadAlerts {
                        path: p.to_path_buf(),
                        source,
                    })?;
                let in_file = |source| WiringError::Alerts {
                    path: Some(p.to_path_buf()),
                    source,
                };
                let cfg = AlertsConfig::from_settings_toml(&text).map_err(in_file)?;
                let names: Vec<String> = cfg
                    .notifiers(&|k| std::env::var(k).ok())
                    .map_err(alerts)?
                    .iter()
                    .map(|n| n.name().to_string())
                    .collect();
                cfg.rules(&names).map_err(alerts)?;
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
    pub fn start(&self) -> Result<StoreHook, WiringError> {
        StoreHook::start(&self.db, &self.exchange, self.alerts.as_ref())
    }
}

/// The store writer's and alert worker's counters (shared atomics, read once per dashboard
/// frame): owned here, so the live loop and the dashboard both depend on this module, not on
/// each other.
#[derive(Debug, Clone)]
pub struct StoreStats {
    /// Writer queue depth, drops and writes.
    pub sink: Arc<SinkStats>,
    /// Delivery counters; `None` when no notifier is configured.
    pub delivery: Option<Arc<DeliveryStats>>,
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
    pub fn start(
        db: &str,
        exchange: &str,
        alerts_cfg: Option<&AlertsConfig>,
    ) -> Result<Self, WiringError> {
        // The Postgres client must not be created on a runtime thread.
        let db_owned = db.to_string();
        let store = std::thread::scope(|s| s.spawn(|| store::open(Some(&db_owned))).join())
            .map_err(|_| WiringError::OpenPanicked)??;
        let store = shared(store);
        let default = AlertsConfig::default();
        let cfg = alerts_cfg.unwrap_or(&default);
        let notifiers = cfg.notifiers(&|k| std::env::var(k).ok()).map_err(alerts)?;
        let names: Vec<String> = notifiers.iter().map(|n| n.name().to_string()).collect();
        let rules = if notifiers.is_empty() {
            AlertRules::default()
        } else {
            cfg.rules(&names).map_err(alerts)?
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
        )
        .map_err(WiringError::Writer)?;
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
