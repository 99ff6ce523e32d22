//! `manus indicators --csv FILE`: every indicator per candle, as CSV on stdout.

use std::io::Write;
use std::path::PathBuf;

use manus_core::indicator::{
    Adx, Atr, Bbands, Ema, Indicator, Macd, MinusDi, PlusDi, Rsi, Sma, Stoch,
};

use super::common::{ignore_broken_pipe, load_csv};
use crate::exit::bad_input;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Candle CSV (headered or Binance's 12-column format), or a `.parquet` file.
    #[arg(long, visible_alias = "data")]
    pub csv: PathBuf,
}

/// The header, in column order.
pub const HEADER: &str = "open_time,rsi_14,ema_9,ema_21,sma_20,bb_upper,bb_middle,bb_lower,macd,macd_signal,macd_hist,stoch_k,stoch_d,atr_14,adx_14,plus_di_14,minus_di_14";

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let candles = load_csv(&args.csv, None)?;
    if candles.is_empty() {
        return Err(bad_input(format!(
            "{}: no candles (an empty file, or a header without rows)",
            args.csv.display()
        )));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    ignore_broken_pipe(write_table(&candles, &mut out).and_then(|_| out.flush()))
}

fn cell(out: &mut impl Write, v: Option<f64>) -> std::io::Result<()> {
    // `{}` on f64 prints the shortest string that parses back to the same value.
    match v {
        Some(x) => write!(out, ",{x}"),
        None => out.write_all(b","),
    }
}

/// Writes the header and one row per candle.
pub fn write_table(candles: &[manus_core::Candle], out: &mut impl Write) -> std::io::Result<()> {
    let (mut rsi, mut ema9, mut ema21, mut sma20) =
        (Rsi::new(14), Ema::new(9), Ema::new(21), Sma::new(20));
    let (mut bb, mut macd, mut stoch) = (
        Bbands::new(20, 2.0),
        Macd::new(12, 26, 9),
        Stoch::new(14, 3, 3),
    );
    let (mut atr, mut adx, mut pdi, mut mdi) = (
        Atr::new(14),
        Adx::new(14),
        PlusDi::new(14),
        MinusDi::new(14),
    );
    writeln!(out, "{HEADER}")?;
    for c in candles {
        write!(out, "{}", c.open_time)?;
        cell(out, rsi.update(c))?;
        cell(out, ema9.update(c))?;
        cell(out, ema21.update(c))?;
        cell(out, sma20.update(c))?;
        let b = bb.update(c);
        cell(out, b.map(|b| b.upper))?;
        cell(out, b.map(|b| b.middle))?;
        cell(out, b.map(|b| b.lower))?;
        let m = macd.update(c);
        cell(out, m.map(|m| m.macd))?;
        cell(out, m.map(|m| m.signal))?;
        cell(out, m.map(|m| m.hist))?;
        let s = stoch.update(c);
        cell(out, s.map(|s| s.k))?;
        cell(out, s.map(|s| s.d))?;
        cell(out, atr.update(c))?;
        cell(out, adx.update(c))?;
        cell(out, pdi.update(c))?;
        cell(out, mdi.update(c))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
