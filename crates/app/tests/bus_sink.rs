//! `manus sink --bus URL --db DB` against a real `nats-server`: every record and candle on
//! the bus ends up in the store once, also across a SIGKILL of the sink and records published
//! twice; on SQLite and on PostgreSQL.

mod bus_support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bus_support::{NatsServer, read_all};
use manus_core::Interval;
use manus_core::model::Candle;
use manus_core::record::SignalRecord;
use manus_exchange::feed::StreamKey;
use market_manus::bus::{BusConfig, Publisher, SIGNALS_STREAM};
use market_manus::store::{SignalQuery, Store, postgres::PostgresStore};

const MINUTE: i64 = 60_000;

struct Db {
    arg: String,
    open: Box<dyn Fn() -> Box<dyn Store>>,
    _dir: Option<tempfile::TempDir>,
    cleanup: Option<Box<dyn Fn()>>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(f) = self.cleanup.take() {
            f();
        }
    }
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let arg = dir.path().join("sink.db").display().to_string();
    let p = arg.clone();
    Db {
        arg,
        open: Box::new(move || market_manus::store::open(Some(&p)).unwrap()),
        _dir: Some(dir),
        cleanup: None,
    }
}

fn postgres(name: &str) -> Option<Db> {
    let Ok(url) = std::env::var("MANUS_TEST_PG_URL") else {
        manus_core::testing::service_missing(name, "MANUS_TEST_PG_URL is unset");
        return None;
    };
    let schema = format!("t_bus_sink_{}", std::process::id());
    let mut s = PostgresStore::open_in_schema(&url, &schema).unwrap();
    s.drop_schema(&schema).unwrap();
    drop(PostgresStore::open_in_schema(&url, &schema).unwrap());
    let sep = if url.contains('?') { '&' } else { '?' };
    let arg = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let (u, sc) = (url.clone(), schema.clone());
    Some(Db {
        arg,
        open: Box::new(move || Box::new(PostgresStore::open_in_schema(&url, &schema).unwrap())),
        _dir: None,
        cleanup: Some(Box::new(move || {
            if let Ok(mut s) = PostgresStore::open_in_schema(&u, &sc) {
                let _ = s.drop_schema(&sc);
            }
        })),
    })
}

fn sink(nats: &str, db: &Db) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["sink", "--bus", nats, "--db", &db.arg])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("manus sink starts")
}

/// Fails with what the sink said when it has exited.
fn check_running(child: &mut Child) {
    if let Some(status) = child.try_wait().unwrap() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("the sink exited ({status}): {err}");
    }
}

/// Record `i` of a symbol: minute `i`, a close that depends on both.
fn record(symbol: &str, i: i64) -> SignalRecord {
    let line = format!(
        r#"{{"symbol":"{symbol}","interval":"1m","open_time":{},"close":{}.25,"signals":{{"ema_crossover":"BUY"}},"confluence":"BUY","confidence":1.0,"agreeing":["ema_crossover"],"events":[],"votes":{{"buy":1,"sell":0,"none":0}},"backfilled":false}}"#,
        i * MINUTE,
        100 + i + symbol.len() as i64
    );
    serde_json::from_str(&line).unwrap()
}

fn candle(r: &SignalRecord) -> Candle {
    Candle {
        open_time: r.open_time,
        close_time: r.open_time + MINUTE - 1,
        open: r.close,
        high: r.close + 1.0,
        low: r.close - 1.0,
        close: r.close,
        volume: 2.0,
    }
}

const SYMBOLS: [&str; 3] = ["AAAUSDT", "BBBUSDT", "CCCUSDT"];

fn publish(rt: &tokio::runtime::Runtime, nats: &str, range: std::ops::Range<i64>) {
    let p = rt.block_on(async { Publisher::start(BusConfig::parse(nats).unwrap(), "test") });
    let tap = p.tap();
    for i in range {
        for s in SYMBOLS {
            let r = record(s, i);
            let key = StreamKey {
                symbol: s.into(),
                interval: Interval::M1,
            };
            tap.candle(&key, &candle(&r), false);
            tap.record(&r);
        }
    }
    let report = rt.block_on(p.finish(Duration::from_secs(30)));
    assert_eq!(report.backlog, 0, "{report}");
}

fn stored(db: &Db) -> Vec<SignalRecord> {
    (db.open)()
        .signals(&SignalQuery {
            exchange: Some("test".into()),
            ..SignalQuery::default()
        })
        .unwrap()
        .into_iter()
        .map(|s| s.record)
        .collect()
}

fn wait_for(db: &Db, child: &mut Child, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = stored(db).len();
        if got >= n {
            return;
        }
        check_running(child);
        assert!(
            Instant::now() < deadline,
            "{got} of {n} records stored in 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sink_stores_the_bus_once(db: Db, name: &str) {
    let Some(nats) = NatsServer::start(name) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = nats.url();
    publish(&rt, &url, 0..40);
    let mut s = sink(&url, &db);
    wait_for(&db, &mut s, 3 * 40);
    s.kill().unwrap(); // SIGKILL: the durable consumer remembers what was acknowledged
    s.wait().unwrap();
    // More, and some of the old again (a failover's overlap): the bus keeps them once.
    publish(&rt, &url, 30..70);
    let mut s = sink(&url, &db);
    wait_for(&db, &mut s, 3 * 70);
    // Let it catch up with the candles too, then stop it cleanly.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: usize = SYMBOLS
            .iter()
            .map(|sym| {
                (db.open)()
                    .candles_range("test", sym, Interval::M1, 0, 70 * MINUTE)
                    .unwrap()
                    .len()
            })
            .sum();
        if n == 3 * 70 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} of 210 candles stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_child(&s);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(s.wait().unwrap().success());

    // The store equals the bus, record for record.
    let on_bus: BTreeMap<(String, i64), SignalRecord> = rt
        .block_on(read_all(&url, SIGNALS_STREAM))
        .iter()
        .map(|m| {
            let r: SignalRecord = serde_json::from_str(&m.body).unwrap();
            ((r.symbol.clone(), r.open_time), r)
        })
        .collect();
    let rows = stored(&db);
    assert_eq!(rows.len(), 3 * 70, "one row per record");
    let in_store: BTreeMap<(String, i64), SignalRecord> = rows
        .into_iter()
        .map(|r| ((r.symbol.clone(), r.open_time), r))
        .collect();
    assert_eq!(in_store.len(), on_bus.len());
    for (k, want) in &on_bus {
        let got = &in_store[k];
        assert_eq!(
            (got.close, got.confluence, &got.agreeing),
            (want.close, want.confluence, &want.agreeing),
            "{k:?}"
        );
    }
    let c = (db.open)()
        .candles_range("test", "BBBUSDT", Interval::M1, 0, 70 * MINUTE)
        .unwrap();
    let want: Vec<Candle> = (0..70).map(|i| candle(&record("BBBUSDT", i))).collect();
    assert_eq!(c, want);
}

#[test]
fn sqlite_sink_stores_the_bus_once() {
    sink_stores_the_bus_once(sqlite(), "sqlite_sink_stores_the_bus_once");
}

#[test]
fn postgres_sink_stores_the_bus_once() {
    let name = "postgres_sink_stores_the_bus_once";
    if let Some(db) = postgres(name) {
        sink_stores_the_bus_once(db, name);
    }
}
