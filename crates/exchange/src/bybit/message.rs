//! Bybit v5 payloads as serde structs, converted at the edge into [`Candle`]s.
//!
//! Docs: <https://bybit-exchange.github.io/docs/v5/websocket/public/kline> and
//! <https://bybit-exchange.github.io/docs/v5/market/kline>.

use manus_core::{Candle, Interval};
use serde::Deserialize;

use crate::feed::wire::{self as proto, ParseError};

/// Our interval in Bybit's spelling (`1`, `60`, `D`, `W`, `M`); `None` for the two Bybit lacks
/// (8h, 3d).
pub fn interval_code(i: Interval) -> Option<&'static str> {
    Some(match i {
        Interval::M1 => "1",
        Interval::M3 => "3",
        Interval::M5 => "5",
        Interval::M15 => "15",
        Interval::M30 => "30",
        Interval::H1 => "60",
        Interval::H2 => "120",
        Interval::H4 => "240",
        Interval::H6 => "360",
        Interval::H12 => "720",
        Interval::D1 => "D",
        Interval::W1 => "W",
        Interval::Mo1 => "M",
        Interval::H8 | Interval::D3 => return None,
    })
}

/// Bybit's spelling back to ours.
pub fn interval_from_code(code: &str) -> Option<Interval> {
    Interval::ALL
        .into_iter()
        .find(|&i| interval_code(i) == Some(code))
}

/// Any frame on the public socket: kline pushes
/// `{"topic":"kline.5.BTCUSDT","type":"snapshot","ts":..,"data":[{..}]}` and op answers
/// `{"success":true,"ret_msg":"pong","op":"ping"}`.
#[derive(Debug, Deserialize)]
pub struct WsFrame<'a> {
    /// `kline.{interval}.{symbol}` on pushes.
    #[serde(borrow, default)]
    pub topic: Option<&'a str>,
    /// Push time, ms.
    #[serde(default)]
    pub ts: Option<i64>,
    /// The klines of a push.
    #[serde(borrow, default)]
    pub data: Option<Vec<WsKline<'a>>>,
    /// `subscribe`, `ping`, ... on op answers.
    #[serde(borrow, default)]
    pub op: Option<&'a str>,
    /// Whether the op succeeded.
    #[serde(default)]
    pub success: Option<bool>,
    /// The op's message.
    #[serde(default)]
    pub ret_msg: Option<String>,
}

/// One kline in a push: `{"start":..,"end":..,"interval":"5","open":"..","close":"..",
/// "high":"..","low":"..","volume":"..","turnover":"..","confirm":false,"timestamp":..}`.
#[derive(Debug, Deserialize)]
pub struct WsKline<'a> {
    /// Open time, ms.
    pub start: i64,
    /// Interval code.
    #[serde(borrow)]
    pub interval: &'a str,
    /// Open price.
    #[serde(borrow)]
    pub open: &'a str,
    /// Close (last) price.
    #[serde(borrow)]
    pub close: &'a str,
    /// High price.
    #[serde(borrow)]
    pub high: &'a str,
    /// Low price.
    #[serde(borrow)]
    pub low: &'a str,
    /// Base volume.
    #[serde(borrow)]
    pub volume: &'a str,
    /// True on the candle's final update.
    pub confirm: bool,
    /// Update time, ms.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

impl WsKline<'_> {
    /// The normalised candle.
    pub fn to_candle(&self) -> Result<Candle, ParseError> {
        let interval = interval_from_code(self.interval).ok_or_else(|| {
            ParseError::Shape(format!("unknown Bybit interval '{}'", self.interval))
        })?;
        calendar_aligned(interval, self.start)?;
        proto::candle(
            interval,
            self.start,
            [self.open, self.high, self.low, self.close, self.volume],
        )
    }
}

/// Bybit does not document where its weekly and monthly bars start. Ours open Monday 00:00
/// UTC and on the 1st: a bar that does not is refused with a reason, never dropped in silence
/// (it would be neither the candle before nor the one after ours).
pub fn calendar_aligned(interval: Interval, start: i64) -> Result<(), ParseError> {
    let calendar = matches!(interval, Interval::W1 | Interval::Mo1);
    if calendar && interval.floor(start) != start {
        return Err(ParseError::Shape(format!(
            "Bybit {interval} bar opens at {start} ms, not on our grid ({}): its weeks or months \
             do not start where ours do, so its bars cannot be used",
            if interval == Interval::W1 {
                "Monday 00:00 UTC"
            } else {
                "the 1st, 00:00 UTC"
            }
        )));
    }
    Ok(())
}

/// The REST envelope: `{"retCode":0,"retMsg":"OK","result":{..},"time":..}`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    /// 0 on success.
    #[serde(rename = "retCode")]
    pub ret_code: i64,
    /// The message, verbatim.
    #[serde(rename = "retMsg", default)]
    pub ret_msg: String,
    /// The payload (absent or empty on errors).
    #[serde(default = "Option::default")]
    pub result: Option<T>,
    /// Server time, ms.
    #[serde(default)]
    pub time: Option<i64>,
}

/// `/v5/market/kline` result: rows `[start,o,h,l,c,volume,turnover]`, all strings, newest first.
#[derive(Debug, Deserialize)]
pub struct KlineResult {
    /// The rows.
    #[serde(default)]
    pub list: Vec<Vec<String>>,
}

/// `/v5/market/instruments-info` result.
#[derive(Debug, Deserialize)]
pub struct InstrumentsResult {
    /// Matching instruments.
    #[serde(default)]
    pub list: Vec<Instrument>,
}

/// One instrument.
#[derive(Debug, Deserialize)]
pub struct Instrument {
    /// E.g. `BTCUSDT`.
    pub symbol: String,
    /// `Trading` when live.
    #[serde(default)]
    pub status: String,
}

/// `/v5/market/time` result: `{"timeSecond":"..","timeNano":".."}`.
#[derive(Debug, Deserialize)]
pub struct TimeResult {
    /// Seconds, as a string.
    #[serde(rename = "timeSecond", default)]
    pub time_second: Option<String>,
    /// Nanoseconds, as a string.
    #[serde(rename = "timeNano", default)]
    pub time_nano: Option<String>,
}

/// Converts REST rows (newest first) into candles, oldest first.
pub fn rows_to_candles(
    rows: &[Vec<String>],
    interval: Interval,
) -> Result<Vec<Candle>, ParseError> {
    let mut out = rows
        .iter()
        .map(|r| {
            if r.len() < 6 {
                return Err(ParseError::Shape(format!(
                    "kline row has {} fields, expected 7",
                    r.len()
                )));
            }
            let start = r[0].parse::<i64>().map_err(|_| {
                ParseError::Shape(format!("kline start '{}' is not an integer", r[0]))
            })?;
            calendar_aligned(interval, start)?;
            proto::candle(interval, start, [&r[1], &r[2], &r[3], &r[4], &r[5]])
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|c| c.open_time);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_and_monthly_bars_off_our_grid_are_refused_with_a_reason() {
        let monday = 1_717_977_600_000; // 2024-06-10 00:00 UTC, a Monday
        let sunday = monday - 86_400_000;
        let rows = |start: i64| {
            vec![
                [start.to_string().as_str(), "1", "2", "0.5", "1.5", "3", "4"]
                    .map(String::from)
                    .to_vec(),
            ]
        };
        assert_eq!(
            rows_to_candles(&rows(monday), Interval::W1).map(|v| v.len()),
            Ok(1)
        );
        let e = rows_to_candles(&rows(sunday), Interval::W1).expect_err("a Sunday week");
        assert!(e.to_string().contains("Monday 00:00 UTC"), "{e}");
        // Fixed intervals are not judged here.
        assert!(rows_to_candles(&rows(sunday + 1000), Interval::M1).is_ok());
    }
}
