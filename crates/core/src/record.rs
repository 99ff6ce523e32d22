//! [`SignalRecord`]: the one JSON shape written per closed candle by `signals`, `live`,
//! `backtest`, the store and the web page.

use serde::{Deserialize, Serialize};

use crate::engine::SignalEngine;
use crate::model::{Action, Candle, Interval};

/// One closed candle's signals. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// Market symbol, e.g. `BTCUSDT`.
    pub symbol: String,
    /// Kline interval.
    pub interval: Interval,
    /// The candle's open time, ms UTC.
    pub open_time: i64,
    /// The candle's close.
    pub close: f64,
    /// Each strategy's action, in selection order.
    pub signals: Signals,
    /// The combined action.
    pub confluence: Action,
    /// Share of strategies agreeing with `confluence`.
    pub confidence: f64,
    /// Ids of the strategies agreeing with `confluence`.
    pub agreeing: Vec<String>,
    /// Frame-read to record-ready latency, µs (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// True when the candle came from a REST backfill rather than the stream (live only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled: Option<bool>,
    /// True when the stream is stale (live only; no record is emitted while stale, so this marks
    /// the first record after staleness ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<bool>,
}

/// Strategy id → action, kept in selection order and serialised as a JSON object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signals(pub Vec<(String, Action)>);

impl Serialize for Signals {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Signals {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signals;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of strategy id to BUY/SELL/HOLD")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Signals, A::Error> {
                let mut v = Vec::new();
                while let Some((k, act)) = a.next_entry::<String, Action>()? {
                    v.push((k, act));
                }
                Ok(Signals(v))
            }
        }
        d.deserialize_map(V)
    }
}

impl SignalRecord {
    /// The record for `candle`, just fed to `engine` with [`SignalEngine::on_closed`].
    pub fn from_engine(
        symbol: &str,
        interval: Interval,
        candle: &Candle,
        engine: &SignalEngine,
    ) -> Self {
        let out = engine.last();
        let slots = engine.slots();
        SignalRecord {
            symbol: symbol.to_string(),
            interval,
            open_time: candle.open_time,
            close: candle.close,
            signals: Signals(
                slots
                    .iter()
                    .map(|s| (s.id().to_string(), s.last.action))
                    .collect(),
            ),
            confluence: out.action,
            confidence: out.confidence,
            agreeing: out
                .agreeing_indices()
                .filter_map(|i| slots.get(i))
                .map(|s| s.id().to_string())
                .collect(),
            latency_us: None,
            backfilled: None,
            stale: None,
        }
    }

    /// Appends the record as one JSON line (with `\n`) to `buf`.
    pub fn write_json_line(&self, buf: &mut Vec<u8>) {
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_writer(&mut *buf, self).expect("record serialises");
        buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::{Mode, Rule};

    #[test]
    fn record_has_the_documented_shape_and_round_trips() {
        let mut e =
            SignalEngine::from_ids(&["macd", "rsi_mean_reversion"], Rule::new(Mode::All, 2))
                .unwrap();
        let c = Candle {
            open_time: 60_000,
            close_time: 119_999,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 3.0,
        };
        e.on_closed(&c);
        let r = SignalRecord::from_engine("BTCUSDT", Interval::M1, &c, &e);
        let mut buf = Vec::new();
        r.write_json_line(&mut buf);
        let line = String::from_utf8(buf).unwrap();
        assert!(line.ends_with('\n'));
        assert!(line.starts_with(r#"{"symbol":"BTCUSDT","interval":"1m","open_time":60000,"close":1.5,"signals":{"macd":"HOLD","rsi_mean_reversion":"HOLD"},"confluence":"HOLD","confidence":1.0,"agreeing":["macd","rsi_mean_reversion"]}"#), "{line}");
        let back: SignalRecord = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(back, r);
    }
}
