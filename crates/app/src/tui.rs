//! The live terminal dashboard (ratatui): an [`App`] state drawn with `impl Widget for &App`
//! (see [`view`]) and [`run`], one `tokio::select!` over shutdown, key presses, a render tick
//! (20 fps) and feed events.
//!
//! Rendering reads the pipeline's state; it never waits on the feed, and the feed is drained in
//! bursts between frames. Frames are written to the terminal by a thread of their own
//! ([`screen`]), so a slow terminal never stalls the socket reader and pipeline on this thread. Log lines cannot go to
//! stderr while the screen is in raw mode: [`MessageLog`] captures them for the message panel.

pub mod screen;
pub mod view;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use manus_exchange::feed::{FeedCounters, MarketFeed};
use tokio::sync::mpsc;

use crate::live::run::{now, pump, warm, warm_timer};
use crate::live::{Pipeline, RecordSink, Shutdown, Stop};
use crate::tui::screen::{Screen, ScreenWriter};
pub use crate::wiring::StoreStats;

/// Frames per second at most.
pub const FPS: u64 = 20;

/// Log lines captured for the dashboard (newest last), shared with the tracing writer.
#[derive(Debug, Clone, Default)]
pub struct MessageLog {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl MessageLog {
    const CAP: usize = 200;

    /// Appends a line, dropping the oldest past the cap.
    pub fn push(&self, line: impl Into<String>) {
        let mut l = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if l.len() == Self::CAP {
            l.pop_front();
        }
        l.push_back(line.into());
    }

    /// The newest `n` lines, newest first.
    pub fn newest(&self, n: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        l.iter().rev().take(n).cloned().collect()
    }

    /// A tracing dispatcher that writes into this log (no colours, no timestamps).
    pub fn dispatch(&self) -> tracing::Dispatch {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let sub = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(self.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .finish();
        tracing::Dispatch::new(sub)
    }
}

/// One formatted tracing event on its way into a [`MessageLog`].
#[derive(Debug)]
pub struct MessageWriter {
    log: MessageLog,
    buf: Vec<u8>,
}

impl Write for MessageWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MessageWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.log.push(line.trim());
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MessageLog {
    type Writer = MessageWriter;
    fn make_writer(&'a self) -> MessageWriter {
        MessageWriter {
            log: self.clone(),
            buf: Vec::with_capacity(128),
        }
    }
}

/// Everything the dashboard draws.
#[derive(Debug)]
pub struct App {
    /// The live pipeline (owned: the dashboard's loop drives it).
    pub pipeline: Pipeline,
    counters: Arc<FeedCounters>,
    store: Option<StoreStats>,
    messages: MessageLog,
    selected: usize,
    title: String,
    quit: bool,
}

impl App {
    /// A dashboard over `pipeline`, showing the feed's `counters` and captured `messages`.
    pub fn new(
        pipeline: Pipeline,
        counters: Arc<FeedCounters>,
        messages: MessageLog,
        title: impl Into<String>,
    ) -> Self {
        App {
            pipeline,
            counters,
            store: None,
            messages,
            selected: 0,
            title: title.into(),
            quit: false,
        }
    }

    /// Index of the stream shown.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// True once the user asked to quit.
    pub fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Shows the next stream (wrapping).
    pub fn next_stream(&mut self) {
        let n = self.pipeline.streams().len().max(1);
        self.selected = (self.selected + 1) % n;
    }

    /// Shows the previous stream (wrapping).
    pub fn prev_stream(&mut self) {
        let n = self.pipeline.streams().len().max(1);
        self.selected = (self.selected + n - 1) % n;
    }

    /// Applies a key press: q/Esc/Ctrl+C quit, Tab/Shift+Tab cycle streams.
    pub fn on_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        match k.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => self.quit = true,
            KeyCode::Tab | KeyCode::Right => self.next_stream(),
            KeyCode::BackTab | KeyCode::Left => self.prev_stream(),
            _ => {}
        }
    }

    /// Work done once per frame before drawing: the provisional signal of the shown stream.
    pub fn prepare(&mut self) {
        self.pipeline.refresh_provisional(self.selected);
    }

    /// The feed's counters.
    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// Shows the store and alert queues in the header (`--db`).
    pub fn set_store_stats(&mut self, stats: StoreStats) {
        self.store = Some(stats);
    }

    /// The store's counters, when a store is attached.
    pub fn store_stats(&self) -> Option<&StoreStats> {
        self.store.as_ref()
    }

    /// Captured log lines.
    pub fn messages(&self) -> &MessageLog {
        &self.messages
    }

    /// The title (exchange or demo).
    pub fn title(&self) -> &str {
        &self.title
    }
}

/// Runs the dashboard until `q`, a signal, `--max-candles` or the end of the feed. Records still
/// go to `sink` (a file with `--signals-out`, else nowhere). Restores the terminal on every path.
pub async fn run<F: MarketFeed>(
    feed: &mut F,
    app: &mut App,
    sink: &mut RecordSink,
    shutdown: &mut Shutdown,
) -> io::Result<Stop> {
    if let Some(stats) = sink.store_stats() {
        app.set_store_stats(stats);
    }
    let (writer, screen) = ScreenWriter::spawn(io::stdout());
    let mut terminal = init_terminal(writer)?;
    let (tx, mut keys) = mpsc::unbounded_channel();
    let stop_input = Arc::new(AtomicBool::new(false));
    let input = spawn_input(tx, stop_input.clone());
    let result = event_loop(&mut terminal, &screen, feed, app, sink, shutdown, &mut keys).await;
    stop_input.store(true, Ordering::Relaxed);
    // Every byte out before the terminal is restored, or the last frame lands on the shell.
    screen.closing();
    let _ = terminal.show_cursor();
    let _ = ratatui::backend::Backend::flush(terminal.backend_mut());
    drop(terminal);
    screen.join();
    ratatui::restore();
    // The input thread polls every 50 ms, so this join is short.
    let _ = input.join();
    let flushed = sink.flush();
    let stop = result?;
    flushed?;
    Ok(stop)
}

/// The dashboard's terminal: writes go through a [`ScreenWriter`].
type Term = ratatui::Terminal<ratatui::backend::CrosstermBackend<ScreenWriter>>;

/// What `ratatui::try_init` does (raw mode, alternate screen, a panic hook that restores the
/// terminal), with the frames going through `writer`.
fn init_terminal(writer: ScreenWriter) -> io::Result<Term> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        ratatui::restore();
        hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(writer))
}

async fn event_loop<F: MarketFeed>(
    terminal: &mut Term,
    screen: &Screen,
    feed: &mut F,
    app: &mut App,
    sink: &mut RecordSink,
    shutdown: &mut Shutdown,
    keys: &mut mpsc::UnboundedReceiver<KeyEvent>,
) -> io::Result<Stop> {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut timer = warm_timer();
    loop {
        if app.pipeline.done() {
            return Ok(Stop::MaxCandles);
        }
        // The candle path warmed before a closed candle is due, as headless runs do
        // (`live::prewarm`); the dashboard's own wake-ups do not keep it warm.
        timer.arm(app.pipeline.next_warm(now()));
        // Biased: shutdown and keys first; the tick fires at most 20 times a second, so the feed
        // gets the rest of the time.
        tokio::select! {
            biased;
            _ = shutdown.wait() => return Ok(Stop::Shutdown),
            Some(k) = keys.recv() => {
                app.on_key(k);
                if app.quit_requested() {
                    return Ok(Stop::Shutdown);
                }
            }
            _ = tick.tick() => {
                if screen.take_dropped() {
                    // The terminal fell behind and frames were dropped: draw the next one whole.
                    terminal.clear()?;
                }
                app.prepare();
                terminal.draw(|f| f.render_widget(&*app, f.area()))?;
            }
            ev = feed.next() => {
                if let Some(stop) = pump(feed, &mut app.pipeline, sink, ev)? {
                    return Ok(stop);
                }
            }
            _ = timer.fired() => warm(&mut app.pipeline, feed),
        }
    }
}

/// Reads keys on a plain thread (crossterm's reader blocks) and forwards presses.
fn spawn_input(
    tx: mpsc::UnboundedSender<KeyEvent>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(50)) {
                Ok(true) => match event::read() {
                    Ok(Event::Key(k)) => {
                        if tx.send(k).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests;
