//! Bybit v5 public spot socket: URL, `kline.{interval}.{symbol}` subscriptions (10 topics per
//! request), the `{"op":"ping"}` heartbeat and frame parsing.

use crate::feed::wire::{Control, Lookup, ParseError, WsKline as Parsed};
use crate::feed::{FeedError, StreamKey};

use super::message::{WsFrame, interval_code};

/// The application heartbeat; Bybit cuts connections that stay quiet.
pub const PING: &str = r#"{"op":"ping"}"#;

/// Topics per subscribe request (Bybit's limit).
const TOPICS_PER_REQUEST: usize = 10;

/// The socket URL under `base`.
pub fn url(base: &str) -> String {
    format!("{}/v5/public/spot", base.trim_end_matches('/'))
}

/// The topic, e.g. `kline.5.BTCUSDT`; errors for intervals Bybit lacks.
pub fn topic(key: &StreamKey) -> Result<String, FeedError> {
    let code = interval_code(key.interval)
        .ok_or_else(|| FeedError::Invalid(format!("Bybit has no {} klines", key.interval)))?;
    Ok(format!("kline.{code}.{}", key.symbol))
}

/// `{"req_id":"1","op":"subscribe","args":[..]}` frames covering every stream.
pub fn subscribe_messages(streams: &[StreamKey]) -> Result<Vec<String>, FeedError> {
    let topics = streams.iter().map(topic).collect::<Result<Vec<_>, _>>()?;
    Ok(topics
        .chunks(TOPICS_PER_REQUEST)
        .enumerate()
        .map(|(i, chunk)| {
            serde_json::json!({"req_id": (i + 1).to_string(), "op": "subscribe", "args": chunk})
                .to_string()
        })
        .collect())
}

/// Parses one frame; klines are appended to `out`.
pub(crate) fn parse_frame(
    text: &str,
    lookup: &Lookup,
    out: &mut Vec<Parsed>,
) -> Result<Control, ParseError> {
    let frame: WsFrame<'_> = serde_json::from_str(text).map_err(ParseError::json)?;
    if let Some(topic) = frame.topic {
        if !topic.starts_with("kline.") {
            return Ok(Control::Ignored);
        }
        let idx = *lookup
            .get(topic)
            .ok_or_else(|| ParseError::Unsubscribed(topic.to_string()))?;
        let data = frame
            .data
            .ok_or_else(|| ParseError::Shape("kline push without 'data'".into()))?;
        if data.is_empty() {
            return Err(ParseError::Shape("kline push with empty 'data'".into()));
        }
        for k in &data {
            out.push(Parsed {
                idx,
                candle: k.to_candle()?,
                closed: k.confirm,
                event_time: k.timestamp.or(frame.ts).unwrap_or(0),
            });
        }
        return Ok(Control::Klines);
    }
    match (frame.op, frame.success) {
        (Some(op), Some(false)) => Ok(Control::Error(format!(
            "{op} failed: {}",
            frame.ret_msg.unwrap_or_default()
        ))),
        (Some("subscribe"), _) => Ok(Control::Subscribed),
        (Some(_), _) => Ok(Control::Ignored),
        (None, _) => Err(ParseError::Shape(
            "frame is neither a push nor an op answer".into(),
        )),
    }
}
