//! Candle CSV parsing: headered files (`open_time` in ms or `timestamp`/`date`/`time` in ISO 8601
//! or ms, plus `open,high,low,close,volume` in any order and case) and Binance's headerless
//! 12-column kline dumps. Errors name the 1-based line. Streams: O(1) memory per row.
//!
//! Records are split by the `csv` crate (RFC 4180 quoting: `"1,234.5"` is one field, which then
//! fails as a number instead of shifting the columns), into one reused `ByteRecord`, so a row
//! costs no allocation. A UTF-8 byte-order mark is accepted; a line longer than [`MAX_LINE`]
//! bytes is an error (a binary file or `/dev/zero` fails fast instead of filling memory).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use crate::error::CoreError;
use crate::model::{Candle, CandleError, Interval, parse_iso8601_ms};

/// What is wrong with one line of a candle CSV (the line number is in [`CoreError::Csv`]).
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// A line longer than [`MAX_LINE`] bytes.
    #[error("line longer than {MAX_LINE} bytes (not a candle CSV?)")]
    LineTooLong,
    /// The reader failed.
    #[error("read error: {0}")]
    Io(#[source] io::Error),
    /// The `csv` crate could not split the line.
    #[error("cannot read the CSV: {0}")]
    Malformed(#[source] csv::Error),
    /// A field that is not UTF-8 text.
    #[error("column {column} is not UTF-8 text (a binary file?)")]
    NotUtf8 {
        /// 1-based column.
        column: usize,
    },
    /// A header without a time column.
    #[error("missing column: need open_time (ms) or timestamp/date/time")]
    MissingTimeColumn,
    /// A header without a price or volume column.
    #[error("missing column: {0}")]
    MissingColumn(&'static str),
    /// A first line that is neither a header nor a Binance kline row.
    #[error("expected a header row or Binance's 12-column kline format, found {0} columns")]
    UnknownLayout(usize),
    /// A row whose width differs from the header's.
    #[error("expected {expected} columns, found {found}")]
    ColumnCount {
        /// The header's width.
        expected: usize,
        /// This row's.
        found: usize,
    },
    /// An empty field.
    #[error("missing value for {0}")]
    MissingValue(&'static str),
    /// A field that is not a finite number (shortened to 40 characters).
    #[error("bad number for {what}: '{value}'")]
    BadNumber {
        /// The column (`open`, ..., `volume`).
        what: &'static str,
        /// The text found.
        value: String,
    },
    /// A time that is not ms since the epoch (or, in a `timestamp`/`date` column, ISO 8601).
    #[error("bad time (expected {expected}): '{value}'")]
    BadTime {
        /// What the column takes.
        expected: &'static str,
        /// The text found.
        value: String,
    },
    /// An open time not after the previous row's.
    #[error("non-increasing time: {time} after {previous}")]
    NonIncreasingTime {
        /// This row's open time.
        time: i64,
        /// The previous row's.
        previous: i64,
    },
    /// A candle breaking an invariant.
    #[error(transparent)]
    Candle(#[from] CandleError),
}

/// The longest line accepted, in bytes. A kline row is under 200 bytes; a header with many
/// extra columns stays far below this.
pub const MAX_LINE: usize = 64 * 1024;
#[derive(Debug, Clone, Copy)]
enum Time {
    Ms,
    Flexible,
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    time: usize,
    time_kind: Time,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
    /// Binance's column 6 (close time), when present.
    close_time: Option<usize>,
    width: usize,
}

const BINANCE: Layout = Layout {
    time: 0,
    time_kind: Time::Ms,
    open: 1,
    high: 2,
    low: 3,
    close: 4,
    volume: 5,
    close_time: Some(6),
    width: 12,
};

/// Notes where lines end as bytes pass, and refuses a line longer than [`MAX_LINE`], so the
/// CSV reader never buffers an endless record. (The reader's own line count skips blank lines;
/// these offsets give the true line of each record.)
struct LineCap<R> {
    inner: R,
    /// Bytes read so far.
    pos: u64,
    /// Offsets of newlines read but not yet behind a parsed record (bounded by the reader's
    /// buffer), each with whether a `\r` came right before it.
    pending: VecDeque<(u64, bool)>,
    /// The last byte read.
    last: u8,
    /// Bytes since the last newline.
    run: usize,
    /// Set once the cap was hit: the reader stops there.
    over: bool,
}

impl<R> LineCap<R> {
    /// Stops the reader: the line running at offset `at` of this read passed [`MAX_LINE`].
    fn too_long(&mut self, at: usize) -> io::Error {
        self.over = true;
        self.pos += at as u64;
        io::Error::new(io::ErrorKind::InvalidData, "line too long")
    }
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.over {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        // Newline to newline rather than byte by byte: the scan is the parser thread's
        // hottest loop after the number parsing.
        let mut start = 0;
        while let Some(off) = data[start..].iter().position(|&b| b == b'\n') {
            let i = start + off;
            if self.run + off > MAX_LINE {
                return Err(self.too_long(start + MAX_LINE - self.run));
            }
            let crlf = if i > 0 {
                data[i - 1] == b'\r'
            } else {
                self.last == b'\r'
            };
            self.pending.push_back((self.pos + i as u64, crlf));
            self.run = 0;
            start = i + 1;
        }
        if self.run + (n - start) > MAX_LINE {
            return Err(self.too_long(start + MAX_LINE - self.run));
        }
        self.run += n - start;
        if let Some(&b) = data.last() {
            self.last = b;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// An iterator of candles from CSV text; yields an error (and then stops) at the first bad line.
pub struct CsvCandles<R> {
    reader: csv::Reader<LineCap<R>>,
    record: csv::ByteRecord,
    line_no: usize,
    /// Newlines before the current record.
    lines_before: usize,
    layout: Option<Layout>,
    interval: Option<Interval>,
    prev_open: Option<i64>,
    done: bool,
}

impl<R: BufRead> CsvCandles<R> {
    /// Reads candles from `reader`. With `interval`, a missing close time is derived from it;
    /// without, from the next candle's open (or, for the last, the median step).
    pub fn new(reader: R, interval: Option<Interval>) -> Self {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(LineCap {
                inner: reader,
                pos: 0,
                pending: VecDeque::new(),
                last: 0,
                run: 0,
                over: false,
            });
        CsvCandles {
            reader,
            record: csv::ByteRecord::new(),
            line_no: 0,
            lines_before: 0,
            layout: None,
            interval,
            prev_open: None,
            done: false,
        }
    }

    fn err(&mut self, reason: impl Into<CsvError>) -> Option<Result<Candle, CoreError>> {
        self.done = true;
        Some(Err(CoreError::Csv {
            line: self.line_no,
            reason: reason.into(),
        }))
    }

    /// The next record into `self.record`: `Ok(false)` at the end.
    fn read_record(&mut self) -> Result<bool, CsvError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => {
                if let Some(p) = self.record.position() {
                    // The reader places a record after blank lines at the first of them:
                    // newlines right at the cursor (`\n` or `\r\n`) are blank lines before it.
                    let mut start = p.byte();
                    let cap = self.reader.get_mut();
                    while let Some(&(nl, crlf)) = cap.pending.front() {
                        if nl < start {
                        } else if nl == start || (crlf && nl == start + 1) {
                            start = nl + 1;
                        } else {
                            break;
                        }
                        cap.pending.pop_front();
                        self.lines_before += 1;
                    }
                    self.line_no = self.lines_before + 1;
                }
                Ok(more)
            }
            Err(e) => {
                let cap = self.reader.get_ref();
                // The line being read when the error struck: after every newline seen.
                self.line_no = self.lines_before + cap.pending.len() + 1;
                if cap.over {
                    return Err(CsvError::LineTooLong);
                }
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    if let csv::ErrorKind::Io(io) = e.into_kind() {
                        return Err(CsvError::Io(io));
                    }
                    unreachable!("checked just above");
                }
                Err(CsvError::Malformed(e))
            }
        }
    }
}

/// A field as text, trimmed (and without a byte-order mark, which only the first can carry).
fn field(rec: &csv::ByteRecord, i: usize) -> Result<&str, CsvError> {
    let raw = rec.get(i).unwrap_or_default();
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    std::str::from_utf8(raw)
        .map(str::trim)
        .map_err(|_| CsvError::NotUtf8 { column: i + 1 })
}

fn header_layout(rec: &csv::ByteRecord) -> Result<Layout, CsvError> {
    let names: Vec<String> = (0..rec.len())
        .map(|i| field(rec, i).map(str::to_ascii_lowercase))
        .collect::<Result<_, _>>()?;
    let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    let (time, time_kind) = if let Some(i) = find(&["open_time", "opentime"]) {
        (i, Time::Ms)
    } else if let Some(i) = find(&["timestamp", "date", "time", "datetime"]) {
        (i, Time::Flexible)
    } else {
        return Err(CsvError::MissingTimeColumn);
    };
    let need = |n: &'static str| find(&[n]).ok_or(CsvError::MissingColumn(n));
    Ok(Layout {
        time,
        time_kind,
        open: need("open")?,
        high: need("high")?,
        low: need("low")?,
        close: need("close")?,
        volume: need("volume")?,
        close_time: find(&["close_time", "closetime"]),
        width: names.len(),
    })
}

fn num(rec: &csv::ByteRecord, i: usize, what: &'static str) -> Result<f64, CsvError> {
    let raw = field(rec, i)?;
    if raw.is_empty() {
        return Err(CsvError::MissingValue(what));
    }
    let bad = || CsvError::BadNumber {
        what,
        value: shorten(raw),
    };
    let v: f64 = raw.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(bad());
    }
    Ok(v)
}

fn time(rec: &csv::ByteRecord, i: usize, kind: Time) -> Result<i64, CsvError> {
    let raw = field(rec, i)?;
    if raw.is_empty() {
        return Err(CsvError::MissingValue("time"));
    }
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    let bad = |expected| CsvError::BadTime {
        expected,
        value: shorten(raw),
    };
    match kind {
        Time::Ms => Err(bad("ms since epoch")),
        Time::Flexible => parse_iso8601_ms(raw).ok_or_else(|| bad("ISO 8601 or ms")),
    }
}

/// At most 40 characters of a value, for messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl<R: BufRead> CsvCandles<R> {
    /// Parses the current record with `layout`.
    fn candle(&self, layout: Layout) -> Result<Candle, CsvError> {
        let rec = &self.record;
        let least = layout.volume.max(layout.close).max(layout.time) + 1;
        if rec.len() < layout.width.min(least) || rec.len() > layout.width {
            return Err(CsvError::ColumnCount {
                expected: layout.width,
                found: rec.len(),
            });
        }
        let open_time = time(rec, layout.time, layout.time_kind)?;
        Ok(Candle {
            open_time,
            close_time: match (layout.close_time, self.interval) {
                (Some(i), _) if rec.get(i).is_some_and(|s| !s.trim_ascii().is_empty()) => {
                    time(rec, i, Time::Ms)?
                }
                (_, Some(iv)) => iv.close_time(open_time),
                _ => i64::MIN, // filled in below
            },
            open: num(rec, layout.open, "open")?,
            high: num(rec, layout.high, "high")?,
            low: num(rec, layout.low, "low")?,
            close: num(rec, layout.close, "close")?,
            volume: num(rec, layout.volume, "volume")?,
        })
    }
}

impl<R: BufRead> Iterator for CsvCandles<R> {
    type Item = Result<Candle, CoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            match self.read_record() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => return self.err(e),
            }
            // Blank lines (and a lone byte-order mark) carry nothing.
            if self.record.iter().all(|f| {
                f.strip_prefix(b"\xEF\xBB\xBF")
                    .unwrap_or(f)
                    .trim_ascii()
                    .is_empty()
            }) {
                continue;
            }
            let layout = match self.layout {
                Some(l) => l,
                None => {
                    let first = match field(&self.record, 0) {
                        Ok(f) => f,
                        Err(e) => return self.err(e),
                    };
                    if first.parse::<f64>().is_err() {
                        match header_layout(&self.record) {
                            Ok(l) => {
                                self.layout = Some(l);
                                continue;
                            }
                            Err(e) => return self.err(e),
                        }
                    }
                    if self.record.len() < 6 || self.record.len() > BINANCE.width {
                        return self.err(CsvError::UnknownLayout(self.record.len()));
                    }
                    self.layout = Some(BINANCE);
                    BINANCE
                }
            };
            let mut c = match self.candle(layout) {
                Ok(c) => c,
                Err(e) => return self.err(e),
            };
            if let Some(prev) = self.prev_open
                && c.open_time <= prev
            {
                return self.err(CsvError::NonIncreasingTime {
                    time: c.open_time,
                    previous: prev,
                });
            }
            self.prev_open = Some(c.open_time);
            let check_close = c.close_time != i64::MIN;
            if !check_close {
                c.close_time = c.open_time; // provisional: `load` fixes it from the next open
            }
            if let Err(e) = c.validate() {
                return self.err(e);
            }
            return Some(Ok(c));
        }
    }
}

/// Reads every candle; close times missing from the file are derived from the interval if
/// given, else from the step between opens.
pub fn load<R: BufRead>(reader: R, interval: Option<Interval>) -> Result<Vec<Candle>, CoreError> {
    let mut out: Vec<Candle> = CsvCandles::new(reader, interval).collect::<Result<_, _>>()?;
    if interval.is_none() {
        fill_close_times(&mut out);
    }
    Ok(out)
}

/// Infers the interval from the most common step between opens.
pub fn infer_interval(candles: &[Candle]) -> Option<Interval> {
    let mut steps: Vec<i64> = candles
        .windows(2)
        .map(|w| w[1].open_time - w[0].open_time)
        .take(1000)
        .collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    let step = steps[steps.len() / 2];
    Interval::ALL.iter().copied().find(|i| {
        i.duration_ms() == step || (*i == Interval::Mo1 && (28..=31).contains(&(step / 86_400_000)))
    })
}

/// Fills close times a file left equal to the open time (see [`CsvCandles`]), from the inferred
/// interval, else from the next open.
pub fn fill_close_times(cs: &mut [Candle]) {
    // Only candles whose close time was not in the file have close_time == open_time.
    let iv = infer_interval(cs);
    for i in 0..cs.len() {
        if cs[i].close_time == cs[i].open_time {
            cs[i].close_time = match iv {
                Some(iv) => iv.close_time(cs[i].open_time),
                None if i + 1 < cs.len() => cs[i + 1].open_time - 1,
                None => cs[i].open_time,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Candle>, CoreError> {
        load(s.as_bytes(), None)
    }

    #[test]
    fn headered_any_order_and_case() {
        let cs =
            parse("Close,OPEN,high,Low,volume,open_time\n1.5,1,2,0.5,10,0\n2.5,1.5,3,1,11,60000\n")
                .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].open, 1.0);
        assert_eq!(cs[0].close, 1.5);
        assert_eq!(cs[0].close_time, 59_999);
        assert_eq!(cs[1].volume, 11.0);
    }

    #[test]
    fn iso_timestamps() {
        let cs = parse("timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n2024-01-01T00:05:00Z,1,2,0.5,1.5,1\n").unwrap();
        assert_eq!(cs[1].open_time - cs[0].open_time, 300_000);
        assert_eq!(cs[0].close_time, cs[0].open_time + 299_999);
    }

    #[test]
    fn binance_headerless() {
        let s = "1499040000000,0.01634790,0.80000000,0.01575800,0.01577100,148976.11427815,1499644799999,2434.19055334,308,1756.87402397,28.46694368,0\n";
        let cs = parse(s).unwrap();
        assert_eq!(cs[0].close_time, 1499644799999);
        assert_eq!(cs[0].high, 0.8);
    }

    #[test]
    fn errors_name_the_line() {
        struct Case {
            input: &'static str,
            line: usize,
            is: fn(&CsvError) -> bool,
        }
        let h = "open_time,open,high,low,close,volume\n";
        let cases = [
            Case {
                input: "open_time,open,high,low,close,volume\r\n\r\n\n60000,1,2,0.5,1,1\r\n\r\n60000,1,2,0.5,1,1\r\n",
                line: 6,
                is: |e| matches!(e, CsvError::NonIncreasingTime { .. }),
            },
            Case {
                input: "5\n",
                line: 1,
                is: |e| matches!(e, CsvError::UnknownLayout(1)),
            },
            Case {
                input: "open_time,open,high,low,close\n0,1,2,0,1\n",
                line: 1,
                is: |e| matches!(e, CsvError::MissingColumn("volume")),
            },
            Case {
                input: "a,b,c\n",
                line: 1,
                is: |e| matches!(e, CsvError::MissingTimeColumn),
            },
            Case {
                input: "0,1,2\n",
                line: 1,
                is: |e| matches!(e, CsvError::UnknownLayout(3)),
            },
            Case {
                input: "x",
                line: 1,
                is: |e| matches!(e, CsvError::MissingTimeColumn),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n60000,1,abc,0.5,1,1\n",
                line: 3,
                is: |e| matches!(e, CsvError::BadNumber { what: "high", value } if value == "abc"),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,0.5,2,1,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::Candle(CandleError::HighBelowLow { high, low }) if (*high, *low) == (0.5, 2.0)),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n60000,1,2,0.5,1,1\n\n60000,1,2,0.5,1,1\n",
                line: 4,
                is: |e| matches!(e, CsvError::NonIncreasingTime { .. }),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1\n",
                line: 2,
                is: |e| {
                    matches!(
                        e,
                        CsvError::ColumnCount {
                            expected: 6,
                            found: 5
                        }
                    )
                },
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,NaN,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::BadNumber { what: "close", .. }),
            },
            Case {
                input: "date,open,high,low,close,volume\nyesterday,1,2,0.5,1,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::BadTime { value, .. } if value == "yesterday"),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,\"1,234.5\"\n",
                line: 2,
                is: |e| matches!(e, CsvError::BadNumber { what: "volume", value } if value == "1,234.5"),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,\"42,000.00\",0.5,1,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::BadNumber { what: "high", value } if value == "42,000.00"),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n60000,1,2,0.5,1,1,7\n",
                line: 3,
                is: |e| {
                    matches!(
                        e,
                        CsvError::ColumnCount {
                            expected: 6,
                            found: 7
                        }
                    )
                },
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,0,2,0,1,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::Candle(CandleError::NotPositive { field: "open", value }) if *value == 0.0),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n60000,-1,2,-2,1,1\n",
                line: 3,
                is: |e| matches!(e, CsvError::Candle(CandleError::NotPositive { .. })),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1e-300,1e-300,1e-300,1e-300,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::Candle(CandleError::PriceOutOfRange { .. })),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1e300,1e300,1e300,1e300,1\n",
                line: 2,
                is: |e| matches!(e, CsvError::Candle(CandleError::PriceOutOfRange { .. })),
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1e300\n",
                line: 2,
                is: |e| matches!(e, CsvError::Candle(CandleError::VolumeTooLarge(_))),
            },
            Case {
                input: "\u{fffd}\u{0}\u{1}PNG,\u{0}\n",
                line: 1,
                is: |e| matches!(e, CsvError::MissingTimeColumn),
            },
        ];
        let _ = h;
        for c in cases {
            match parse(c.input) {
                Err(CoreError::Csv { line, reason }) => {
                    assert_eq!(line, c.line, "{}: {reason}", c.input);
                    assert!((c.is)(&reason), "{}: {reason:?}", c.input);
                }
                other => panic!("{}: expected a CSV error, got {other:?}", c.input),
            }
        }
    }

    #[test]
    fn quoted_fields_parse_as_one_value() {
        let cs =
            parse("\"open_time\",\"open\",high,low,close,volume\n\"0\",\"1.5\",2,0.5,1,\" 3 \"\n")
                .unwrap();
        assert_eq!((cs[0].open, cs[0].volume), (1.5, 3.0));
    }

    #[test]
    fn a_byte_order_mark_is_accepted() {
        let headered = "\u{feff}open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n";
        assert_eq!(parse(headered).unwrap().len(), 1);
        let binance = "\u{feff}1499040000000,0.0163,0.8,0.0157,0.0157,148976.1,1499644799999,2434.1,308,1756.8,28.4,0\n";
        assert_eq!(parse(binance).unwrap()[0].high, 0.8);
    }

    #[test]
    fn an_endless_line_fails_fast_naming_it() {
        struct Case {
            input: Vec<u8>,
            line: usize,
        }
        let long = vec![0u8; MAX_LINE + 1];
        let mut third = b"open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n".to_vec();
        third.extend_from_slice(&long);
        let cases = [
            Case {
                input: long.clone(),
                line: 1,
            },
            Case {
                input: third,
                line: 3,
            },
        ];
        for c in cases {
            match load(&c.input[..], None) {
                Err(CoreError::Csv { line, reason }) => {
                    assert_eq!(line, c.line, "{reason}");
                    assert!(matches!(reason, CsvError::LineTooLong), "{reason}");
                }
                other => panic!("expected a CSV error, got {other:?}"),
            }
        }
        // A line of exactly MAX_LINE bytes is within the cap (it fails for what it says).
        let mut at_cap = vec![b'a'; MAX_LINE];
        at_cap.push(b'\n');
        match load(&at_cap[..], None) {
            Err(CoreError::Csv { line: 1, reason }) => {
                assert!(matches!(reason, CsvError::MissingTimeColumn), "{reason}")
            }
            other => panic!("expected a missing column, got {other:?}"),
        }
        // An endless source (as `/dev/zero`) stops at the cap.
        let endless = std::io::BufReader::new(std::io::repeat(0));
        assert!(matches!(
            load(endless, None),
            Err(CoreError::Csv { line: 1, .. })
        ));
    }
}
