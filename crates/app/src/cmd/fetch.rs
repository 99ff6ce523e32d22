//! `manus fetch`: downloads closed klines over REST into the store's candle cache
//! ([`crate::store::cache`]), fetching only what is missing, and optionally writes them as CSV
//! or Parquet (by the `--out` file's extension).
//! The flags name a [`Source`]: `--from` inclusive, `--to` exclusive (default: now).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use manus_core::Candle;

use super::common::parse_interval;
use crate::output::AtomicFile;
use crate::store::cache::{Source, summary, sync};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exchange: binanceus, binance, bybit or okx.
    #[arg(long)]
    pub exchange: String,
    /// Symbol, e.g. BTCUSDT.
    #[arg(long)]
    pub symbol: String,
    /// Kline interval, e.g. 1m, 5m, 1h, 1d.
    #[arg(long)]
    pub interval: String,
    /// First open time: ISO 8601 (`2024-01-31T12:00:00Z`), `YYYY-MM-DD` or ms since the epoch.
    #[arg(long)]
    pub from: String,
    /// End of the range, exclusive (same formats; default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// REST base URL (default: the exchange's; e.g. a simulated exchange's).
    #[arg(long)]
    pub rest_url: Option<String>,
    /// Database: a SQLite path or a postgres:// URL (default: the user's data directory).
    #[arg(long)]
    pub db: Option<String>,
    /// Also write the range's candles to this CSV file (`open_time,open,high,low,close,volume`),
    /// or, when it ends in `.parquet`, to a Parquet file with the same columns.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `backtest`'s flags for reading history from an exchange through the cache.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// Read history from an exchange through the local cache (as `manus fetch`) instead of
    /// --csv: binanceus, binance, bybit or okx; needs --symbol, --interval and --from.
    #[arg(long, conflicts_with = "csv")]
    pub exchange: Option<String>,
    /// With --exchange: first open time (ISO 8601, YYYY-MM-DD or ms).
    #[arg(long, requires = "exchange")]
    pub from: Option<String>,
    /// With --exchange: end of the range, exclusive (default: now).
    #[arg(long, requires = "exchange")]
    pub to: Option<String>,
    /// With --exchange: REST base URL (default: the exchange's).
    #[arg(long, requires = "exchange")]
    pub rest_url: Option<String>,
    /// Database (SQLite path or postgres:// URL): the candle cache with --exchange, and where
    /// --save stores the run.
    #[arg(long)]
    pub db: Option<String>,
}

/// Writes candles as a headered CSV that `--csv` reads back.
///
/// The file appears only when complete ([`AtomicFile`]): an interruption leaves no file cut
/// mid-line.
pub fn write_csv(path: &Path, candles: &[Candle]) -> anyhow::Result<()> {
    let mut w = AtomicFile::create(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(w, "{CSV_HEADER}")?;
    for c in candles {
        write_csv_row(&mut w, c, false)?;
    }
    w.commit()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The header of [`write_csv`]'s files (`,close_time` is appended when close times are kept).
pub const CSV_HEADER: &str = "open_time,open,high,low,close,volume";

/// One row under [`CSV_HEADER`]: `{}` on f64 prints the shortest text that parses back to the
/// same value, so CSV ↔ Parquet round trips are exact.
pub fn write_csv_row(w: &mut impl Write, c: &Candle, close_time: bool) -> std::io::Result<()> {
    write!(
        w,
        "{},{},{},{},{},{}",
        c.open_time, c.open, c.high, c.low, c.close, c.volume
    )?;
    if close_time {
        write!(w, ",{}", c.close_time)?;
    }
    w.write_all(b"\n")
}

/// Writes candles to `path`: Parquet when it ends in `.parquet`, else [`write_csv`]'s CSV.
pub fn write_candles(path: &Path, candles: &[Candle]) -> anyhow::Result<()> {
    if crate::columnar::is_parquet(path) {
        crate::columnar::write_all(path, candles)
            .with_context(|| format!("writing {}", path.display()))
    } else {
        write_csv(path, candles)
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let src = Source::from_flags(
        &args.exchange,
        &args.symbol,
        parse_interval(&args.interval)?,
        &args.from,
        args.to.as_deref(),
        args.rest_url.as_deref(),
        args.db.as_deref(),
    )?;
    let synced = sync(&src, true)?;
    if let Some(p) = &args.out {
        write_candles(p, &synced.candles)?;
    }
    println!("{}", summary(&src, &synced));
    Ok(())
}
