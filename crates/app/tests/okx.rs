//! OKX end to end through the real `manus` binary: `demo --exchange okx` (the simulator
//! speaking OKX v5 in-process, drops included) and `live --exchange okx` against a simulator
//! started here, both producing gapless signal records.

use std::collections::HashMap;
use std::process::Command;

use manus_core::Interval;
use manus_core::record::SignalRecord;
use manus_exchange::sim::{SimConfig, SimExchange};

fn manus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_manus"));
    c.env("RUST_LOG", "warn");
    c
}

/// Parses JSON-line records and checks each symbol's open times advance one minute at a time.
fn gapless_records(stdout: &[u8]) -> Vec<SignalRecord> {
    let text = String::from_utf8(stdout.to_vec()).expect("utf-8");
    let recs: Vec<SignalRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in &recs {
        assert_eq!(r.interval.as_str(), "1m");
        if let Some(prev) = last.insert(r.symbol.clone(), r.open_time) {
            assert_eq!(r.open_time, prev + 60_000, "gapless and increasing: {r:?}");
        }
    }
    recs
}

#[test]
fn demo_on_okx_emits_gapless_records_and_backfills_after_drops() {
    let out = manus()
        .args(["demo", "--exchange", "okx", "--headless"])
        .args([
            "--max-candles",
            "24",
            "--candle-ms",
            "100",
            "--drop-every",
            "3",
        ])
        .output()
        .expect("run manus demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let recs = gapless_records(&out.stdout);
    assert_eq!(
        recs.iter().filter(|r| r.backfilled == Some(false)).count(),
        24
    );
    let symbols: std::collections::BTreeSet<&str> =
        recs.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(
        symbols.into_iter().collect::<Vec<_>>(),
        ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    );
    assert!(
        recs.iter().any(|r| r.backfilled == Some(true)),
        "a drop every 3 candles must cause backfills; stderr: {stderr}"
    );
}

#[test]
fn live_on_okx_against_the_simulator_emits_records() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sim = rt
        .block_on(SimExchange::start(SimConfig {
            symbols: vec!["BTCUSDT".into()],
            interval: Interval::M1,
            candle_ms: 60,
            history: 300,
            ..SimConfig::default()
        }))
        .expect("sim starts");
    let out = manus()
        .args([
            "live",
            "--exchange",
            "okx",
            "--symbol",
            "BTCUSDT",
            "--interval",
            "1m",
        ])
        .args(["--strategies", "all", "--confluence", "any", "--headless"])
        .args(["--ws-url", &sim.ws_url(), "--rest-url", &sim.rest_url()])
        .args(["--bootstrap", "250", "--max-candles", "10"])
        .output()
        .expect("run manus live");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let recs = gapless_records(&out.stdout);
    let live: Vec<&SignalRecord> = recs
        .iter()
        .filter(|r| r.backfilled == Some(false))
        .collect();
    assert_eq!(live.len(), 10, "--max-candles counts live candles");
    // Every live record is a candle the exchange closed.
    let truth: Vec<i64> = sim
        .closed_candles("BTCUSDT")
        .iter()
        .map(|c| c.open_time)
        .collect();
    assert!(live.iter().all(|r| truth.contains(&r.open_time)));
    rt.block_on(sim.shutdown());
}

#[test]
fn fetch_on_okx_pages_history_into_the_cache() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // One candle per ten real minutes: the closed set does not move while the test runs.
    let sim = rt
        .block_on(SimExchange::start(SimConfig {
            symbols: vec!["BTCUSDT".into()],
            interval: Interval::M1,
            candle_ms: 600_000,
            history: 400,
            ..SimConfig::default()
        }))
        .expect("sim starts");
    let truth = sim.closed_candles("BTCUSDT");
    let dir = std::env::temp_dir().join(format!("manus-okx-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (db, csv) = (dir.join("cache.db"), dir.join("out.csv"));
    let (from, to) = (
        truth[50].open_time.to_string(),
        truth[300].open_time.to_string(),
    );
    let out = manus()
        .args([
            "fetch",
            "--exchange",
            "okx",
            "--symbol",
            "btcusdt",
            "--interval",
            "1m",
        ])
        .args(["--from", &from, "--to", &to, "--rest-url", &sim.rest_url()])
        .args([
            "--db",
            db.to_str().expect("path"),
            "--out",
            csv.to_str().expect("path"),
        ])
        .output()
        .expect("run manus fetch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let text = std::fs::read_to_string(&csv).expect("csv");
    let opens: Vec<i64> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .next()
                .and_then(|t| t.parse().ok())
                .expect("open_time")
        })
        .collect();
    let want: Vec<i64> = truth[50..300].iter().map(|c| c.open_time).collect();
    assert_eq!(opens, want, "250 candles over three OKX pages, in order");
    // Over 100 a page: at least three candle requests after the instrument check.
    assert!(sim.stats().rest_calls >= 3, "{:?}", sim.stats());
    rt.block_on(sim.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}
