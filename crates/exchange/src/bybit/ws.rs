//! Bybit v5 public spot socket: URL, `kline.{interval}.{symbol}` subscriptions (10 topics per
//! request), the `{"op":"ping"}` heartbeat and frame parsing.

use crate::feed::wire::{Control, Lookup, ParseError, WsKline as Parsed};
use crate::feed::{FeedError, StreamKey};

use super::message::{WsFrame, interval_code};

/// The application heartbeat; Bybit cuts connections that stay quiet.
pub const PING: &str = r#"{"op":"ping"}"#;

/// Topics per subscribe request (Bybit's limit).
const TOPICS_PER_REQUEST: usize = 10;

/// The public socket path this adapter serves (the spot category).
const SPOT_PATH: &str = "/v5/public/spot";

/// The socket URL under `base`; a base that already names the spot path is taken as is.
pub fn url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix(SPOT_PATH).unwrap_or(base);
    format!("{base}{SPOT_PATH}")
}

/// Accepts a host (`wss://stream.bybit.com`) or the spot socket URL; refuses another
/// category's socket (`/v5/public/linear`, `inverse`, `option`): its topics are other
/// instruments (USDT perpetuals for `linear`) under the same names, and this feed's REST
/// history and symbol checks are spot's, so mixing them would be wrong without an error.
pub fn check_base(base: &str) -> Result<(), FeedError> {
    let base = base.trim_end_matches('/');
    match base.split_once("/v5/public/") {
        None => Ok(()),
        Some((_, "spot")) => Ok(()),
        Some((_, category)) => Err(FeedError::Invalid(format!(
            "--ws-url {base} is Bybit's '{category}' socket; this feed serves Bybit spot only \
             (category=spot over REST too): give the host, e.g. wss://stream.bybit.com, or \
             .../v5/public/spot"
        ))),
    }
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
                // The push time `ts` is the event time; `data[].timestamp` is the candle's
                // last trade, which can be long before on a quiet market.
                event_time: frame.ts.or(k.timestamp).unwrap_or(0),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spot_bases_are_accepted_and_other_categories_refused() {
        struct Case {
            base: &'static str,
            url: Option<&'static str>,
        }
        let cases = [
            Case {
                base: "wss://stream.bybit.com",
                url: Some("wss://stream.bybit.com/v5/public/spot"),
            },
            Case {
                base: "wss://stream.bybit.com/v5/public/spot/",
                url: Some("wss://stream.bybit.com/v5/public/spot"),
            },
            Case {
                base: "wss://stream.bybit.com/v5/public/linear",
                url: None,
            },
            Case {
                base: "ws://127.0.0.1:9000/v5/public/inverse",
                url: None,
            },
        ];
        for c in cases {
            match (check_base(c.base), c.url) {
                (Ok(()), Some(expected)) => assert_eq!(url(c.base), expected),
                (Err(e), None) => {
                    assert!(e.to_string().contains("spot only"), "{e}");
                    assert!(matches!(e, FeedError::Invalid(_)));
                }
                (got, _) => panic!("{}: {got:?}", c.base),
            }
        }
    }
}
