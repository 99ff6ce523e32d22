//! [`SignalRecord`]: the one JSON shape written per closed candle by `signals`, `live`,
//! `backtest`, the store and the web page.

use serde::{Deserialize, Serialize};

use std::cell::RefCell;

use crate::confluence::{Outcome, Votes};
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
    /// Each strategy's view (BUY, SELL, or HOLD for none), in selection order.
    pub signals: Signals,
    /// The combined decision.
    pub confluence: Action,
    /// Share of strategies whose view agrees with `confluence` (0 for HOLD).
    pub confidence: f64,
    /// Ids of the strategies whose view agrees with a BUY or SELL `confluence`.
    pub agreeing: Vec<String>,
    /// Ids of the strategies whose view began on this candle.
    #[serde(default)]
    pub events: Vec<String>,
    /// How many views are BUY, SELL and none.
    #[serde(default)]
    pub votes: Votes,
    /// True while some selected strategy is still warming up.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warming_up: bool,
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
    /// The exchange's clock when the record was made (live only, never written out): how old a
    /// resumed candle is, on the clock that made it.
    #[serde(skip)]
    pub exchange_time: Option<i64>,
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
        let mut r = SignalRecord {
            symbol: String::new(),
            interval,
            open_time: 0,
            close: 0.0,
            signals: Signals(Vec::with_capacity(engine.slots().len())),
            confluence: Action::Hold,
            confidence: 0.0,
            agreeing: Vec::new(),
            events: Vec::new(),
            votes: Votes::default(),
            warming_up: false,
            latency_us: None,
            backfilled: None,
            stale: None,
            exchange_time: None,
        };
        r.refill_from_engine(symbol, interval, candle, engine);
        r
    }

    /// Overwrites the record with what [`SignalRecord::from_engine`] would build, reusing its
    /// strings and vectors: a live stream's record costs no allocation once its ids are there.
    pub fn refill_from_engine(
        &mut self,
        symbol: &str,
        interval: Interval,
        candle: &Candle,
        engine: &SignalEngine,
    ) {
        let out = engine.last();
        let slots = engine.slots();
        set_str(&mut self.symbol, symbol);
        self.interval = interval;
        self.open_time = candle.open_time;
        self.close = candle.close;
        let signals = &mut self.signals.0;
        signals.truncate(slots.len());
        for (i, (s, d)) in slots.iter().zip(engine.decisions()).enumerate() {
            match signals.get_mut(i) {
                Some((id, action)) => {
                    set_str(id, s.id());
                    *action = d.action;
                }
                None => signals.push((s.id().to_string(), d.action)),
            }
        }
        self.confluence = out.action;
        self.confidence = out.confidence;
        set_ids(&mut self.agreeing, out.agreeing_indices(), slots);
        set_ids(&mut self.events, out.event_indices(), slots);
        self.votes = out.votes;
        self.warming_up = engine.warming_up();
        self.latency_us = None;
        self.backfilled = None;
        self.stale = None;
        self.exchange_time = None;
    }

    /// Appends the record as one JSON line (with `\n`) to `buf`.
    pub fn write_json_line(&self, buf: &mut Vec<u8>) {
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_writer(&mut *buf, self).expect("record serialises");
        buf.push(b'\n');
    }
}

/// Sets `dst` to the ids of `slots` at `indices`, reusing its strings.
fn set_ids(
    dst: &mut Vec<String>,
    indices: impl Iterator<Item = usize>,
    slots: &[crate::engine::Slot],
) {
    let mut n = 0;
    for s in indices.filter_map(|i| slots.get(i)) {
        match dst.get_mut(n) {
            Some(id) => set_str(id, s.id()),
            None => dst.push(s.id().to_string()),
        }
        n += 1;
    }
    dst.truncate(n);
}

/// Sets `dst` to `src`, keeping its allocation.
fn set_str(dst: &mut String, src: &str) {
    if dst != src {
        dst.clear();
        dst.push_str(src);
    }
}

/// Writes exactly the bytes of `SignalRecord::from_engine(..).write_json_line(..)` without
/// building the record (no per-candle allocation): the hot path of `signals` and backtests,
/// where records are written for every candle of a long history.
#[derive(Debug, Clone)]
pub struct RecordWriter {
    /// `{"symbol":..,"interval":..,"open_time":`
    head: Vec<u8>,
    /// Per strategy and action (BUY, SELL, HOLD): `"id":"ACTION"` (with a leading `,` after
    /// the first), so a strategy's entry is one copy.
    entries: Vec<[Vec<u8>; 3]>,
    /// Per strategy: `"id"`, for the `agreeing` list.
    ids: Vec<Vec<u8>>,
    /// The last record's tail, reused while the views and the outcome stay the same.
    tail: RefCell<Tail>,
}

/// What a record takes from the engine after one candle, besides the strategies' views: a
/// plain copy, so records can be written on another thread while the engine goes on
/// ([`RecordWriter::write_snapshot`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// The candle's open time.
    pub open_time: i64,
    /// The candle's close.
    pub close: f64,
    /// The engine's combined decision.
    pub outcome: Outcome,
    /// Whether some strategy was still warming up.
    pub warming_up: bool,
}

impl Snapshot {
    /// The snapshot of `candle`, just fed to `engine`.
    pub fn of(candle: &Candle, engine: &SignalEngine) -> Snapshot {
        Snapshot {
            open_time: candle.open_time,
            close: candle.close,
            outcome: engine.last(),
            warming_up: engine.warming_up(),
        }
    }
}

/// Everything of a record after its close (`,"signals":{..}..}` and the newline), which
/// depends only on the views, the outcome and the warm-up: on most candles of a history
/// nothing there changes, and the tail is one copy instead of ~30 pieces and three numbers.
#[derive(Debug, Clone, Default)]
struct Tail {
    actions: Vec<Action>,
    outcome: Option<Outcome>,
    warming_up: bool,
    bytes: Vec<u8>,
}

fn json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_writer(&mut *buf, v).expect("plain data serialises");
}

fn action_json(a: Action) -> &'static [u8] {
    match a {
        Action::Buy => b"\"BUY\"",
        Action::Sell => b"\"SELL\"",
        Action::Hold => b"\"HOLD\"",
    }
}

impl RecordWriter {
    /// A writer for records of `engine`'s strategies on one symbol and interval.
    pub fn new(symbol: &str, interval: Interval, engine: &SignalEngine) -> Self {
        let mut head = b"{\"symbol\":".to_vec();
        json(&mut head, symbol);
        head.extend_from_slice(b",\"interval\":");
        json(&mut head, &interval);
        head.extend_from_slice(b",\"open_time\":");
        let mut entries = Vec::new();
        let mut ids = Vec::new();
        for (i, s) in engine.slots().iter().enumerate() {
            let mut id = Vec::new();
            json(&mut id, s.id());
            let mut k = if i == 0 { Vec::new() } else { b",".to_vec() };
            k.extend_from_slice(&id);
            k.push(b':');
            entries.push([Action::Buy, Action::Sell, Action::Hold].map(|a| {
                let mut e = k.clone();
                e.extend_from_slice(action_json(a));
                e
            }));
            ids.push(id);
        }
        RecordWriter {
            head,
            entries,
            ids,
            tail: RefCell::default(),
        }
    }

    /// Appends the record of `candle`, just fed to `engine`, as one JSON line. Callers batch
    /// many records in `buf` before writing it out (one copy per record, not two).
    pub fn write(&self, candle: &Candle, engine: &SignalEngine, buf: &mut Vec<u8>) {
        let snap = Snapshot::of(candle, engine);
        let actions = engine.decisions().iter().map(|d| d.action);
        self.write_parts(&snap, actions, buf);
    }

    /// Appends the record `snap` and `actions` (its strategies' views, in order) describe,
    /// as [`RecordWriter::write`] would have when they were taken: the same bytes, written
    /// on another thread than the engine's.
    pub fn write_snapshot(&self, snap: &Snapshot, actions: &[Action], buf: &mut Vec<u8>) {
        self.write_parts(snap, actions.iter().copied(), buf);
    }

    fn write_parts(
        &self,
        snap: &Snapshot,
        actions: impl Iterator<Item = Action> + Clone,
        buf: &mut Vec<u8>,
    ) {
        buf.extend_from_slice(&self.head);
        json(buf, &snap.open_time);
        buf.extend_from_slice(b",\"close\":");
        json(buf, &snap.close);
        let mut tail = self.tail.borrow_mut();
        let same = tail.outcome == Some(snap.outcome)
            && tail.warming_up == snap.warming_up
            && tail.actions.iter().copied().eq(actions.clone());
        if !same {
            tail.actions.clear();
            tail.actions.extend(actions.clone());
            tail.outcome = Some(snap.outcome);
            tail.warming_up = snap.warming_up;
            tail.bytes.clear();
            self.write_tail(snap, actions, &mut tail.bytes);
        }
        buf.extend_from_slice(&tail.bytes);
    }

    /// The record's bytes after the close, through its newline.
    fn write_tail(
        &self,
        snap: &Snapshot,
        actions: impl Iterator<Item = Action>,
        buf: &mut Vec<u8>,
    ) {
        let out = &snap.outcome;
        buf.extend_from_slice(b",\"signals\":{");
        for (e, action) in self.entries.iter().zip(actions) {
            let a = match action {
                Action::Buy => 0,
                Action::Sell => 1,
                Action::Hold => 2,
            };
            buf.extend_from_slice(&e[a]);
        }
        buf.extend_from_slice(b"},\"confluence\":");
        buf.extend_from_slice(action_json(out.action));
        buf.extend_from_slice(b",\"confidence\":");
        json(buf, &out.confidence);
        buf.extend_from_slice(b",\"agreeing\":[");
        self.write_ids(out.agreeing, buf);
        buf.extend_from_slice(b"],\"events\":[");
        self.write_ids(out.events, buf);
        buf.extend_from_slice(b"],\"votes\":{\"buy\":");
        json(buf, &out.votes.buy);
        buf.extend_from_slice(b",\"sell\":");
        json(buf, &out.votes.sell);
        buf.extend_from_slice(b",\"none\":");
        json(buf, &out.votes.none);
        buf.push(b'}');
        if snap.warming_up {
            buf.extend_from_slice(b",\"warming_up\":true");
        }
        buf.extend_from_slice(b"}\n");
    }

    /// The ids of the strategies whose bit is set in `mask`, ascending, up to the first bit
    /// past the last strategy (as `Outcome::agreeing_indices` lists them).
    fn write_ids(&self, mut mask: u64, buf: &mut Vec<u8>) {
        let mut first = true;
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            let Some(id) = self.ids.get(i) else { break };
            if !first {
                buf.push(b',');
            }
            first = false;
            buf.extend_from_slice(id);
            mask &= mask - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::{Mode, Rule};

    #[test]
    fn refilling_a_record_equals_building_it_anew() {
        let all = crate::strategy::IDS;
        let mut big = SignalEngine::from_ids(&all, Rule::new(Mode::Any, all.len())).unwrap();
        let mut small =
            SignalEngine::from_ids(&["macd", "ema_crossover"], Rule::new(Mode::Any, 2)).unwrap();
        let candles: Vec<Candle> = (0..300)
            .map(|i| {
                let p = 100.0 + (i as f64 * 0.3).sin() * 5.0 + i as f64 * 0.05;
                Candle {
                    open_time: i * 60_000,
                    close_time: i * 60_000 + 59_999,
                    open: p - 0.2,
                    high: p + 1.0,
                    low: p - 1.0,
                    close: p,
                    volume: 10.0,
                }
            })
            .collect();
        // One record refilled from engines of different sizes, symbols and outcomes.
        let mut r = SignalRecord::from_engine("ETHUSDT", Interval::H1, &candles[0], &small);
        r.latency_us = Some(5);
        let mut agreeing_seen = std::collections::BTreeSet::new();
        for (i, c) in candles.iter().enumerate() {
            big.on_closed(c);
            small.on_closed(c);
            let (e, sym) = if i % 3 == 0 {
                (&small, "ETHUSDT")
            } else {
                (&big, "BTCUSDT")
            };
            r.refill_from_engine(sym, Interval::M5, c, e);
            assert_eq!(
                r,
                SignalRecord::from_engine(sym, Interval::M5, c, e),
                "candle {i}"
            );
            agreeing_seen.insert(r.agreeing.len());
        }
        assert!(agreeing_seen.len() > 1, "the agreeing list grew and shrank");
    }

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
        assert_eq!(
            line,
            "{\"symbol\":\"BTCUSDT\",\"interval\":\"1m\",\"open_time\":60000,\"close\":1.5,\"signals\":{\"macd\":\"HOLD\",\"rsi_mean_reversion\":\"HOLD\"},\"confluence\":\"HOLD\",\"confidence\":0.0,\"agreeing\":[],\"events\":[],\"votes\":{\"buy\":0,\"sell\":0,\"none\":2},\"warming_up\":true}\n"
        );
        let back: SignalRecord = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn writer_bytes_equal_the_record_path_on_the_sample_file() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../data/btcusdt_5m_sample.csv"
        );
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let candles = crate::csv::load(file, None).unwrap();
        for mode in [Mode::All, Mode::Any, Mode::Majority, Mode::Weighted] {
            let ids = crate::strategy::IDS;
            let mut e = SignalEngine::from_ids(&ids, Rule::new(mode, ids.len())).unwrap();
            let w = RecordWriter::new("ETHUSDT", Interval::M5, &e);
            // The same writer from snapshots (as `signals` writes on its own thread).
            let snapped = w.clone();
            let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
            let mut fired = 0;
            for c in &candles {
                let out = e.on_closed(c);
                fired += usize::from(out.action != Action::Hold);
                SignalRecord::from_engine("ETHUSDT", Interval::M5, c, &e).write_json_line(&mut a);
                w.write(c, &e, &mut b);
                let actions: Vec<Action> = e.decisions().iter().map(|d| d.action).collect();
                snapped.write_snapshot(&Snapshot::of(c, &e), &actions, &mut d);
            }
            assert_eq!(
                String::from_utf8(a).unwrap(),
                String::from_utf8(b.clone()).unwrap()
            );
            assert_eq!(b, d);
            if mode == Mode::Any {
                assert!(
                    fired > 0,
                    "ANY never fired: the comparison would be vacuous"
                );
            }
        }
    }
}
