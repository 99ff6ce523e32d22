//! One engine for live and backtest, proven: the signal records `manus live` writes for candles
//! streamed (and backfilled after drops) from the simulated exchange equal, field for field,
//! the records `manus backtest --signals-out` writes for the same candles read from a CSV.
//!
//! The live run bootstraps more candles than the exchange has, so both engines see the same
//! series from its first candle and no warm-up difference can hide behind the comparison.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Command;

use manus_core::Interval;
use manus_exchange::sim::{FaultPlan, SimConfig, SimExchange};
use serde_json::Value;

const LIVE_CANDLES: usize = 60;

fn manus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_manus"))
}

/// The fields shared by live and backtest records (live adds latency and backfill flags).
fn comparable(line: &str) -> (i64, Value) {
    let mut v: Value = serde_json::from_str(line).expect("record is JSON");
    let obj = v.as_object_mut().expect("record is an object");
    for live_only in ["latency_us", "backfilled", "stale"] {
        obj.remove(live_only);
    }
    (obj["open_time"].as_i64().expect("open_time"), v)
}

#[test]
fn live_records_equal_backtest_records_for_the_same_candles() {
    live_equals_backtest("all", &[]);
}

/// Rule strategies from a strategy file, one with a higher timeframe aggregated from the 1m
/// stream: live (bootstrapped, then streamed with drops and backfills) equals backtest.
#[test]
fn live_equals_backtest_for_rule_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        r#"
[[strategy]]
id = "htf_pullback"
buy  = "rsi(close, 7) < 40 and on(\"5m\", ema(close, 3) > ema(close, 8))"
sell = "rsi(close, 7) > 60 and on(\"5m\", ema(close, 3) < ema(close, 8))"
hold = 2
score = "clamp(abs(rsi(close, 7) - 50) / 50, 0, 1)"

[[strategy]]
id = "cross_rule"
buy  = "crosses_above(ema(close, 5), sma(close, 12)) or sweep_low(swing_length = 3)"
sell = "crosses_below(ema(close, 5), sma(close, 12)) or sweep_high(swing_length = 3)"
hold = 4
"#,
    )
    .unwrap();
    let file = file.display().to_string();
    live_equals_backtest(
        "htf_pullback,cross_rule,macd",
        &["--strategy-file".to_string(), file],
    );
}

fn live_equals_backtest(strategies: &str, extra: &[String]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimExchange::start(SimConfig {
            symbols: vec!["BTCUSDT".into()],
            interval: Interval::M1,
            candle_ms: 40,
            history: 400,
            faults: FaultPlan {
                drop_every: Some(15),
                ..FaultPlan::default()
            },
            ..SimConfig::default()
        }))
        .expect("sim starts");

    let live = manus()
        .args(["live", "--exchange", "binanceus", "--symbol", "BTCUSDT"])
        .args(["--interval", "1m", "--strategies", strategies])
        .args(["--confluence", "any"])
        .args(extra)
        .args(["--ws-url", &sim.ws_url(), "--rest-url", &sim.rest_url()])
        // The simulator drops every 0.6 s, so the default backoff (up to 30 s, reset only
        // after 60 s connected) would make this test take anywhere from 6 to 80 s.
        .args(["--reconnect-backoff", "20ms..200ms"])
        .args(["--bootstrap", "1000", "--headless"])
        .args(["--max-candles", &LIVE_CANDLES.to_string()])
        .output()
        .expect("run manus live");
    assert!(
        live.status.success(),
        "live failed: {}",
        String::from_utf8_lossy(&live.stderr)
    );
    // Logs on a redirected stderr: plain text, one line per backfill, counted right.
    let log = String::from_utf8_lossy(&live.stderr);
    assert!(
        !log.contains('\x1b'),
        "ANSI codes on a redirected stderr: {log}"
    );
    assert!(
        log.contains("BTCUSDT 1m: backfilled")
            && !log.contains("backfilled stream=")
            && !log.contains("disconnected id="),
        "each backfill and disconnect logged once, in one format: {log}"
    );
    assert!(!log.contains(" 1 candles"), "{log}");
    let live_text = String::from_utf8(live.stdout).unwrap();
    let live_lines: Vec<&str> = live_text.lines().collect();
    assert!(
        live_lines.len() >= LIVE_CANDLES,
        "{} live records",
        live_lines.len()
    );
    let backfilled = live_lines
        .iter()
        .filter(|l| l.contains("\"backfilled\":true"))
        .count();
    assert!(
        backfilled > 0,
        "no drop was backfilled: the test would not cover backfill"
    );

    // The exchange's truth, as a CSV file, through the backtester.
    let truth = sim.closed_candles("BTCUSDT");
    rt.block_on(sim.shutdown());
    let mut csv = String::from("open_time,open,high,low,close,volume\n");
    for c in &truth {
        // `{}` prints the shortest string that parses back to the same f64.
        writeln!(
            csv,
            "{},{},{},{},{},{}",
            c.open_time, c.open, c.high, c.low, c.close, c.volume
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also when the test fails
    let csv_path = dir.path().join("truth.csv");
    let bt_path = dir.path().join("backtest.jsonl");
    std::fs::write(&csv_path, csv).unwrap();
    let bt = manus()
        .arg("backtest")
        .arg("--csv")
        .arg(&csv_path)
        .args(["--symbol", "BTCUSDT", "--interval", "1m"])
        .args(["--strategies", strategies, "--confluence", "any", "--json"])
        .args(extra)
        .arg("--signals-out")
        .arg(&bt_path)
        .output()
        .expect("run manus backtest");
    assert!(
        bt.status.success(),
        "backtest failed: {}",
        String::from_utf8_lossy(&bt.stderr)
    );
    let bt_text = std::fs::read_to_string(&bt_path).unwrap();
    let by_time: HashMap<i64, Value> = bt_text.lines().map(comparable).collect();
    assert_eq!(by_time.len(), truth.len(), "one backtest record per candle");

    let mut non_hold = 0;
    for line in &live_lines {
        let (t, live_rec) = comparable(line);
        let bt_rec = by_time
            .get(&t)
            .unwrap_or_else(|| panic!("live record at {t} has no backtest counterpart"));
        assert_eq!(&live_rec, bt_rec, "records differ at open_time {t}");
        non_hold += usize::from(live_rec["confluence"] != "HOLD");
    }
    assert!(
        non_hold > 0,
        "no BUY/SELL in the compared records: a weak comparison"
    );
}
