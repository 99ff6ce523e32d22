//! `manus backtest` end to end on the bundled sample: the JSON summary, trades, signal records
//! (byte-identical to `manus signals`), the HTML report, sweeps, `--config` and bad input.

use std::process::{Command, Output};

use serde_json::Value;

fn manus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(args)
        .output()
        .expect("run manus")
}

fn sample() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    )
    .to_string()
}

/// A fresh directory for a test's files, removed when dropped (also when the test fails).
fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON value on stdout")
}

#[test]
fn json_summary_agrees_with_the_trades_file() {
    let dir = tmp();
    let trades = dir.path().join("trades.csv");
    let csv = sample();
    let out = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
        "--fee-bps",
        "10",
        "--json",
        "--trades-out",
        trades.to_str().unwrap(),
    ]);
    let v = json(&out);
    for key in [
        "total_return_pct",
        "buy_hold_return_pct",
        "cagr_pct",
        "max_drawdown_pct",
        "sharpe",
        "sortino",
        "win_rate_pct",
        "profit_factor",
        "trades",
        "exposure_pct",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    let text = std::fs::read_to_string(&trades).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() > 3, "the sample should trade: {text}");
    assert_eq!(v["trades"].as_u64().unwrap() as usize, rows.len());
    // Long-only with all equity per trade: equity compounds the trades' returns exactly.
    let growth: f64 = rows
        .iter()
        .map(|r| 1.0 + r[8].parse::<f64>().unwrap() / 100.0)
        .product();
    let total = v["total_return_pct"].as_f64().unwrap();
    assert!(
        ((growth - 1.0) * 100.0 - total).abs() < 1e-6,
        "{growth} vs {total}"
    );
    let wins = rows
        .iter()
        .filter(|r| r[7].parse::<f64>().unwrap() > 0.0)
        .count();
    let win_rate = v["win_rate_pct"].as_f64().unwrap();
    assert!((wins as f64 / rows.len() as f64 * 100.0 - win_rate).abs() < 1e-9);
    assert!(rows.iter().all(|r| r[0] == "long"), "long-only");
    // Every entry fills at a candle open strictly after the first candle.
    assert!(
        rows.iter()
            .all(|r| r[1].parse::<i64>().unwrap() > 1_704_067_200_000)
    );
    assert!(v["max_drawdown_pct"].as_f64().unwrap() >= 0.0);
}

#[test]
fn signals_out_is_byte_identical_to_the_signals_command() {
    let csv = sample();
    let dir = tmp();
    let file = dir.path().join("signals.jsonl");
    let bt = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "all",
        "--confluence",
        "majority",
        "--signals-out",
        file.to_str().unwrap(),
    ]);
    assert!(
        bt.status.success(),
        "{}",
        String::from_utf8_lossy(&bt.stderr)
    );
    let table = String::from_utf8(bt.stdout).unwrap();
    assert!(
        table.contains("Total return") && table.contains("Max drawdown"),
        "{table}"
    );
    // Ten days of 5-minute candles: annualised figures would be extrapolation.
    assert!(
        table.contains("CAGR") && table.contains("n/a (10.4 days of data"),
        "{table}"
    );
    let sig = manus(&[
        "signals",
        "--csv",
        &csv,
        "--strategies",
        "all",
        "--confluence",
        "majority",
    ]);
    assert!(sig.status.success());
    let written = std::fs::read(&file).unwrap();
    assert_eq!(written.iter().filter(|b| **b == b'\n').count(), 3000);
    assert!(
        written == sig.stdout,
        "backtest --signals-out differs from signals"
    );
}

#[test]
fn sweep_ranks_and_matches_single_runs() {
    let csv = sample();
    let out = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
        "--sweep",
        "ema_crossover.fast=5..9:2,ema_crossover.slow=20|30",
        "--json",
    ]);
    let v = json(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let returns: Vec<f64> = rows
        .iter()
        .map(|r| r["metrics"]["total_return_pct"].as_f64().unwrap())
        .collect();
    assert!(returns.windows(2).all(|w| w[0] >= w[1]), "{returns:?}");
    let best = &rows[0]["params"];
    let single = json(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
        "--param",
        &format!("ema_crossover.fast={}", best["ema_crossover.fast"]),
        "--param",
        &format!("ema_crossover.slow={}", best["ema_crossover.slow"]),
        "--json",
    ]));
    assert_eq!(
        single["total_return_pct"],
        rows[0]["metrics"]["total_return_pct"]
    );
}

/// A file longer than one of the parser thread's chunks (4096 candles): the streamed run equals
/// the sweep's run over all candles in memory, and a bad line past the first chunks fails the
/// run naming the line, with no `--signals-out` file left behind.
#[test]
fn a_long_file_streams_through_the_engine_in_chunks() {
    let dir = tmp();
    let mut text = String::from("open_time,open,high,low,close,volume\n");
    let mut price = 100.0f64;
    for i in 0..10_000u64 {
        // A deterministic wobble with drift changes, so the strategy trades.
        let step = ((i * 7919) % 13) as f64 - 6.0 + if (i / 500) % 2 == 0 { 0.4 } else { -0.4 };
        let open = price;
        price = (price + step * 0.05).max(1.0);
        let (hi, lo) = (open.max(price) + 0.1, open.min(price) - 0.1);
        text.push_str(&format!("{},{open},{hi},{lo},{price},1\n", i * 300_000));
    }
    let good = dir.path().join("long.csv");
    std::fs::write(&good, &text).unwrap();
    let f = good.to_str().unwrap();
    let base = [
        "backtest",
        "--csv",
        f,
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
    ];
    let single = json(&manus(&[&base[..], &["--json"]].concat()));
    assert_eq!(single["candles"], 10_000);
    let sweep = json(&manus(
        &[&base[..], &["--sweep", "ema_crossover.fast=9..9", "--json"]].concat(),
    ));
    assert_eq!(
        sweep[0]["metrics"], single,
        "streamed run differs from the in-memory run"
    );
    assert!(single["trades"].as_u64().unwrap() > 0, "{single}");

    let lines: Vec<&str> = text.lines().collect();
    let mut bad = lines[..9001].join("\n");
    bad.push_str("\n2700000000,1,x,1,1,1\n");
    let bad_file = dir.path().join("bad.csv");
    std::fs::write(&bad_file, bad).unwrap();
    let records = dir.path().join("records.jsonl");
    let out = manus(&[
        "backtest",
        "--csv",
        bad_file.to_str().unwrap(),
        "--strategies",
        "ema_crossover",
        "--signals-out",
        records.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("line 9002: bad number for high: 'x'"), "{err}");
    assert!(out.stdout.is_empty(), "no summary after a bad line");
    assert!(
        !records.exists(),
        "an unfinished --signals-out is not left behind"
    );
}

#[test]
fn config_file_is_read_and_flags_override_it() {
    let dir = tmp();
    let cfg = dir.path().join("manus.toml");
    std::fs::write(
        &cfg,
        "symbols = [\"BTCUSDT\"]\n[[strategies]]\nid = \"ema_crossover\"\nparams = { fast = 5, slow = 30 }\n[confluence]\nmode = \"all\"\n[backtest]\nfee_bps = 0.0\n",
    )
    .unwrap();
    let csv = sample();
    let from_file = json(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--config",
        cfg.to_str().unwrap(),
        "--json",
    ]));
    let from_flags = json(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "ema_crossover",
        "--confluence",
        "all",
        "--param",
        "ema_crossover.fast=5",
        "--param",
        "ema_crossover.slow=30",
        "--fee-bps",
        "0",
        "--json",
    ]));
    assert_eq!(
        from_file["total_return_pct"],
        from_flags["total_return_pct"]
    );
    assert_eq!(from_file["fee_bps"], 0.0);
    let overridden = json(&manus(&[
        "backtest",
        "--csv",
        &csv,
        "--config",
        cfg.to_str().unwrap(),
        "--fee-bps",
        "25",
        "--json",
    ]));
    assert_eq!(overridden["fee_bps"], 25.0);
    assert_eq!(overridden["trades"], from_file["trades"]);
    assert!(
        overridden["total_return_pct"].as_f64() < from_file["total_return_pct"].as_f64(),
        "fees cost money"
    );
}

#[test]
fn report_is_self_contained_html() {
    let dir = tmp();
    let report = dir.path().join("report.html");
    let csv = sample();
    let out = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "macd,ema_crossover",
        "--confluence",
        "any",
        "--mode",
        "long-short",
        "--stop-loss-pct",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(r#"<svg id="price""#) && html.contains(r#"<svg id="equity""#));
    assert!(html.contains("class=\"entry\"") && html.contains("class=\"exit\""));
    assert!(
        !html.contains("src=") && !html.contains("http"),
        "no external resources"
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let csv = sample();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--mode", "sideways"], "long-only, long-short"),
        (vec!["--sweep", "fast=1..3"], "ID.NAME"),
        (vec!["--sweep", "macd.fast=3..4"], "not selected"),
        (vec!["--fee-bps=-1"], "fee-bps"),
        (vec!["--strategies", "nope"], "unknown strategy"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["backtest", "--csv", &csv, "--strategies", "ema_crossover"];
        if extra[0] == "--strategies" {
            args.truncate(3);
        }
        args.extend(extra.iter().copied());
        let out = manus(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = manus(&["backtest", "--strategies", "macd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--csv"));
    let out = manus(&["backtest", "--csv", "/nonexistent.csv"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn save_stores_the_run_for_the_dashboard() {
    let dir = tmp();
    let db = dir.path().join("save.db");
    let _ = std::fs::remove_file(&db);
    let csv = sample();
    let out = manus(&[
        "backtest",
        "--csv",
        &csv,
        "--strategies",
        "ema_crossover",
        "--save",
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    let printed = json(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("saved backtest run"));
    let mut store = market_manus::store::open(Some(db.to_str().unwrap())).unwrap();
    let runs = store.backtest_runs(10).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.metrics["total_return_pct"], printed["total_return_pct"]);
    assert_eq!(run.metrics["trades"], printed["trades"]);
    assert_eq!(run.params["strategies"][0], "ema_crossover");
    let equity = run.equity.as_array().unwrap();
    assert!(!equity.is_empty() && equity.len() <= 2000);
    let times: Vec<i64> = equity.iter().map(|p| p[0].as_i64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "real, ascending times"
    );
    assert_eq!(
        run.trades.as_array().unwrap().len() as u64,
        printed["trades"].as_u64().unwrap()
    );
    // --db without --exchange or --save is a mistake, not silently ignored.
    let out = manus(&["backtest", "--csv", &csv, "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_default_decides_and_a_run_that_never_decides_says_why() {
    let csv = sample();
    // The default selection trades the sample and says nothing on stderr.
    let out = manus(&["backtest", "--csv", &csv, "--json"]);
    assert!(out.status.success());
    let v = json(&out);
    assert!(v["trades"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        v["strategies"].as_array().unwrap().len(),
        5,
        "the trend preset"
    );
    assert_eq!(v["annualised"], Value::Bool(false));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // All eleven under ALL never agree: both commands say so, and why.
    for cmd in ["signals", "backtest"] {
        let out = manus(&[
            cmd,
            "--csv",
            &csv,
            "--strategies",
            "all",
            "--confluence",
            "all",
        ]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("0 BUY/SELL decisions in 3000 candles: confluence all over 11 strategies never agreed"),
            "{cmd}: {err}"
        );
    }
}

/// Every command that reads a candle CSV reports the same real error, naming the line.
#[test]
fn csv_errors_are_reported_alike_by_every_command() {
    let h = "open_time,open,high,low,close,volume\n";
    let files = tmp();
    let write = |name: &str, body: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let dir = files.path().join("a-directory.csv");
    std::fs::create_dir_all(&dir).unwrap();
    struct Case {
        file: String,
        needle: &'static str,
    }
    let cases = [
        Case {
            file: write(
                "missing-col.csv",
                b"open_time,open,high,low,close\n0,1,2,0.5,1\n",
            ),
            needle: "line 1: missing column: volume",
        },
        Case {
            file: write("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00"),
            needle: "line 1: ",
        },
        Case {
            file: dir.display().to_string(),
            needle: "line 1: read error",
        },
        Case {
            file: write(
                "good-then-bad.csv",
                format!("{h}0,1,2,0.5,1,1\n60000,1,x,0.5,1,1\n").as_bytes(),
            ),
            needle: "line 3: bad number for high: 'x'",
        },
        Case {
            file: write(
                "quoted.csv",
                format!("{h}0,1,2,0.5,1,\"1,234.5\"\n").as_bytes(),
            ),
            needle: "line 2: bad number for volume: '1,234.5'",
        },
        Case {
            file: write("zero.csv", format!("{h}0,0,0,0,0,1\n").as_bytes()),
            needle: "line 2: open 0 is not a positive price",
        },
        Case {
            file: write("empty.csv", b""),
            // "no candles" (signals, indicators), "has 0 candle(s)" (backtest)
            needle: "candle",
        },
    ];
    for c in &cases {
        for cmd in ["signals", "indicators", "backtest"] {
            let mut args = vec![cmd, "--csv", &c.file];
            if cmd == "backtest" {
                args.extend(["--strategies", "macd"]);
            }
            let out = manus(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(c.needle), "{args:?}: {err}");
        }
    }
    // A byte-order mark is accepted by all of them.
    let bom = write(
        "bom.csv",
        format!("\u{feff}{h}0,1,2,0.5,1,1\n60000,1,2,0.5,1,1\n").as_bytes(),
    );
    for cmd in ["signals", "indicators"] {
        let out = manus(&[cmd, "--csv", &bom]);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
