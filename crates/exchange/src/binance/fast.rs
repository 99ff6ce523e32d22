//! A fast path for the one frame on the latency path: a Binance kline event, raw
//! (`{"e":"kline","E":..,"k":{..}}`) or combined (`{"stream":"..","data":{..}}`).
//!
//! serde_json's derived decoding of [`super::message::WsFrame`] spent ~8,700 instructions on a
//! 420-byte kline frame (callgrind, `manus demo`): every key matched against every field of
//! three structs, every ignored value decoded. This scanner reads the same bytes once, checking
//! them as strictly, and picks the fields it needs (~5,400 instructions; the whole frame, candle
//! included, 10,500 → 7,300). It accepts only what serde would accept with the
//! same result, and answers `None` for anything else — control answers, errors, escaped
//! strings, `null`s, duplicate keys, numbers that are not plain integers, a kline event
//! missing a field — so [`super::ws::parse_frame`] then decodes the frame with serde as before,
//! errors and all. `tests::agrees_with_serde` holds it to that on the documentation's frames
//! and on random corruptions of them.

use super::message::Kline;

/// A kline event as the fast path read it.
pub(super) struct KlineFrame<'a> {
    /// The combined stream's name; `None` for a raw frame.
    pub combined: Option<&'a str>,
    /// The event time (`E`; 0 when a raw frame has none, as serde's `unwrap_or(0)`).
    pub event_time: i64,
    /// The `k` object.
    pub kline: Kline<'a>,
}

/// Deeper nesting inside ignored values is left to serde (its own limit is 128).
const MAX_DEPTH: u32 = 16;

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// The `k` object's fields as they are read; all are required.
#[derive(Default)]
struct KlineParts<'a> {
    open_time: Option<i64>,
    symbol: Option<&'a str>,
    interval: Option<&'a str>,
    open: Option<&'a str>,
    close: Option<&'a str>,
    high: Option<&'a str>,
    low: Option<&'a str>,
    volume: Option<&'a str>,
    closed: Option<bool>,
}

impl<'a> KlineParts<'a> {
    fn finish(self) -> Option<Kline<'a>> {
        Some(Kline {
            open_time: self.open_time?,
            symbol: self.symbol?,
            interval: self.interval?,
            open: self.open?,
            close: self.close?,
            high: self.high?,
            low: self.low?,
            volume: self.volume?,
            closed: self.closed?,
        })
    }
}

/// Sets `slot` once; a second value for the same key is serde's "duplicate field" error.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// The kline event in `text`, or `None` when the frame is anything else or anything unusual.
pub(super) fn kline_frame(text: &str) -> Option<KlineFrame<'_>> {
    let mut s = Scan {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut stream = None;
    let mut data: Option<(&str, i64, Option<Kline<'_>>)> = None;
    let mut event = None;
    let mut event_time = None;
    let mut kline = None;
    s.ws();
    s.eat(b'{')?;
    s.members(|s, key| {
        match key {
            b"stream" => once(&mut stream, s.string()?),
            b"data" => {
                let d = s.event()?;
                once(&mut data, d)
            }
            b"e" => once(&mut event, s.string()?),
            b"E" => once(&mut event_time, s.int()?),
            b"k" => {
                let k = s.kline()?;
                once(&mut kline, k)
            }
            // Control answers and errors, and whatever else: serde's.
            b"id" | b"code" | b"msg" | b"error" => None,
            _ => s.skip(0),
        }
    })?;
    s.ws();
    if s.i != s.b.len() {
        return None;
    }
    // serde reads `data` first when it is there, whatever else the frame holds.
    match data {
        Some(("kline", event_time, Some(kline))) => Some(KlineFrame {
            combined: Some(stream?),
            event_time,
            kline,
        }),
        Some(_) => None,
        None => match (event, kline) {
            (Some("kline"), Some(kline)) => Some(KlineFrame {
                combined: None,
                event_time: event_time.unwrap_or(0),
                kline,
            }),
            _ => None,
        },
    }
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// The members of an object whose `{` was read, each value read by `member`.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.ws();
            let key = self.raw_string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, key)?;
            if self.closes(b'}')? {
                return Some(());
            }
        }
    }

    /// After an item of an object or array: past a `,` (false: more follow) or the closing
    /// `close` (true); anything else is not JSON this scanner vouches for.
    #[inline]
    fn closes(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = *self.b.get(self.i)?;
        if b != b',' && b != close {
            return None;
        }
        self.i += 1;
        Some(b == close)
    }

    /// A string without escapes or control characters (serde would not lend an escaped one).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i + 1;
        let raw = self.raw_string()?;
        // Both ends are ASCII quotes, so these are char boundaries.
        self.text.get(start..start + raw.len())
    }

    /// [`Self::string`]'s bytes.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let n = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i += n + 1;
        Some(&rest[..n])
    }

    /// A JSON integer that fits an `i64` (no fraction or exponent: serde refuses those for
    /// an `i64` field).
    fn int(&mut self) -> Option<i64> {
        let neg = self.eat(b'-').is_some();
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(&d @ b'0'..=b'9') = self.b.get(self.i) {
            let d = i64::from(d - b'0');
            v = v.checked_mul(10)?;
            v = if neg {
                v.checked_sub(d)?
            } else {
                v.checked_add(d)?
            };
            self.i += 1;
        }
        let digits = self.i - start;
        // serde_json refuses leading zeros, and reads `-0` as a float.
        if digits == 0 || (digits > 1 && self.b[start] == b'0') || (neg && v == 0) {
            return None;
        }
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    fn bool(&mut self) -> Option<bool> {
        match self.b.get(self.i)? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// Skips any JSON value (checked as strictly as serde checks an ignored one).
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.b.get(self.i)? {
            b'"' => self.raw_string().map(drop),
            b'{' => {
                self.i += 1;
                self.members(|s, _| s.skip(depth + 1))
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip(depth + 1)?;
                    if self.closes(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Skips a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        self.eat(b'-');
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.').is_some() {
            self.b.get(self.i).filter(|d| d.is_ascii_digit())?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            self.b.get(self.i).filter(|d| d.is_ascii_digit())?;
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    /// A combined frame's `data`: (`e`, `E`, `k`); `e` and `E` are required, as in
    /// [`super::message::Event`].
    fn event(&mut self) -> Option<(&'a str, i64, Option<Kline<'a>>)> {
        self.eat(b'{')?;
        let mut event = None;
        let mut event_time = None;
        let mut kline = None;
        self.members(|s, key| match key {
            b"e" => once(&mut event, s.string()?),
            b"E" => once(&mut event_time, s.int()?),
            b"k" => {
                let k = s.kline()?;
                once(&mut kline, k)
            }
            _ => s.skip(1),
        })?;
        Some((event?, event_time?, kline))
    }

    /// The `k` object.
    fn kline(&mut self) -> Option<Kline<'a>> {
        self.eat(b'{')?;
        let mut k = KlineParts::default();
        self.members(|s, key| match key {
            b"t" => once(&mut k.open_time, s.int()?),
            b"s" => once(&mut k.symbol, s.string()?),
            b"i" => once(&mut k.interval, s.string()?),
            b"o" => once(&mut k.open, s.string()?),
            b"c" => once(&mut k.close, s.string()?),
            b"h" => once(&mut k.high, s.string()?),
            b"l" => once(&mut k.low, s.string()?),
            b"v" => once(&mut k.volume, s.string()?),
            b"x" => once(&mut k.closed, s.bool()?),
            _ => s.skip(2),
        })?;
        k.finish()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::ws::{parse_frame, parse_frame_serde};
    use super::kline_frame;
    use crate::feed::wire::Lookup;

    fn load(name: &str) -> String {
        let path = format!("{}/test_data/binance/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every frame of the documentation, the simulator's, and edge cases around what the fast
    /// path accepts.
    fn corpus() -> Vec<String> {
        let mut v: Vec<String> = [
            "ws_kline_combined.json",
            "ws_kline_doc.json",
            "ws_kline_raw.json",
            "ws_server_shutdown_combined.json",
            "ws_server_shutdown_raw.json",
            "ws_subscribe_ack.json",
            "ws_error_invalid_json.json",
            "ws_error_request_id.json",
        ]
        .iter()
        .map(|f| load(f).trim_end().to_string())
        .collect();
        // As the simulated exchange renders them (`sim/binance.rs`, `kline_event`).
        for closed in [false, true] {
            let raw = format!(
                concat!(
                    r#"{{"e":"kline","E":1672515782136,"s":"BTCUSDT","k":{{"t":1672515780000,"#,
                    r#""T":1672515839999,"s":"BTCUSDT","i":"1m","f":16725157800,"L":16725158150,"#,
                    r#""o":"30000.50000000","c":"30005.75000000","h":"30010.25000000","#,
                    r#""l":"29990.00000000","v":"12.34500000","n":351,"x":{},"#,
                    r#""q":"370444.46812500","V":"5.87224713","Q":"176204.36012917","B":"0"}}}}"#
                ),
                closed
            );
            v.push(format!(r#"{{"stream":"btcusdt@kline_1m","data":{raw}}}"#));
            v.push(raw);
        }
        let k = r#"{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":true}"#;
        for edge in [
            format!(r#"{{"e":"kline","E":-0,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":-1,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":01,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":1.0,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":1e3,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":9223372036854775807,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":9223372036854775808,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":-9223372036854775808,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":null,"k":{k}}}"#),
            format!(r#"{{"e":"kline","k":{k}}}"#),
            format!(r#"{{"e":"kline","E":1,"E":2,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"k":{k}}}"#),
            format!(r#"{{"e":"kl\u0069ne","E":1,"k":{k}}}"#),
            format!(r#"{{"\u0065":"kline","E":1,"k":{k}}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":"a\"b"}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":[1,-2.5e-3,{{"a":[]}},null,true,false,"x"]}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":[1,]}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":1.}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":.5}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":+1}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":-01}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":1e+9999}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"z":tru}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"id":1}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k},"result":null}}"#),
            format!(r#"{{"e":"kline","E":1,"k":{k}}} "#),
            format!(r#"{{"e":"kline","E":1,"k":{k}}}x"#),
            format!(r#"{{"e":"kline","E":1,"k":{k}}}{{}}"#),
            format!(" \n\t{{ \"e\" : \"kline\" ,\r\"E\" :1 , \"k\" :{k} }} \n"),
            format!(r#"{{"e":"other","E":1,"k":{k}}}"#),
            format!(r#"{{"stream":"bnbbtc@kline_1m","data":{{"e":"kline","E":5,"k":{k}}},"e":"x"}}"#),
            format!(r#"{{"stream":"nope@kline_1m","data":{{"e":"kline","E":5,"k":{k}}}}}"#),
            format!(r#"{{"stream":null,"data":{{"e":"kline","E":5,"k":{k}}}}}"#),
            format!(r#"{{"data":{{"e":"kline","E":5,"k":{k}}}}}"#),
            format!(r#"{{"stream":"bnbbtc@kline_1m","data":{{"e":"kline","k":{k}}}}}"#),
            r#"{"stream":"bnbbtc@kline_1m","data":{"e":"kline","E":5}}"#.to_string(),
            format!(r#"{{"stream":"bnbbtc@kline_1m","data":{{"E":5,"k":{k}}}}}"#),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9"}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":1}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":true,"t":1}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"7m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":true}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"1","c":"2","h":"0.1","l":"0.5","v":"9","x":true}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":1672515780000,"s":"BNBBTC","i":"1m","o":"x","c":"2","h":"3","l":"0.5","v":"9","x":true}}"#.into(),
            r#"{"e":"kline","E":1,"k":{"t":"1","s":"BNBBTC","i":"1m","o":"1","c":"2","h":"3","l":"0.5","v":"9","x":true}}"#.into(),
        ] {
            v.push(edge);
        }
        v
    }

    fn lookups() -> [Lookup; 2] {
        let one: Lookup = [("bnbbtc@kline_1m".to_string(), 0)].into_iter().collect();
        let two: Lookup = [
            ("btcusdt@kline_1m".to_string(), 0),
            ("bnbbtc@kline_1m".to_string(), 1),
        ]
        .into_iter()
        .collect();
        [one, two]
    }

    /// The fast path and serde alone give the same answer: the same control, the same error,
    /// the same klines.
    fn same(text: &str) {
        for lookup in lookups() {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let fast = parse_frame(text, &lookup, &mut a);
            let slow = parse_frame_serde(text, &lookup, &mut b);
            assert_eq!(fast, slow, "{text}");
            assert_eq!(a, b, "{text}");
        }
    }

    #[test]
    fn agrees_with_serde() {
        for text in corpus() {
            same(&text);
        }
    }

    #[test]
    fn kline_events_take_the_fast_path() {
        let frames = corpus();
        let fast = frames.iter().filter(|t| kline_frame(t).is_some()).count();
        // The documentation's three kline frames, the simulator's four, and the edge cases
        // that are plain kline events (whitespace, ignored members, `E` at its limits...).
        assert!(fast >= 7 + 8, "only {fast} frames took the fast path");
        for name in [
            "ws_kline_combined.json",
            "ws_kline_doc.json",
            "ws_kline_raw.json",
        ] {
            assert!(kline_frame(load(name).trim_end()).is_some(), "{name}");
        }
        for name in ["ws_subscribe_ack.json", "ws_server_shutdown_raw.json"] {
            assert!(kline_frame(load(name).trim_end()).is_none(), "{name}");
        }
    }

    /// An ASCII edit at a byte position: replace, insert or delete.
    fn edit(text: &str, op: u8, at: usize, ch: u8) -> String {
        let mut b = text.as_bytes().to_vec();
        let at = at % (b.len() + 1);
        const PICK: &[u8] = b"{}[]\":,0123456789-+.eEtrufalsn \\xkcE";
        let ch = PICK[usize::from(ch) % PICK.len()];
        match op % 3 {
            0 if at < b.len() => b[at] = ch,
            1 => b.insert(at, ch),
            _ if at < b.len() => {
                b.remove(at);
            }
            _ => b.push(ch),
        }
        String::from_utf8(b).expect("ASCII edits of ASCII frames")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn agrees_with_serde_on_corrupted_frames(
            which in any::<usize>(),
            edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4),
        ) {
            let frames = corpus();
            let mut text = frames[which % frames.len()].clone();
            for (op, at, ch) in edits {
                text = edit(&text, op, at, ch);
            }
            same(&text);
        }
    }
}
