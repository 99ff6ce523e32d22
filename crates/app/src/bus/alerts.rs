//! `manus alerts run --bus URL --alerts-config F --db DB`: alert rules evaluated on the bus's
//! records through one durable consumer shared by every instance. The consumer lets one
//! record be in flight at a time (`max_ack_pending = 1`), and each record is evaluated against
//! the rule state rebuilt from the stream's newest stored records, then stored with its outbox
//! rows in one transaction before it is acknowledged: whichever instance gets the next record
//! sees the previous one, so a move alerts once however the records are spread, and a
//! redelivered record (already stored) queues nothing. Delivery claims outbox rows, so the
//! instances' delivery workers never send one twice.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures_util::StreamExt;
use manus_core::record::SignalRecord;
use tokio::sync::{Notify, watch};

use super::{BusConfig, BusError, SIGNALS_STREAM, ensure_streams};
use crate::alerts::config::AlertsConfig;
use crate::alerts::rules::AlertRules;
use crate::alerts::worker::{AlertWorker, DeliveryPolicy, blocking};
use crate::clock::now_ms;
use crate::store::{Order, SharedStore, SignalQuery, StoreError};

/// The shared durable consumer.
pub const CONSUMER: &str = "manus_alerts";
/// Stored records a rule's state is rebuilt from (a move older than this re-arms it).
const LOOKBACK: usize = 200;

/// Errors of the alert consumer.
#[derive(Debug, thiserror::Error)]
pub enum BusAlertsError {
    /// The bus.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The store.
    #[error("the alert store: {0}")]
    Store(#[from] StoreError),
    /// The settings.
    #[error("the alert settings: {0}")]
    Config(String),
}

/// The alerts a record raises given the stored records before it, stored with it; false when
/// it was stored already (nothing queued).
fn process(
    store: &mut dyn crate::store::Store,
    base: &AlertRules,
    exchange: &str,
    rec: &SignalRecord,
) -> Result<bool, StoreError> {
    let mut before = store.signals(&SignalQuery {
        exchange: Some(exchange.to_string()),
        symbol: Some(rec.symbol.clone()),
        interval: Some(rec.interval),
        limit: Some(LOOKBACK),
        order: Order::Desc,
        ..SignalQuery::default()
    })?;
    if before
        .first()
        .is_some_and(|s| s.record.open_time >= rec.open_time)
    {
        return Ok(false); // already here (a redelivery), or older than what is
    }
    before.reverse();
    let history: Vec<SignalRecord> = before.into_iter().map(|s| s.record).collect();
    let mut rules = base.clone();
    rules.seed(exchange, &history);
    let mut outbox = rules.evaluate(exchange, rec);
    if let Some(why) = rules.staleness(rec, now_ms()) {
        for a in &mut outbox {
            a.skipped = Some(why.clone());
        }
    }
    store.insert_signal(exchange, rec, &outbox)
}

/// Runs until `stop`: consumes the signals, queues alerts, delivers them.
pub async fn run(
    cfg: BusConfig,
    alerts: AlertsConfig,
    store: SharedStore,
    mut stop: watch::Receiver<bool>,
) -> Result<(), BusAlertsError> {
    let notifiers = alerts
        .notifiers(&|k| std::env::var(k).ok())
        .map_err(|e| BusAlertsError::Config(e.to_string()))?;
    let names: Vec<String> = notifiers.iter().map(|n| n.name().to_string()).collect();
    let rules = alerts
        .rules(&names)
        .map_err(|e| BusAlertsError::Config(e.to_string()))?;
    let wake = Arc::new(Notify::new());
    let worker = AlertWorker::new(
        store.clone(),
        notifiers,
        DeliveryPolicy::from_config(&alerts.delivery),
    );
    let poll = Duration::from_millis(alerts.delivery.poll_interval_ms.max(10));
    let delivery = tokio::spawn(worker.run(wake.clone(), poll, stop.clone()));

    let js = cfg.connect(false).await?;
    ensure_streams(&js, cfg.retention).await?;
    let err = |e: async_nats::Error| BusError::Stream {
        name: SIGNALS_STREAM,
        source: e,
    };
    let consumer = js
        .get_stream_no_info(SIGNALS_STREAM)
        .await
        .map_err(|e| err(e.into()))?
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.to_string()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| err(e.into()))?;
    let mut msgs = consumer.messages().await.map_err(|e| err(e.into()))?;
    tracing::info!(rules = rules.rules().len(), notifiers = ?names, "alerts on the bus");
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = msgs.next() => m,
        };
        let Some(msg) = msg else { break };
        let msg = msg.map_err(|e| err(e.into()))?;
        let exchange = msg
            .subject
            .split('.')
            .nth(2)
            .unwrap_or_default()
            .to_string();
        match serde_json::from_slice::<SignalRecord>(&msg.payload) {
            Ok(rec) => {
                let base = rules.clone();
                let queued = blocking(&store, move |s| process(s, &base, &exchange, &rec)).await?;
                if queued {
                    wake.notify_one();
                }
            }
            Err(e) => tracing::warn!("a record on {} that does not parse: {e}", msg.subject),
        }
        msg.ack().await.map_err(err)?;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), delivery).await;
    Ok(())
}
