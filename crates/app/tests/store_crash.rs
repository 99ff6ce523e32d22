//! Crash safety: `manus demo --headless --db X` is killed with SIGKILL mid-stream, twice. After
//! each kill the SQLite file must pass its integrity check and hold whole, parseable records;
//! the second run must continue the same file without duplicating or rewriting any record.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use manus_core::record::SignalRecord;
use rusqlite::{Connection, OpenFlags};

fn spawn_demo(db: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args([
            "demo",
            "--headless",
            "--candle-ms",
            "20",
            "--drop-every",
            "0",
        ])
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("manus starts")
}

fn count(db: &Path) -> i64 {
    let Ok(c) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return 0;
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    c.query_row("SELECT COUNT(*) FROM signals", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Waits until the file holds at least `n` records (or the child dies, or 60 s pass).
fn wait_for(child: &mut Child, db: &Path, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(db) < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("manus demo exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no {n} records within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every row: integrity, a parseable record that matches its key columns, no duplicate key.
fn rows(db: &Path) -> Vec<(i64, String)> {
    let c = Connection::open(db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let dups: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM (SELECT 1 FROM signals
             GROUP BY exchange, symbol, interval, open_time HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dups, 0);
    let mut st = c
        .prepare(
            "SELECT id, symbol, interval, open_time, confluence, record FROM signals ORDER BY id",
        )
        .unwrap();
    let out: Vec<(i64, String)> = st
        .query_map([], |r| {
            let rec: SignalRecord = serde_json::from_str(&r.get::<_, String>(5)?).unwrap();
            assert_eq!(rec.symbol, r.get::<_, String>(1)?);
            assert_eq!(rec.interval.as_str(), r.get::<_, String>(2)?);
            assert_eq!(rec.open_time, r.get::<_, i64>(3)?);
            assert_eq!(rec.confluence.as_str(), r.get::<_, String>(4)?);
            Ok((r.get(0)?, r.get(5)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    out
}

#[test]
fn kill_9_mid_stream_leaves_a_consistent_store_and_the_rerun_does_not_duplicate() {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also when the test fails
    let db = dir.path().join("manus.db");

    let mut first = spawn_demo(&db);
    wait_for(&mut first, &db, 30);
    first.kill().unwrap(); // SIGKILL: no flush, no destructor runs.
    first.wait().unwrap();
    let after_first = rows(&db);
    assert!(after_first.len() >= 30);

    let mut second = spawn_demo(&db);
    wait_for(&mut second, &db, after_first.len() as i64 + 30);
    second.kill().unwrap();
    second.wait().unwrap();
    let after_second = rows(&db);
    assert!(after_second.len() >= after_first.len() + 30);
    // What the first run wrote is still there, byte for byte, and was never rewritten.
    assert_eq!(&after_second[..after_first.len()], &after_first[..]);
}
