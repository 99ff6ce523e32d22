//! `manus fetch` and `manus backtest --exchange` end to end: the real binary against an
//! in-process simulated exchange on 127.0.0.1:0, with a temporary SQLite cache.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use manus_core::{Candle, Interval};
use manus_exchange::sim::{FaultPlan, SimConfig, SimExchange, SimSource};
use serde_json::Value;

/// History candles the simulated exchange starts with (3 REST pages).
const HISTORY: usize = 2500;

/// A simulated exchange whose market moves slower than real time (one 1m candle per 10 real
/// minutes), so the set of closed candles does not change while a test runs.
struct Sim {
    rt: tokio::runtime::Runtime,
    sim: Option<SimExchange>,
}

impl Sim {
    fn start() -> Sim {
        Self::start_with(FaultPlan::default())
    }

    fn start_with(faults: FaultPlan) -> Sim {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cfg = SimConfig {
            symbols: vec!["BTCUSDT".into()],
            interval: Interval::M1,
            candle_ms: 600_000,
            history: HISTORY,
            source: SimSource::Synthetic {
                seed: 11,
                start_price: 40_000.0,
            },
            faults,
            ..SimConfig::default()
        };
        let sim = rt.block_on(SimExchange::start(cfg)).unwrap();
        Sim { rt, sim: Some(sim) }
    }

    fn ex(&self) -> &SimExchange {
        self.sim.as_ref().unwrap()
    }

    fn url(&self) -> String {
        self.ex().rest_url()
    }

    fn rest_calls(&self) -> u64 {
        self.ex().stats().rest_calls
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(s) = self.sim.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

fn manus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run manus")
}

/// A fresh directory for a test's files, removed when dropped (also when the test fails).
fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `word ` in the summary line.
fn count(summary: &str, word: &str) -> usize {
    let at = summary
        .find(&format!("{word} "))
        .unwrap_or_else(|| panic!("no '{word}' in {summary}"));
    summary[at + word.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn fetch(sim: &Sim, db: &Path, from: i64, to: Option<i64>, out: Option<&Path>) -> String {
    let (from, to) = (from.to_string(), to.map(|t| t.to_string()));
    let url = sim.url();
    let mut args = vec![
        "fetch",
        "--exchange",
        "binanceus",
        "--symbol",
        "btcusdt",
        "--interval",
        "1m",
        "--from",
        &from,
        "--rest-url",
        &url,
        "--db",
        db.to_str().unwrap(),
    ];
    if let Some(t) = &to {
        args.extend(["--to", t]);
    }
    if let Some(o) = out {
        args.extend(["--out", o.to_str().unwrap()]);
    }
    ok(&manus(&args))
}

/// Reads the `--out` CSV back.
fn read_csv(p: &Path) -> Vec<(i64, [f64; 5])> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("open_time,open,high,low,close,volume"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<f64>().unwrap();
            (f[0].parse().unwrap(), [n(1), n(2), n(3), n(4), n(5)])
        })
        .collect()
}

fn rows(candles: &[Candle]) -> Vec<(i64, [f64; 5])> {
    candles
        .iter()
        .map(|c| (c.open_time, [c.open, c.high, c.low, c.close, c.volume]))
        .collect()
}

#[test]
fn fetches_closed_candles_and_then_only_the_missing_ones() {
    let sim = Sim::start();
    let truth = sim.ex().closed_candles("BTCUSDT");
    assert_eq!(truth.len(), HISTORY);
    let t = |i: usize| truth[i].open_time;
    let dir = tmp();
    let db = dir.path().join("cache.db");
    let out = dir.path().join("out.csv");

    // A slice in the middle: exactly those candles.
    let s = fetch(&sim, &db, t(100), Some(t(600)), Some(out.as_path()));
    assert_eq!((count(&s, "fetched"), count(&s, "cached")), (500, 0), "{s}");
    assert_eq!(read_csv(&out), rows(&truth[100..600]));

    // A second slice leaves a hole between them.
    let s = fetch(&sim, &db, t(1200), Some(t(1500)), None);
    assert_eq!(count(&s, "fetched"), 300, "{s}");

    // Everything up to now, --to omitted: the head, the hole and the tail, nothing twice, and
    // never the forming candle.
    let s = fetch(&sim, &db, t(0), None, Some(out.as_path()));
    assert_eq!(
        (count(&s, "fetched"), count(&s, "cached")),
        (HISTORY - 800, 800),
        "{s}"
    );
    let now_truth = sim.ex().closed_candles("BTCUSDT");
    assert_eq!(read_csv(&out), rows(&now_truth));
    let market_now = sim.ex().market_time();
    let mut store = market_manus::store::open(Some(db.to_str().unwrap())).unwrap();
    let stored = store
        .candles_range("binanceus", "BTCUSDT", Interval::M1, 0, i64::MAX)
        .unwrap();
    assert_eq!(stored.len(), now_truth.len());
    assert!(stored.iter().all(|c| c.close_time < market_now));

    // A rerun over a cached range downloads nothing and makes no request at all.
    let calls = sim.rest_calls();
    let end = Interval::M1.next_open(t(HISTORY - 1));
    let s = fetch(&sim, &db, t(0), Some(end), None);
    assert_eq!(
        (count(&s, "fetched"), count(&s, "cached")),
        (0, HISTORY),
        "{s}"
    );
    assert_eq!(sim.rest_calls(), calls);

    // The backtest reads the same cache, still without a request.
    let (from, to, url) = (t(0).to_string(), end.to_string(), sim.url());
    let out = manus(&[
        "backtest",
        "--exchange",
        "binanceus",
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1m",
        "--from",
        &from,
        "--to",
        &to,
        "--rest-url",
        &url,
        "--db",
        db.to_str().unwrap(),
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&ok(&out)).expect("one JSON object");
    assert_eq!(v["candles"].as_u64(), Some(HISTORY as u64), "{v}");
    assert!(v["total_return_pct"].is_number(), "{v}");
    assert_eq!(v["symbol"], "BTCUSDT");
    assert_eq!(sim.rest_calls(), calls);
}

#[test]
fn honours_a_429_retry_after_and_succeeds() {
    let sim = Sim::start();
    let truth = sim.ex().closed_candles("BTCUSDT");
    let dir = tmp();
    let db = dir.path().join("cache.db");
    let out = dir.path().join("out.csv");
    sim.ex().fail_rest(1, 429, Some(1));
    let started = Instant::now();
    let s = fetch(
        &sim,
        &db,
        truth[0].open_time,
        Some(truth[1500].open_time),
        Some(out.as_path()),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited: {:?}",
        started.elapsed()
    );
    assert_eq!(sim.ex().stats().rest_failures, 1);
    assert_eq!(count(&s, "fetched"), 1500, "{s}");
    assert_eq!(read_csv(&out), rows(&truth[..1500]));
}

#[test]
fn an_unknown_symbol_exits_2_with_the_exchange_message() {
    let sim = Sim::start();
    let dir = tmp();
    let db = dir.path().join("cache.db");
    let url = sim.url();
    let out = manus(&[
        "fetch",
        "--exchange",
        "binanceus",
        "--symbol",
        "NOPEUSDT",
        "--interval",
        "1m",
        "--from",
        "2024-01-01",
        "--rest-url",
        &url,
        "--db",
        db.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("Invalid symbol."), "stderr: {err}");
}

#[test]
fn bad_flags_exit_2_before_any_request() {
    let dir = tmp();
    let db = dir.path().join("cache.db");
    let db = db.to_str().unwrap();
    let base = ["fetch", "--symbol", "BTCUSDT", "--db", db];
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--exchange",
                "kraken",
                "--interval",
                "1m",
                "--from",
                "2024-01-01",
            ],
            "unknown exchange",
        ),
        (
            &[
                "--exchange",
                "binanceus",
                "--interval",
                "7m",
                "--from",
                "2024-01-01",
            ],
            "7m",
        ),
        (
            &[
                "--exchange",
                "bybit",
                "--interval",
                "8h",
                "--from",
                "2024-01-01",
            ],
            "Bybit has no 8h",
        ),
        (
            &[
                "--exchange",
                "binanceus",
                "--interval",
                "1m",
                "--from",
                "2024-02-01",
                "--to",
                "2024-01-01",
            ],
            "must be before",
        ),
        (
            &[
                "--exchange",
                "binanceus",
                "--interval",
                "1m",
                "--from",
                "last week",
            ],
            "--from 'last week'",
        ),
    ];
    for (extra, msg) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let out = manus(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(msg), "{extra:?}: {err}");
    }
}

/// Ctrl+C (or SIGTERM) during a fetch: exit 130 (143) at once, as an interrupted tool does, not
/// 0; no `--out` file, complete or partial, is left.
#[test]
fn an_interrupted_fetch_exits_130_or_143_and_leaves_no_output() {
    use std::io::{BufRead, BufReader};
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        // Every request first answers 429 with a minute's Retry-After: the fetch waits there.
        let sim = Sim::start_with(FaultPlan {
            rest_429: Some((1, 60)),
            ..FaultPlan::default()
        });
        let files = tmp();
        let db = files.path().join("cache.db");
        let out = files.path().join("out.csv");
        let url = sim.url();
        let mut child = Command::new(env!("CARGO_BIN_EXE_manus"))
            .args(["fetch", "--exchange", "binanceus", "--symbol", "BTCUSDT"])
            .args([
                "--interval",
                "1m",
                "--from",
                "0",
                "--rest-url",
                &url,
                "--db",
            ])
            .arg(&db)
            .arg("--out")
            .arg(&out)
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("retrying") {
            line.clear();
            assert!(err.read_line(&mut line).unwrap() > 0, "no retry logged");
        }
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{:?}",
            sent.elapsed()
        );
        assert_eq!(status.code(), Some(code), "{signal}: {rest}");
        assert!(rest.contains("interrupted"), "{rest}");
        let dir = out.parent().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("out.csv"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// `--out F.parquet` writes the same candles as Parquet (read back by the app's reader).
#[test]
fn fetch_out_parquet_holds_the_range() {
    let sim = Sim::start();
    let truth = sim.ex().closed_candles("BTCUSDT");
    let t = |i: usize| truth[i].open_time;
    let dir = tmp();
    let db = dir.path().join("cache.db");
    let out = dir.path().join("out.parquet");
    fetch(&sim, &db, t(10), Some(t(310)), Some(out.as_path()));
    let mut back = Vec::new();
    market_manus::columnar::read_chunks(&out, |chunk| {
        back.extend(chunk);
        true
    })
    .unwrap();
    assert_eq!(rows(&back), rows(&truth[10..310]));
    assert_eq!(std::fs::read(&out).unwrap()[..4], *b"PAR1");
}
