//! Error messages of the `manus` binary for bad input: said once, naming the right flag, short,
//! and at once (exit 2, no retries). URLs point at a closed loopback port or are refused before
//! any connection.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("manus-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn manus(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(args)
        .env_remove("MANUS_WEB_TOKEN")
        .env_remove("MANUS_DB")
        .output()
        .expect("run manus");
    (out, started.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const LIVE: &[&str] = &["live", "--symbol", "BTCUSDT", "--interval", "1m"];

#[test]
fn bad_feed_urls_are_refused_at_once() {
    for (flag, value, needle) in [
        ("--rest-url", "notaurl", "not a URL"),
        (
            "--ws-url",
            "ftp://127.0.0.1:9/",
            "scheme 'ftp' is not supported",
        ),
        (
            "--rest-url",
            "ws://127.0.0.1:9",
            "scheme 'ws' is not supported",
        ),
    ] {
        let mut args = LIVE.to_vec();
        // The other URL is a closed loopback port: nothing else could be reached.
        if flag == "--rest-url" {
            args.extend(["--ws-url", "ws://127.0.0.1:9"]);
        } else {
            args.extend(["--rest-url", "http://127.0.0.1:9"]);
        }
        args.extend([flag, value]);
        let (out, took) = manus(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag) && err.contains(needle), "{err}");
        assert!(
            took < Duration::from_secs(5),
            "{flag} {value}: took {took:?}"
        );
    }
}

#[test]
fn a_public_web_address_without_a_token_names_the_right_flag() {
    let (out, _) = manus(&["demo", "--headless", "--web", "0.0.0.0:0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--web-token"), "{err}");
    assert!(!err.contains("pass --token"), "{err}");
    let (out, _) = manus(&["serve", "--no-store", "--bind", "0.0.0.0:0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--token"), "{err}");
}

#[test]
fn a_store_error_is_said_once() {
    let dir = temp_dir("notdb");
    let db = dir.join("not.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let (out, _) = manus(&[
        "history",
        "--db",
        db.to_str().unwrap(),
        "--symbol",
        "BTCUSDT",
        "--interval",
        "1m",
    ]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("file is not a database").count(), 1, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_settings_error_quotes_a_huge_line_briefly() {
    let dir = temp_dir("toml");
    let cfg = dir.join("s.toml");
    std::fs::write(
        &cfg,
        format!("symbols = [\"{}\", 1 2]\n", "A".repeat(200_000)),
    )
    .unwrap();
    let (out, _) = manus(&[
        "live",
        "--config",
        cfg.to_str().unwrap(),
        "--ws-url",
        "ws://127.0.0.1:9",
        "--rest-url",
        "http://127.0.0.1:9",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err:.300}");
    assert!(err.len() < 600, "{} bytes: {err:.300}", err.len());
    assert!(err.contains("line 1, column"), "{err}");

    std::fs::write(&cfg, "exchnage = \"bybit\"\n").unwrap();
    let (out, _) = manus(&[
        "live",
        "--config",
        cfg.to_str().unwrap(),
        "--ws-url",
        "ws://127.0.0.1:9",
        "--rest-url",
        "http://127.0.0.1:9",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `exchnage`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interval_that_contradicts_the_file_is_refused() {
    let dir = temp_dir("interval");
    let csv = dir.join("one_minute.csv");
    let mut text = String::from("open_time,open,high,low,close,volume\n");
    for i in 0..60 {
        text.push_str(&format!("{},100,101,99,100.5,1\n", i * 60_000));
    }
    std::fs::write(&csv, text).unwrap();
    let path = csv.to_str().unwrap();
    for cmd in ["signals", "backtest"] {
        let (out, _) = manus(&[cmd, "--csv", path, "--interval", "5m"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("--interval 5m contradicts") && err.contains("1m apart"),
            "{cmd}: {err}"
        );
        let (out, _) = manus(&[cmd, "--csv", path, "--interval", "1m"]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
