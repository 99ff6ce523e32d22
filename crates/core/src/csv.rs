//! Candle CSV parsing: headered files (`open_time` in ms or `timestamp`/`date`/`time` in ISO 8601
//! or ms, plus `open,high,low,close,volume` in any order and case) and Binance's headerless
//! 12-column kline dumps. Errors name the 1-based line. Streams: O(1) memory per row.

use std::io::BufRead;

use crate::error::CoreError;
use crate::model::{Candle, Interval, parse_iso8601_ms};

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

/// An iterator of candles from CSV text; yields an error (and then stops) at the first bad line.
pub struct CsvCandles<R> {
    reader: R,
    line: String,
    line_no: usize,
    layout: Option<Layout>,
    interval: Option<Interval>,
    prev_open: Option<i64>,
    done: bool,
}

impl<R: BufRead> CsvCandles<R> {
    /// Reads candles from `reader`. With `interval`, a missing close time is derived from it;
    /// without, from the next candle's open (or, for the last, the median step).
    pub fn new(reader: R, interval: Option<Interval>) -> Self {
        CsvCandles {
            reader,
            line: String::new(),
            line_no: 0,
            layout: None,
            interval,
            prev_open: None,
            done: false,
        }
    }

    fn err(&mut self, reason: impl Into<String>) -> Option<Result<Candle, CoreError>> {
        self.done = true;
        Some(Err(CoreError::Csv {
            line: self.line_no,
            reason: reason.into(),
        }))
    }
}

fn header_layout(fields: &[&str]) -> Result<Layout, String> {
    let names: Vec<String> = fields
        .iter()
        .map(|f| f.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    let (time, time_kind) = if let Some(i) = find(&["open_time", "opentime"]) {
        (i, Time::Ms)
    } else if let Some(i) = find(&["timestamp", "date", "time", "datetime"]) {
        (i, Time::Flexible)
    } else {
        return Err("missing column: need open_time (ms) or timestamp/date/time".into());
    };
    let need = |n: &str| find(&[n]).ok_or_else(|| format!("missing column: {n}"));
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

fn num(fields: &[&str], i: usize, what: &str) -> Result<f64, String> {
    let raw = fields
        .get(i)
        .map(|s| s.trim().trim_matches('"'))
        .unwrap_or("");
    if raw.is_empty() {
        return Err(format!("missing value for {what}"));
    }
    let v: f64 = raw
        .parse()
        .map_err(|_| format!("bad number for {what}: '{raw}'"))?;
    if !v.is_finite() {
        return Err(format!("bad number for {what}: '{raw}'"));
    }
    Ok(v)
}

fn time(fields: &[&str], i: usize, kind: Time) -> Result<i64, String> {
    let raw = fields
        .get(i)
        .map(|s| s.trim().trim_matches('"'))
        .unwrap_or("");
    if raw.is_empty() {
        return Err("missing value for time".into());
    }
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    match kind {
        Time::Ms => Err(format!("bad time (expected ms since epoch): '{raw}'")),
        Time::Flexible => parse_iso8601_ms(raw)
            .ok_or_else(|| format!("bad time (expected ISO 8601 or ms): '{raw}'")),
    }
}

impl<R: BufRead> Iterator for CsvCandles<R> {
    type Item = Result<Candle, CoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            self.line.clear();
            self.line_no += 1;
            match self.reader.read_line(&mut self.line) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => return self.err(format!("read error: {e}")),
            }
            let text = self.line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split(',').collect();
            let layout = match self.layout {
                Some(l) => l,
                None => {
                    let first = fields[0].trim().trim_matches('"');
                    let l = if first.parse::<f64>().is_ok() {
                        if fields.len() < 6 {
                            return self.err(format!("expected a header row or Binance's 12-column kline format, found {} columns", fields.len()));
                        }
                        BINANCE
                    } else {
                        match header_layout(&fields) {
                            Ok(l) => {
                                self.layout = Some(l);
                                continue;
                            }
                            Err(e) => return self.err(e),
                        }
                    };
                    self.layout = Some(l);
                    l
                }
            };
            let parsed = (|| -> Result<Candle, String> {
                if fields.len()
                    < layout
                        .width
                        .min(layout.volume.max(layout.close).max(layout.time) + 1)
                {
                    return Err(format!(
                        "expected {} columns, found {}",
                        layout.width,
                        fields.len()
                    ));
                }
                let open_time = time(&fields, layout.time, layout.time_kind)?;
                let c = Candle {
                    open_time,
                    close_time: match (layout.close_time, self.interval) {
                        (Some(i), _) if fields.get(i).is_some_and(|s| !s.trim().is_empty()) => {
                            time(&fields, i, Time::Ms)?
                        }
                        (_, Some(iv)) => iv.close_time(open_time),
                        _ => i64::MIN, // filled in below
                    },
                    open: num(&fields, layout.open, "open")?,
                    high: num(&fields, layout.high, "high")?,
                    low: num(&fields, layout.low, "low")?,
                    close: num(&fields, layout.close, "close")?,
                    volume: num(&fields, layout.volume, "volume")?,
                };
                Ok(c)
            })();
            let mut c = match parsed {
                Ok(c) => c,
                Err(e) => return self.err(e),
            };
            if let Some(prev) = self.prev_open
                && c.open_time <= prev
            {
                return self.err(format!(
                    "non-increasing time: {} after {}",
                    c.open_time, prev
                ));
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

fn fill_close_times(cs: &mut [Candle]) {
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
            needle: &'static str,
        }
        let h = "open_time,open,high,low,close,volume\n";
        let cases = [
            Case {
                input: "open_time,open,high,low,close\n0,1,2,0,1\n",
                line: 1,
                needle: "missing column: volume",
            },
            Case {
                input: "a,b,c\n",
                line: 1,
                needle: "missing column",
            },
            Case {
                input: "0,1,2\n",
                line: 1,
                needle: "found 3 columns",
            },
            Case {
                input: "x",
                line: 1,
                needle: "missing column",
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1,1\n60000,1,abc,0.5,1,1\n",
                line: 3,
                needle: "bad number for high: 'abc'",
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,0.5,2,1,1\n",
                line: 2,
                needle: "high 0.5 < low 2",
            },
            Case {
                input: "open_time,open,high,low,close,volume\n60000,1,2,0.5,1,1\n\n60000,1,2,0.5,1,1\n",
                line: 4,
                needle: "non-increasing time",
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,1\n",
                line: 2,
                needle: "columns",
            },
            Case {
                input: "open_time,open,high,low,close,volume\n0,1,2,0.5,NaN,1\n",
                line: 2,
                needle: "bad number for close",
            },
            Case {
                input: "date,open,high,low,close,volume\nyesterday,1,2,0.5,1,1\n",
                line: 2,
                needle: "bad time",
            },
        ];
        let _ = h;
        for c in cases {
            match parse(c.input) {
                Err(CoreError::Csv { line, reason }) => {
                    assert_eq!(line, c.line, "{}: {reason}", c.input);
                    assert!(reason.contains(c.needle), "{}: {reason}", c.input);
                }
                other => panic!("{}: expected a CSV error, got {other:?}", c.input),
            }
        }
    }
}
