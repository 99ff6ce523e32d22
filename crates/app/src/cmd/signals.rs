//! `manus signals --csv FILE`: one JSON signal record per candle on stdout — the same record the
//! live engine writes.

use std::io::Write;
use std::path::PathBuf;

use manus_core::record::RecordWriter;
use manus_core::{SignalEngine, csv::infer_interval};

use super::common::{StrategyArgs, ignore_broken_pipe, load_csv, parse_interval};
use crate::exit::bad_input;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Candle CSV (headered or Binance's 12-column format).
    #[arg(long)]
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

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (specs, rule) = args.strategy.resolve()?;
    let interval = args.interval.as_deref().map(parse_interval).transpose()?;
    let candles = load_csv(&args.csv, interval)?;
    let interval = match interval.or_else(|| infer_interval(&candles)) {
        Some(i) => i,
        None => {
            return Err(bad_input(
                "cannot infer the interval from the file; pass --interval",
            ));
        }
    };
    let mut engine = SignalEngine::from_specs(&specs, rule)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(512);
    let symbol = args.symbol.to_ascii_uppercase();
    let writer = RecordWriter::new(&symbol, interval, &engine);
    let result = (|| -> std::io::Result<()> {
        for c in &candles {
            engine.on_closed(c);
            buf.clear();
            writer.write(c, &engine, &mut buf);
            out.write_all(&buf)?;
        }
        out.flush()
    })();
    if engine.failures() > 0 {
        for s in engine.slots().iter().filter(|s| s.failures > 0) {
            tracing::warn!(strategy = s.id(), failures = s.failures, last = ?s.last_error, "strategy failed on some candles");
        }
    }
    ignore_broken_pipe(result)
}
