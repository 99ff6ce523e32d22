//! Binance kline streams: stream names and frame parsing (URLs and `SUBSCRIBE` batches are in
//! [`super::subscribe`]).

use crate::feed::StreamKey;
use crate::feed::wire::{Control, Lookup, ParseError, WsKline};

use super::message::{Kline, WsFrame};

/// The stream name, e.g. `btcusdt@kline_1m` (Binance wants the symbol lower-case).
pub fn stream_name(key: &StreamKey) -> String {
    format!("{}@kline_{}", key.symbol.to_ascii_lowercase(), key.interval)
}

/// The event a server about to go away sends (since 2026-05-08).
const SHUTDOWN: &str = "serverShutdown";

/// Parses a raw or combined frame; a kline is appended to `out`. A kline event takes the fast
/// path ([`super::fast`]); anything it does not vouch for is decoded by serde.
pub(crate) fn parse_frame(
    text: &str,
    lookup: &Lookup,
    out: &mut Vec<WsKline>,
) -> Result<Control, ParseError> {
    let Some(f) = super::fast::kline_frame(text) else {
        return parse_frame_serde(text, lookup, out);
    };
    let idx = match f.combined {
        Some(stream) => combined_index(stream, &f.kline, lookup)?,
        None => raw_index(&f.kline, lookup)?,
    };
    push(&f.kline, f.event_time, idx, out)?;
    Ok(Control::Klines)
}

/// [`parse_frame`] through serde alone.
pub(crate) fn parse_frame_serde(
    text: &str,
    lookup: &Lookup,
    out: &mut Vec<WsKline>,
) -> Result<Control, ParseError> {
    let frame: WsFrame<'_> = serde_json::from_str(text).map_err(ParseError::json)?;
    if let (Some(code), Some(msg)) = (frame.code, &frame.msg) {
        return Ok(Control::Error(format!("{code}: {msg}")));
    }
    if let Some(e) = &frame.error {
        return Ok(Control::Error(format!("{}: {}", e.code, e.msg)));
    }
    if let Some(data) = frame.data {
        return match (data.event, data.kline) {
            ("kline", Some(k)) => {
                let idx = match frame.stream {
                    Some(stream) => combined_index(stream, &k, lookup)?,
                    None => resolve(&k, lookup)?,
                };
                push(&k, data.event_time, idx, out)?;
                Ok(Control::Klines)
            }
            ("kline", None) => Err(ParseError::Shape("kline event without 'k'".into())),
            (SHUTDOWN, _) => Ok(Control::ServerShutdown),
            _ => Ok(Control::Ignored),
        };
    }
    match (frame.event, frame.kline) {
        (Some("kline"), Some(k)) => {
            let idx = raw_index(&k, lookup)?;
            push(&k, frame.event_time.unwrap_or(0), idx, out)?;
            Ok(Control::Klines)
        }
        (Some("kline"), None) => Err(ParseError::Shape("kline event without 'k'".into())),
        (Some(SHUTDOWN), _) => Ok(Control::ServerShutdown),
        (Some(_), _) => Ok(Control::Ignored),
        // `{"result":null,"id":1}`: a SUBSCRIBE (or other control request) succeeded.
        (None, _) if frame.id.is_some() => Ok(Control::Subscribed),
        (None, _) => Err(ParseError::Shape(
            "frame is neither a kline event nor a control answer".into(),
        )),
    }
}

/// A combined frame's stream: by its name, else by the kline's own symbol and interval.
fn combined_index(stream: &str, k: &Kline<'_>, lookup: &Lookup) -> Result<usize, ParseError> {
    match lookup.get(stream) {
        Some(&i) => Ok(i),
        None => resolve(k, lookup),
    }
}

/// A raw frame's stream: the connection's one stream, else by the kline's symbol and interval.
fn raw_index(k: &Kline<'_>, lookup: &Lookup) -> Result<usize, ParseError> {
    if lookup.len() == 1 {
        Ok(*lookup.values().next().unwrap_or(&0))
    } else {
        resolve(k, lookup)
    }
}

/// Finds the stream of a kline from its own symbol and interval (raw frames carry no name).
fn resolve(k: &Kline<'_>, lookup: &Lookup) -> Result<usize, ParseError> {
    let name = format!("{}@kline_{}", k.symbol.to_ascii_lowercase(), k.interval);
    lookup
        .get(&name)
        .copied()
        .ok_or(ParseError::Unsubscribed(name))
}

fn push(
    k: &Kline<'_>,
    event_time: i64,
    idx: usize,
    out: &mut Vec<WsKline>,
) -> Result<(), ParseError> {
    out.push(WsKline {
        idx,
        candle: k.to_candle()?,
        closed: k.closed,
        event_time,
    });
    Ok(())
}
