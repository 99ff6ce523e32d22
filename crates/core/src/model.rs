//! The domain model: [`Candle`], [`Interval`] and the [`Action`] a strategy takes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// One OHLCV bar. Times are milliseconds since the Unix epoch, UTC; `close_time` follows
/// Binance's convention of `next_open_time - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// Open time, ms UTC.
    pub open_time: i64,
    /// Close time, ms UTC (inclusive: the last millisecond of the bar).
    pub close_time: i64,
    /// Opening price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Closing (or, while forming, last) price.
    pub close: f64,
    /// Base-asset volume.
    pub volume: f64,
}

/// The smallest price accepted: far below any traded price, far above where ratios of prices
/// (returns, Sortino) leave the range of `f64`.
pub const MIN_PRICE: f64 = 1e-12;
/// The largest price accepted: squares and sums of squares over long windows (Bollinger, the
/// variance of returns) stay finite.
pub const MAX_PRICE: f64 = 1e15;
/// The largest volume accepted (sums over windows and price × volume stay finite).
pub const MAX_VOLUME: f64 = 1e18;

/// Why a candle breaks an invariant ([`Candle::validate`]).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CandleError {
    /// A price or the volume is NaN or infinite.
    #[error("non-finite price or volume")]
    NonFinite,
    /// A price is zero or negative.
    #[error("{field} {value} is not a positive price")]
    NotPositive {
        /// `open`, `high`, `low` or `close`.
        field: &'static str,
        /// The price.
        value: f64,
    },
    /// A price outside [`MIN_PRICE`]..=[`MAX_PRICE`].
    #[error(
        "{field} {value} is outside the prices indicators can compute with ({MIN_PRICE:e} to {MAX_PRICE:e})"
    )]
    PriceOutOfRange {
        /// `open`, `high`, `low` or `close`.
        field: &'static str,
        /// The price.
        value: f64,
    },
    /// Volume above [`MAX_VOLUME`].
    #[error("volume {0} is above the largest indicators can compute with ({MAX_VOLUME:e})")]
    VolumeTooLarge(f64),
    /// `high < low`.
    #[error("high {high} < low {low}")]
    HighBelowLow {
        /// The high.
        high: f64,
        /// The low.
        low: f64,
    },
    /// The open or close outside `[low, high]`.
    #[error("{field} {value} outside [low {low}, high {high}]")]
    OutsideRange {
        /// `open` or `close`.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The low.
        low: f64,
        /// The high.
        high: f64,
    },
    /// Negative volume.
    #[error("negative volume {0}")]
    NegativeVolume(f64),
    /// `close_time < open_time`.
    #[error("close_time {close_time} before open_time {open_time}")]
    CloseBeforeOpen {
        /// The open time, ms.
        open_time: i64,
        /// The close time, ms.
        close_time: i64,
    },
}

impl Candle {
    /// Checks the invariants every consumer relies on: finite numbers, prices in
    /// [[`MIN_PRICE`], [`MAX_PRICE`]], `low <= open, close <= high`, volume in
    /// [0, [`MAX_VOLUME`]] and `close_time >= open_time`.
    pub fn validate(&self) -> Result<(), CandleError> {
        let fields = [self.open, self.high, self.low, self.close, self.volume];
        if fields.iter().any(|v| !v.is_finite()) {
            return Err(CandleError::NonFinite);
        }
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            if value <= 0.0 {
                return Err(CandleError::NotPositive { field, value });
            }
            if !(MIN_PRICE..=MAX_PRICE).contains(&value) {
                return Err(CandleError::PriceOutOfRange { field, value });
            }
        }
        if self.volume > MAX_VOLUME {
            return Err(CandleError::VolumeTooLarge(self.volume));
        }
        if self.high < self.low {
            return Err(CandleError::HighBelowLow {
                high: self.high,
                low: self.low,
            });
        }
        for (field, value) in [("open", self.open), ("close", self.close)] {
            if value > self.high || value < self.low {
                return Err(CandleError::OutsideRange {
                    field,
                    value,
                    low: self.low,
                    high: self.high,
                });
            }
        }
        if self.volume < 0.0 {
            return Err(CandleError::NegativeVolume(self.volume));
        }
        if self.close_time < self.open_time {
            return Err(CandleError::CloseBeforeOpen {
                open_time: self.open_time,
                close_time: self.close_time,
            });
        }
        Ok(())
    }

    /// True when the candle closed up (or flat).
    pub fn is_bullish(&self) -> bool {
        self.close >= self.open
    }
}

/// A kline interval, exactly Binance's set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Interval {
    /// 1 minute.
    M1,
    /// 3 minutes.
    M3,
    /// 5 minutes.
    M5,
    /// 15 minutes.
    M15,
    /// 30 minutes.
    M30,
    /// 1 hour.
    H1,
    /// 2 hours.
    H2,
    /// 4 hours.
    H4,
    /// 6 hours.
    H6,
    /// 8 hours.
    H8,
    /// 12 hours.
    H12,
    /// 1 day.
    D1,
    /// 3 days.
    D3,
    /// 1 week (Binance weeks open on Monday 00:00 UTC).
    W1,
    /// 1 calendar month.
    Mo1,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 15] = [
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    /// Binance's spelling: `1m`, `5m`, `1h`, `1d`, `1w`, `1M`.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// Nominal length in ms (30 days for `1M`; use [`Interval::next_open`] for exact steps).
    pub fn duration_ms(self) -> i64 {
        match self {
            Interval::M1 => MINUTE,
            Interval::M3 => 3 * MINUTE,
            Interval::M5 => 5 * MINUTE,
            Interval::M15 => 15 * MINUTE,
            Interval::M30 => 30 * MINUTE,
            Interval::H1 => HOUR,
            Interval::H2 => 2 * HOUR,
            Interval::H4 => 4 * HOUR,
            Interval::H6 => 6 * HOUR,
            Interval::H8 => 8 * HOUR,
            Interval::H12 => 12 * HOUR,
            Interval::D1 => DAY,
            Interval::D3 => 3 * DAY,
            Interval::W1 => 7 * DAY,
            Interval::Mo1 => 30 * DAY,
        }
    }

    /// The open time of the bar after the one opening at `open_time` (calendar-exact for `1M`).
    pub fn next_open(self, open_time: i64) -> i64 {
        match self {
            Interval::Mo1 => month_start(open_time, 1),
            other => open_time + other.duration_ms(),
        }
    }

    /// The close time (inclusive) of the bar opening at `open_time`.
    pub fn close_time(self, open_time: i64) -> i64 {
        self.next_open(open_time) - 1
    }

    /// The open time of the bar containing `t` (weeks start Monday, months on the 1st, UTC).
    pub fn floor(self, t: i64) -> i64 {
        match self {
            Interval::Mo1 => month_start(t, 0),
            // 1970-01-01 was a Thursday; Binance weeks open Monday, 4 days later.
            Interval::W1 => {
                let w = 7 * DAY;
                (t - 4 * DAY).div_euclid(w) * w + 4 * DAY
            }
            other => t.div_euclid(other.duration_ms()) * other.duration_ms(),
        }
    }

    /// How many bars open in `[from, to)` — exact, including for `1M`.
    pub fn bars_between(self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        match self {
            Interval::Mo1 => {
                let mut n = 0;
                let mut t = self.floor(from);
                if t < from {
                    t = self.next_open(t);
                }
                while t < to {
                    n += 1;
                    t = self.next_open(t);
                }
                n
            }
            other => {
                let d = other.duration_ms();
                let first = self.floor(from) + if self.floor(from) < from { d } else { 0 };
                if first >= to {
                    0
                } else {
                    (to - 1 - first) / d + 1
                }
            }
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interval {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Interval::ALL
            .iter()
            .copied()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| CoreError::UnknownInterval(s.to_string()))
    }
}

impl TryFrom<String> for Interval {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Interval> for String {
    fn from(i: Interval) -> Self {
        i.as_str().to_string()
    }
}

/// Every interval's spelling, comma-separated, for error messages.
pub fn interval_choices() -> String {
    Interval::ALL
        .iter()
        .map(|i| i.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first instant (ms, UTC) of the month `months` after the one containing `t`. Outside
/// the calendar jiff represents (beyond the years ±9999, far from any market data) a month
/// counts as 30 days, so the function stays total.
fn month_start(t: i64, months: i32) -> i64 {
    let calendar = || -> Result<i64, jiff::Error> {
        let date = jiff::Timestamp::from_millisecond(t)?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .first_of_month()
            .checked_add(jiff::Span::new().months(months))?;
        Ok(date
            .to_zoned(jiff::tz::TimeZone::UTC)?
            .timestamp()
            .as_millisecond())
    };
    calendar().unwrap_or_else(|_| {
        let nominal = Interval::Mo1.duration_ms();
        t.div_euclid(nominal)
            .saturating_add(i64::from(months))
            .saturating_mul(nominal)
    })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for ms since the epoch; the raw number outside the years ±9999.
pub fn format_utc_ms(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Parses an ISO-8601 / RFC 3339 date or date-time into ms since the epoch: `2024-01-31`
/// (midnight UTC), `2024-01-31T12:00`, `2024-01-31 12:00:00.5`, with `Z` or an offset such as
/// `+02:00` (converted to UTC); without an offset the time is UTC. Impossible dates
/// (`2024-02-30`) are rejected.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    // A civil parse ignores an offset it cannot apply; only the offset-free forms are UTC.
    if s.get(10..)
        .is_some_and(|rest| rest.contains(['+', '-', 'Z', 'z', '[']))
    {
        return None;
    }
    Some(
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

/// What a strategy, or the confluence of several, says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Go or stay long.
    Buy,
    /// Go flat or short.
    Sell,
    /// No view.
    #[default]
    Hold,
}

impl Action {
    /// `BUY`, `SELL` or `HOLD`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Buy => "BUY",
            Action::Sell => "SELL",
            Action::Hold => "HOLD",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_round_trips_and_rejects_unknown() {
        for i in Interval::ALL {
            assert_eq!(i.as_str().parse::<Interval>().unwrap(), i);
        }
        for bad in ["1s", "2m", "1H", "", "5 m", "1mo"] {
            let err = bad.parse::<Interval>().unwrap_err().to_string();
            assert!(err.contains("1m, 3m"), "{err}");
        }
    }

    #[test]
    fn month_steps_follow_the_calendar() {
        let jan = parse_iso8601_ms("2024-01-01").unwrap();
        let feb = Interval::Mo1.next_open(jan);
        assert_eq!(feb, parse_iso8601_ms("2024-02-01").unwrap());
        let mar = Interval::Mo1.next_open(feb);
        assert_eq!(mar - feb, 29 * DAY, "2024 is a leap year");
        let dec = parse_iso8601_ms("2023-12-01").unwrap();
        assert_eq!(Interval::Mo1.next_open(dec), jan);
        assert_eq!(Interval::Mo1.floor(feb + 5 * DAY + 7), feb);
        assert_eq!(Interval::Mo1.bars_between(dec, mar), 3);
    }

    #[test]
    fn week_floor_is_monday() {
        // 2024-01-03 is a Wednesday; its week opened Monday 2024-01-01.
        let wed = parse_iso8601_ms("2024-01-03T10:00:00Z").unwrap();
        assert_eq!(
            Interval::W1.floor(wed),
            parse_iso8601_ms("2024-01-01").unwrap()
        );
    }

    #[test]
    fn bars_between_counts_opens() {
        let i = Interval::M5;
        assert_eq!(i.bars_between(0, 5 * MINUTE), 1);
        assert_eq!(i.bars_between(0, 5 * MINUTE + 1), 2);
        assert_eq!(i.bars_between(1, 5 * MINUTE), 0);
        assert_eq!(i.bars_between(0, 0), 0);
    }

    /// H. Hinnant's days_from_civil, an independent reference for the calendar.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
    }

    #[test]
    fn month_bars_match_an_independent_calendar() {
        // Every month from 1900 to 2200: its first millisecond floors to itself, its last to
        // the month's start, and the next open is the following month's first day.
        for y in 1900..2200 {
            for m in 1..=12 {
                let start = days_from_civil(y, m, 1) * DAY;
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                let next = days_from_civil(ny, nm, 1) * DAY;
                assert_eq!(Interval::Mo1.floor(start), start, "{y}-{m}");
                assert_eq!(Interval::Mo1.floor(next - 1), start, "{y}-{m}");
                assert_eq!(Interval::Mo1.next_open(start), next, "{y}-{m}");
            }
        }
        // Beyond the calendar the function stays total and increasing.
        assert!(Interval::Mo1.next_open(i64::MAX / 2) > i64::MAX / 2);
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc_ms(-1), "1969-12-31 23:59:59");
        let t = days_from_civil(2024, 2, 29) * DAY + 13 * HOUR + 5 * MINUTE + 9_999;
        assert_eq!(format_utc_ms(t), "2024-02-29 13:05:09");
        assert_eq!(format_utc_ms(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn iso8601_forms() {
        struct Case {
            input: &'static str,
            expected: Option<i64>,
        }
        let cases = [
            Case {
                input: "1970-01-01",
                expected: Some(0),
            },
            Case {
                input: "1970-01-01T00:01:00Z",
                expected: Some(60_000),
            },
            Case {
                input: "1970-01-01 00:00:01.5",
                expected: Some(1_500),
            },
            Case {
                input: "1970-01-02T00:00:00+00:00",
                expected: Some(DAY),
            },
            Case {
                input: "2024-02-30x",
                expected: None,
            },
            Case {
                input: "1970-13-01",
                expected: None,
            },
            Case {
                input: "1970-01-01T02:00:00+02:00",
                expected: Some(0),
            },
            Case {
                input: "2024-02-30",
                expected: None,
            },
            Case {
                input: "1970-01-01t00:00:00z",
                expected: Some(0),
            },
            Case {
                input: "1970-01-01T00:00:00.123456Z",
                expected: Some(123),
            },
            Case {
                input: "1970-01-01T25:00:00",
                expected: None,
            },
            Case {
                input: "yesterday",
                expected: None,
            },
        ];
        for c in cases {
            assert_eq!(parse_iso8601_ms(c.input), c.expected, "{}", c.input);
        }
    }

    #[test]
    fn candle_validation_names_the_problem() {
        let good = Candle {
            open_time: 0,
            close_time: 59_999,
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.5,
            volume: 1.0,
        };
        assert!(good.validate().is_ok());
        let bad = Candle { high: 8.0, ..good };
        assert_eq!(
            bad.validate(),
            Err(CandleError::HighBelowLow {
                high: 8.0,
                low: 9.0
            })
        );
        let nan = Candle {
            close: f64::NAN,
            ..good
        };
        assert_eq!(nan.validate(), Err(CandleError::NonFinite));
        let above = Candle {
            close: 11.5,
            ..good
        };
        assert!(matches!(
            above.validate(),
            Err(CandleError::OutsideRange { field: "close", .. })
        ));
    }
}
