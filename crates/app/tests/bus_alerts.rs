//! `manus alerts run --bus` with two instances sharing the durable consumer: every move of
//! every stream on the bus is delivered once through a webhook, however the records are split
//! between them.

mod bus_support;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use bus_support::NatsServer;
use manus_core::record::SignalRecord;
use market_manus::alerts::webhook::IDEMPOTENCY_HEADER;
use market_manus::bus::{BusConfig, Publisher};

const SYMBOLS: [&str; 4] = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"];
const RECORDS: i64 = 40;

/// The decision of record `i` of symbol `k`: a seeded pattern with runs of BUY, SELL and HOLD.
fn decision(k: usize, i: i64) -> &'static str {
    let mut x = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64 / 3);
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ["BUY", "SELL", "HOLD"][(x >> 33) as usize % 3]
}

fn record(k: usize, i: i64) -> SignalRecord {
    let d = decision(k, i);
    let (conf, agreeing) = if d == "HOLD" {
        (0.0, "")
    } else {
        (1.0, "\"macd\"")
    };
    let line = format!(
        r#"{{"symbol":"{}","interval":"1m","open_time":{},"close":100.0,"signals":{{"macd":"{d}"}},"confluence":"{d}","confidence":{conf},"agreeing":[{agreeing}],"events":[],"votes":{{"buy":0,"sell":0,"none":1}}}}"#,
        SYMBOLS[k],
        i * 60_000
    );
    serde_json::from_str(&line).unwrap()
}

/// Moves of a symbol, counted from the definition: a record whose decision is BUY or SELL and
/// differs from the previous record's.
fn moves(k: usize) -> usize {
    (0..RECORDS)
        .filter(|&i| {
            let d = decision(k, i);
            d != "HOLD" && (i == 0 || decision(k, i - 1) != d)
        })
        .count()
}

type Seen = Arc<Mutex<Vec<String>>>;

async fn hook(State(seen): State<Seen>, headers: HeaderMap) -> &'static str {
    let key = headers
        .get(IDEMPOTENCY_HEADER)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(key);
    "ok"
}

fn instance(nats: &str, cfg: &std::path::Path, db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["alerts", "run", "--bus", nats, "--db", db])
        .arg("--alerts-config")
        .arg(cfg)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("manus alerts run starts")
}

#[test]
fn two_instances_deliver_each_move_once() {
    let Some(nats) = NatsServer::start("two_instances_deliver_each_move_once") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let seen: Seen = Arc::default();
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(hook).with_state(seen.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/hook")
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("alerts.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerts]\n[[alerts.webhook]]\nname = \"hook\"\nurl = \"{url}\"\n\
             [[alerts.rules]]\nname = \"every-move\"\nmin_confidence = 0.0\n\
             [alerts.delivery]\nbackoff_base_ms = 50\npoll_interval_ms = 20\n"
        ),
    )
    .unwrap();
    // One database for both (SQLite here: both instances are on this machine).
    let db = dir.path().join("alerts.db").display().to_string();
    let mut a = instance(&nats.url(), &cfg, &db);
    let mut b = instance(&nats.url(), &cfg, &db);

    let publisher =
        rt.block_on(async { Publisher::start(BusConfig::parse(&nats.url()).unwrap(), "test") });
    for i in 0..RECORDS {
        for k in 0..SYMBOLS.len() {
            publisher.tap().record(&record(k, i));
        }
    }
    let report = rt.block_on(publisher.finish(Duration::from_secs(30)));
    assert_eq!(report.backlog, 0, "{report}");

    let expected: usize = (0..SYMBOLS.len()).map(moves).sum();
    assert!(expected > 10, "the pattern has {expected} moves");
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = || {
        market_manus::store::open(Some(&db))
            .unwrap()
            .signals(&market_manus::store::SignalQuery::default())
            .unwrap()
            .len()
    };
    // Every record stored (so every alert queued), then every alert delivered.
    while stored() < SYMBOLS.len() * RECORDS as usize || seen.lock().unwrap().len() < expected {
        assert!(a.try_wait().unwrap().is_none(), "instance a exited");
        assert!(b.try_wait().unwrap().is_none(), "instance b exited");
        assert!(
            Instant::now() < deadline,
            "{} of {expected} alerts, {} records stored",
            seen.lock().unwrap().len(),
            stored()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in [&mut a, &mut b] {
        let pid = rustix::process::Pid::from_child(c);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        c.wait().unwrap();
    }
    let keys = seen.lock().unwrap().clone();
    assert_eq!(keys.len(), expected, "one delivery per move");
    assert_eq!(
        keys.iter().collect::<HashSet<_>>().len(),
        expected,
        "no alert twice"
    );
}
