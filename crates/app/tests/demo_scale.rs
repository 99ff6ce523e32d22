//! The demo at hundreds of streams: every stream yields records, gapless, at today's times,
//! within a bounded run (the 1,000-stream figures are measured by hand: RELIABILITY.md).

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use manus_core::record::SignalRecord;

#[test]
fn three_hundred_streams_all_yield_gapless_records_at_todays_times() {
    let symbols = 300;
    let live = 3 * symbols;
    let mut child = Command::new(env!("CARGO_BIN_EXE_manus"))
        .env("RUST_LOG", "warn")
        .args([
            "demo",
            "--headless",
            "--drop-every",
            "0",
            "--candle-ms",
            "250",
        ])
        .args(["--symbols", &symbols.to_string()])
        .args(["--max-candles", &live.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("manus runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    // A bound, not a pace: the run ends by itself after `live` live candles.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not finish {live} live candles over {symbols} streams in 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(status.success(), "exit {status:?}: {stderr}");
    let out = reader.join().expect("reader").expect("stdout");
    let mut by_symbol: BTreeMap<String, Vec<SignalRecord>> = BTreeMap::new();
    for line in out.lines() {
        let r: SignalRecord = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        by_symbol.entry(r.symbol.clone()).or_default().push(r);
    }
    assert_eq!(by_symbol.len(), symbols, "every stream yields records");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let live_seen = by_symbol
        .values()
        .flatten()
        .filter(|r| r.backfilled == Some(false))
        .count();
    assert!(live_seen >= live, "{live_seen} live records, wanted {live}");
    for (sym, recs) in &by_symbol {
        for w in recs.windows(2) {
            assert_eq!(
                w[1].open_time,
                w[0].open_time + 60_000,
                "{sym}: not contiguous"
            );
        }
        // The market starts now: no 1970 timestamps, nothing more than a few days out.
        let first = recs[0].open_time;
        assert!(
            (now - 86_400_000..now + 7 * 86_400_000).contains(&first),
            "{sym}: open time {first} is not around now ({now})"
        );
    }
}
