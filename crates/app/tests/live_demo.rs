//! End-to-end: the real `manus` binary runs `demo` (simulated exchange + live pipeline over
//! loopback sockets) and `live`'s pre-run validation.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use manus_core::record::SignalRecord;

fn manus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_manus"));
    c.env("RUST_LOG", "warn");
    c
}

#[test]
fn demo_headless_emits_gapless_records_and_backfills_after_drops() {
    let out = manus()
        .args([
            "demo",
            "--headless",
            "--max-candles",
            "30",
            "--candle-ms",
            "100",
            "--drop-every",
            "3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let recs: Vec<SignalRecord> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let live = recs.iter().filter(|r| r.backfilled == Some(false)).count();
    assert_eq!(live, 30, "--max-candles counts live candles");
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &recs {
        assert!(["BTCUSDT", "ETHUSDT", "SOLUSDT"].contains(&r.symbol.as_str()));
        assert_eq!(r.interval.as_str(), "1m");
        let default = manus_core::strategy::parse_selection(
            manus_core::strategy::registry::DEFAULT_SELECTION,
        )
        .unwrap();
        let ids: Vec<&str> = r.signals.0.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, default, "the default selection, as everywhere");
        assert!(r.latency_us.is_some() && r.backfilled.is_some(), "{r:?}");
        assert!((0.0..=1.0).contains(&r.confidence));
        if let Some(prev) = last.insert(r.symbol.clone(), r.open_time) {
            assert_eq!(r.open_time, prev + 60_000, "gapless and increasing: {r:?}");
        }
    }
    assert_eq!(last.len(), 3);
    assert!(
        recs.iter().any(|r| r.backfilled == Some(true)),
        "a drop every 3 candles must cause backfills; stderr: {stderr}"
    );
}

#[test]
fn sigterm_stops_the_demo_gracefully_within_a_second() {
    let mut child = manus()
        .args([
            "demo",
            "--headless",
            "--candle-ms",
            "50",
            "--drop-every",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    serde_json::from_str::<SignalRecord>(first.trim()).expect("a record before the signal");
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Read to the end: every line written must be whole (outputs flushed).
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    for l in rest.lines() {
        serde_json::from_str::<SignalRecord>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
}

#[test]
fn live_validates_before_starting() {
    struct Case {
        args: &'static [&'static str],
        expected: &'static str,
    }
    let cases = [
        Case {
            args: &["live", "--interval", "5m"],
            expected: "no symbol selected",
        },
        Case {
            args: &["live", "--symbol", "BTCUSDT"],
            expected: "no interval selected",
        },
        Case {
            args: &[
                "live",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "5m",
                "--strategies",
                "",
            ],
            expected: "no strategy selected",
        },
        Case {
            args: &["live", "--symbol", "BTCUSDT", "--interval", "7m"],
            expected: "7m",
        },
        Case {
            args: &[
                "live",
                "--exchange",
                "kraken",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "5m",
            ],
            expected: "unknown exchange",
        },
        Case {
            args: &["live", "--symbol", "BTC-USDT", "--interval", "5m"],
            expected: "invalid symbol",
        },
    ];
    for c in cases {
        let out = manus()
            // A URL nothing listens on: validation must fail before any connection.
            .args(c.args)
            .args([
                "--ws-url",
                "ws://127.0.0.1:9",
                "--rest-url",
                "http://127.0.0.1:9",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{:?}: {stderr}", c.args);
        assert!(stderr.contains(c.expected), "{:?}: {stderr}", c.args);
        assert!(out.stdout.is_empty());
    }
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("manus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A real failing disk without root: the shell caps the size of files the process may write
/// (`ulimit -f`), and ignores SIGXFSZ so a write past the cap fails (EFBIG) instead of killing
/// the process. The database soon cannot grow; stdout is a pipe and is not capped.
#[test]
fn a_store_that_fails_is_reported_once_and_the_run_exits_non_zero() {
    let dir = TempDir::new("fsize");
    let db = dir.0.join("live.db");
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 200; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_manus"))
        .args([
            "demo",
            "--headless",
            "--max-candles",
            "60",
            "--candle-ms",
            "50",
        ])
        .arg("--db")
        .arg(&db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The output kept flowing.
    let records = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(records >= 60, "{records} records; {stderr}");
    // Warned once at the first failure, naming the file; not once per record.
    let warned = stderr.matches("cannot store signal records").count();
    assert_eq!(warned, 1, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.contains("signal records were not stored in"), "{last}");
    assert!(last.contains(&db.display().to_string()), "{last}");
    assert!(last.contains("I/O error"), "{last}");
}

#[test]
fn history_serves_the_rows_around_a_corrupt_one() {
    let dir = TempDir::new("history-corrupt");
    let db = dir.0.join("manus.db");
    let out = manus()
        .args([
            "demo",
            "--headless",
            "--max-candles",
            "6",
            "--candle-ms",
            "50",
        ])
        .args(["--symbols", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = rusqlite::Connection::open(&db).unwrap();
    let total: i64 = raw
        .query_row("SELECT COUNT(*) FROM signals", [], |r| r.get(0))
        .unwrap();
    let bad: i64 = raw
        .query_row("SELECT MAX(id) FROM signals", [], |r| r.get(0))
        .unwrap();
    raw.execute("UPDATE signals SET record = 'x' WHERE id = ?1", [bad])
        .unwrap();
    drop(raw);
    let out = manus()
        .args(["history", "--symbol", "BTCUSDT", "--interval", "1m"])
        .args(["--format", "json", "--exchange", "sim", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as i64,
        total - 1
    );
    assert!(stderr.contains(&format!("signals id {bad}")), "{stderr}");
}
