//! A candle file (CSV, or Parquet by its extension) parsed on a second thread and handed to the
//! caller in chunks through a bounded channel, for the commands that stream history through
//! the engine (`signals`, `backtest`).
//!
//! Parsing costs about as much as the eleven strategies, so overlapping the two nearly halves
//! the wall time on a long file; the bounded channel keeps memory flat. A malformed line ends
//! the stream with that line's error after the candles before it, so a command can act on
//! those (write their records) and then fail naming the line.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

use anyhow::Context;
use manus_core::csv::{CsvCandles, infer_interval};
use manus_core::{Candle, Interval};

use crate::exit::bad_input;

/// Candles per hand-off between the parser thread and the engine.
pub const CHUNK: usize = 4096;

/// Chunks in flight: enough to ride out a slow engine step without holding the file in memory.
const DEPTH: usize = 8;

/// A batch of candles, or the error that ends the stream (CSV or Parquet).
type Chunk = anyhow::Result<Vec<Candle>>;

/// Parses a CSV on a new thread, handing over chunks of candles; an error ends the stream.
fn spawn_csv(file: File, interval: Option<Interval>) -> Receiver<Chunk> {
    let (tx, rx) = sync_channel::<Chunk>(DEPTH);
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for row in CsvCandles::new(file, interval) {
            match row {
                Ok(c) => {
                    chunk.push(c);
                    if chunk.len() == CHUNK {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                        if tx.send(Ok(full)).is_err() {
                            return; // the reader stopped (an error, or stdout closed)
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

/// Reads a Parquet file on a new thread, as [`spawn_csv`] does a CSV.
fn spawn_parquet(path: PathBuf) -> Receiver<Chunk> {
    let (tx, rx) = sync_channel::<Chunk>(DEPTH);
    std::thread::spawn(move || {
        let read = crate::columnar::read_chunks(&path, |chunk| tx.send(Ok(chunk)).is_ok());
        if let Err(e) = read {
            let _ = tx.send(Err(e.into()));
        }
    });
    rx
}

/// The candles of one file, arriving in chunks from the parser thread, with the interval they
/// are labelled with.
pub struct CandleReader {
    path: PathBuf,
    rx: Receiver<Chunk>,
    /// The first chunk, received by [`CandleReader::open`] and not yet handed out.
    first: Option<Vec<Candle>>,
    interval: Interval,
}

impl CandleReader {
    /// Starts parsing `path` and waits for the first chunk, which decides the interval when
    /// `interval` is `None` (and must agree with it otherwise). `min_candles` > 0 refuses a
    /// shorter file (bad input, or the line's error when a bad line cut it short).
    pub fn open(
        path: &Path,
        interval: Option<Interval>,
        min_candles: usize,
    ) -> anyhow::Result<CandleReader> {
        let in_file = || format!("in {}", path.display());
        let rx = if crate::columnar::is_parquet(path) {
            spawn_parquet(path.to_path_buf())
        } else {
            let file = File::open(path)
                .map_err(|e| bad_input(format!("cannot open {}: {e}", path.display())))?;
            spawn_csv(file, interval)
        };
        let first = match rx.recv() {
            Ok(chunk) => chunk.with_context(in_file)?,
            Err(_) => Vec::new(),
        };
        // A first chunk shorter than CHUNK is the whole file or what came before a bad line;
        // that line's error (a missing column, a binary file, a directory) says more than a
        // count or "cannot infer".
        let error_next = |rx: &Receiver<Chunk>| match rx.recv() {
            Ok(Err(e)) => Some(e.context(in_file())),
            _ => None,
        };
        if first.len() < min_candles {
            if let Some(e) = error_next(&rx) {
                return Err(e);
            }
            return Err(bad_input(format!(
                "{} has {} candle(s); at least {min_candles} needed",
                path.display(),
                first.len()
            )));
        }
        if let Some(msg) = interval.and_then(|i| super::common::interval_conflict(path, i, &first))
        {
            return Err(bad_input(msg));
        }
        // `infer_interval` reads the first 1000 steps, so the first chunk decides as the whole
        // file would.
        let interval = match interval.or_else(|| infer_interval(&first)) {
            Some(i) => i,
            None => {
                if let Some(e) = error_next(&rx) {
                    return Err(e);
                }
                return Err(bad_input(if first.is_empty() {
                    format!("{}: no candles", path.display())
                } else {
                    "cannot infer the interval from the file; pass --interval".to_string()
                }));
            }
        };
        Ok(CandleReader {
            path: path.to_path_buf(),
            rx,
            first: Some(first),
            interval,
        })
    }

    /// The interval the candles are labelled with (given, else inferred).
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The next chunk, with the close times a file without them left equal to the open time
    /// filled from the interval (as `csv::load` fills them); `None` at the end; the error of a
    /// bad line (naming the file and the line) after the chunk of the candles before it.
    pub fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<Candle>>> {
        let mut chunk = match self.first.take() {
            Some(first) => first,
            None => match self.rx.recv() {
                Ok(Ok(chunk)) => chunk,
                Ok(Err(e)) => return Err(e.context(format!("in {}", self.path.display()))),
                Err(_) => return Ok(None),
            },
        };
        let iv = self.interval;
        for c in chunk.iter_mut().filter(|c| c.close_time == c.open_time) {
            c.close_time = iv.close_time(c.open_time);
        }
        Ok(Some(chunk))
    }

    /// Every remaining candle in one vector (for the runs that need them all at once).
    pub fn read_all(mut self) -> anyhow::Result<Vec<Candle>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            if all.is_empty() {
                all = chunk;
            } else {
                all.extend_from_slice(&chunk);
            }
        }
        Ok(all)
    }
}
