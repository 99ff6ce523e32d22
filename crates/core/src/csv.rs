//! Candle CSV parsing: headered files (`open_time` in ms or `timestamp`/`date`/`time` in ISO 8601
//! or ms, plus `open,high,low,close,volume` in any order and case) and Binance's headerless
//! 12-column kline dumps. Errors name the 1-based line. Streams: O(1) memory per row.
//!
//! Parsing runs beside the engine on its own thread in `signals` and `backtest`, so its cost
//! per line bounds the whole run on two cores. A line without a quote or a carriage return
//! inside it (nearly every line of a real file) is split at its commas in place and its
//! numbers read straight from the bytes; any other line goes through `csv-core`'s RFC 4180
//! reader (`"1,234.5"` is one field, which then fails as a number instead of shifting the
//! columns; a quoted field may span lines). Both give the fields the `csv` crate would. A row
//! costs no allocation. A UTF-8 byte-order mark is accepted; a line longer than [`MAX_LINE`]
//! bytes is an error (a binary file or `/dev/zero` fails fast instead of filling memory).

use std::io::{self, Read};

use csv_core::ReadRecordResult;

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

/// The read buffer: a few thousand lines per read, and always room for a line of
/// [`MAX_LINE`] bytes.
const BUF: usize = 256 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

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

/// The fields of one record: field `i` ends at `ends[i]` in `data` and starts `sep` bytes
/// after the previous one's end (1 for a line split in place, past its comma; 0 for the
/// unquoted fields `csv-core` wrote out back to back).
#[derive(Clone, Copy)]
struct Fields<'a> {
    data: &'a [u8],
    ends: &'a [usize],
    sep: usize,
}

impl<'a> Fields<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> Option<&'a [u8]> {
        let end = *self.ends.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] + self.sep,
        };
        self.data.get(start..end)
    }

    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Where the current record's fields are.
#[derive(Debug, Clone, Copy)]
enum Rec {
    /// `buf[start..end]`, split at the commas in `ends`.
    Plain { start: usize, end: usize },
    /// Read by `csv-core` into `out` / `core_ends`.
    Quoted,
}

/// An iterator of candles from CSV text; yields an error (and then stops) at the first bad line.
pub struct CsvCandles<R> {
    src: R,
    buf: Box<[u8]>,
    /// Start of the bytes not yet read as records.
    pos: usize,
    /// End of the bytes read from `src`.
    filled: usize,
    eof: bool,
    /// The first read (and its byte-order mark) is still to come.
    fresh: bool,
    /// 1 + newlines before `pos`.
    next_line: usize,
    /// Bytes of the physical line at `pos` that lie before it (a record can end at a lone
    /// `\r` mid-line), for the [`MAX_LINE`] cap.
    line_run: usize,
    rec: Rec,
    /// Field ends of a `Rec::Plain` record, relative to its start.
    ends: Vec<usize>,
    core: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    core_ends: Vec<usize>,
    n_ends: usize,
    /// The line the current record (or the error) is on.
    line_no: usize,
    layout: Option<Layout>,
    /// The in-place reading of `layout`, once it is known.
    plan: Option<Plan>,
    interval: Option<Interval>,
    prev_open: Option<i64>,
    done: bool,
}

/// What [`CsvCandles::read_record`] found.
enum Next {
    /// The end of the input.
    End,
    /// A plain line of the known layout, read in place (the hot path).
    Candle(Candle),
    /// A record for [`CsvCandles::parse_record`] (a header, a quoted line, or a line the
    /// plain reading declined).
    Record,
}

impl<R: Read> CsvCandles<R> {
    /// Reads candles from `reader` (buffered here: a `BufReader` around it adds nothing). With
    /// `interval`, a missing close time is derived from it; without, from the next candle's
    /// open (or, for the last, the median step).
    pub fn new(reader: R, interval: Option<Interval>) -> Self {
        let mut core = csv_core::Reader::new();
        // `csv-core` strips a byte-order mark from the first input it is given; that is done
        // here at the file's start, and a quoted line later on must not lose one. A blank
        // line read first changes no state but marks the reader as started.
        let (res, ..) = core.read_record(b"\n", &mut [0u8; 1], &mut [0usize; 1]);
        debug_assert_eq!(res, ReadRecordResult::InputEmpty);
        CsvCandles {
            src: reader,
            buf: vec![0u8; BUF].into_boxed_slice(),
            pos: 0,
            filled: 0,
            eof: false,
            fresh: true,
            next_line: 1,
            line_run: 0,
            rec: Rec::Plain { start: 0, end: 0 },
            ends: Vec::with_capacity(16),
            core,
            out: vec![0u8; 1024],
            out_len: 0,
            core_ends: vec![0usize; 32],
            n_ends: 0,
            line_no: 0,
            layout: None,
            plan: None,
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

    /// Moves the unread bytes to the front of the buffer and reads more behind them.
    fn fill(&mut self) -> Result<(), CsvError> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.filled, 0);
            self.filled -= self.pos;
            self.pos = 0;
        }
        // Callers leave at most MAX_LINE unread bytes, so there is always room.
        debug_assert!(self.filled < self.buf.len());
        loop {
            match self.src.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.line_no = self.next_line;
                    return Err(CsvError::Io(e));
                }
            }
        }
    }

    /// The next record: `Ok(false)` at the end. Sets `line_no` to its line (or the error's).
    fn read_record(&mut self) -> Result<Next, CsvError> {
        if self.fresh {
            self.fresh = false;
            // Enough bytes to see a byte-order mark, as a reader handed a short first read
            // would otherwise miss it.
            while self.filled < BOM.len() && !self.eof {
                self.fill()?;
            }
            if self.buf[..self.filled].starts_with(BOM) {
                self.pos = BOM.len();
                self.line_run = BOM.len();
            }
        }
        loop {
            let window = &self.buf[self.pos..self.filled];
            let (len, newline) = match memchr::memchr(b'\n', window) {
                Some(n) => (n, true),
                None if self.eof => (window.len(), false),
                None => {
                    if self.line_run + window.len() > MAX_LINE {
                        self.line_no = self.next_line;
                        return Err(CsvError::LineTooLong);
                    }
                    self.fill()?;
                    continue;
                }
            };
            self.line_no = self.next_line;
            if self.line_run + len > MAX_LINE {
                return Err(CsvError::LineTooLong);
            }
            if !newline && len == 0 {
                return Ok(Next::End);
            }
            let line = &window[..len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                self.consume_line(len, newline);
                continue;
            }
            if let Some(plan) = &self.plan
                && let Some(c) = plain_candle(line, plan, self.interval)
            {
                self.consume_line(len, newline);
                return Ok(Next::Candle(c));
            }
            if split_plain(line, &mut self.ends) {
                self.rec = Rec::Plain {
                    start: self.pos,
                    end: self.pos + line.len(),
                };
                self.consume_line(len, newline);
                return Ok(Next::Record);
            }
            return self.read_quoted();
        }
    }

    /// Steps over a line of `len` bytes (and its newline, if any) read in place.
    fn consume_line(&mut self, len: usize, newline: bool) {
        self.pos += len + usize::from(newline);
        if newline {
            self.next_line += 1;
            self.line_run = 0;
        } else {
            self.line_run += len;
        }
    }

    /// The record at `pos` through `csv-core` (quotes, carriage returns inside a line).
    fn read_quoted(&mut self) -> Result<Next, CsvError> {
        self.rec = Rec::Quoted;
        self.out_len = 0;
        self.n_ends = 0;
        loop {
            let input = &self.buf[self.pos..self.filled];
            let (res, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.out[self.out_len..],
                &mut self.core_ends[self.n_ends..],
            );
            let was_empty = input.is_empty();
            self.count_lines(nin)?;
            self.out_len += nout;
            self.n_ends += nend;
            match res {
                ReadRecordResult::Record => return Ok(Next::Record),
                ReadRecordResult::End => return Ok(Next::End),
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.core_ends.len() * 2;
                    self.core_ends.resize(n, 0);
                }
                ReadRecordResult::InputEmpty if self.eof && was_empty => return Ok(Next::End),
                ReadRecordResult::InputEmpty if self.eof => {}
                ReadRecordResult::InputEmpty => self.fill()?,
            }
        }
    }

    /// Steps over `n` bytes `csv-core` read, counting their lines and holding each to
    /// [`MAX_LINE`].
    fn count_lines(&mut self, n: usize) -> Result<(), CsvError> {
        let read = &self.buf[self.pos..self.pos + n];
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', read) {
            if self.line_run + (i - start) > MAX_LINE {
                self.line_no = self.next_line;
                return Err(CsvError::LineTooLong);
            }
            self.next_line += 1;
            self.line_run = 0;
            start = i + 1;
        }
        self.line_run += n - start;
        self.pos += n;
        if self.line_run > MAX_LINE {
            self.line_no = self.next_line;
            return Err(CsvError::LineTooLong);
        }
        Ok(())
    }
}

/// The fields of record `rec` (the parts of a [`CsvCandles`] it lies in, borrowed one by one
/// so the caller can update the others).
fn fields<'a>(
    rec: Rec,
    buf: &'a [u8],
    ends: &'a [usize],
    out: &'a [u8],
    core_ends: &'a [usize],
) -> Fields<'a> {
    match rec {
        Rec::Plain { start, end } => Fields {
            data: &buf[start..end],
            ends,
            sep: 1,
        },
        Rec::Quoted => Fields {
            data: out,
            ends: core_ends,
            sep: 0,
        },
    }
}

/// Splits a line with no quote or carriage return at its commas (`ends` gets each field's
/// end): exactly the fields an RFC 4180 reader finds there. False for any other line.
fn split_plain(line: &[u8], ends: &mut Vec<usize>) -> bool {
    ends.clear();
    for i in memchr::memchr3_iter(b',', b'"', b'\r', line) {
        if line[i] != b',' {
            return false;
        }
        ends.push(i);
    }
    ends.push(line.len());
    true
}

/// A field as text, trimmed (and without a byte-order mark, which only the first can carry).
fn field<'a>(rec: &Fields<'a>, i: usize) -> Result<&'a str, CsvError> {
    let raw = rec.get(i).unwrap_or_default();
    let raw = raw.strip_prefix(BOM).unwrap_or(raw);
    std::str::from_utf8(raw)
        .map(str::trim)
        .map_err(|_| CsvError::NotUtf8 { column: i + 1 })
}

fn header_layout(rec: &Fields) -> Result<Layout, CsvError> {
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

/// Powers of ten exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Digits from `*p` on, as an integer (wrapping past 19 digits: callers check the count).
#[inline(always)]
fn digits(b: &[u8], p: &mut usize) -> u64 {
    let mut m = 0u64;
    while let Some(&c) = b.get(*p) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        m = m.wrapping_mul(10).wrapping_add(u64::from(d));
        *p += 1;
    }
    m
}

/// An optional sign at `*p`: true for `-`.
#[inline(always)]
fn sign(b: &[u8], p: &mut usize) -> bool {
    match b.get(*p) {
        Some(b'-') => {
            *p += 1;
            true
        }
        Some(b'+') => {
            *p += 1;
            false
        }
        _ => false,
    }
}

/// A plain decimal (`[+-]digits[.digits]`, at most 19 digits whose integer is at most 2^53,
/// at most 22 after the point) from `*p` to the next comma or the end, leaving `*p` there;
/// `None` for anything else, which then takes `str::parse`. The digits and the power of ten
/// are both exact in an `f64`, so one IEEE division rounds correctly: the same bits as
/// `str::parse` (whose own fast path this is, without its UTF-8 check and generic scan).
#[inline(always)]
fn scan_f64(b: &[u8], p: &mut usize) -> Option<f64> {
    let neg = sign(b, p);
    let start = *p;
    let mut m = digits(b, p);
    let mut n = *p - start;
    let mut frac = 0;
    if b.get(*p) == Some(&b'.') {
        *p += 1;
        let point = *p;
        // Continue the same integer through the fraction's digits.
        while let Some(&c) = b.get(*p) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            m = m.wrapping_mul(10).wrapping_add(u64::from(d));
            *p += 1;
        }
        frac = *p - point;
        n += frac;
    }
    if n == 0 || n > 19 || m > 1 << 53 || frac >= POW10.len() || !ends_field(b, *p) {
        return None;
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// A plain integer (`[+-]digits`, at most 18 digits) from `*p` to the next comma or the end,
/// as [`scan_f64`]; `None` for anything else, which then takes `str::parse`.
#[inline(always)]
fn scan_i64(b: &[u8], p: &mut usize) -> Option<i64> {
    let neg = sign(b, p);
    let start = *p;
    let v = digits(b, p) as i64;
    let n = *p - start;
    if n == 0 || n > 18 || !ends_field(b, *p) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// Whether a field ends at `p`: the end of the line or a comma.
#[inline(always)]
fn ends_field(b: &[u8], p: usize) -> bool {
    matches!(b.get(p), None | Some(b','))
}

/// A whole field as a plain decimal ([`scan_f64`]).
fn plain_f64(b: &[u8]) -> Option<f64> {
    let mut p = 0;
    scan_f64(b, &mut p).filter(|_| p == b.len())
}

/// A whole field as a plain integer ([`scan_i64`]).
fn plain_i64(b: &[u8]) -> Option<i64> {
    let mut p = 0;
    scan_i64(b, &mut p).filter(|_| p == b.len())
}

/// What a column is to the in-place reading.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Skip,
    Time,
    CloseTime,
    /// open, high, low, close, volume: the index into the five prices.
    Value(usize),
}

/// A layout as the in-place reading walks it: one role per column.
#[derive(Debug, Clone)]
struct Plan {
    roles: Vec<Role>,
    /// The fewest columns a row may have (as [`candle`] checks).
    least: usize,
}

impl Plan {
    /// `None` when the time is not whole milliseconds in the file's own column order.
    fn new(layout: &Layout) -> Option<Plan> {
        let mut roles = vec![Role::Skip; layout.width];
        let mut set = |i: usize, r: Role| match roles.get_mut(i) {
            Some(slot @ Role::Skip) => {
                *slot = r;
                true
            }
            _ => false,
        };
        let mut ok = set(layout.time, Role::Time);
        for (k, i) in [
            layout.open,
            layout.high,
            layout.low,
            layout.close,
            layout.volume,
        ]
        .into_iter()
        .enumerate()
        {
            ok &= set(i, Role::Value(k));
        }
        if let Some(i) = layout.close_time {
            ok &= i >= layout.width || set(i, Role::CloseTime);
        }
        let least = layout.volume.max(layout.close).max(layout.time) + 1;
        ok.then(|| Plan {
            roles,
            least: layout.width.min(least),
        })
    }
}

/// A line of `plan`'s layout read in place, in one pass over its bytes, when every field the
/// candle takes is a plain number ([`scan_f64`], [`scan_i64`]) and no field holds a quote;
/// `None` otherwise, and the line is read as a record ([`candle`]) with the same outcome.
fn plain_candle(line: &[u8], plan: &Plan, interval: Option<Interval>) -> Option<Candle> {
    let mut v = [0.0f64; 5];
    let (mut open_time, mut close_time) = (None, None);
    let mut p = 0;
    let mut k = 0;
    loop {
        match *plan.roles.get(k)? {
            Role::Skip => {
                while let Some(&c) = line.get(p) {
                    match c {
                        b',' => break,
                        b'"' | b'\r' => return None,
                        _ => p += 1,
                    }
                }
            }
            Role::Time => open_time = Some(scan_i64(line, &mut p)?),
            Role::CloseTime => close_time = Some(scan_i64(line, &mut p)?),
            Role::Value(i) => v[i] = scan_f64(line, &mut p)?,
        }
        k += 1;
        if p == line.len() {
            break;
        }
        p += 1; // the comma
    }
    if k < plan.least {
        return None;
    }
    let open_time = open_time?;
    Some(Candle {
        open_time,
        close_time: match (close_time, interval) {
            (Some(t), _) => t,
            (None, Some(iv)) => iv.close_time(open_time),
            (None, None) => i64::MIN, // filled in by `accept`
        },
        open: v[0],
        high: v[1],
        low: v[2],
        close: v[3],
        volume: v[4],
    })
}

fn num(rec: &Fields, i: usize, what: &'static str) -> Result<f64, CsvError> {
    if let Some(v) = rec.get(i).and_then(plain_f64) {
        return Ok(v);
    }
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

fn time(rec: &Fields, i: usize, kind: Time) -> Result<i64, CsvError> {
    if let Some(v) = rec.get(i).and_then(plain_i64) {
        return Ok(v);
    }
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

/// The current record as a candle of `layout`.
fn candle(rec: &Fields, layout: Layout, interval: Option<Interval>) -> Result<Candle, CsvError> {
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
        close_time: match (layout.close_time, interval) {
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

impl<R: Read> CsvCandles<R> {
    /// The candle of the record just read; `None` for a blank line or the header.
    fn parse_record(&mut self) -> Result<Option<Candle>, CsvError> {
        let rec = fields(
            self.rec,
            &self.buf,
            &self.ends,
            &self.out[..self.out_len],
            &self.core_ends[..self.n_ends],
        );
        // Blank lines (and a lone byte-order mark) carry nothing.
        if rec
            .iter()
            .all(|f| f.strip_prefix(BOM).unwrap_or(f).trim_ascii().is_empty())
        {
            return Ok(None);
        }
        let layout = match self.layout {
            Some(l) => l,
            None => {
                let header = field(&rec, 0)?.parse::<f64>().is_err();
                let layout = if header {
                    header_layout(&rec)?
                } else if rec.len() < 6 || rec.len() > BINANCE.width {
                    return Err(CsvError::UnknownLayout(rec.len()));
                } else {
                    BINANCE
                };
                self.layout = Some(layout);
                self.plan = Plan::new(&layout);
                if header {
                    return Ok(None);
                }
                layout
            }
        };
        let c = candle(&rec, layout, self.interval)?;
        self.accept(c).map(Some)
    }

    /// The checks every candle passes, however it was read: rising open times, a close time,
    /// the candle's own invariants.
    fn accept(&mut self, mut c: Candle) -> Result<Candle, CsvError> {
        if let Some(prev) = self.prev_open
            && c.open_time <= prev
        {
            return Err(CsvError::NonIncreasingTime {
                time: c.open_time,
                previous: prev,
            });
        }
        self.prev_open = Some(c.open_time);
        if c.close_time == i64::MIN {
            c.close_time = c.open_time; // provisional: `load` fixes it from the next open
        }
        c.validate()?;
        Ok(c)
    }
}

impl<R: Read> Iterator for CsvCandles<R> {
    type Item = Result<Candle, CoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let parsed = match self.read_record() {
                Ok(Next::End) => {
                    self.done = true;
                    break;
                }
                Ok(Next::Candle(c)) => self.accept(c).map(Some),
                Ok(Next::Record) => self.parse_record(),
                Err(e) => return self.err(e),
            };
            match parsed {
                Ok(Some(c)) => return Some(Ok(c)),
                Ok(None) => {}
                Err(e) => return self.err(e),
            }
        }
        None
    }
}

/// Reads every candle; close times missing from the file are derived from the interval if
/// given, else from the step between opens.
pub fn load<R: Read>(reader: R, interval: Option<Interval>) -> Result<Vec<Candle>, CoreError> {
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
    #[test]
    fn quoted_lines_and_line_endings_keep_line_numbers() {
        // A quoted field spanning two lines is one record; lines are counted through it.
        let s = "open_time,open,high,low,close,volume\r\n0,1,2,0.5,1,\"1\n\"\r\n60000,1,2,0.5,1,1\r\n0,1,2,0.5,1,1\r\n";
        match parse(s) {
            Err(CoreError::Csv { line, reason }) => {
                assert_eq!(line, 5, "{reason}");
                assert!(
                    matches!(reason, CsvError::NonIncreasingTime { .. }),
                    "{reason}"
                );
            }
            other => panic!("expected a CSV error, got {other:?}"),
        }
        // A lone carriage return ends a record (as RFC 4180 readers take it) on the same line.
        let s = "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\r60000,1,2,0.5,1,x\n";
        match parse(s) {
            Err(CoreError::Csv { line, reason }) => {
                assert_eq!(line, 2, "{reason}");
                assert!(
                    matches!(reason, CsvError::BadNumber { what: "volume", .. }),
                    "{reason}"
                );
            }
            other => panic!("expected a CSV error, got {other:?}"),
        }
    }

    /// A reader handing out one byte per read: every line straddles a refill.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn in_place_and_quoted_readings_agree() {
        // Plain lines take the in-place reading; the same values quoted, with CRLF, spaces or
        // exponents take the RFC 4180 reader and `str::parse`: the candles must be identical.
        let rows: Vec<[String; 6]> = (0..300i64)
            .map(|i| {
                let p = 100.0 + (i as f64 * 0.37).sin() * 7.0;
                [
                    (1_600_000_000_000 + i * 60_000).to_string(),
                    format!("{p:.2}"),
                    format!("{:.3}", p + 1.5),
                    format!("{:.5}", p - 1.25),
                    format!("{}", p + 0.1),
                    format!("{:.8}", 12345.678 + i as f64),
                ]
            })
            .collect();
        let file = |f: &dyn Fn(usize, &str) -> String, eol: &str| {
            let mut s = format!("open_time,open,high,low,close,volume{eol}");
            for r in &rows {
                let cells: Vec<String> = r.iter().enumerate().map(|(k, v)| f(k, v)).collect();
                s.push_str(&cells.join(","));
                s.push_str(eol);
            }
            s
        };
        let plain = parse(&file(&|_, v| v.to_string(), "\n")).unwrap();
        assert_eq!(plain.len(), rows.len());
        let variants = [
            file(&|_, v| format!("\"{v}\""), "\n"),
            file(&|_, v| v.to_string(), "\r\n"),
            file(
                &|k, v| {
                    if k == 2 {
                        format!(" {v} ")
                    } else {
                        v.to_string()
                    }
                },
                "\n",
            ),
            file(
                &|k, v| match (k, v.parse::<f64>()) {
                    (1, Ok(x)) => format!("{x:e}"),
                    _ => v.to_string(),
                },
                "\n",
            ),
            format!("\u{feff}{}", file(&|_, v| format!("+{v}"), "\n")),
        ];
        for (n, text) in variants.iter().enumerate() {
            let other = parse(text).unwrap();
            assert_eq!(other, plain, "variant {n}");
        }
        let trickled = load(
            Trickle(file(&|_, v| v.to_string(), "\r\n").as_bytes()),
            None,
        );
        assert_eq!(trickled.unwrap(), plain);
    }

    #[test]
    fn plain_numbers_read_as_str_parse_does() {
        let cases = [
            "0",
            "1",
            "-1",
            "+1",
            "1.",
            ".5",
            "-.5",
            "00012.3400",
            "9007199254740992",
            "9007199254740993",
            "0.1",
            "0.3",
            "123456789.123456789",
            "1234567890123456789",
            "12345678901234567890",
            "0.0000000000000000000001",
            "30010.32",
            "-0",
            "1e5",
            "",
            ".",
            "-",
            "+",
            "1.2.3",
            "1,2",
            " 1",
            "1 ",
            "inf",
            "NaN",
            "0x10",
            "1_0",
        ];
        for c in cases {
            let want = c.parse::<f64>().ok().filter(|v| v.is_finite());
            if let Some(v) = plain_f64(c.as_bytes()) {
                assert_eq!(Some(v.to_bits()), want.map(f64::to_bits), "{c:?}");
            }
            if let Some(v) = plain_i64(c.as_bytes()) {
                assert_eq!(Ok(v), c.parse::<i64>(), "{c:?}");
            }
        }
        // Every number of up to 15 significant digits as printed by Rust reads back exactly.
        let mut x = 0.000123f64;
        for _ in 0..20_000 {
            x = x * 1.000731 + 0.0137;
            for s in [format!("{x}"), format!("{x:.2}"), format!("{x:.8}")] {
                if let Some(v) = plain_f64(s.as_bytes()) {
                    assert_eq!(v.to_bits(), s.parse::<f64>().unwrap().to_bits(), "{s}");
                }
            }
        }
        assert!(
            plain_f64(b"30010.32").is_some(),
            "the common case takes the fast path"
        );
    }
}
