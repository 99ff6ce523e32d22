//! The async edge of the pipeline: [`Shutdown`] (SIGINT/SIGTERM), [`RecordSink`] (JSON lines)
//! and [`run_headless`], the loop that moves feed events through a [`Pipeline`].

use std::fs::File;
use std::io::{self, BufWriter, ErrorKind, Write};
use std::path::Path;
use std::time::Instant;

use futures_util::FutureExt;
use manus_core::record::SignalRecord;
use manus_exchange::feed::{FeedEvent, MarketFeed};

use super::fine_timer::WarmTimer;
use super::pipeline::Pipeline;

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT, SIGTERM or `q`.
    Shutdown,
    /// `--max-candles` live candles were processed.
    MaxCandles,
    /// The feed ended (shut down or failed to start).
    FeedEnded,
    /// The reader of the output went away (e.g. `| head`).
    OutputClosed,
}

/// Events handled before the output is flushed, so a burst (a backfill) costs one write.
const BATCH: usize = 256;

/// Where records go: JSON lines, buffered, flushed after each burst of events.
pub struct RecordSink {
    out: Box<dyn Write + Send>,
    buf: Vec<u8>,
    written: u64,
    // Store hook (store helper): records also go to the store when `--db` is given.
    store: Option<crate::wiring::StoreHook>,
    // Observers wired by the session (the web dashboard for `--web`).
    taps: Vec<Box<dyn Tap>>,
    // A library user's callback (`LiveSession::on_record`).
    callback: Option<RecordFn>,
}

/// A callback that receives every record a live run emits.
pub struct RecordFn(pub Box<dyn FnMut(&SignalRecord) + Send>);

impl std::fmt::Debug for RecordFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordFn")
    }
}

/// An observer of the loop, called on the candle path (keep each call short and never block):
/// every feed event before the pipeline sees it, every record, and the pipeline after each
/// event. The live loop knows nothing of what watches it; the session attaches, e.g., the web
/// dashboard through this.
pub trait Tap: Send {
    /// A feed event, before the pipeline handles it.
    fn on_event(&mut self, _ev: &FeedEvent) {}
    /// A record the pipeline emitted.
    fn on_record(&mut self, _rec: &SignalRecord) {}
    /// The pipeline after an event (its figures, e.g. for a header).
    fn after_event(&mut self, _pipeline: &Pipeline) {}
}

impl std::fmt::Debug for RecordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSink")
            .field("written", &self.written)
            .finish()
    }
}

/// A file whose write errors name it ("No space left on device" alone does not say where).
pub struct NamedFile {
    file: File,
    path: std::path::PathBuf,
}

impl NamedFile {
    /// Creates (or truncates) `path` (its error is the bare one: callers say what they open).
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        Ok(NamedFile {
            file,
            path: path.to_path_buf(),
        })
    }
}

/// `e` with `path` in front, keeping its kind (a broken pipe stays a broken pipe).
fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Write for NamedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf).map_err(|e| named(&self.path, e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().map_err(|e| named(&self.path, e))
    }
}

impl RecordSink {
    /// Records to any writer.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        RecordSink {
            out,
            buf: Vec::with_capacity(1024),
            written: 0,
            store: None,
            taps: Vec::new(),
            callback: None,
        }
    }
    /// Records go to `f` (and nowhere else unless attached).
    pub fn callback(f: RecordFn) -> Self {
        let mut s = Self::null();
        s.callback = Some(f);
        s
    }
    /// Records to stdout.
    pub fn stdout() -> Self {
        Self::new(Box::new(BufWriter::with_capacity(1 << 16, io::stdout())))
    }
    /// Records to a file (created or truncated); write errors name it.
    pub fn file(path: &Path) -> io::Result<Self> {
        Ok(Self::new(Box::new(BufWriter::with_capacity(
            1 << 16,
            NamedFile::create(path)?,
        ))))
    }
    /// Records are dropped (dashboard only).
    pub fn null() -> Self {
        Self::new(Box::new(io::sink()))
    }
    /// Also hands every record to the store (non-blocking; see [`crate::wiring`]).
    pub fn attach_store(&mut self, hook: crate::wiring::StoreHook) {
        self.store = Some(hook);
    }
    /// Detaches the store hook (to drain it at shutdown); records are no longer stored.
    pub fn take_store(&mut self) -> Option<crate::wiring::StoreHook> {
        self.store.take()
    }
    /// Shows every event, record and pipeline state to `tap` too.
    pub fn attach_tap(&mut self, tap: Box<dyn Tap>) {
        self.taps.push(tap);
    }
    /// The attached store's writer and delivery counters (shared atomics), for the dashboard.
    pub fn store_stats(&self) -> Option<crate::wiring::StoreStats> {
        let hook = self.store.as_ref()?;
        Some(crate::wiring::StoreStats {
            sink: hook.sink_stats()?,
            delivery: hook.delivery_stats(),
        })
    }
    /// Appends one record.
    pub fn write(&mut self, rec: &SignalRecord) -> io::Result<()> {
        if let Some(f) = &mut self.callback {
            (f.0)(rec);
        }
        for t in &mut self.taps {
            t.on_record(rec);
        }
        // Store hook (store helper): a bounded-queue hand-off, never blocks.
        if let Some(s) = &self.store {
            s.submit(rec);
        }
        self.buf.clear();
        rec.write_json_line(&mut self.buf);
        self.out.write_all(&self.buf)?;
        self.written += 1;
        Ok(())
    }
    /// Flushes buffered records.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// What stops a run: SIGINT and SIGTERM ([`Shutdown::install`]), or a [`Stopper`] held by the
/// code that embeds the run ([`Shutdown::manual`]).
#[derive(Debug)]
pub struct Shutdown {
    source: Source,
}

#[derive(Debug)]
enum Source {
    // Registered when built so a signal arriving before the first poll is not lost (nor kills
    // the process with the default action).
    #[cfg(unix)]
    Signals {
        int: tokio::signal::unix::Signal,
        term: tokio::signal::unix::Signal,
    },
    #[cfg(not(unix))]
    CtrlC,
    Manual(tokio::sync::mpsc::UnboundedReceiver<()>),
}

/// Stops a run built with [`Shutdown::manual`]: each call counts as one Ctrl+C (the first stops
/// the run, a second cuts the store's drain short).
#[derive(Debug, Clone)]
pub struct Stopper(tokio::sync::mpsc::UnboundedSender<()>);

impl Stopper {
    /// Asks the run to stop (does nothing once it has ended).
    pub fn stop(&self) {
        let _ = self.0.send(());
    }
}

impl Shutdown {
    /// Installs the SIGINT and SIGTERM handlers; call inside a Tokio runtime.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                source: Source::Signals {
                    int: signal(SignalKind::interrupt())?,
                    term: signal(SignalKind::terminate())?,
                },
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {
                source: Source::CtrlC,
            })
        }
    }

    /// A shutdown that only the returned [`Stopper`] triggers (no signal handlers).
    pub fn manual() -> (Stopper, Self) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Stopper(tx),
            Shutdown {
                source: Source::Manual(rx),
            },
        )
    }

    /// Resolves at the next SIGINT or SIGTERM (or [`Stopper::stop`]). Cancel-safe.
    pub async fn wait(&mut self) {
        match &mut self.source {
            #[cfg(unix)]
            Source::Signals { int, term } => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            Source::CtrlC => {
                let _ = tokio::signal::ctrl_c().await;
            }
            Source::Manual(rx) => {
                // Every stopper dropped: nobody can ask any more, which is not a request.
                if rx.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Handles one event; writes its record. `Err` only when the output is gone.
pub fn handle(pipeline: &mut Pipeline, sink: &mut RecordSink, ev: FeedEvent) -> io::Result<()> {
    if let Some(b) = pipeline.breakdown_mut() {
        b.dequeued();
    }
    for t in &mut sink.taps {
        t.on_event(&ev);
    }
    if let Some(rec) = pipeline.on_event(ev) {
        sink.write(rec)?;
        if let Some(b) = pipeline.breakdown_mut() {
            b.written();
        }
    }
    for t in &mut sink.taps {
        t.after_event(pipeline);
    }
    Ok(())
}

/// Moves events from `feed` through `pipeline` into `sink` until shutdown, `--max-candles`, the
/// end of the feed or a closed output. Flushes before returning.
pub async fn run_headless<F: MarketFeed>(
    feed: &mut F,
    pipeline: &mut Pipeline,
    sink: &mut RecordSink,
    shutdown: &mut Shutdown,
) -> io::Result<Stop> {
    let mut timer = warm_timer();
    let stop = loop {
        if pipeline.done() {
            break Stop::MaxCandles;
        }
        // The feed first: woken for a candle, the loop takes it without polling the signal
        // handlers (~600 instructions of a cold path before the candle). Shutdown is still
        // seen at once when the feed is quiet, and after every batch below when it is not.
        // Woken between frames only to warm the candle path before a closed candle is due
        // (`super::prewarm`); a frame wakes the loop at once.
        timer.arm(pipeline.next_warm(now()));
        let first = tokio::select! {
            biased;
            ev = feed.next() => ev,
            _ = shutdown.wait() => break Stop::Shutdown,
            _ = timer.fired() => {
                warm(pipeline, feed);
                continue;
            }
        };
        match pump(feed, pipeline, sink, first) {
            Ok(Some(stop)) => break stop,
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => break Stop::OutputClosed,
            Err(e) => return Err(e),
        }
        // After the batch's records, off their latency; `wait` is cancel-safe.
        if shutdown.wait().now_or_never().is_some() {
            break Stop::Shutdown;
        }
    };
    match sink.flush() {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(Stop::OutputClosed),
        Err(e) => Err(e),
        Ok(()) => Ok(stop),
    }
}

/// Warms the candle path once: the pipeline's engines and records, then the feed's parser.
pub(crate) fn warm<F: MarketFeed>(pipeline: &mut Pipeline, feed: &mut F) {
    pipeline.warm(now());
    feed.warm();
}

/// The warm-up's wake-up for a live loop: fine-grained, except in unit tests, which run the
/// loops on tokio's paused clock.
pub(crate) fn warm_timer() -> WarmTimer {
    if cfg!(test) {
        WarmTimer::coarse()
    } else {
        WarmTimer::fine()
    }
}

/// The runtime's clock (the same as [`Instant::now`] unless a test paused it).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Handles `first` and whatever else is ready right now (up to [`BATCH`]), then flushes.
pub(crate) fn pump<F: MarketFeed>(
    feed: &mut F,
    pipeline: &mut Pipeline,
    sink: &mut RecordSink,
    first: Option<FeedEvent>,
) -> io::Result<Option<Stop>> {
    let Some(ev) = first else {
        return Ok(Some(Stop::FeedEnded));
    };
    handle(pipeline, sink, ev)?;
    for _ in 0..BATCH {
        if pipeline.done() {
            break;
        }
        // `next` is cancel-safe, so dropping a pending future loses nothing.
        match feed.next().now_or_never() {
            Some(Some(ev)) => handle(pipeline, sink, ev)?,
            Some(None) => {
                sink.flush()?;
                return Ok(Some(Stop::FeedEnded));
            }
            None => break,
        }
    }
    sink.flush()?;
    if let Some(b) = pipeline.breakdown_mut() {
        b.flushed();
    }
    Ok(pipeline.done().then_some(Stop::MaxCandles))
}
