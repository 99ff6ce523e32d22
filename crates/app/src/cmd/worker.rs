//! `manus worker --bus URL` with `live`'s market, strategy and URL flags: any number of
//! workers started with the same streams share them through leases on the bus
//! ([`crate::bus::lease`]), publishing every candle and record to JetStream. When the owned
//! set changes (start, a worker joining or dying), only the streams that changed are added to
//! or removed from the running feed (the others keep their connection and their candles); a
//! stream added resumes after its last record on the bus, the candles missed in between
//! backfilled over REST and flagged `backfilled`.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use manus_exchange::Feed;
use manus_exchange::feed::StreamKey;
use tokio::sync::watch;

use crate::bus::lease::{LeaseStats, Leases};
use crate::bus::{Publisher, last_signal};
use crate::exit::bad_input;
use crate::live::{Pipeline, RecordSink, Shutdown};
use crate::wiring::DRAIN_GRACE;

/// Arguments: `live`'s, plus the lease settings.
#[derive(Debug, clap::Args)]
#[group(id = "worker_args")]
pub struct Args {
    #[command(flatten)]
    pub live: super::live::Args,
    /// How long a stream's lease lives without renewal: a dead worker's streams are taken
    /// over after about this long. Units: ms, s, m.
    #[arg(long, default_value = "5s", value_parser = parse_ttl)]
    pub lease_ttl: Duration,
    /// This worker's name in the lease bucket (default: pid and start time).
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Serve Prometheus `/metrics` here (owned streams, renewals, takeovers, publish backlog),
    /// e.g. 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = super::live::parse_duration(s)
        .ok_or_else(|| format!("'{s}': expected a duration such as 5s or 1500ms"))?;
    if d < Duration::from_millis(300) || d > Duration::from_secs(600) {
        return Err(format!("'{s}': expected between 300ms and 10m"));
    }
    Ok(d)
}

fn default_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("w{}-{nanos:x}", std::process::id())
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut plan = args.live.plan()?;
    let Some(bus) = plan.bus.take() else {
        return Err(bad_input(
            "worker needs a bus: pass --bus nats://HOST:PORT (or bus = \"...\" in --config)",
        ));
    };
    // A worker's records go to the bus; these consume it instead, on any machine.
    if plan.store.is_some() || plan.web.is_some() || plan.signals_out.is_some() {
        return Err(bad_input(
            "worker publishes to the bus only: store it with `manus sink --bus`, alert with \
             `manus alerts run --bus`, show it with `manus serve --bus`, print it with `manus tail` \
             (drop --db, --alerts-config, --web and --signals-out)",
        ));
    }
    let me = args.worker_id.unwrap_or_else(default_id);
    if me.is_empty()
        || !me
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(bad_input(format!(
            "--worker-id '{me}': letters, digits, '-' and '_' only"
        )));
    }
    let ttl = args.lease_ttl;
    crate::session::with_runtime(true, |_, side| async move {
        let mut shutdown = Shutdown::install().context("installing signal handlers")?;
        // The client's connection task lives on the side runtime, off the candle path.
        let cfg = bus.config.clone();
        let js = side
            .spawn(async move {
                let js = cfg.connect(false).await?;
                crate::bus::ensure_streams(&js, cfg.retention).await?;
                let kv = crate::bus::lease::bucket(&js, ttl).await?;
                Ok::<_, crate::bus::BusError>((js, kv))
            })
            .await
            .context("connecting to the bus")?;
        let (js, kv) = js?;
        let publisher = {
            let _side = side.enter();
            Publisher::start(bus.config.clone(), &bus.exchange)
        };
        let stats = Arc::new(LeaseStats::default());
        if let Some(addr) = args.metrics {
            let m = crate::bus::metrics::WorkerMetrics {
                leases: stats.clone(),
                bus: publisher.tap().stats().clone(),
            };
            let bound = side
                .spawn(crate::bus::metrics::serve(addr, m))
                .await
                .context("starting the metrics server")?
                .map_err(|e| bad_input(format!("--metrics {addr}: {e}")))?;
            tracing::info!("metrics on http://{bound}/metrics");
        }
        let leases = Leases::new(
            kv,
            &me,
            ttl,
            &bus.exchange,
            &plan.feed.streams,
            stats.clone(),
        );
        let (want_tx, mut want) = watch::channel(BTreeSet::new());
        let (applied, applied_rx) = watch::channel(BTreeSet::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let lease_task = side.spawn(crate::bus::lease::run(leases, want_tx, applied_rx, stop_rx));
        tracing::info!(
            "worker {me}: {} streams shared through {} (lease TTL {ttl:?})",
            plan.feed.streams.len(),
            crate::bus::lease::BUCKET
        );
        let mut status = tokio::time::interval(Duration::from_secs(10));
        // One feed and one pipeline for the whole run: a change of the owned set adds and
        // removes only the streams that changed, so the others never reconnect nor lose a
        // candle. Only a feed that stopped on its own is restarted whole.
        let mut feed: Option<Feed> = None;
        let mut pipeline = Pipeline::new(plan.engine.clone(), &[], plan.pipeline);
        let mut sink = RecordSink::null();
        sink.attach_tap(Box::new(publisher.tap()));
        // The streams the feed runs now.
        let mut running: BTreeSet<StreamKey> = BTreeSet::new();
        // Streams given up whose records may not all be acknowledged yet: their leases are
        // kept (through `applied`) until `drain`, a flush ordered after their last record,
        // completes. The kept streams are pumped meanwhile, so a give-up never stalls them.
        let mut draining: BTreeSet<StreamKey> = BTreeSet::new();
        let mut drain: Option<Pin<Box<dyn Future<Output = bool> + '_>>> = None;
        loop {
            let set = want.borrow_and_update().clone();
            let gone: BTreeSet<StreamKey> = running.difference(&set).cloned().collect();
            if !gone.is_empty() {
                let list: Vec<StreamKey> = gone.iter().cloned().collect();
                if let Some(f) = feed.as_mut() {
                    f.remove(&list);
                }
                pipeline.remove_streams(|k| gone.contains(k));
                running.retain(|k| !gone.contains(k));
                stats.stream_stops.fetch_add(gone.len() as u64, Relaxed);
                draining.extend(gone.iter().cloned());
                // A later flush covers every earlier message too (the queue is in order).
                drain = Some(Box::pin(publisher.flush(DRAIN_GRACE)));
            }
            let new: Vec<StreamKey> = set.difference(&running).cloned().collect();
            if new.iter().any(|s| draining.contains(s)) {
                // Taken back while its records are in flight: it must resume after them.
                if let Some(d) = drain.take() {
                    drained(&me, d.await, &mut draining, &applied, &running);
                }
            }
            if !new.is_empty() {
                // A stream taken (at start, from a dead worker or on a rebalance) resumes
                // after its last record on the bus.
                let mut resume = HashMap::new();
                for s in &new {
                    let t = last_signal(&js, &bus.exchange, &s.symbol, s.interval)
                        .await
                        .with_context(|| format!("reading where {s} resumes"))?;
                    if let Some(t) = t {
                        resume.insert(s.clone(), t);
                    }
                }
                match feed.as_mut() {
                    Some(f) => tokio::select! {
                        r = f.add(&new, &resume) => r.context("adding streams to the feed")?,
                        _ = shutdown.wait() => break,
                    },
                    None => {
                        let mut feed_cfg = plan.feed.clone();
                        feed_cfg.streams = new.clone();
                        feed_cfg.resume_after = resume;
                        feed = Some(tokio::select! {
                            r = Feed::connect(feed_cfg) => r.context("starting the feed")?,
                            _ = shutdown.wait() => break,
                        });
                    }
                }
                pipeline.add_streams(&new);
                stats.stream_starts.fetch_add(new.len() as u64, Relaxed);
                running.extend(new.iter().cloned());
                applied.send_replace(running.union(&draining).cloned().collect());
            }
            if !gone.is_empty() || !new.is_empty() {
                tracing::info!(
                    "worker {me}: running {} streams ({} started, {} stopped)",
                    running.len(),
                    new.len(),
                    gone.len()
                );
            }
            let Some(f) = feed.as_mut() else {
                tokio::select! {
                    r = want.changed() => if r.is_err() { break },
                    ok = async { drain.as_mut().expect("guarded").await }, if drain.is_some() => {
                        drain = None;
                        drained(&me, ok, &mut draining, &applied, &running);
                    }
                    _ = shutdown.wait() => break,
                }
                continue;
            };
            let stopped = loop {
                let first = tokio::select! {
                    biased;
                    _ = shutdown.wait() => break true,
                    ok = async { drain.as_mut().expect("guarded").await }, if drain.is_some() => {
                        drain = None;
                        drained(&me, ok, &mut draining, &applied, &running);
                        continue;
                    }
                    r = want.changed() => {
                        if r.is_err() { break true }
                        if *want.borrow() == running { continue }
                        break false;
                    }
                    _ = status.tick() => {
                        let r = publisher.tap().stats().report();
                        tracing::info!(
                            "worker {me}: {} streams owned of {} workers' share; {} renewals, {} acquired, {} released, {} lost; {r}",
                            stats.owned.load(Relaxed), stats.workers.load(Relaxed),
                            stats.renewals.load(Relaxed), stats.acquired.load(Relaxed),
                            stats.released.load(Relaxed), stats.lost.load(Relaxed),
                        );
                        continue;
                    }
                    ev = f.next() => ev,
                };
                match crate::live::run::pump(f, &mut pipeline, &mut sink, first) {
                    Ok(None) => {}
                    Ok(Some(crate::live::Stop::MaxCandles)) => break true,
                    Ok(Some(stop)) => {
                        tracing::warn!("worker {me}: feed stopped ({stop:?}); restarting it");
                        if let Some(f) = feed.take() {
                            let _ = tokio::time::timeout(Duration::from_millis(500), f.shutdown())
                                .await;
                        }
                        // Every stream starts again, from its last record on the bus.
                        drain = None;
                        let ok = publisher.flush(DRAIN_GRACE).await;
                        drained(&me, ok, &mut draining, &applied, &BTreeSet::new());
                        stats.stream_stops.fetch_add(running.len() as u64, Relaxed);
                        stats.feed_restarts.fetch_add(1, Relaxed);
                        running.clear();
                        pipeline = Pipeline::new(plan.engine.clone(), &[], plan.pipeline);
                        applied.send_replace(BTreeSet::new());
                        break false;
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context("writing records")),
                }
            };
            if stopped {
                break;
            }
        }
        if let Some(f) = feed.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), f.shutdown()).await;
        }
        drop(drain);
        applied.send_replace(BTreeSet::new());
        let report = publisher.finish(DRAIN_GRACE).await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(2), lease_task).await;
        tracing::info!("worker {me} stopped; {report}");
        Ok(())
    })
}

/// A give-up's flush ended: the drained streams' leases may go to others now.
fn drained(
    me: &str,
    acknowledged: bool,
    draining: &mut BTreeSet<StreamKey>,
    applied: &watch::Sender<BTreeSet<StreamKey>>,
    running: &BTreeSet<StreamKey>,
) {
    if !acknowledged {
        tracing::warn!("worker {me}: the bus did not acknowledge everything in time");
    }
    draining.clear();
    applied.send_replace(running.clone());
}
