//! `manus signals --csv FILE` (or `--data FILE.parquet`): one JSON signal record per candle on stdout — the same record the
//! live engine writes.
//!
//! The file is parsed on a second thread while the engine runs on this one: parsing is about
//! as costly as all eleven strategies, so overlapping the two nearly halves the wall time on a
//! long file. Records are written as candles are read; a malformed line stops the run with the
//! line's error (exit code 2) after the records of the lines before it.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, sync_channel};

use anyhow::Context;
use manus_core::csv::{CsvCandles, infer_interval};
use manus_core::record::RecordWriter;
use manus_core::summary::Moves;
use manus_core::{Candle, Interval, SignalEngine};

use super::common::{StrategyArgs, ignore_broken_pipe, parse_interval};
use crate::exit::bad_input;

/// Candles per hand-off between the parser thread and the engine.
const CHUNK: usize = 4096;

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

/// A batch of candles, or the error that ends the stream (CSV or Parquet).
type Chunk = anyhow::Result<Vec<Candle>>;

/// Parses `file` on a new thread, handing over chunks of candles; an error ends the stream.
fn spawn_parser(file: File, interval: Option<Interval>) -> Receiver<Chunk> {
    let (tx, rx) = sync_channel::<Chunk>(8);
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for row in CsvCandles::new(BufReader::with_capacity(1 << 16, file), interval) {
            match row {
                Ok(c) => {
                    chunk.push(c);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if tx.send(Ok(full)).is_err() {
                            return; // the reader stopped (e.g. stdout closed)
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Ok(chunk));
                    let _ = tx.send(Err(e.into()));
                    return;
                }
            }
        }
        let _ = tx.send(Ok(chunk));
    });
    rx
}

/// Reads the Parquet file `path` on a new thread, as [`spawn_parser`] does a CSV.
fn spawn_parquet_reader(path: PathBuf) -> Receiver<Chunk> {
    let (tx, rx) = sync_channel::<Chunk>(8);
    std::thread::spawn(move || {
        let read = crate::columnar::read_chunks(&path, |chunk| tx.send(Ok(chunk)).is_ok());
        if let Err(e) = read {
            let _ = tx.send(Err(e.into()));
        }
    });
    rx
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (specs, rule) = args.strategy.resolve()?;
    let interval = args.interval.as_deref().map(parse_interval).transpose()?;
    let path = &args.csv;
    let in_file = || format!("in {}", path.display());
    let chunks = if crate::columnar::is_parquet(path) {
        spawn_parquet_reader(path.clone())
    } else {
        let file = File::open(path)
            .map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
        spawn_parser(file, interval)
    };
    let mut engine = SignalEngine::from_specs(&specs, rule)?;
    let symbol = args.symbol.to_ascii_uppercase();

    // The first chunk decides the interval when none was given (and fills in close times a
    // file without them leaves equal to the open time, as `csv::load` does).
    let first = match chunks.recv() {
        Ok(chunk) => chunk.with_context(in_file)?,
        Err(_) => Vec::new(),
    };
    if let Some(msg) = interval.and_then(|i| super::common::interval_conflict(path, i, &first)) {
        return Err(bad_input(msg));
    }
    let interval = match interval.or_else(|| infer_interval(&first)) {
        Some(i) => i,
        None => {
            // A parser that stopped early sends its error next: it (a missing column, a binary
            // file, a directory) says why, rather than "no candles" or "cannot infer".
            if let Ok(Err(e)) = chunks.recv() {
                return Err(e.context(in_file()));
            }
            return Err(bad_input(if first.is_empty() {
                format!("{}: no candles", path.display())
            } else {
                "cannot infer the interval from the file; pass --interval".to_string()
            }));
        }
    };
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    manus_core::strategy::registry::check_interval(&ids, interval)
        .map_err(|e| bad_input(e.to_string()))?;
    let writer = RecordWriter::new(&symbol, interval, &engine);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(1024);
    let mut failure = None;
    let mut moves = Moves::default();
    let result = (|| -> std::io::Result<()> {
        let mut next = Some(first);
        while let Some(mut chunk) = next.take() {
            for c in &mut chunk {
                if c.close_time == c.open_time {
                    c.close_time = interval.close_time(c.open_time);
                }
                moves.observe(&engine.on_closed(c));
                buf.clear();
                writer.write(c, &engine, &mut buf);
                out.write_all(&buf)?;
            }
            next = match chunks.recv() {
                Ok(Ok(chunk)) => Some(chunk),
                Ok(Err(e)) => {
                    failure = Some(e);
                    None
                }
                Err(_) => None,
            };
        }
        out.flush()
    })();
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
        Some(e) => Err(e.context(in_file())),
        None => Ok(()),
    }
}
