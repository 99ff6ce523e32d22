//! `manus history`: reads stored signal records back from the store, as a table, JSON lines
//! (the same shape `signals` and `live` print) or CSV.

use std::io::{BufWriter, Write};
use std::path::Path;

use manus_core::Action;
use manus_core::model::parse_iso8601_ms;

use crate::clock::format_ms;
use crate::cmd::common::{ignore_broken_pipe, parse_interval};
use crate::exit::bad_input;
use crate::store::{self, Order, SignalQuery, StoredSignal};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Market symbol, e.g. BTCUSDT.
    #[arg(long)]
    pub symbol: String,
    /// Kline interval, e.g. 1m, 5m, 1h.
    #[arg(long)]
    pub interval: String,
    /// Only candles opening at or after this UTC date or date-time (e.g. 2024-01-31 or
    /// 2024-01-31T12:00:00Z); rows are then listed from that point on.
    #[arg(long)]
    pub since: Option<String>,
    /// Only candles opening before this UTC date or date-time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this confluence decision: buy, sell or hold.
    #[arg(long)]
    pub decision: Option<String>,
    /// Only records from this exchange (default: all).
    #[arg(long)]
    pub exchange: Option<String>,
    /// At most this many rows: the newest ones, or the first ones after --since (0 = all).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Output format: table, json (one record per line) or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Database: a SQLite file or a postgres:// URL (default: the platform data directory).
    #[arg(long, env = "MANUS_DB")]
    pub db: Option<String>,
    /// List the holes in the stored history instead (from, to, candles missing), e.g. an
    /// outage longer than `live --resume-max`; says so when there are none.
    #[arg(long)]
    pub gaps: bool,
}

/// A hole in a stored series: candles from `from` to `to` (open times, ms) are missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Open time of the first missing candle.
    pub from: i64,
    /// Open time of the last missing candle.
    pub to: i64,
    /// How many candles are missing.
    pub missing: u64,
}

/// The holes between consecutive stored open times (ascending), stepping the interval's own
/// grid (calendar months included).
pub fn gaps(open_times: &[i64], interval: manus_core::Interval) -> Vec<Gap> {
    let mut out = Vec::new();
    for w in open_times.windows(2) {
        let expected = interval.close_time(w[0]) + 1;
        if w[1] <= expected {
            continue;
        }
        let (mut t, mut last, mut missing) = (expected, expected, 0u64);
        while t < w[1] {
            last = t;
            missing += 1;
            t = interval.close_time(t) + 1;
        }
        out.push(Gap {
            from: expected,
            to: last,
            missing,
        });
    }
    out
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Parses `buy`, `sell` or `hold` (any case).
pub fn parse_decision(s: &str) -> anyhow::Result<Action> {
    match s.to_ascii_lowercase().as_str() {
        "buy" => Ok(Action::Buy),
        "sell" => Ok(Action::Sell),
        "hold" => Ok(Action::Hold),
        _ => Err(bad_input(format!(
            "--decision '{s}': expected buy, sell or hold"
        ))),
    }
}

fn parse_date(flag: &str, s: &str) -> anyhow::Result<i64> {
    parse_iso8601_ms(s).ok_or_else(|| {
        bad_input(format!(
            "{flag} '{s}': expected a UTC date like 2024-01-31 or 2024-01-31T12:00:00Z"
        ))
    })
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let interval = parse_interval(&args.interval)?;
    let format = match args.format.as_str() {
        "table" => Format::Table,
        "json" => Format::Json,
        "csv" => Format::Csv,
        other => {
            return Err(bad_input(format!(
                "--format '{other}': expected table, json or csv"
            )));
        }
    };
    let since = args
        .since
        .as_deref()
        .map(|s| parse_date("--since", s))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_date("--until", s))
        .transpose()?;
    let decision = args.decision.as_deref().map(parse_decision).transpose()?;
    crate::ranges::HISTORY_LIMIT.usize(args.limit)?;
    let symbol = args.symbol.trim().to_ascii_uppercase();
    if symbol.is_empty() {
        return Err(bad_input("--symbol must not be empty"));
    }

    // Reading must not create an empty database where the user mistyped a path.
    let db_path = match args.db.as_deref() {
        Some(url) if store::is_postgres_url(url) => None,
        Some(p) => Some(Path::new(p).to_path_buf()),
        None => Some(store::default_db_path()),
    };
    if let Some(p) = &db_path
        && !p.exists()
    {
        return Err(bad_input(format!(
            "no database at {} (run 'manus live --db {}' or pass --db)",
            p.display(),
            p.display()
        )));
    }
    let mut st = store::open(args.db.as_deref())?;
    if args.gaps {
        let times = st.signal_open_times(args.exchange.as_deref(), &symbol, interval)?;
        let found = gaps(&times, interval);
        let out = std::io::stdout();
        let mut out = BufWriter::new(out.lock());
        let what = format!("{symbol} {interval}");
        let result = (|| -> std::io::Result<()> {
            match (times.first(), times.last(), found.is_empty()) {
                (None, _, _) => writeln!(out, "{what}: no stored records")?,
                (Some(a), Some(b), true) => writeln!(
                    out,
                    "{what}: no gaps in {} stored records from {} to {}",
                    times.len(),
                    format_ms(*a),
                    format_ms(*b)
                )?,
                _ => {
                    writeln!(out, "from,to,missing")?;
                    for g in &found {
                        writeln!(
                            out,
                            "{},{},{}",
                            format_ms(g.from),
                            format_ms(g.to),
                            g.missing
                        )?;
                    }
                }
            }
            out.flush()
        })();
        return ignore_broken_pipe(result);
    }

    // Without --since the newest rows are the interesting ones; print them oldest first.
    let order = if since.is_some() {
        Order::Asc
    } else {
        Order::Desc
    };
    let q = SignalQuery {
        exchange: args.exchange.clone(),
        symbol: Some(symbol),
        interval: Some(interval),
        since,
        until,
        decision,
        limit: (args.limit > 0).then_some(args.limit),
        offset: 0,
        order,
    };
    let mut rows = st.signals(&q)?;
    if order == Order::Desc {
        rows.reverse();
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    ignore_broken_pipe(write_rows(&mut out, &rows, format).and_then(|()| out.flush()))
}

fn write_rows(out: &mut impl Write, rows: &[StoredSignal], format: Format) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let mut buf = Vec::with_capacity(256);
            for r in rows {
                buf.clear();
                r.record.write_json_line(&mut buf);
                out.write_all(&buf)?;
            }
        }
        Format::Csv => {
            writeln!(
                out,
                "open_time,time,exchange,symbol,interval,close,confluence,confidence,agreeing,signals"
            )?;
            for r in rows {
                let rec = &r.record;
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    rec.open_time,
                    format_ms(rec.open_time),
                    csv_field(&r.exchange),
                    csv_field(&rec.symbol),
                    rec.interval.as_str(),
                    rec.close,
                    rec.confluence,
                    rec.confidence,
                    csv_field(&rec.agreeing.join(";")),
                    csv_field(&signals_text(r)),
                )?;
            }
        }
        Format::Table => {
            if rows.is_empty() {
                writeln!(out, "no stored signals match")?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<20} {:<10} {:>14} {:<8} {:>6}  signals",
                "time (UTC)", "exchange", "close", "decision", "conf"
            )?;
            for r in rows {
                let rec = &r.record;
                writeln!(
                    out,
                    "{:<20} {:<10} {:>14} {:<8} {:>5.0}%  {}",
                    format_ms(rec.open_time),
                    r.exchange,
                    rec.close,
                    rec.confluence.as_str(),
                    rec.confidence * 100.0,
                    signals_text(r),
                )?;
            }
        }
    }
    Ok(())
}

/// `macd=BUY rsi=HOLD`.
fn signals_text(r: &StoredSignal) -> String {
    r.record
        .signals
        .0
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use manus_core::Interval;

    #[test]
    fn gaps_are_the_missing_candles_between_stored_ones() {
        use super::{Gap, gaps};
        const M: i64 = 60_000;
        struct Case {
            times: Vec<i64>,
            expected: Vec<Gap>,
        }
        let cases = [
            Case {
                times: vec![0, M, 2 * M, 3 * M],
                expected: vec![],
            },
            Case {
                times: vec![0, M, 5 * M, 6 * M, 8 * M],
                expected: vec![
                    Gap {
                        from: 2 * M,
                        to: 4 * M,
                        missing: 3,
                    },
                    Gap {
                        from: 7 * M,
                        to: 7 * M,
                        missing: 1,
                    },
                ],
            },
            Case {
                times: vec![],
                expected: vec![],
            },
        ];
        for c in cases {
            assert_eq!(gaps(&c.times, Interval::M1), c.expected, "{:?}", c.times);
        }
        // Months step the calendar: Jan and Apr 2024 stored, Feb and Mar missing.
        let (jan, feb, mar, apr) = (
            1_704_067_200_000,
            1_706_745_600_000,
            1_709_251_200_000,
            1_711_929_600_000,
        );
        assert_eq!(
            gaps(&[jan, apr], Interval::Mo1),
            vec![Gap {
                from: feb,
                to: mar,
                missing: 2
            }]
        );
    }

    use super::*;

    #[test]
    fn format_ms_inverts_the_parser() {
        for s in [
            "1970-01-01 00:00:00",
            "2024-02-29 23:59:59",
            "2000-03-01 12:34:56",
            "1999-12-31 00:00:01",
        ] {
            let ms = parse_iso8601_ms(s).unwrap();
            assert_eq!(format_ms(ms), s);
        }
    }

    #[test]
    fn decisions_parse_in_any_case_and_reject_others() {
        assert_eq!(parse_decision("BUY").unwrap(), Action::Buy);
        assert_eq!(parse_decision("sell").unwrap(), Action::Sell);
        assert_eq!(parse_decision("Hold").unwrap(), Action::Hold);
        assert!(parse_decision("long").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a;b"), "a;b");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
