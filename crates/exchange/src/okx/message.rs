//! OKX v5 payloads as serde structs, converted at the edge into [`Candle`]s, and the interval
//! and symbol spellings.
//!
//! Docs: <https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-candlesticks-channel>
//! and <https://www.okx.com/docs-v5/en/#order-book-trading-market-data-get-candlesticks>.

use manus_core::{Candle, Interval};
use serde::Deserialize;

use crate::feed::FeedError;
use crate::feed::wire::{self as proto, ParseError};

/// OKX's bar for an interval: `1m 3m 5m 15m 30m 1H 2H 4H`, then the UTC-aligned `6Hutc 12Hutc
/// 1Dutc 1Wutc 1Mutc` (the plain `1D`/`1W` bars open at Hong Kong midnight, off our UTC grid).
/// None for 8h (OKX has no such bar) and 3d (OKX's 3-day alignment is not documented).
pub fn interval_code(i: Interval) -> Option<&'static str> {
    Some(match i {
        Interval::M1 => "1m",
        Interval::M3 => "3m",
        Interval::M5 => "5m",
        Interval::M15 => "15m",
        Interval::M30 => "30m",
        Interval::H1 => "1H",
        Interval::H2 => "2H",
        Interval::H4 => "4H",
        Interval::H6 => "6Hutc",
        Interval::H12 => "12Hutc",
        Interval::D1 => "1Dutc",
        Interval::W1 => "1Wutc",
        Interval::Mo1 => "1Mutc",
        Interval::H8 | Interval::D3 => return None,
    })
}

/// The interval of an OKX bar (one of [`interval_code`]'s answers).
pub fn interval_from_code(code: &str) -> Option<Interval> {
    Interval::ALL
        .iter()
        .copied()
        .find(|&i| interval_code(i) == Some(code))
}

/// Quote assets `BTCUSDT` is split by. No entry is a suffix of another, so at most one
/// matches any symbol: the split is unambiguous.
pub const QUOTES: [&str; 7] = ["USDT", "USDC", "USD", "EUR", "BTC", "ETH", "OKB"];

/// OKX's instrument id for one of our symbols: `BTC-USDT` as given, or `BTCUSDT` split before
/// its quote asset (one of [`QUOTES`]).
pub fn inst_id(symbol: &str) -> Result<String, FeedError> {
    let alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if let Some((base, quote)) = symbol.split_once('-') {
        if alnum(base) && alnum(quote) {
            return Ok(symbol.to_ascii_uppercase());
        }
        return Err(FeedError::Invalid(format!(
            "'{symbol}' is not an OKX instrument id like BTC-USDT"
        )));
    }
    let up = symbol.to_ascii_uppercase();
    let mut found = QUOTES
        .iter()
        .filter_map(|q| up.strip_suffix(q).map(|b| (b, *q)))
        .filter(|(b, _)| alnum(b));
    match (found.next(), found.next()) {
        (Some((base, quote)), None) => Ok(format!("{base}-{quote}")),
        _ => Err(FeedError::Invalid(format!(
            "cannot tell the quote asset of '{symbol}' for OKX (known: {}); pass it as BASE-QUOTE, e.g. BTC-USDT",
            QUOTES.join(", ")
        ))),
    }
}

/// A socket frame: a push `{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[[..]]}`,
/// an ack `{"event":"subscribe","arg":{..},"connId":".."}` or an error
/// `{"event":"error","code":"60012","msg":"..","connId":".."}`.
#[derive(Debug, Deserialize)]
pub struct WsFrame<'a> {
    /// `subscribe`, `unsubscribe`, `error`; absent on pushes.
    #[serde(borrow, default)]
    pub event: Option<&'a str>,
    /// The channel the frame is about.
    #[serde(borrow, default)]
    pub arg: Option<Arg<'a>>,
    /// Candle rows (pushes only).
    #[serde(borrow, default)]
    pub data: Option<Vec<Vec<&'a str>>>,
    /// Error code (errors only).
    #[serde(borrow, default)]
    pub code: Option<&'a str>,
    /// Error message (errors only; may hold escaped quotes, so not always borrowable).
    #[serde(borrow, default)]
    pub msg: Option<std::borrow::Cow<'a, str>>,
}

/// `{"channel":"candle1m","instId":"BTC-USDT"}`.
#[derive(Debug, Deserialize)]
pub struct Arg<'a> {
    /// `candle{bar}`.
    pub channel: &'a str,
    /// Instrument id (absent on some channels).
    #[serde(rename = "instId", default)]
    pub inst_id: Option<&'a str>,
}

/// A REST answer: `{"code":"0","msg":"","data":[..]}`; errors carry a non-zero `code`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    /// `"0"` on success.
    pub code: String,
    /// The error message.
    #[serde(default)]
    pub msg: String,
    /// The payload.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
}

/// One instrument of `/api/v5/public/instruments`.
#[derive(Debug, Deserialize)]
pub struct Instrument {
    /// `BTC-USDT`.
    #[serde(rename = "instId")]
    pub inst_id: String,
    /// `live`, `suspend`, `preopen`, `test`.
    #[serde(default)]
    pub state: String,
}

/// `/api/v5/public/time`: `{"ts":"1597026383085"}`.
#[derive(Debug, Deserialize)]
pub struct Time {
    /// Server time, ms, as a string.
    pub ts: String,
}

/// A candle row `[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]` (all strings; `confirm`
/// "0" while forming, "1" once closed) → the candle and whether it is closed.
pub fn row_to_candle<S: AsRef<str>>(
    row: &[S],
    interval: Interval,
) -> Result<(Candle, bool), ParseError> {
    if row.len() < 9 {
        return Err(ParseError::Shape(format!(
            "candle row has {} fields, expected 9",
            row.len()
        )));
    }
    let f = |i: usize| row[i].as_ref();
    let ts: i64 = f(0)
        .parse()
        .map_err(|_| ParseError::Shape(format!("field ts: '{}' is not a timestamp", f(0))))?;
    if interval.floor(ts) != ts {
        return Err(ParseError::Shape(format!(
            "candle ts {ts} is not on the {interval} grid"
        )));
    }
    let closed = match f(8) {
        "1" => true,
        "0" => false,
        other => {
            return Err(ParseError::Shape(format!(
                "field confirm: '{other}' is neither 0 nor 1"
            )));
        }
    };
    let candle = proto::candle(interval, ts, [f(1), f(2), f(3), f(4), f(5)])?;
    Ok((candle, closed))
}
