//! `manus sink --bus URL --db DB`: persists every candle and signal record on the bus into the
//! store (SQLite or PostgreSQL) through two durable consumers, so a restarted sink resumes
//! where it stopped. A message is acknowledged only after its row is written; the store
//! ignores a record it already has, so redeliveries leave one row per candle.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use futures_util::StreamExt;
use manus_core::record::SignalRecord;

use crate::bus::publish::CandleMsg;
use crate::bus::{BusConfig, CANDLES_STREAM, SIGNALS_STREAM};
use crate::exit::bad_input;
use crate::store::Store;

/// The durable consumers' name (one on each stream); sinks started with the same name share
/// the work.
pub const CONSUMER: &str = "manus_sink";

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bus, e.g. nats://127.0.0.1:4222 (several servers: comma-separated).
    #[arg(long, value_name = "nats://HOST:PORT[,...]", env = "MANUS_BUS")]
    pub bus: String,
    /// Database: a SQLite file or a postgres:// URL.
    #[arg(long, env = "MANUS_DB")]
    pub db: String,
    /// Durable consumer name (another name: a second, independent copy of the bus).
    #[arg(long, default_value = CONSUMER)]
    pub consumer: String,
}

/// What a subject names: `manus.{kind}.{exchange}.{SYMBOL}.{interval}` → the exchange.
fn exchange_of(subject: &str) -> Option<&str> {
    subject.split('.').nth(2)
}

/// Writes one message; `Ok(true)` when it was new.
fn write(store: &mut dyn Store, stream: &str, subject: &str, body: &[u8]) -> anyhow::Result<bool> {
    let exchange = exchange_of(subject).with_context(|| format!("subject {subject}"))?;
    if stream == SIGNALS_STREAM {
        let rec: SignalRecord = serde_json::from_slice(body)
            .with_context(|| format!("a record on {subject} that does not parse"))?;
        Ok(store.insert_signal(exchange, &rec, &[])?)
    } else {
        let c: CandleMsg = serde_json::from_slice(body)
            .with_context(|| format!("a candle on {subject} that does not parse"))?;
        Ok(store.upsert_candles(exchange, &c.symbol, c.interval, &[c.candle])? > 0)
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = BusConfig::parse(&args.bus).map_err(|e| bad_input(e.to_string()))?;
    if args.consumer.is_empty()
        || !args
            .consumer
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(bad_input(format!(
            "--consumer '{}': letters, digits, '-' and '_' only",
            args.consumer
        )));
    }
    let mut store = crate::store::open(Some(&args.db))?;
    let location = store.location();
    // The store's clients are blocking (PostgreSQL's runs a runtime of its own): writes go to
    // a thread of their own, one at a time, each answered before its message is acked.
    type Job = (
        &'static str,
        String,
        bytes::Bytes,
        tokio::sync::oneshot::Sender<anyhow::Result<bool>>,
    );
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let writer = std::thread::Builder::new()
        .name("manus-sink-store".into())
        .spawn(move || {
            for (name, subject, body, reply) in queue {
                let _ = reply.send(write(store.as_mut(), name, &subject, &body));
            }
        })
        .context("starting the store writer")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut shutdown =
            crate::live::Shutdown::install().context("installing signal handlers")?;
        let js = cfg.connect(false).await?;
        crate::bus::ensure_streams(&js, cfg.retention).await?;
        let mut streams = Vec::new();
        for name in [CANDLES_STREAM, SIGNALS_STREAM] {
            let consumer = js
                .get_stream_no_info(name)
                .await
                .with_context(|| format!("opening {name}"))?
                .get_or_create_consumer(
                    &args.consumer,
                    pull::Config {
                        durable_name: Some(args.consumer.clone()),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        ..Default::default()
                    },
                )
                .await
                .with_context(|| format!("the durable consumer {} on {name}", args.consumer))?;
            let msgs = consumer
                .messages()
                .await
                .with_context(|| format!("reading {name}"))?;
            streams.push(msgs.map(move |m| (name, m)));
        }
        let mut all = futures_util::stream::select_all(streams);
        tracing::info!("sinking the bus into {location}");
        let (mut written, mut seen) = (0u64, 0u64);
        loop {
            let next = tokio::select! {
                _ = shutdown.wait() => break,
                m = all.next() => m,
            };
            let Some((name, msg)) = next else { break };
            let msg: jetstream::Message = msg.with_context(|| format!("reading {name}"))?;
            // A row that cannot be written stops the sink unacknowledged: it is redelivered
            // after a restart instead of being lost.
            let (reply, answer) = tokio::sync::oneshot::channel();
            jobs.send((name, msg.subject.to_string(), msg.payload.clone(), reply))
                .map_err(|_| anyhow::anyhow!("the store writer stopped"))?;
            let new = answer
                .await
                .map_err(|_| anyhow::anyhow!("the store writer stopped"))??;
            if new {
                written += 1;
            }
            seen += 1;
            msg.ack()
                .await
                .map_err(|e| anyhow::anyhow!("acknowledging a message on {name}: {e}"))?;
        }
        tracing::info!("sink stopped: {seen} messages, {written} new rows");
        drop(jobs);
        anyhow::Ok(())
    })?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the store writer panicked"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_is_the_third_subject_token() {
        assert_eq!(
            exchange_of("manus.signals.binance.BTCUSDT.5m"),
            Some("binance")
        );
        assert_eq!(exchange_of("manus.candles"), None);
    }
}
