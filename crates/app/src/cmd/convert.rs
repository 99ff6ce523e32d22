//! `manus convert IN OUT`: candles between CSV and Parquet, the direction from the extensions
//! (`.parquet` is Parquet, anything else CSV). Streams: memory stays bounded whatever the size.
//! Close times are kept when the input has them and not invented when it does not, so
//! CSV → Parquet → CSV gives back `fetch --out`'s CSV byte for byte.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use anyhow::Context;
use manus_core::csv::CsvCandles;

use super::fetch::{CSV_HEADER, write_csv_row};
use crate::columnar::{CandleWriter, is_parquet, read_chunks};
use crate::exit::bad_input;
use crate::output::AtomicFile;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input: a candle CSV (headered or Binance's 12-column format) or a `.parquet` file.
    pub input: PathBuf,
    /// Output: a `.parquet` file for CSV input, a CSV file for Parquet input.
    pub output: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (input, output) = (&args.input, &args.output);
    let in_file = || format!("in {}", input.display());
    let n = match (is_parquet(input), is_parquet(output)) {
        (false, true) => csv_to_parquet(&args)?,
        (true, false) => parquet_to_csv(&args).with_context(in_file)?,
        (a, _) => {
            return Err(bad_input(format!(
                "{} and {} are both {}: one of them must end in .parquet, the other not",
                input.display(),
                output.display(),
                if a { "Parquet" } else { "CSV" }
            )));
        }
    };
    eprintln!("{} candles: {} -> {}", n, input.display(), output.display());
    Ok(())
}

fn csv_to_parquet(args: &Args) -> anyhow::Result<u64> {
    let (input, output) = (&args.input, &args.output);
    let file = File::open(input)
        .map_err(|e| bad_input(format!("cannot open {}: {e}", input.display())))?;
    let mut rows = CsvCandles::new(BufReader::with_capacity(1 << 16, file), None).peekable();
    // Without an interval the reader leaves a missing close time equal to the open time; a
    // real one is always later (the bar's last millisecond).
    let close_time = matches!(rows.peek(), Some(Ok(c)) if c.close_time != c.open_time);
    let mut w = CandleWriter::create(output, close_time)
        .with_context(|| format!("writing {}", output.display()))?;
    let mut n = 0;
    for c in rows {
        let c = c.with_context(|| format!("in {}", input.display()))?;
        w.push(&c)
            .with_context(|| format!("writing {}", output.display()))?;
        n += 1;
    }
    w.finish()
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(n)
}

fn parquet_to_csv(args: &Args) -> anyhow::Result<u64> {
    let (input, output) = (&args.input, &args.output);
    let close_time = crate::columnar::has_close_time(input)?;
    let mut w =
        AtomicFile::create(output).with_context(|| format!("creating {}", output.display()))?;
    let mut header = CSV_HEADER.to_string();
    if close_time {
        header.push_str(",close_time");
    }
    writeln!(w, "{header}")?;
    let mut n = 0;
    let mut failed = None;
    read_chunks(input, |chunk| {
        for c in &chunk {
            if let Err(e) = write_csv_row(&mut w, c, close_time) {
                failed = Some(e);
                return false;
            }
        }
        n += chunk.len() as u64;
        true
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    w.commit()
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(n)
}
