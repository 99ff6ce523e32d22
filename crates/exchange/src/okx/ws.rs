//! OKX v5 business socket: URL, `candle{bar}` subscriptions, the text `ping` heartbeat and
//! frame parsing.

use crate::feed::wire::{Control, Lookup, ParseError, WsKline};
use crate::feed::{FeedError, StreamKey};

use super::message::{WsFrame, interval_code, interval_from_code, row_to_candle};

/// The heartbeat: OKX cuts a connection quiet for 30 s; it answers the text `pong`.
pub const PING: &str = "ping";

/// Channels per subscribe request: OKX caps a request at 64 KB, which 100 args stay far below.
const ARGS_PER_REQUEST: usize = 100;

/// The socket URL under `base`: candles live on the business endpoint, not the public one.
pub fn url(base: &str) -> String {
    format!("{}/ws/v5/business", base.trim_end_matches('/'))
}

/// The channel, e.g. `candle1m`; errors for intervals OKX lacks.
pub fn channel(key: &StreamKey) -> Result<String, FeedError> {
    interval_code(key.interval)
        .map(|bar| format!("candle{bar}"))
        .ok_or_else(|| {
            FeedError::Invalid(format!(
                "OKX has no {} candles aligned to UTC",
                key.interval
            ))
        })
}

/// The lookup name of a pushed channel and instrument: `candle1m:BTC-USDT`.
pub fn stream_name(channel: &str, inst_id: &str) -> String {
    format!("{channel}:{inst_id}")
}

/// `{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"},..]}` frames.
pub fn subscribe_messages(streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
    let args = streams
        .iter()
        .map(|s| {
            Ok(serde_json::json!({
                "channel": channel(s)?,
                "instId": super::message::inst_id(&s.symbol)?,
            }))
        })
        .collect::<Result<Vec<_>, FeedError>>()?;
    Ok(args
        .chunks(ARGS_PER_REQUEST)
        .map(|chunk| serde_json::json!({"op": "subscribe", "args": chunk}).to_string())
        .collect())
}

/// Parses one frame; klines are appended to `out`.
pub(crate) fn parse_frame(
    text: &str,
    lookup: &Lookup,
    out: &mut Vec<WsKline>,
) -> Result<Control, ParseError> {
    if text == "pong" {
        return Ok(Control::Ignored);
    }
    let frame: WsFrame<'_> = serde_json::from_str(text).map_err(ParseError::json)?;
    match frame.event {
        Some("error") => {
            return Ok(Control::Error(format!(
                "{}: {}",
                frame.code.unwrap_or("?"),
                frame.msg.as_deref().unwrap_or("")
            )));
        }
        Some("subscribe") => return Ok(Control::Subscribed),
        Some(_) => return Ok(Control::Ignored),
        None => {}
    }
    let (Some(arg), Some(data)) = (frame.arg, frame.data) else {
        return Err(ParseError::Shape(
            "frame is neither a push nor an event".into(),
        ));
    };
    let Some(bar) = arg.channel.strip_prefix("candle") else {
        return Ok(Control::Ignored);
    };
    let inst = arg
        .inst_id
        .ok_or_else(|| ParseError::Shape("candle push without instId".into()))?;
    let interval = interval_from_code(bar)
        .ok_or_else(|| ParseError::Shape(format!("unknown candle channel {}", arg.channel)))?;
    let name = stream_name(arg.channel, inst);
    let idx = *lookup
        .get(&name)
        .ok_or(ParseError::Unsubscribed(name.clone()))?;
    if data.is_empty() {
        return Err(ParseError::Shape("candle push with empty 'data'".into()));
    }
    for row in &data {
        let (candle, closed) = row_to_candle(row, interval)?;
        out.push(WsKline {
            idx,
            candle,
            closed,
            // OKX pushes carry no event time.
            event_time: 0,
        });
    }
    Ok(Control::Klines)
}
