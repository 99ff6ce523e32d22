//! `serve --demo` through the binary: the live session against the simulated exchange serves the
//! dashboard, stores its records in the SQLite file under exchange `sim`, sends alerts to a
//! webhook on 127.0.0.1 as `live` does, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use market_manus::store::sqlite::SqliteStore;
use market_manus::store::{SignalQuery, Store};

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

/// A webhook receiver: answers 200 to every request and sends each request's body on.
fn webhook() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut r = BufReader::new(conn);
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let mut conn = r.into_inner();
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if tx
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

/// The first number of the sample line that starts with `series` in OpenMetrics `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn serve_demo_stores_alerts_and_serves_from_the_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("manus.db");
    let (hook_url, hooks) = webhook();
    let settings = dir.path().join("alerts.toml");
    std::fs::write(
        &settings,
        format!(
            "[alerts]\n[[alerts.webhook]]\nname = \"test\"\nurl = \"{hook_url}\"\n\n[[alerts.rules]]\nname = \"every-move\"\nmin_confidence = 0.0\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["serve", "--demo", "--bind", "127.0.0.1:0"])
        .args([
            "--demo-candle-ms",
            "40",
            "--demo-symbols",
            "BTCUSDT,ETHUSDT",
        ])
        .arg("--db")
        .arg(&db)
        .arg("--alerts-config")
        .arg(&settings)
        .env("NO_COLOR", "1")
        .env_remove("MANUS_WEB_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn manus");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("stderr open").expect("line");
        if let Some(rest) = line.strip_prefix("dashboard: http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // An alert reaches the webhook: the session's store hook evaluated the rules and delivered.
    let body = hooks
        .recv_timeout(Duration::from_secs(60))
        .expect("an alert within 60 s");
    let alert: serde_json::Value = serde_json::from_str(&body).expect("alert JSON");
    assert!(
        ["BTCUSDT", "ETHUSDT"].iter().any(|s| body.contains(s)),
        "{alert}"
    );

    // The page's figures come from the same session: records stored, header figures pushed.
    let end = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let m = get(&addr, "/metrics");
        let written = sample(&m, "manus_store_records_total{outcome=\"written\"}").unwrap_or(0.0);
        let live = sample(
            &m,
            "manus_live_live_candles{symbol=\"BTCUSDT\",interval=\"1m\"}",
        );
        if written >= 3.0 && live.is_some_and(|n| n >= 1.0) {
            break m;
        }
        assert!(Instant::now() < end, "no stored records on /metrics: {m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        sample(&metrics, "manus_store_lost_total"),
        Some(0.0),
        "{metrics}"
    );

    // SIGTERM: a clean stop (exit 0, everything queued stored) and nothing on stdout.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "serve --demo did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.is_empty(), "stdout: {out}");

    // The records are in the file, under the simulated exchange's name.
    let mut store = SqliteStore::open(&db).unwrap();
    let rows = store
        .signals(&SignalQuery {
            exchange: Some("sim".into()),
            ..SignalQuery::default()
        })
        .unwrap();
    assert!(rows.len() >= 3, "{} rows", rows.len());
    let all = store.signals(&SignalQuery::default()).unwrap();
    assert_eq!(
        all.len(),
        rows.len(),
        "records stored under another exchange"
    );
}
