//! Every range of `market_manus::ranges::ALL`, through the `manus` binary: a value just outside
//! the range (and NaN/inf where the setting is a float) exits 2 with an error naming the
//! setting and the range, before anything starts (URLs point at a closed loopback port, so a
//! missed check could not reach anything either).

use std::path::PathBuf;
use std::process::Command;

use market_manus::ranges::{self, Range};

struct Case {
    range: Range,
    /// The command line, with `{}` where the bad value goes.
    argv: &'static [&'static str],
    /// For settings-file keys: the TOML line, with `{}` for the value.
    toml: Option<&'static str>,
    bad: &'static [&'static str],
}

const LIVE: &[&str] = &[
    "live",
    "--symbol",
    "BTCUSDT",
    "--interval",
    "1m",
    "--ws-url",
    "ws://127.0.0.1:9",
    "--rest-url",
    "http://127.0.0.1:9",
];

fn cases() -> Vec<Case> {
    let c = |range, argv, bad| Case {
        range,
        argv,
        toml: None,
        bad,
    };
    let delivery = |range, key: &'static str, bad| Case {
        range,
        argv: &["alerts", "test", "--config", "{file}"],
        toml: Some(key),
        bad,
    };
    vec![
        c(
            ranges::THRESHOLD,
            &["signals", "--csv", "{csv}", "--threshold={}"],
            &["NaN", "inf", "-inf", "1.5", "-0.1"],
        ),
        c(
            ranges::BOOTSTRAP,
            &["{live}", "--bootstrap", "{}"],
            &["100001"],
        ),
        c(
            ranges::WINDOW,
            &["{live}", "--window", "{}"],
            &["0", "1000001"],
        ),
        c(
            ranges::MAX_CANDLES,
            &["{live}", "--max-candles", "{}"],
            &["0"],
        ),
        c(
            ranges::DEMO_SYMBOLS,
            &["demo", "--headless", "--symbols", "{}"],
            &["0", "1001"],
        ),
        c(
            ranges::DEMO_CANDLE_MS,
            &["demo", "--headless", "--candle-ms", "{}"],
            &["19", "60001"],
        ),
        c(
            ranges::DEMO_DROP_EVERY,
            &["demo", "--headless", "--drop-every", "{}"],
            &["1000000001"],
        ),
        c(
            ranges::SERVE_DEMO_CANDLE_MS,
            &[
                "serve",
                "--no-store",
                "--bind",
                "127.0.0.1:0",
                "--demo",
                "--demo-candle-ms",
                "{}",
            ],
            &["19", "3600001"],
        ),
        c(
            ranges::SIM_CANDLE_MS,
            &["exchange-sim", "--port", "0", "--candle-ms", "{}"],
            &["0"],
        ),
        c(
            ranges::SIM_UPDATES,
            &["exchange-sim", "--port", "0", "--updates", "{}"],
            &["1001"],
        ),
        c(
            ranges::SIM_HISTORY,
            &["exchange-sim", "--port", "0", "--history", "{}"],
            &["1000001", "100000000"],
        ),
        c(
            ranges::SIM_EVERY,
            &["exchange-sim", "--port", "0", "--malformed-every", "{}"],
            &["1000000001"],
        ),
        c(
            ranges::SIM_WS_RATE_LIMIT,
            &["exchange-sim", "--port", "0", "--ws-rate-limit", "{}"],
            &["0"],
        ),
        c(
            ranges::BACKTEST_TOP,
            &["backtest", "--csv", "{csv}", "--top", "{}"],
            &["0"],
        ),
        c(
            ranges::HISTORY_LIMIT,
            &[
                "history",
                "--symbol",
                "BTCUSDT",
                "--interval",
                "1m",
                "--limit",
                "{}",
            ],
            &["10000001"],
        ),
        c(
            ranges::ALERTS_LIMIT,
            &["alerts", "outbox", "--limit", "{}"],
            &["0", "1000001"],
        ),
        delivery(ranges::MAX_ATTEMPTS, "max_attempts = {}", &["0", "101"]),
        delivery(ranges::BACKOFF_BASE_MS, "backoff_base_ms = {}", &["0"]),
        delivery(ranges::BACKOFF_MAX_MS, "backoff_max_ms = {}", &["86400001"]),
        delivery(ranges::TIMEOUT_MS, "timeout_ms = {}", &["99"]),
        delivery(
            ranges::QUEUE_CAPACITY,
            "queue_capacity = {}",
            &["0", "1000000000000000"],
        ),
        delivery(ranges::POLL_INTERVAL_MS, "poll_interval_ms = {}", &["9"]),
        delivery(
            ranges::MAX_ALERT_AGE_CANDLES,
            "max_alert_age_candles = {}",
            &["0"],
        ),
        c(
            ranges::PREWARM_US,
            &["demo", "--headless", "--prewarm-us", "{}"],
            &["1000001"],
        ),
        c(
            ranges::RESUME_MAX,
            &["{live}", "--resume-max", "{}"],
            &["100001"],
        ),
    ]
}

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("manus-ranges-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_setting_out_of_range_exits_2_naming_it_and_its_range() {
    let dir = temp_dir();
    let csv = dir.join("c.csv");
    let mut text = String::from("open_time,open,high,low,close,volume\n");
    for i in 0..50 {
        text.push_str(&format!("{},100,101,99,100.5,1\n", i * 60_000));
    }
    std::fs::write(&csv, text).unwrap();
    let cases = cases();
    for r in ranges::ALL {
        assert!(
            cases.iter().any(|c| c.range == *r),
            "no case for {}",
            r.setting
        );
    }
    for case in &cases {
        for bad in case.bad {
            let file = dir.join("settings.toml");
            if let Some(line) = case.toml {
                std::fs::write(
                    &file,
                    format!(
                        "[alerts.delivery]\n{}\n\n[[alerts.webhook]]\nurl = \"http://127.0.0.1:9/\"\n",
                        line.replace("{}", bad)
                    ),
                )
                .unwrap();
            }
            let mut args: Vec<String> = Vec::new();
            for a in case.argv {
                match *a {
                    "{live}" => args.extend(LIVE.iter().map(|s| s.to_string())),
                    "{csv}" => args.push(csv.display().to_string()),
                    "{file}" => args.push(file.display().to_string()),
                    a => args.push(a.replace("{}", bad)),
                }
            }
            let out = Command::new(env!("CARGO_BIN_EXE_manus"))
                .args(&args)
                .env("MANUS_DB", dir.join("none.db"))
                .env_remove("MANUS_CONFIG")
                .output()
                .expect("run manus");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(case.range.setting), "{args:?}: {err}");
            assert!(err.contains(&case.range.valid()), "{args:?}: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
