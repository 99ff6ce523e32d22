//! Candle Parquet files, the columnar fast path for big histories that pandas and polars read
//! directly. [`read_chunks`] streams a file row group by row group in batches of [`BATCH`]
//! rows (bounded memory), validating candles as the CSV reader does; [`CandleWriter`] writes
//! one atomically ([`AtomicFile`]) in row groups of [`ROW_GROUP`] rows.
//!
//! Schema: `open_time` INT64 (ms UTC, annotated `TIMESTAMP(MILLIS, UTC)` so pandas and polars
//! show datetimes; read back as ms whatever the unit), `open`, `high`, `low`, `close`, `volume`
//! DOUBLE, and `close_time` INT64 (same annotation) only when the source had close times.
//! Other columns are ignored; optional (nullable) columns are accepted as long as no value is
//! null, as pandas writes every column optional. Uses the `parquet` crate's low-level column
//! API (no arrow) with Snappy, the one codec built in.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Once};

use manus_core::model::{Candle, CandleError};
use parquet::basic::{Compression, LogicalType, TimeUnit, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{DataType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnDescriptor;

use crate::output::AtomicFile;

/// Rows decoded per column before candles are assembled: bounds memory whatever the file.
pub const BATCH: usize = 8192;
/// Rows per written row group (about 7 MB of candles buffered).
pub const ROW_GROUP: usize = 128 * 1024;

/// The price and volume columns, in [`Candle`] order.
const PRICES: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// Whether `path` names a Parquet file (by its extension, any case).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// What went wrong reading or writing a candle Parquet file (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    /// The file could not be opened.
    #[error("cannot open: {0}")]
    Open(#[source] std::io::Error),
    /// Not Parquet, truncated, or a page that does not decode.
    #[error("not a readable Parquet file: {0}")]
    Format(#[source] parquet::errors::ParquetError),
    /// A required column is absent.
    #[error("missing column {0}")]
    MissingColumn(&'static str),
    /// A column of the wrong physical or logical type.
    #[error("column {column} is {found}, expected {expected}")]
    WrongType {
        /// The column.
        column: &'static str,
        /// What the file holds.
        found: String,
        /// What is read.
        expected: &'static str,
    },
    /// A null where a value is needed.
    #[error("row {row}: missing value for {column}")]
    Null {
        /// 1-based row in the file.
        row: u64,
        /// The column.
        column: &'static str,
    },
    /// Columns of one row group with different row counts.
    #[error("row group {0}: columns have different lengths")]
    Ragged(usize),
    /// An open time not after the previous row's.
    #[error("row {row}: non-increasing time: {time} after {previous}")]
    NonIncreasingTime {
        /// 1-based row in the file.
        row: u64,
        /// This row's open time.
        time: i64,
        /// The previous row's.
        previous: i64,
    },
    /// A candle breaking an invariant.
    #[error("row {row}: {source}")]
    Candle {
        /// 1-based row in the file.
        row: u64,
        /// What is wrong.
        #[source]
        source: CandleError,
    },
    /// Data the decoder choked on (it panicked; the panic was caught).
    #[error("corrupt Parquet data: {0}")]
    Corrupt(String),
    /// Writing failed (disk full, permissions).
    #[error("cannot write: {0}")]
    Write(#[source] parquet::errors::ParquetError),
}

impl ColumnarError {
    /// Whether the input file is at fault (exit code 2) rather than the machine.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ColumnarError::Write(_))
    }
}

/// The scale from a time column's unit to ms, as a divisor.
fn time_divisor(col: &ColumnDescriptor, name: &'static str) -> Result<i64, ColumnarError> {
    let wrong = |found: String| ColumnarError::WrongType {
        column: name,
        found,
        expected: "INT64 ms (or a TIMESTAMP)",
    };
    if col.physical_type() != Physical::INT64 {
        return Err(wrong(col.physical_type().to_string()));
    }
    match col.logical_type_ref() {
        None | Some(LogicalType::Integer { .. }) => Ok(1),
        Some(LogicalType::Timestamp(t)) => Ok(match t.unit {
            TimeUnit::MILLIS => 1,
            TimeUnit::MICROS => 1_000,
            TimeUnit::NANOS => 1_000_000,
        }),
        Some(other) => Err(wrong(format!("INT64 ({other:?})"))),
    }
}

/// Where each needed column is, and how to read it.
struct Layout {
    open_time: (usize, i64),
    close_time: Option<(usize, i64)>,
    prices: [usize; 5],
}

fn layout(columns: &[Arc<ColumnDescriptor>]) -> Result<Layout, ColumnarError> {
    let find = |name: &'static str| -> Result<Option<usize>, ColumnarError> {
        let Some(i) = columns.iter().position(|c| c.path().string() == name) else {
            return Ok(None);
        };
        if columns[i].max_rep_level() > 0 {
            return Err(ColumnarError::WrongType {
                column: name,
                found: "a repeated (list) column".into(),
                expected: "one value per row",
            });
        }
        Ok(Some(i))
    };
    let open_time = find("open_time")?.ok_or(ColumnarError::MissingColumn("open_time"))?;
    let close_time = find("close_time")?;
    let mut prices = [0; 5];
    for (slot, name) in prices.iter_mut().zip(PRICES) {
        let i = find(name)?.ok_or(ColumnarError::MissingColumn(name))?;
        if columns[i].physical_type() != Physical::DOUBLE {
            return Err(ColumnarError::WrongType {
                column: name,
                found: columns[i].physical_type().to_string(),
                expected: "DOUBLE",
            });
        }
        *slot = i;
    }
    Ok(Layout {
        open_time: (open_time, time_divisor(&columns[open_time], "open_time")?),
        close_time: close_time
            .map(|i| Ok((i, time_divisor(&columns[i], "close_time")?)))
            .transpose()?,
        prices,
    })
}

/// One column's reader and its decoded batch.
struct Column<T: DataType> {
    name: &'static str,
    reader: ColumnReaderImpl<T>,
    values: Vec<T::T>,
    defs: Vec<i16>,
    nullable: bool,
}

impl<T: DataType> Column<T> {
    /// Decodes up to `n` rows; `first_row` (1-based) names a null's row.
    fn read(&mut self, n: usize, first_row: u64) -> Result<usize, ColumnarError> {
        self.values.clear();
        self.defs.clear();
        let defs = self.nullable.then_some(&mut self.defs);
        let (rows, values, _) = self
            .reader
            .read_records(n, defs, None, &mut self.values)
            .map_err(ColumnarError::Format)?;
        if values < rows {
            let at = self.defs.iter().position(|d| *d == 0).unwrap_or(values);
            return Err(ColumnarError::Null {
                row: first_row + at as u64,
                column: self.name,
            });
        }
        Ok(rows)
    }
}

fn i64_column(
    rg: &dyn RowGroupReader,
    i: usize,
    name: &'static str,
) -> Result<Column<Int64Type>, ColumnarError> {
    typed_column(rg, i, name, "INT64", |r| match r {
        ColumnReader::Int64ColumnReader(r) => Some(r),
        _ => None,
    })
}

fn f64_column(
    rg: &dyn RowGroupReader,
    i: usize,
    name: &'static str,
) -> Result<Column<DoubleType>, ColumnarError> {
    typed_column(rg, i, name, "DOUBLE", |r| match r {
        ColumnReader::DoubleColumnReader(r) => Some(r),
        _ => None,
    })
}

/// Column `i` of a row group as `T`, or the wrong-type error naming `expected`.
fn typed_column<T: DataType>(
    rg: &dyn RowGroupReader,
    i: usize,
    name: &'static str,
    expected: &'static str,
    pick: fn(ColumnReader) -> Option<ColumnReaderImpl<T>>,
) -> Result<Column<T>, ColumnarError> {
    let nullable = rg.metadata().column(i).column_descr().max_def_level() > 0;
    let reader = rg.get_column_reader(i).map_err(ColumnarError::Format)?;
    let reader = pick(reader).ok_or(ColumnarError::WrongType {
        column: name,
        found: "another type".into(),
        expected,
    })?;
    Ok(Column {
        name,
        reader,
        values: Vec::with_capacity(BATCH),
        defs: Vec::with_capacity(BATCH),
        nullable,
    })
}

thread_local! {
    /// Set while this thread runs [`guarded`] code.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The message of a panic inside the `parquet` crate caught by [`guarded`].
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Whether a panic happened in the `parquet` crate's sources (not ours).
fn in_parquet_crate(at: Option<&std::panic::Location<'_>>) -> bool {
    at.is_some_and(|l| {
        let f = l.file().replace('\\', "/");
        f.contains("/parquet-") || f.contains("/parquet/src/")
    })
}

/// Runs `read`, turning a panic inside the `parquet` crate into [`ColumnarError::Corrupt`].
/// That crate still asserts on some corrupt byte ranges (60.1: "column start and length should
/// not be negative"; before 58 out-of-range dictionary indices, apache/arrow-rs#9434), and bad
/// input must give exit 2 with a message, not a crash. Such panics are kept off stderr; any
/// other panic (our code, the sink) goes on as before.
fn guarded<T>(read: impl FnOnce() -> Result<T, ColumnarError>) -> Result<T, ColumnarError> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.get() && in_parquet_crate(info.location()) {
                let p = info.payload();
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "decoder failure".into());
                CAUGHT.set(Some(msg));
                return;
            }
            previous(info)
        }));
    });
    GUARDED.set(true);
    let result = std::panic::catch_unwind(AssertUnwindSafe(read));
    GUARDED.set(false);
    match result {
        Ok(r) => r,
        Err(payload) => match CAUGHT.take() {
            Some(msg) => Err(ColumnarError::Corrupt(msg)),
            None => std::panic::resume_unwind(payload),
        },
    }
}

/// Reads the candles of `path` in order, handing them to `sink` in batches of up to [`BATCH`];
/// `sink` returns `false` to stop early. A file without `close_time` gives each candle
/// `close_time == open_time`, as [`manus_core::csv::CsvCandles`] does, for the caller to fill
/// in. Each candle is validated and open times must strictly increase.
pub fn read_chunks(
    path: &Path,
    sink: impl FnMut(Vec<Candle>) -> bool,
) -> Result<(), ColumnarError> {
    guarded(|| read_unguarded(path, sink))
}

fn read_unguarded(
    path: &Path,
    mut sink: impl FnMut(Vec<Candle>) -> bool,
) -> Result<(), ColumnarError> {
    let file = File::open(path).map_err(ColumnarError::Open)?;
    let reader = SerializedFileReader::new(file).map_err(ColumnarError::Format)?;
    let columns = reader.metadata().file_metadata().schema_descr().columns();
    let at = layout(columns)?;
    let mut row: u64 = 1;
    let mut prev: Option<i64> = None;
    for g in 0..reader.num_row_groups() {
        let rg = reader.get_row_group(g).map_err(ColumnarError::Format)?;
        let rg = rg.as_ref();
        let mut open_time = i64_column(rg, at.open_time.0, "open_time")?;
        let mut close_time = at
            .close_time
            .map(|(i, _)| i64_column(rg, i, "close_time"))
            .transpose()?;
        let mut prices = Vec::with_capacity(5);
        for (i, name) in at.prices.into_iter().zip(PRICES) {
            prices.push(f64_column(rg, i, name)?);
        }
        loop {
            let n = open_time.read(BATCH, row)?;
            if let Some(c) = close_time.as_mut()
                && c.read(BATCH, row)? != n
            {
                return Err(ColumnarError::Ragged(g));
            }
            for p in prices.iter_mut() {
                if p.read(BATCH, row)? != n {
                    return Err(ColumnarError::Ragged(g));
                }
            }
            if n == 0 {
                break;
            }
            let mut chunk = Vec::with_capacity(n);
            for k in 0..n {
                let t = open_time.values[k] / at.open_time.1;
                if let Some(previous) = prev
                    && t <= previous
                {
                    return Err(ColumnarError::NonIncreasingTime {
                        row,
                        time: t,
                        previous,
                    });
                }
                prev = Some(t);
                let c = Candle {
                    open_time: t,
                    close_time: match (&close_time, at.close_time) {
                        (Some(c), Some((_, div))) => c.values[k] / div,
                        _ => t,
                    },
                    open: prices[0].values[k],
                    high: prices[1].values[k],
                    low: prices[2].values[k],
                    close: prices[3].values[k],
                    volume: prices[4].values[k],
                };
                c.validate()
                    .map_err(|source| ColumnarError::Candle { row, source })?;
                chunk.push(c);
                row += 1;
            }
            if !sink(chunk) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether a Parquet file has a `close_time` column (read from its footer).
pub fn has_close_time(path: &Path) -> Result<bool, ColumnarError> {
    guarded(|| {
        let file = File::open(path).map_err(ColumnarError::Open)?;
        let reader = SerializedFileReader::new(file).map_err(ColumnarError::Format)?;
        let columns = reader.metadata().file_metadata().schema_descr().columns();
        Ok(layout(columns)?.close_time.is_some())
    })
}

/// Writes candles to a Parquet file that appears only when complete.
pub struct CandleWriter {
    writer: SerializedFileWriter<AtomicFile>,
    rows: Vec<Candle>,
    close_time: bool,
}

impl CandleWriter {
    /// Starts `path`; `close_time` says whether to store that column.
    pub fn create(path: &Path, close_time: bool) -> Result<Self, ColumnarError> {
        let out = AtomicFile::create(path)
            .map_err(|e| ColumnarError::Write(parquet::errors::ParquetError::External(e.into())))?;
        let time = "REQUIRED INT64 open_time (TIMESTAMP(MILLIS,true));";
        let close = if close_time {
            "REQUIRED INT64 close_time (TIMESTAMP(MILLIS,true));"
        } else {
            ""
        };
        let message = format!(
            "message candles {{ {time} REQUIRED DOUBLE open; REQUIRED DOUBLE high; \
             REQUIRED DOUBLE low; REQUIRED DOUBLE close; REQUIRED DOUBLE volume; {close} }}"
        );
        let schema =
            parquet::schema::parser::parse_message_type(&message).map_err(ColumnarError::Write)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("market-manus {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = SerializedFileWriter::new(out, Arc::new(schema), Arc::new(props))
            .map_err(ColumnarError::Write)?;
        Ok(CandleWriter {
            writer,
            rows: Vec::with_capacity(ROW_GROUP),
            close_time,
        })
    }

    /// Adds a candle, writing a row group when [`ROW_GROUP`] are buffered.
    pub fn push(&mut self, c: &Candle) -> Result<(), ColumnarError> {
        self.rows.push(*c);
        if self.rows.len() == ROW_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), ColumnarError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut group = self.writer.next_row_group().map_err(ColumnarError::Write)?;
        // Schema order: open_time, the prices, then close_time when present.
        let times: Vec<i64> = rows.iter().map(|c| c.open_time).collect();
        write_column::<Int64Type>(&mut group, &times)?;
        let prices: [fn(&Candle) -> f64; 5] =
            [|c| c.open, |c| c.high, |c| c.low, |c| c.close, |c| c.volume];
        let mut values = Vec::with_capacity(rows.len());
        for get in prices {
            values.clear();
            values.extend(rows.iter().map(get));
            write_column::<DoubleType>(&mut group, &values)?;
        }
        if self.close_time {
            let times: Vec<i64> = rows.iter().map(|c| c.close_time).collect();
            write_column::<Int64Type>(&mut group, &times)?;
        }
        group.close().map_err(ColumnarError::Write)?;
        self.rows = rows;
        self.rows.clear();
        Ok(())
    }

    /// Writes the last row group and the footer, and moves the file into place.
    pub fn finish(mut self) -> Result<(), ColumnarError> {
        self.flush_group()?;
        let out = self.writer.into_inner().map_err(ColumnarError::Write)?;
        out.commit()
            .map_err(|e| ColumnarError::Write(parquet::errors::ParquetError::External(e.into())))
    }
}

/// Writes the next column of `group`, which the schema says is of type `T`.
fn write_column<T: DataType>(
    group: &mut SerializedRowGroupWriter<'_, AtomicFile>,
    values: &[T::T],
) -> Result<(), ColumnarError> {
    let mut col = group
        .next_column()
        .map_err(ColumnarError::Write)?
        .ok_or_else(|| {
            ColumnarError::Write(parquet::errors::ParquetError::General(
                "schema has fewer columns".into(),
            ))
        })?;
    col.typed::<T>()
        .write_batch(values, None, None)
        .map_err(ColumnarError::Write)?;
    col.close().map_err(ColumnarError::Write)
}

/// Writes `candles` to `path` (without close times, as `fetch`'s CSV).
pub fn write_all(path: &Path, candles: &[Candle]) -> Result<(), ColumnarError> {
    let mut w = CandleWriter::create(path, false)?;
    for c in candles {
        w.push(c)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parquet_crates_panics_become_errors() {
        // Ours (this file) goes on unwinding: a bug in a sink is not reported as a bad file.
        let ours = std::panic::catch_unwind(|| guarded::<()>(|| panic!("a bug of ours")));
        assert!(ours.is_err());
        assert!(CAUGHT.take().is_none());
        assert!(!GUARDED.get());
        // A file that the parquet crate refuses with an error stays an error.
        let dir = std::env::temp_dir().join(format!("manus-columnar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("short.parquet");
        std::fs::write(&p, b"PAR1").unwrap();
        let e = read_chunks(&p, |_| true).unwrap_err();
        assert!(matches!(e, ColumnarError::Format(_)), "{e}");
        assert!(e.is_bad_input());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn paths_in_the_parquet_crate_are_told_apart() {
        let here = std::panic::Location::caller();
        assert!(!in_parquet_crate(Some(here)));
        assert!(!in_parquet_crate(None));
    }
}
