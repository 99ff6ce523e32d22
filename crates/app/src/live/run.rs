//! The async edge of the pipeline: [`Shutdown`] (SIGINT/SIGTERM), [`RecordSink`] (JSON lines)
//! and [`run_headless`], the loop that moves feed events through a [`Pipeline`].

use std::fs::File;
use std::io::{self, BufWriter, ErrorKind, Write};
use std::path::Path;

use futures_util::FutureExt;
use manus_core::record::SignalRecord;
use manus_exchange::feed::{FeedEvent, MarketFeed, Origin};

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
    store: Option<crate::store::hook::StoreHook>,
    // Web hook: candles, records and header figures go to the dashboard when `--web` is given.
    web: Option<WebTap>,
    // A library user's callback (`LiveSession::on_record`).
    callback: Option<RecordFn>,
    // Bus tap (`--bus`): candles and records also go to NATS JetStream, never blocking.
    bus: Option<crate::bus::BusTap>,
}

/// A callback that receives every record a live run emits.
pub struct RecordFn(pub Box<dyn FnMut(&SignalRecord) + Send>);

impl std::fmt::Debug for RecordFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordFn")
    }
}

/// What the web dashboard needs from the loop: its hub and the feed's counters.
#[derive(Debug, Clone)]
pub struct WebTap {
    /// Where events are published (bounded, never blocks).
    pub hub: crate::web::LiveHub,
    /// The feed's counters, for the header figures.
    pub counters: std::sync::Arc<manus_exchange::FeedCounters>,
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
            web: None,
            callback: None,
            bus: None,
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
    /// Also hands every record to the store (non-blocking; see [`crate::store::hook`]).
    pub fn attach_store(&mut self, hook: crate::store::hook::StoreHook) {
        self.store = Some(hook);
    }
    /// Detaches the store hook (to drain it at shutdown); records are no longer stored.
    pub fn take_store(&mut self) -> Option<crate::store::hook::StoreHook> {
        self.store.take()
    }
    /// Publishes every closed candle and record to the bus too (non-blocking).
    pub fn attach_bus(&mut self, tap: crate::bus::BusTap) {
        self.bus = Some(tap);
    }
    /// Publishes every event and record to the web dashboard too.
    pub fn attach_web(&mut self, tap: WebTap) {
        self.web = Some(tap);
    }
    /// The attached store's writer and delivery counters (shared atomics), for the dashboard.
    pub fn store_stats(&self) -> Option<crate::store::hook::StoreStats> {
        let hook = self.store.as_ref()?;
        Some(crate::store::hook::StoreStats {
            sink: hook.sink_stats()?,
            delivery: hook.delivery_stats(),
        })
    }
    /// Appends one record.
    pub fn write(&mut self, rec: &SignalRecord) -> io::Result<()> {
        if let Some(f) = &mut self.callback {
            (f.0)(rec);
        }
        if let Some(w) = &self.web {
            w.hub.publish_record(rec);
        }
        // Store hook (store helper): a bounded-queue hand-off, never blocks.
        if let Some(s) = &self.store {
            s.submit(rec);
        }
        if let Some(b) = &self.bus {
            b.record(rec);
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

/// SIGINT and SIGTERM, registered when built so a signal arriving before the first poll is not
/// lost (nor kills the process with the default action).
#[derive(Debug)]
pub struct Shutdown {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers; call inside a Tokio runtime.
    pub fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves at the first SIGINT or SIGTERM. Cancel-safe.
    pub async fn wait(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Handles one event; writes its record. `Err` only when the output is gone.
pub fn handle(pipeline: &mut Pipeline, sink: &mut RecordSink, ev: FeedEvent) -> io::Result<()> {
    if let Some(w) = &sink.web {
        w.hub.on_feed_event(&ev);
    }
    if let (
        Some(b),
        FeedEvent::Closed {
            key,
            candle,
            origin,
            ..
        },
    ) = (&sink.bus, &ev)
        && *origin != Origin::Bootstrap
    {
        b.candle(key, candle, *origin == Origin::Backfill);
    }
    if let Some(rec) = pipeline.on_event(ev) {
        sink.write(rec)?;
    }
    if let Some(w) = &sink.web {
        // Self-throttled by the hub to a few per second.
        w.hub
            .publish_pipeline_stats(pipeline, &w.counters.snapshot());
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
    let stop = loop {
        if pipeline.done() {
            break Stop::MaxCandles;
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.wait() => break Stop::Shutdown,
            ev = feed.next() => ev,
        };
        match pump(feed, pipeline, sink, first) {
            Ok(Some(stop)) => break stop,
            Ok(None) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => break Stop::OutputClosed,
            Err(e) => return Err(e),
        }
    };
    match sink.flush() {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(Stop::OutputClosed),
        Err(e) => Err(e),
        Ok(()) => Ok(stop),
    }
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
    Ok(pipeline.done().then_some(Stop::MaxCandles))
}
