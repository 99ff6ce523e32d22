//! `manus tail --bus URL [--subject manus.signals.>] [--from-start]`: prints the bus's
//! records (or candles) as JSON lines, through an ordered consumer of the stream that holds the
//! subject, until Ctrl+C (or `--count` messages).

use std::io::Write;

use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use crate::bus::{BusConfig, CANDLES_STREAM, SIGNALS_STREAM};
use crate::exit::bad_input;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The bus, e.g. nats://127.0.0.1:4222 (several servers: comma-separated).
    #[arg(long, value_name = "nats://HOST:PORT[,...]", env = "MANUS_BUS")]
    pub bus: String,
    /// Subject filter, with NATS wildcards: `manus.signals.>` (every record), `manus.candles.>`,
    /// `manus.signals.binance.BTCUSDT.*`, ...
    #[arg(long, default_value = "manus.signals.>")]
    pub subject: String,
    /// Start from the oldest message the stream keeps instead of new ones only.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after this many messages.
    #[arg(long)]
    pub count: Option<u64>,
    /// Instead of printing, measure each live record's latency from the frame read to its
    /// arrival here (same host clock as the publisher; backfilled records, whose candles were
    /// fetched late on purpose, are left out) and print p50/p99/max at the end.
    #[arg(long)]
    pub latency: bool,
}

/// The stream that holds `subject` (each of ours has one subject prefix).
pub fn stream_for(subject: &str) -> Option<&'static str> {
    let first_two: Vec<&str> = subject.splitn(3, '.').take(2).collect();
    match first_two[..] {
        ["manus", "signals"] => Some(SIGNALS_STREAM),
        ["manus", "candles"] => Some(CANDLES_STREAM),
        _ => None,
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = BusConfig::parse(&args.bus).map_err(|e| bad_input(e.to_string()))?;
    let stream = stream_for(&args.subject).ok_or_else(|| {
        bad_input(format!(
            "--subject '{}': expected a subject under manus.signals. or manus.candles.",
            args.subject
        ))
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut shutdown =
            crate::live::Shutdown::install().context("installing signal handlers")?;
        let js = cfg.connect(false).await?;
        crate::bus::ensure_streams(&js, cfg.retention).await?;
        let consumer = js
            .get_stream_no_info(stream)
            .await
            .with_context(|| format!("opening stream {stream}"))?
            .create_consumer(pull::OrderedConfig {
                filter_subject: args.subject.clone(),
                deliver_policy: if args.from_start {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::New
                },
                ..Default::default()
            })
            .await
            .with_context(|| format!("subscribing to {}", args.subject))?;
        let mut messages = consumer.messages().await.context("reading the stream")?;
        let mut out = std::io::stdout().lock();
        let mut seen = 0u64;
        let mut hist = hdrhistogram::Histogram::<u64>::new(3).context("a histogram")?;
        if args.count == Some(0) {
            return Ok(());
        }
        loop {
            let msg = tokio::select! {
                _ = shutdown.wait() => break,
                m = messages.next() => m,
            };
            let Some(msg) = msg else { break };
            let msg = msg.context("reading the stream")?;
            seen += 1;
            if args.latency {
                let read_at = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(crate::bus::publish::READ_AT_HEADER))
                    .and_then(|v| AsRef::<str>::as_ref(v).parse::<u64>().ok());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as u64);
                #[derive(serde::Deserialize)]
                struct Flags {
                    backfilled: Option<bool>,
                }
                let live = serde_json::from_slice::<Flags>(&msg.payload)
                    .is_ok_and(|f| f.backfilled != Some(true));
                if let (Some(t), true) = (read_at, live) {
                    let _ = hist.record(now.saturating_sub(t));
                }
            } else {
                out.write_all(&msg.payload)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            if args.count.is_some_and(|n| seen >= n) {
                break;
            }
        }
        if args.latency {
            writeln!(
                out,
                "{} live records: latency frame read -> here p50 {} us, p99 {} us, max {} us",
                hist.len(),
                hist.value_at_quantile(0.5),
                hist.value_at_quantile(0.99),
                hist.max()
            )?;
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_map_to_their_stream() {
        assert_eq!(stream_for("manus.signals.>"), Some(SIGNALS_STREAM));
        assert_eq!(
            stream_for("manus.candles.sim.BTCUSDT.1m"),
            Some(CANDLES_STREAM)
        );
        assert_eq!(stream_for("manus.>"), None);
        assert_eq!(stream_for("other.signals"), None);
    }
}
