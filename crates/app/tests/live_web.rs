//! `demo --web`: the live run serves the web dashboard from the same pipeline (records, stream
//! summaries, metrics), and a public bind without a token is refused before anything starts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn demo_serves_the_dashboard_from_the_live_pipeline() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["demo", "--headless", "--candle-ms", "60", "--symbols", "2"])
        .args(["--web", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn manus");
    // The bound address is logged once the server is up.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("stderr open").expect("line");
        if let Some(rest) = line.split("web dashboard on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let records = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("manus_hub_events_total{kind=\"record\"}"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // Live records (not just bootstrap candles) must reach the hub.
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = get(&addr, "/metrics");
        if records(&metrics) >= 5 {
            break;
        }
        assert!(
            Instant::now() < end,
            "no records reached the web hub: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let streams = get(&addr, "/api/streams");
    assert!(streams.contains(" 200 "), "{streams}");
    for sym in ["BTCUSDT", "ETHUSDT"] {
        assert!(streams.contains(sym), "{sym} missing: {streams}");
    }
    assert!(streams.contains("\"last_decision\""), "{streams}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn public_web_bind_without_token_is_refused_before_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args([
            "demo",
            "--headless",
            "--max-candles",
            "1",
            "--web",
            "0.0.0.0:0",
        ])
        .env_remove("MANUS_WEB_TOKEN")
        .output()
        .expect("run manus");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("token"), "{err}");
}
