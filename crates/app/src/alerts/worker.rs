//! The delivery worker: claims due outbox rows ([`crate::store::Store::due_alerts`]), sends each
//! through its notifier, and records the outcome: delivered; retried later with exponential
//! backoff (never sooner than a 429's `retry_after`); or failed after `max_attempts` or on a
//! permanent error. State lives in the store, so a restart resumes where the last run stopped
//! and a delivered alert is never sent again. Runs on the tokio runtime; store calls go through
//! `spawn_blocking`, so neither a slow service nor a slow disk touches the candle loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};

use super::config::DeliveryConfig;
use super::{Notifier, Outgoing, SendError};
use crate::clock::now_ms;
use crate::store::{Alert, SharedStore, Store, StoreError};

/// Retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubled per attempt.
    pub base: Duration,
    /// Longest delay from the backoff (a 429's `retry_after` may ask for more).
    pub max: Duration,
}

impl DeliveryPolicy {
    /// The policy of `[alerts.delivery]`.
    pub fn from_config(c: &DeliveryConfig) -> Self {
        DeliveryPolicy {
            max_attempts: c.max_attempts.max(1),
            base: Duration::from_millis(c.backoff_base_ms),
            max: Duration::from_millis(c.backoff_max_ms.max(c.backoff_base_ms)),
        }
    }

    /// The wait before the next attempt after `attempts` failed ones (1 = first failure):
    /// `base * 2^(attempts-1)` capped at `max`, and at least the service's `retry_after`.
    pub fn backoff(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let d = self.base.saturating_mul(1 << exp).min(self.max);
        retry_after.map_or(d, |r| d.max(r))
    }
}

/// Delivery counters, for the dashboard.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Alerts delivered.
    pub delivered: AtomicU64,
    /// Attempts that failed and were rescheduled.
    pub retried: AtomicU64,
    /// Alerts given up on.
    pub failed: AtomicU64,
    /// Deliveries in progress.
    pub in_flight: AtomicUsize,
    /// Store errors seen by the worker.
    pub store_errors: AtomicU64,
}

/// A copy of [`DeliveryStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeliverySnapshot {
    /// Alerts delivered.
    pub delivered: u64,
    /// Attempts rescheduled.
    pub retried: u64,
    /// Alerts given up on.
    pub failed: u64,
    /// Deliveries in progress.
    pub in_flight: usize,
    /// Store errors.
    pub store_errors: u64,
}

impl DeliveryStats {
    /// Reads every counter.
    pub fn snapshot(&self) -> DeliverySnapshot {
        DeliverySnapshot {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Delivered now.
    pub delivered: usize,
    /// Rescheduled.
    pub retried: usize,
    /// Given up on.
    pub failed: usize,
}

/// Runs a store call on the blocking pool.
pub async fn blocking<T, F>(store: &SharedStore, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(guard.as_mut())
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("store task failed: {e}")))?
}

/// Delivers the outbox.
pub struct AlertWorker {
    store: SharedStore,
    notifiers: HashMap<String, Arc<dyn Notifier>>,
    policy: DeliveryPolicy,
    stats: Arc<DeliveryStats>,
    batch: usize,
}

impl AlertWorker {
    /// A worker over `store` delivering through `notifiers` (matched by name).
    pub fn new(
        store: SharedStore,
        notifiers: Vec<Arc<dyn Notifier>>,
        policy: DeliveryPolicy,
    ) -> Self {
        AlertWorker {
            store,
            notifiers: notifiers
                .into_iter()
                .map(|n| (n.name().to_string(), n))
                .collect(),
            policy,
            stats: Arc::new(DeliveryStats::default()),
            batch: 32,
        }
    }

    /// The counters (shared; read them any time).
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.stats.clone()
    }

    /// Claims the alerts due at `now_ms` and delivers them concurrently; returns what happened.
    pub async fn run_once(&self, now_ms: i64) -> Result<PassReport, StoreError> {
        let batch = self.batch;
        let due = blocking(&self.store, move |s| s.due_alerts(now_ms, batch)).await?;
        let mut report = PassReport::default();
        if due.is_empty() {
            return Ok(report);
        }
        self.stats.in_flight.fetch_add(due.len(), Ordering::Relaxed);
        let outcomes = futures_util::future::join_all(due.iter().map(|a| self.deliver(a))).await;
        self.stats.in_flight.fetch_sub(due.len(), Ordering::Relaxed);
        for (alert, outcome) in due.into_iter().zip(outcomes) {
            let id = alert.id;
            match outcome {
                Ok(()) => {
                    blocking(&self.store, move |s| s.mark_delivered(id, now_ms)).await?;
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    report.delivered += 1;
                }
                Err(e)
                    if e.is_retryable()
                        && (alert.attempts as u64) < self.policy.max_attempts as u64 =>
                {
                    let wait = self
                        .policy
                        .backoff(alert.attempts.max(1) as u32, e.retry_after());
                    let next = now_ms + wait.as_millis() as i64;
                    tracing::warn!(
                        alert = id,
                        notifier = %alert.notifier,
                        attempt = alert.attempts,
                        retry_in_ms = wait.as_millis() as u64,
                        "alert delivery failed: {e}"
                    );
                    let msg = e.to_string();
                    blocking(&self.store, move |s| s.mark_retry(id, next, &msg)).await?;
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    report.retried += 1;
                }
                Err(e) => {
                    tracing::error!(
                        alert = id,
                        notifier = %alert.notifier,
                        attempts = alert.attempts,
                        "alert delivery gave up: {e}"
                    );
                    let msg = format!("after {} attempt(s): {e}", alert.attempts);
                    blocking(&self.store, move |s| s.mark_failed(id, &msg)).await?;
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), SendError> {
        let Some(n) = self.notifiers.get(&alert.notifier) else {
            return Err(SendError::Permanent(format!(
                "notifier '{}' is not configured",
                alert.notifier
            )));
        };
        n.send(&Outgoing::from_alert(alert)).await
    }

    /// Delivers until `shutdown` turns true: a pass whenever `wake` is notified (a signal with
    /// alerts was stored) or every `poll` (retries coming due).
    pub async fn run(self, wake: Arc<Notify>, poll: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Keep passing while a full batch came back: there may be more due.
            loop {
                match self.run_once(now_ms()).await {
                    Ok(r) if r.delivered + r.retried + r.failed >= self.batch => continue,
                    Ok(_) => break,
                    Err(e) => {
                        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!("alert worker: store error: {e}");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let p = DeliveryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let secs: Vec<u64> = (1..=6).map(|a| p.backoff(a, None).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.backoff(3, Some(Duration::from_millis(10))),
            Duration::from_secs(4)
        );
        assert_eq!(p.backoff(u32::MAX, None), Duration::from_secs(10));
    }
}
