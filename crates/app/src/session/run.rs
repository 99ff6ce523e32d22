//! Running a [`Plan`]: the runtimes ([`with_runtime`]) and the run itself ([`execute`]): store
//! hook, feed, web dashboard, pipeline under the terminal dashboard or headless, and a bounded
//! drain at the end.

use std::time::Duration;

use anyhow::Context;
use manus_exchange::{Feed, FeedError};

use super::plan::Plan;
use super::web_tap::WebTap;
use crate::live::{Pipeline, RecordSink, Shutdown, Stop, run_headless};
use crate::store::sink::StoreReport;
use crate::tui::{self, App, MessageLog};
use crate::web::LiveHub;
use crate::wiring::DRAIN_GRACE;

/// Why a live run could not start; [`SessionError::is_bad_input`] tells the binary's exit code.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The records file (`--signals-out`) cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    RecordsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The web dashboard (`--web`) could not start.
    #[error("--web {addr}: {source}")]
    Web {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: crate::web::WebError,
    },
    /// The exchange refused the streams for good (unknown symbol, bad interval).
    #[error(transparent)]
    FeedRefused(FeedError),
    /// The feed could not start for another reason (network, rate limit, server trouble).
    #[error("cannot start the feed: {0}")]
    Feed(#[source] FeedError),
}

impl SessionError {
    /// Whether the user's input is at fault (exit code 2): a bad output path or web address,
    /// or streams the exchange refuses; network and server trouble are not.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, SessionError::Feed(_))
    }
}

/// Builds the runtimes (routing log lines to the dashboard when there is one), runs `f` and
/// shuts them down without waiting on stragglers, so exit stays under a second.
///
/// `f` runs on a current-thread runtime: the socket tasks, the feed's driver, the pipeline and
/// the dashboard share one thread, so every hand-off on a candle's way is a task switch, not a
/// wake-up of another thread (measured: docs/PERFORMANCE.md). Work off the candle path (web
/// server, alert delivery, the demo's exchange) goes to the second runtime, handed to `f`.
pub(crate) fn with_runtime<F, Fut>(headless: bool, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Option<MessageLog>, tokio::runtime::Handle) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    runtimes(headless, |rt, messages, side| {
        rt.block_on(f(messages, side))
    })
}

/// [`with_runtime`], with `f`'s future spawned as a task on the current-thread runtime instead
/// of being its `block_on` future. The candle path wakes the consumer from the socket task: a
/// task is then only queued and runs as soon as the socket task yields, while the `block_on`
/// future's waker also writes the runtime's eventfd and waits for the scheduler to poll the
/// I/O driver (epoll, timers) before it runs — ≈ 10 µs of every live candle, measured with
/// `demo --latency-breakdown` (docs/PERFORMANCE.md).
pub(crate) fn with_runtime_task<F, Fut>(headless: bool, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Option<MessageLog>, tokio::runtime::Handle) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    runtimes(headless, |rt, messages, side| {
        let task = rt.spawn(f(messages, side));
        match rt.block_on(task) {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::Error::new(e).context("the live run was cancelled")),
        }
    })
}

fn runtimes<R>(
    headless: bool,
    run: impl FnOnce(
        &tokio::runtime::Runtime,
        Option<MessageLog>,
        tokio::runtime::Handle,
    ) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let messages = (!headless).then(MessageLog::default);
    let dispatch = messages.as_ref().map(MessageLog::dispatch);
    let mut side = tokio::runtime::Builder::new_multi_thread();
    side.worker_threads(1)
        .thread_name("manus-side")
        .enable_all();
    if let Some(d) = dispatch.clone() {
        // Raw-mode screens cannot take stderr lines: every runtime thread logs into the panel.
        side.on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&d));
        });
    }
    let side = side.build().context("starting the async runtime")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let handle = side.handle().clone();
    let result = match &dispatch {
        Some(d) => tracing::dispatcher::with_default(d, || run(&rt, messages.clone(), handle)),
        None => run(&rt, messages.clone(), handle),
    };
    // Together within the 200 ms the exit budget leaves for stragglers.
    rt.shutdown_timeout(Duration::from_millis(100));
    side.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Connects the feed and runs the pipeline (dashboard or headless) until it stops.
pub(crate) async fn execute(
    mut plan: Plan,
    messages: Option<MessageLog>,
    side: &tokio::runtime::Handle,
    shutdown: &mut Shutdown,
) -> anyhow::Result<()> {
    let mut sink = match (plan.on_record.take(), &plan.signals_out) {
        (Some(f), _) => RecordSink::callback(f),
        (None, Some(p)) => RecordSink::file(p).map_err(|source| SessionError::RecordsFile {
            path: p.clone(),
            source,
        })?,
        (None, None) if plan.headless => RecordSink::stdout(),
        (None, None) => RecordSink::null(),
    };
    // Store hook (store helper): `--db` stores every record and queues its alerts.
    let mut shared_store = None;
    if let Some(t) = &plan.store {
        // The alert worker it may start belongs off the candle path.
        let hook = {
            let _side = side.enter();
            t.start()?
        };
        shared_store = Some(hook.store());
        plan.feed.resume_after =
            crate::store::resume_points(&hook.store(), &t.exchange, &plan.feed.streams)
                .context("reading where each stream resumes")?;
        sink.attach_store(hook);
    }
    // Bus tap (issue 16): candles and records also go to NATS JetStream, off the candle path.
    let publisher = plan.bus.take().map(|b| {
        let _side = side.enter();
        crate::bus::Publisher::start(b.config, &b.exchange)
    });
    if let Some(p) = &publisher {
        sink.attach_tap(Box::new(p.tap()));
    }
    let streams = plan.feed.streams.clone();
    tracing::info!(
        "connecting to {} for {} streams",
        plan.feed.ws_url,
        streams.len()
    );
    let connect = Feed::connect(plan.feed);
    let mut feed = tokio::select! {
        r = connect => r.map_err(feed_error)?,
        _ = shutdown.wait() => return Ok(()),
    };
    let web = match plan.web.take() {
        Some(w) => {
            let hub = LiveHub::new();
            let server = side
                .spawn(crate::web::spawn(
                    w.addr,
                    hub.clone(),
                    shared_store,
                    w.token.clone(),
                ))
                .await
                .context("starting the web server")?
                .map_err(|source| SessionError::Web {
                    addr: w.addr,
                    source,
                })?;
            if let Some(st) = sink.store_stats() {
                hub.attach_store_stats(st.sink);
            }
            sink.attach_tap(Box::new(WebTap::new(hub, feed.counters())));
            if let Some(f) = w.on_ready {
                (f.0)(&server.url());
            }
            Some(server)
        }
        None => None,
    };
    let pipeline = Pipeline::new(plan.engine, &streams, plan.pipeline);
    let (stop, pipeline) = match messages {
        Some(messages) if !plan.headless => {
            let mut app = App::new(pipeline, feed.counters(), messages, plan.title);
            let stop = tui::run(&mut feed, &mut app, &mut sink, shutdown).await;
            (stop, app.pipeline)
        }
        _ => {
            let mut pipeline = pipeline;
            let stop = run_headless(&mut feed, &mut pipeline, &mut sink, shutdown).await;
            (stop, pipeline)
        }
    };
    // Bounded so a stuck connection cannot hold the exit past a second.
    let _ = tokio::time::timeout(Duration::from_millis(500), feed.shutdown()).await;
    if let Some(server) = web {
        let _ = tokio::time::timeout(Duration::from_millis(300), server.shutdown()).await;
    }
    // Bounded, and a second Ctrl+C (or SIGTERM) cuts it short: a failing store cannot hold
    // the exit; what it did not store is counted and reported.
    let store = match sink.take_store() {
        Some(hook) => hook.finish(DRAIN_GRACE, shutdown.wait()).await,
        None => None,
    };
    if let Some(p) = publisher {
        let report = p.finish(DRAIN_GRACE).await;
        if report.dropped > 0 || report.backlog > 0 {
            tracing::warn!("{report}");
        } else {
            tracing::info!("{report}");
        }
    }
    let loss = store.as_ref().and_then(StoreReport::loss);
    let stop = match stop {
        Ok(stop) => stop,
        Err(e) => {
            if let Some(loss) = &loss {
                tracing::error!("{loss}");
            }
            return Err(anyhow::Error::new(e).context("writing records"));
        }
    };
    let stored = store.as_ref().map_or(String::new(), |r| {
        format!(
            "; store: {} written, {} already stored, {} lost",
            r.stats.written,
            r.stats.duplicates,
            r.lost()
        )
    });
    tracing::info!("stopped ({stop:?}): {}{stored}", pipeline.summary());
    if let Some(b) = pipeline.breakdown() {
        for line in b.report() {
            tracing::info!("{line}");
        }
    }
    if let Some(hint) = pipeline.no_decision_hint() {
        tracing::warn!("{hint}");
    }
    if let Some(loss) = loss {
        return Err(anyhow::anyhow!(loss));
    }
    match stop {
        Stop::FeedEnded => anyhow::bail!("the feed stopped unexpectedly"),
        Stop::Shutdown | Stop::MaxCandles | Stop::OutputClosed => Ok(()),
    }
}

/// Unknown symbols and invalid requests are the user's input (exit 2); the rest exit 1.
fn feed_error(e: FeedError) -> SessionError {
    match &e {
        FeedError::Invalid(_) => SessionError::FeedRefused(e),
        // The exchange refusing the request for good (unknown symbol, bad interval) is the
        // user's input; its rate limits and server trouble are not.
        FeedError::ExchangeError { .. } if !e.is_retryable() => SessionError::FeedRefused(e),
        _ => SessionError::Feed(e),
    }
}
