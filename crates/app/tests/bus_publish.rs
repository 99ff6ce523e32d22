//! The bus against a real `nats-server`: `manus demo --bus` puts every record it writes and
//! every closed candle on JetStream exactly once; the publisher library keeps going while the
//! bus is unreachable, retries in order, loses nothing across a bus restart, and a record
//! published twice is stored once.

mod bus_support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use bus_support::{NatsServer, read_all};
use manus_core::record::SignalRecord;
use market_manus::bus::{BusConfig, CANDLES_STREAM, Publisher, SIGNALS_STREAM};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn demo_publishes_every_record_and_closed_candle_once() {
    let Some(nats) = NatsServer::start("demo_publishes_every_record_and_closed_candle_once") else {
        return;
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let out = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args([
            "demo",
            "--headless",
            "--symbols",
            "3",
            "--candle-ms",
            "60",
            "--drop-every",
            "8",
            "--max-candles",
            "45",
            "--bus",
            &nats.url(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(written.len() >= 45, "{} records", written.len());
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let rt = rt();
    let signals = rt.block_on(read_all(&nats.url(), SIGNALS_STREAM));
    let candles = rt.block_on(read_all(&nats.url(), CANDLES_STREAM));

    // The same lines, byte for byte, in each stream's order.
    let per_stream = |lines: Vec<(String, String)>| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, l) in lines {
            m.entry(k).or_default().push(l);
        }
        m
    };
    let key = |l: &str| {
        let r: SignalRecord = serde_json::from_str(l).unwrap();
        format!("{}.{}", r.symbol, r.interval)
    };
    let want = per_stream(written.iter().map(|l| (key(l), l.clone())).collect());
    let got = per_stream(
        signals
            .iter()
            .map(|s| (key(&s.body), s.body.clone()))
            .collect(),
    );
    assert_eq!(got, want);
    for s in &signals {
        let r: SignalRecord = serde_json::from_str(&s.body).unwrap();
        assert_eq!(
            s.subject,
            format!("manus.signals.sim.{}.{}", r.symbol, r.interval)
        );
        assert_eq!(
            s.id,
            format!("sim:{}:{}:{}", r.symbol, r.interval, r.open_time)
        );
        // When its frame was read, for end-to-end latency: during the run.
        let read = s.read_at_us.expect("a read time on every record");
        assert!(
            read >= started && read <= ended,
            "{read} outside {started}..{ended}"
        );
    }
    // One candle per record (bootstrap history is not published), same ids and open times.
    let mut candle_ids: Vec<&str> = candles.iter().map(|c| c.id.as_str()).collect();
    let mut record_ids: Vec<&str> = signals.iter().map(|s| s.id.as_str()).collect();
    candle_ids.sort();
    record_ids.sort();
    assert_eq!(candle_ids, record_ids);
    for c in &candles {
        let v: serde_json::Value = serde_json::from_str(&c.body).unwrap();
        assert!(
            v["close"].is_f64() && v["backfilled"].is_boolean(),
            "{}",
            c.body
        );
        assert!(c.subject.starts_with("manus.candles.sim."), "{}", c.subject);
    }
}

/// A record for `open_time` (minute `i`).
fn record(i: i64) -> SignalRecord {
    let line = format!(
        r#"{{"symbol":"BTCUSDT","interval":"1m","open_time":{},"close":{}.5,"signals":{{}},"confluence":"HOLD","confidence":0.0,"agreeing":[],"events":[],"votes":{{"buy":0,"sell":0,"none":0}}}}"#,
        i * 60_000,
        100 + i
    );
    serde_json::from_str(&line).unwrap()
}

#[test]
fn publishes_survive_an_unreachable_bus_and_a_restart_in_order_and_once() {
    let Some(mut nats) =
        NatsServer::reserve("publishes_survive_an_unreachable_bus_and_a_restart_in_order_and_once")
    else {
        return;
    };
    let rt = rt();
    let cfg = BusConfig::parse(&nats.url()).unwrap();
    let publisher = rt.block_on(async { Publisher::start(cfg, "test") });
    let tap = publisher.tap();
    // The bus is not there yet: the tap neither blocks nor fails.
    for i in 0..30 {
        tap.record(&record(i));
    }
    assert_eq!(tap.stats().report().published, 0);
    nats.spawn();
    assert!(rt.block_on(publisher.flush(Duration::from_secs(30))));
    assert_eq!(tap.stats().report().published, 30);

    // Down again mid-run: queued, then retried in order once it is back.
    nats.stop();
    for i in 30..60 {
        tap.record(&record(i));
    }
    nats.spawn();
    // Everything again, as a worker taking streams over would: stored once.
    for i in 0..60 {
        tap.record(&record(i));
    }
    let report = rt.block_on(publisher.finish(Duration::from_secs(60)));
    assert_eq!(report.backlog, 0, "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    assert!(report.duplicates >= 30, "{report}");

    let stored = rt.block_on(read_all(&nats.url(), SIGNALS_STREAM));
    let times: Vec<i64> = stored
        .iter()
        .map(|s| {
            serde_json::from_str::<SignalRecord>(&s.body)
                .unwrap()
                .open_time
        })
        .collect();
    let want: Vec<i64> = (0..60).map(|i| i * 60_000).collect();
    assert_eq!(times, want);
}

/// `GET path` on `addr`, the whole answer (status line, headers, body).
fn get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_shows_the_streams_on_the_bus() {
    serve_shows_the_bus("serve_shows_the_streams_on_the_bus", true);
}

/// `serve --bus` started before the bus is up (a deployment starting both at once) shows the
/// streams once it is: its reader keeps trying.
#[test]
fn serve_started_before_the_bus_shows_it_once_up() {
    serve_shows_the_bus("serve_started_before_the_bus_shows_it_once_up", false);
}

/// `serve --bus` with the bus up first (`bus_first`) or started after `serve`, then records
/// published until the live page lists their stream.
fn serve_shows_the_bus(test: &str, bus_first: bool) {
    let Some(mut nats) = (if bus_first {
        NatsServer::start(test)
    } else {
        NatsServer::reserve(test)
    }) else {
        return;
    };
    let mut serve = Command::new(env!("CARGO_BIN_EXE_manus"))
        .args([
            "serve",
            "--no-store",
            "--bind",
            "127.0.0.1:0",
            "--bus",
            &nats.url(),
        ])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // "dashboard: http://127.0.0.1:PORT/" says where it listens.
    let mut err = std::io::BufReader::new(serve.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0,
            "serve exited"
        );
        if let Some(rest) = line.trim().strip_prefix("dashboard: http://") {
            break rest.trim_end_matches('/').to_string();
        }
    };
    if !bus_first {
        // Once serve says its reader failed (nothing to connect to), the bus comes up.
        loop {
            let mut line = String::new();
            assert!(
                std::io::BufRead::read_line(&mut err, &mut line).unwrap() > 0,
                "serve exited"
            );
            if line.contains("bus reader stopped") {
                break;
            }
        }
        nats.spawn();
    }
    let rt = rt();
    let publisher =
        rt.block_on(async { Publisher::start(BusConfig::parse(&nats.url()).unwrap(), "test") });
    // The page reads new messages only: publish until one shows (the reader may start later).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    let shown = loop {
        publisher.tap().record(&record(i));
        assert!(rt.block_on(publisher.flush(Duration::from_secs(10))));
        let body = get(&addr, "/api/streams");
        if body.contains("BTCUSDT") {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no stream on the page: {body}"
        );
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(shown.starts_with("HTTP/1.1 200"), "{shown}");
    let _ = serve.kill();
    let _ = serve.wait();
}
