//! A live source for the dashboard without an exchange: the simulated exchange on a loopback
//! port, the real feed over real sockets, the real [`Pipeline`], every candle and record
//! published to a [`LiveHub`] and (optionally) every record written to the store. Used by
//! `manus serve --demo` and the browser test.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use manus_core::confluence::{Mode, Rule};
use manus_core::engine::StrategySpec;
use manus_core::{Interval, SignalEngine, strategy};
use manus_exchange::feed::{ExchangeKind, FeedConfig, StreamKey};
use manus_exchange::sim::{FaultPlan, SimConfig, SimExchange, SimSource};
use manus_exchange::{Feed, MarketFeed};
use tokio::sync::oneshot;

use super::hub::LiveHub;
use super::routes::SharedStore;
use crate::alerts::rules::AlertRules;
use crate::live::{Pipeline, PipelineConfig};
use crate::store::sink::{SignalSink, SinkStats};

/// The exchange name demo records are stored under.
pub const DEMO_EXCHANGE: &str = "sim";
/// Records queued for the store writer before new ones are dropped (and counted).
pub const STORE_QUEUE: usize = 4096;
/// How long the demo's shutdown waits for queued records to be stored.
const STORE_GRACE: Duration = Duration::from_millis(1500);

/// What the demo market looks like.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Symbols served.
    pub symbols: Vec<String>,
    /// The one interval.
    pub interval: Interval,
    /// Real milliseconds per candle.
    pub candle_ms: u64,
    /// In-progress updates per candle.
    pub updates_per_candle: u32,
    /// Closed candles fetched at start (the chart's history).
    pub bootstrap: usize,
    /// Random seed of the market.
    pub seed: u64,
    /// Drop every connection every N candles (the reconnection counter moves).
    pub drop_every: Option<u64>,
    /// Strategies with their parameters.
    pub strategies: Vec<StrategySpec>,
    /// How their views combine.
    pub rule: Rule,
}

impl Default for DemoConfig {
    fn default() -> Self {
        let specs = default_specs();
        DemoConfig {
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
            interval: Interval::M1,
            candle_ms: 1000,
            updates_per_candle: 5,
            bootstrap: 300,
            seed: 7,
            drop_every: Some(60),
            rule: Rule::new(Mode::default(), specs.len()),
            strategies: specs,
        }
    }
}

/// The default selection (the same as every other command's), with default parameters.
fn default_specs() -> Vec<StrategySpec> {
    strategy::parse_selection(strategy::registry::DEFAULT_SELECTION)
        .unwrap_or_default()
        .into_iter()
        .map(|id| StrategySpec {
            id: id.to_string(),
            params: Default::default(),
        })
        .collect()
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulated exchange did not start.
    #[error("simulated exchange: {0}")]
    Sim(#[from] manus_exchange::sim::SimError),
    /// The feed did not connect.
    #[error("feed: {0}")]
    Feed(#[from] manus_exchange::FeedError),
    /// The strategies could not be built.
    #[error("strategies: {0}")]
    Core(#[from] manus_core::CoreError),
    /// The feed's thread or runtime did not start.
    #[error("feed thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A running demo source.
#[derive(Debug)]
pub struct Demo {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    sim: Option<SimExchange>,
    store: Option<Arc<SinkStats>>,
}

impl Demo {
    /// Records the store writer had to drop because its queue was full.
    pub fn store_drops(&self) -> u64 {
        self.store
            .as_ref()
            .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
    }

    /// Stops the pipeline loop and the simulated exchange.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            // Bounded: a stuck thread is left to end with the process.
            let join = tokio::task::spawn_blocking(move || t.join());
            let _ = tokio::time::timeout(Duration::from_secs(2), join).await;
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }
}

/// Starts the simulated exchange, connects the feed and runs the pipeline on a thread of its own
/// (a current-thread runtime, as `live` runs it: the socket task and the pipeline share the
/// thread) that publishes to `hub` and writes records to `store` (on a writer thread).
pub async fn start(
    cfg: DemoConfig,
    hub: LiveHub,
    store: Option<SharedStore>,
) -> Result<Demo, DemoError> {
    let sim = SimExchange::start(SimConfig {
        symbols: cfg.symbols.clone(),
        interval: cfg.interval,
        candle_ms: cfg.candle_ms.max(20),
        updates_per_candle: cfg.updates_per_candle,
        history: cfg.bootstrap.max(100) + 100,
        source: SimSource::Synthetic {
            seed: cfg.seed,
            start_price: 30_000.0,
        },
        faults: FaultPlan {
            drop_every: cfg.drop_every,
            ..FaultPlan::default()
        },
        ..SimConfig::default()
    })
    .await?;
    let streams: Vec<StreamKey> = cfg
        .symbols
        .iter()
        .map(|s| StreamKey {
            symbol: s.clone(),
            interval: cfg.interval,
        })
        .collect();
    let mut fc = FeedConfig::new(ExchangeKind::BinanceUs, streams.clone());
    fc.ws_url = sim.ws_url();
    fc.rest_url = sim.rest_url();
    fc.bootstrap = cfg.bootstrap;
    fc.candle_period = Some(Duration::from_millis(cfg.candle_ms.max(20)));
    fc.silence_timeout = Duration::from_millis((cfg.candle_ms * 10).max(2000));
    fc.backoff_initial = Duration::from_millis(50);
    fc.backoff_max = Duration::from_millis(1000);
    fc.rotate_at = None;
    // With a store, each stream resumes from its newest stored record, as `live` does.
    if let Some(s) = &store {
        match crate::store::resume_points(s, DEMO_EXCHANGE, &streams) {
            Ok(points) => fc.resume_after = points,
            Err(e) => tracing::warn!("cannot read where each stream resumes: {e}"),
        }
    }
    let engine = SignalEngine::from_specs(&cfg.strategies, cfg.rule.clone())?;
    let pipeline = Pipeline::new(engine, &streams, PipelineConfig::default());
    // The writer `live` uses: failures warned once per kind and counted (header, /metrics).
    let sink = store
        .map(|s| SignalSink::spawn(s, DEMO_EXCHANGE, AlertRules::default(), STORE_QUEUE, None))
        .transpose()?;
    let stats = sink.as_ref().map(SignalSink::stats);
    if let Some(st) = &stats {
        hub.attach_store_stats(st.clone());
    }
    let (tx, rx) = oneshot::channel();
    let (ready_tx, ready) = oneshot::channel::<Result<(), DemoError>>();
    let thread = std::thread::Builder::new()
        .name("manus-demo-feed".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                match Feed::connect(fc).await {
                    Ok(feed) => {
                        let _ = ready_tx.send(Ok(()));
                        pump(feed, pipeline, hub, sink, rx).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                    }
                }
            });
        })?;
    let started = ready.await.unwrap_or_else(|_| {
        Err(DemoError::Thread(std::io::Error::other(
            "the feed thread ended before connecting",
        )))
    });
    if let Err(e) = started {
        let _ = thread.join();
        sim.shutdown().await;
        return Err(e);
    }
    Ok(Demo {
        stop: Some(tx),
        thread: Some(thread),
        sim: Some(sim),
        store: stats,
    })
}

/// The loop: each event goes to the hub and the pipeline; each record to the hub and the store.
async fn pump(
    mut feed: Feed,
    mut pipeline: Pipeline,
    hub: LiveHub,
    sink: Option<SignalSink>,
    mut stop: oneshot::Receiver<()>,
) {
    let counters = MarketFeed::counters(&feed);
    loop {
        let ev = tokio::select! {
            biased;
            _ = &mut stop => break,
            ev = feed.next() => ev,
        };
        let Some(ev) = ev else { break };
        hub.on_feed_event(&ev);
        if let Some(rec) = pipeline.on_event(ev) {
            hub.publish_record(rec);
            if let Some(s) = &sink {
                s.submit(rec);
            }
        }
        hub.publish_pipeline_stats(&pipeline, &counters.snapshot());
    }
    feed.shutdown().await;
    if let Some(s) = sink {
        // Within the 2 s the shutdown gives this thread.
        let report = s.drain(STORE_GRACE, std::future::pending()).await;
        if let Some(loss) = report.loss() {
            tracing::error!("{loss}");
        }
    }
}
