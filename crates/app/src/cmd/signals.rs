//! `manus signals --csv FILE` (or `--data FILE.parquet`): one JSON signal record per candle on stdout — the same record the
//! live engine writes.
//!
//! The file is parsed on a second thread while the engine runs on this one
//! ([`super::candle_reader`]), and the records are formatted and written on a third from
//! snapshots the engine hands over per chunk, so this thread does only the engine's work.
//! Records are written as candles are read; a malformed line stops the run with the
//! line's error (exit code 2) after the records of the lines before it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};

use manus_core::record::{RecordWriter, Snapshot};
use manus_core::summary::Moves;
use manus_core::{Action, SignalEngine};

use super::candle_reader::CandleReader;
use super::common::{StrategyArgs, ignore_broken_pipe, parse_interval};
use crate::exit::bad_input;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Candle CSV (headered or Binance's 12-column format), or a `.parquet` file.
    #[arg(long, visible_alias = "data")]
    pub csv: PathBuf,
    /// Symbol written into each record.
    #[arg(long, default_value = "BTCUSDT")]
    pub symbol: String,
    /// Interval written into each record (default: inferred from the file).
    #[arg(long)]
    pub interval: Option<String>,
    #[command(flatten)]
    pub strategy: StrategyArgs,
}

/// Bytes of records gathered before a write to stdout.
const FLUSH_AT: usize = 1 << 16;

/// Chunks of snapshots in flight to the printer.
const DEPTH: usize = 4;

/// One chunk's records as the engine left them: a snapshot per candle and, `n` per candle,
/// the strategies' views.
struct Batch {
    snaps: Vec<Snapshot>,
    actions: Vec<Action>,
}

/// Formats the records of each batch and writes them to stdout in ~64 KiB writes (no second
/// copy through a `BufWriter`), until the engine drops its end of the channel.
fn print(writer: &RecordWriter, n: usize, rx: Receiver<Batch>) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
    for batch in rx {
        for (i, snap) in batch.snaps.iter().enumerate() {
            writer.write_snapshot(snap, &batch.actions[i * n..(i + 1) * n], &mut buf);
            if buf.len() >= FLUSH_AT {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (specs, rule) = args.strategy.resolve()?;
    let interval = args.interval.as_deref().map(parse_interval).transpose()?;
    let mut candles = CandleReader::open(&args.csv, interval, 0)?;
    let interval = candles.interval();
    let mut engine = SignalEngine::from_specs(&specs, rule)?;
    let symbol = args.symbol.to_ascii_uppercase();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    manus_core::strategy::registry::check_interval(&ids, interval)
        .map_err(|e| bad_input(e.to_string()))?;
    let writer = RecordWriter::new(&symbol, interval, &engine);
    let n = engine.slots().len();
    let (tx, rx) = sync_channel::<Batch>(DEPTH);
    let printer = std::thread::spawn(move || print(&writer, n, rx));
    let mut failure = None;
    let mut moves = Moves::default();
    loop {
        let chunk = match candles.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let mut batch = Batch {
            snaps: Vec::with_capacity(chunk.len()),
            actions: Vec::with_capacity(chunk.len() * n),
        };
        for c in &chunk {
            moves.observe(&engine.on_closed(c));
            batch.snaps.push(Snapshot::of(c, &engine));
            batch
                .actions
                .extend(engine.decisions().iter().map(|d| d.action));
        }
        if tx.send(batch).is_err() {
            break; // the printer stopped: its error (stdout closed) comes from the join
        }
    }
    // Also after a bad line: the records of the lines before it go out.
    drop(tx);
    let result = match printer.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    if engine.failures() > 0 {
        for s in engine.slots().iter().filter(|s| s.failures > 0) {
            tracing::warn!(strategy = s.id(), failures = s.failures, last = ?s.last_error, "strategy failed on some candles");
        }
    }
    ignore_broken_pipe(result)?;
    if failure.is_none()
        && let Some(hint) = moves.no_decision_hint(&engine)
    {
        eprintln!("{hint}");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
