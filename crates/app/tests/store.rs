//! The store's contract, run identically against SQLite and PostgreSQL. The Postgres half uses
//! the server named by `MANUS_TEST_PG_URL` (set up by `scripts/setup-test-deps`), each test in
//! a schema of its own. When the variable is unset it is skipped loudly on a dev machine and
//! fails under CI or `scripts/test` (`manus_core::testing::service_missing`).

use manus_core::record::{SignalRecord, Signals};
use manus_core::testing::candle;
use manus_core::{Action, Candle, Interval};
use market_manus::clock::now_ms;
use market_manus::store::postgres::PostgresStore;
use market_manus::store::sqlite::SqliteStore;
use market_manus::store::{
    AlertStatus, CLAIM_LEASE_MS, NewAlert, NewBacktestRun, Order, SignalQuery, Store, schema,
};
use serde_json::json;

/// Runs `f` on a fresh SQLite file, then reopens the file and runs `reopen` on it.
fn with_sqlite(f: impl FnOnce(&mut dyn Store), reopen: impl FnOnce(&mut dyn Store)) {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also on failure
    let path = dir.path().join("nested").join("manus.db");
    {
        let mut s = SqliteStore::open(&path).unwrap();
        f(&mut s);
    }
    let mut s = SqliteStore::open(&path).unwrap();
    reopen(&mut s);
}

/// The test server's URL from `MANUS_TEST_PG_URL`; `None` (after a loud SKIPPED line) when it is
/// unset on a dev machine, a test failure when it is unset under CI or `scripts/test`.
fn pg_url(test: &str) -> Option<String> {
    match std::env::var("MANUS_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            manus_core::testing::service_missing(
                &format!("postgres test '{test}'"),
                "MANUS_TEST_PG_URL is unset (scripts/setup-test-deps starts a server and writes it to target/test-env)",
            );
            None
        }
    }
}

/// Opens the test server in `schema`, naming the URL when it cannot be reached.
fn pg_open(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::open_in_schema(url, schema).unwrap_or_else(|e| {
        panic!("cannot use PostgreSQL at MANUS_TEST_PG_URL={url} (schema {schema}): {e}")
    })
}

/// Runs `f` in a fresh Postgres schema, then reconnects and runs `reopen`; see [`pg_url`] for
/// a missing server.
fn with_postgres(name: &str, f: impl FnOnce(&mut dyn Store), reopen: impl FnOnce(&mut dyn Store)) {
    let Some(url) = pg_url(name) else {
        return;
    };
    let schema = format!("t_{name}_{}", std::process::id());
    {
        let mut s = pg_open(&url, &schema);
        s.drop_schema(&schema).unwrap();
    }
    {
        let mut s = pg_open(&url, &schema);
        f(&mut s);
    }
    let mut s = pg_open(&url, &schema);
    reopen(&mut s);
    s.drop_schema(&schema).unwrap();
}

/// One test per backend for each contract function.
macro_rules! both_backends {
    ($($name:ident => $body:expr, $reopen:expr;)*) => {
        mod sqlite_backend {
            use super::*;
            $(#[test] fn $name() { with_sqlite($body, $reopen) })*
        }
        mod postgres_backend {
            use super::*;
            $(#[test] fn $name() { with_postgres(stringify!($name), $body, $reopen) })*
        }
    };
}

fn record(symbol: &str, interval: Interval, open_time: i64, action: Action) -> SignalRecord {
    SignalRecord {
        symbol: symbol.to_string(),
        interval,
        open_time,
        close: 100.0 + open_time as f64 / 60_000.0,
        // Deliberately not alphabetical: selection order must survive the round trip.
        signals: Signals(vec![
            ("rsi_mean_reversion".into(), action),
            ("macd".into(), Action::Hold),
        ]),
        confluence: action,
        confidence: 0.5,
        agreeing: vec!["rsi_mean_reversion".into()],
        events: Vec::new(),
        votes: Default::default(),
        warming_up: false,
        latency_us: Some(42),
        backfilled: None,
        stale: Some(false),
        exchange_time: None,
    }
}

fn alert(rule: &str, notifier: &str) -> NewAlert {
    NewAlert {
        rule: rule.into(),
        notifier: notifier.into(),
        message: format!("{rule} via {notifier}"),
        skipped: None,
    }
}

fn migrations_are_applied_once(s: &mut dyn Store) {
    assert_eq!(s.schema_version().unwrap(), schema::latest_version());
}

fn candles_dedupe_by_key(s: &mut dyn Store) {
    let m = 60_000;
    let first: Vec<Candle> = (0..3).map(|i| candle(i, 10.0 + i as f64)).collect();
    assert_eq!(
        s.upsert_candles("binance", "BTCUSDT", Interval::M1, &first)
            .unwrap(),
        3
    );
    // Overlaps bar 2 with a corrected close, adds bar 3.
    let second = vec![candle(2, 99.0), candle(3, 13.0)];
    s.upsert_candles("binance", "BTCUSDT", Interval::M1, &second)
        .unwrap();
    // Other series must not leak into the range.
    s.upsert_candles("bybit", "BTCUSDT", Interval::M1, &[candle(0, 1.0)])
        .unwrap();
    s.upsert_candles("binance", "BTCUSDT", Interval::M5, &[candle(0, 1.0)])
        .unwrap();
    let got = s
        .candles_range("binance", "BTCUSDT", Interval::M1, 0, i64::MAX)
        .unwrap();
    let closes: Vec<f64> = got.iter().map(|c| c.close).collect();
    assert_eq!(closes, vec![10.0, 11.0, 99.0, 13.0]);
    assert_eq!(got[0], first[0], "every field round-trips");
    let mid = s
        .candles_range("binance", "BTCUSDT", Interval::M1, m, 3 * m)
        .unwrap();
    assert_eq!(
        mid.iter().map(|c| c.open_time).collect::<Vec<_>>(),
        vec![m, 2 * m]
    );
}

fn candles_survive_reopen(s: &mut dyn Store) {
    let got = s
        .candles_range("binance", "BTCUSDT", Interval::M1, 0, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), 4);
}

fn signal_and_outbox_are_written_once(s: &mut dyn Store) {
    let r = record("BTCUSDT", Interval::M1, 60_000, Action::Buy);
    let outbox = [alert("strong", "telegram"), alert("strong", "discord")];
    assert!(s.insert_signal("binance", &r, &outbox).unwrap());
    // A replay (restart, second instance) writes nothing and queues nothing.
    assert!(!s.insert_signal("binance", &r, &outbox).unwrap());
    let mut changed = r.clone();
    changed.confluence = Action::Sell;
    assert!(
        !s.insert_signal("binance", &changed, &[alert("other", "x")])
            .unwrap()
    );
    // The same candle from another exchange is its own record.
    assert!(s.insert_signal("bybit", &r, &[]).unwrap());
    let all = s.alerts(None, 100).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter()
            .all(|a| a.status == AlertStatus::Pending && a.attempts == 0)
    );
    assert_eq!(all[0].message, "strong via telegram");
    assert_eq!(all[0].symbol, "BTCUSDT");
    assert_eq!(all[0].interval, Interval::M1);
    assert_eq!(all[0].open_time, 60_000);
    let back = s.signals(&SignalQuery::default()).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(
        back[0].record, r,
        "the record round-trips exactly, order included"
    );
}

fn signals_survive_reopen(s: &mut dyn Store) {
    assert_eq!(s.signals(&SignalQuery::default()).unwrap().len(), 2);
    assert_eq!(s.alerts(None, 100).unwrap().len(), 2);
    let r = record("BTCUSDT", Interval::M1, 60_000, Action::Buy);
    assert!(
        !s.insert_signal("binance", &r, &[alert("strong", "telegram")])
            .unwrap()
    );
}

fn signal_queries_filter_and_page(s: &mut dyn Store) {
    let m = 60_000;
    let actions = [
        Action::Buy,
        Action::Hold,
        Action::Sell,
        Action::Buy,
        Action::Hold,
    ];
    for (i, a) in actions.iter().enumerate() {
        let r = record("ETHUSDT", Interval::M1, i as i64 * m, *a);
        assert!(s.insert_signal("binance", &r, &[]).unwrap());
    }
    s.insert_signal(
        "binance",
        &record("ETHUSDT", Interval::M5, 0, Action::Buy),
        &[],
    )
    .unwrap();
    s.insert_signal(
        "binance",
        &record("BTCUSDT", Interval::M1, 0, Action::Buy),
        &[],
    )
    .unwrap();
    let base = SignalQuery {
        symbol: Some("ETHUSDT".into()),
        interval: Some(Interval::M1),
        ..SignalQuery::default()
    };
    let times = |q: &SignalQuery, s: &mut dyn Store| -> Vec<i64> {
        s.signals(q)
            .unwrap()
            .iter()
            .map(|x| x.record.open_time)
            .collect()
    };
    assert_eq!(times(&base, s), vec![0, m, 2 * m, 3 * m, 4 * m]);
    let buys = SignalQuery {
        decision: Some(Action::Buy),
        ..base.clone()
    };
    assert_eq!(times(&buys, s), vec![0, 3 * m]);
    let since = SignalQuery {
        since: Some(2 * m),
        until: Some(4 * m),
        ..base.clone()
    };
    assert_eq!(times(&since, s), vec![2 * m, 3 * m]);
    let page = SignalQuery {
        limit: Some(2),
        offset: 1,
        ..base.clone()
    };
    assert_eq!(times(&page, s), vec![m, 2 * m]);
    let newest = SignalQuery {
        limit: Some(2),
        order: Order::Desc,
        ..base.clone()
    };
    assert_eq!(times(&newest, s), vec![4 * m, 3 * m]);
    let other_exchange = SignalQuery {
        exchange: Some("bybit".into()),
        ..base.clone()
    };
    assert!(times(&other_exchange, s).is_empty());
    assert_eq!(
        s.last_signal_open_time("binance", "ETHUSDT", Interval::M1)
            .unwrap(),
        Some(4 * m)
    );
    assert_eq!(
        s.last_signal("binance", "ETHUSDT", Interval::M1)
            .unwrap()
            .map(|r| r.confluence),
        Some(Action::Hold)
    );
    assert_eq!(
        s.last_signal_open_time("binance", "ETHUSDT", Interval::H1)
            .unwrap(),
        None
    );
}

fn signal_queries_after_reopen(s: &mut dyn Store) {
    assert_eq!(
        s.last_signal_open_time("binance", "ETHUSDT", Interval::M1)
            .unwrap(),
        Some(4 * 60_000)
    );
}

fn backtest_runs_round_trip(s: &mut dyn Store) {
    let a = NewBacktestRun {
        params: json!({"symbol": "BTCUSDT", "strategies": ["macd"], "fee_bps": 7.5}),
        metrics: json!({"total_return": 0.12, "trades": 3}),
        equity: json!([[0, 1000.0], [60000, 1010.5]]),
        trades: json!([{"side": "BUY", "price": 1.5}]),
    };
    let b = NewBacktestRun {
        params: json!({"symbol": "ETHUSDT"}),
        ..NewBacktestRun::default()
    };
    let ida = s.insert_backtest_run(&a).unwrap();
    let idb = s.insert_backtest_run(&b).unwrap();
    assert!(idb > ida);
    let runs = s.backtest_runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].id, idb, "newest first");
    assert_eq!(runs[1].params, a.params);
    assert_eq!(runs[1].metrics, a.metrics);
    assert_eq!(runs[1].equity, a.equity);
    assert_eq!(runs[1].trades, a.trades);
    assert_eq!(s.backtest_runs(1).unwrap().len(), 1);
}

fn backtest_runs_after_reopen(s: &mut dyn Store) {
    assert_eq!(s.backtest_runs(10).unwrap().len(), 2);
}

fn outbox_claims_retries_and_finishes(s: &mut dyn Store) {
    let r1 = record("BTCUSDT", Interval::M1, 0, Action::Buy);
    let r2 = record("BTCUSDT", Interval::M1, 60_000, Action::Sell);
    s.insert_signal("binance", &r1, &[alert("a", "tg"), alert("a", "hook")])
        .unwrap();
    s.insert_signal("binance", &r2, &[alert("a", "tg")])
        .unwrap();
    let now = now_ms() + 1_000;
    let claimed = s.due_alerts(now, 2).unwrap();
    assert_eq!(claimed.len(), 2, "limit is honoured");
    assert!(claimed.iter().all(|a| a.attempts == 1));
    assert!(claimed[0].id < claimed[1].id, "oldest first");
    // Claimed rows are leased: only the third is due now.
    let rest = s.due_alerts(now, 10).unwrap();
    assert_eq!(rest.len(), 1);
    assert!(s.due_alerts(now, 10).unwrap().is_empty());

    s.mark_delivered(claimed[0].id, now).unwrap();
    s.mark_retry(claimed[1].id, now + 5_000, "HTTP 500")
        .unwrap();
    s.mark_failed(rest[0].id, "HTTP 400: chat not found")
        .unwrap();
    assert!(s.due_alerts(now + 4_999, 10).unwrap().is_empty());
    let again = s.due_alerts(now + 5_000, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[1].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));
    // A late acknowledgement of a finished row changes nothing.
    s.mark_retry(claimed[0].id, now, "late").unwrap();
    s.mark_failed(claimed[0].id, "late").unwrap();
    let delivered = s.alerts(Some(AlertStatus::Delivered), 10).unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].delivered_at, Some(now));
    assert_eq!(delivered[0].last_error, None);
    let failed = s.alerts(Some(AlertStatus::Failed), 10).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("HTTP 400: chat not found")
    );
    // A worker that died holding a claim releases it when the lease ends.
    assert!(
        s.due_alerts(now + 5_000 + CLAIM_LEASE_MS - 1, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.due_alerts(now + 5_000 + CLAIM_LEASE_MS, 10)
            .unwrap()
            .len(),
        1
    );
}

fn outbox_state_survives_reopen(s: &mut dyn Store) {
    let pending = s.alerts(Some(AlertStatus::Pending), 10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 3);
    assert_eq!(s.alerts(None, 10).unwrap().len(), 3);
}

fn nothing(_: &mut dyn Store) {}

both_backends! {
    migrations => migrations_are_applied_once, migrations_are_applied_once;
    candles => candles_dedupe_by_key, candles_survive_reopen;
    signals_outbox => signal_and_outbox_are_written_once, signals_survive_reopen;
    signal_queries => signal_queries_filter_and_page, signal_queries_after_reopen;
    backtests => backtest_runs_round_trip, backtest_runs_after_reopen;
    outbox => outbox_claims_retries_and_finishes, outbox_state_survives_reopen;
    empty_reopen => nothing, migrations_are_applied_once;
}

#[test]
fn sqlite_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also on failure
    let path = dir.path().join("manus.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn sqlite_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also on failure
    let path = dir.path().join("manus.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn postgres_concurrent_writers_store_one_signal() {
    let Some(url) = pg_url("postgres_concurrent_writers_store_one_signal") else {
        return;
    };
    let schema = format!("t_concurrent_{}", std::process::id());
    pg_open(&url, &schema).drop_schema(&schema).unwrap();
    let r = record("BTCUSDT", Interval::M1, 0, Action::Buy);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, schema, r) = (url.clone(), schema.clone(), r.clone());
            std::thread::spawn(move || {
                let mut s = PostgresStore::open_in_schema(&url, &schema).unwrap();
                s.insert_signal("binance", &r, &[alert("a", "tg")]).unwrap()
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|w| *w)
        .count();
    let mut s = pg_open(&url, &schema);
    assert_eq!(wins, 1);
    assert_eq!(s.alerts(None, 10).unwrap().len(), 1);
    // Two workers never claim the same alert.
    let now = now_ms() + 1_000;
    let a = s.due_alerts(now, 10).unwrap();
    let mut s2 = pg_open(&url, &schema);
    assert!(s2.due_alerts(now, 10).unwrap().is_empty());
    assert_eq!(a.len(), 1);
    s.drop_schema(&schema).unwrap();
}

/// Stores three signals and two backtest runs, damages one of each through `exec` (raw SQL on
/// the same database), and checks that the rest is still served and the bad rows are named.
fn corrupt_rows_are_skipped_and_named(s: &mut dyn Store, exec: &mut dyn FnMut(&str)) {
    for t in 1..=3 {
        let r = record("BTCUSDT", Interval::M1, t * 60_000, Action::Buy);
        assert!(s.insert_signal("binance", &r, &[]).unwrap());
    }
    let good = s.insert_backtest_run(&NewBacktestRun::default()).unwrap();
    let bad = s.insert_backtest_run(&NewBacktestRun::default()).unwrap();
    exec("UPDATE signals SET record = '{\"symbol\": 42' WHERE open_time = 120000");
    exec(&format!(
        "UPDATE backtest_runs SET metrics = 'not json' WHERE id = {bad}"
    ));

    let read = s.read_signals(&SignalQuery::default()).unwrap();
    let times: Vec<i64> = read.rows.iter().map(|r| r.record.open_time).collect();
    assert_eq!(times, [60_000, 180_000]);
    assert_eq!(read.bad.len(), 1);
    assert_eq!(read.bad[0].table, "signals");
    assert!(read.bad[0].error.contains("stored JSON"), "{}", read.bad[0]);
    // The plain read serves the rest too (and warns).
    assert_eq!(s.signals(&SignalQuery::default()).unwrap().len(), 2);

    let runs = s.read_backtest_runs(10).unwrap();
    assert_eq!(runs.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [good]);
    assert_eq!(runs.bad.len(), 1);
    assert_eq!((runs.bad[0].table, runs.bad[0].id), ("backtest_runs", bad));
    assert_eq!(s.backtest_runs(10).unwrap().len(), 1);
}

#[test]
fn sqlite_corrupt_rows_are_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap(); // removed on drop, also on failure
    let path = dir.path().join("manus.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    corrupt_rows_are_skipped_and_named(&mut s, &mut |sql| {
        raw.execute(sql, []).unwrap();
    });
    // SQLite also lets a column hold a value of the wrong type: a blob where text belongs.
    raw.execute(
        "UPDATE signals SET record = X'FF00' WHERE open_time = 180000",
        [],
    )
    .unwrap();
    let read = s.read_signals(&SignalQuery::default()).unwrap();
    assert_eq!(read.rows.len(), 1);
    assert_eq!(read.bad.len(), 2);
}

#[test]
fn postgres_corrupt_rows_are_skipped_and_named() {
    let Ok(url) = std::env::var("MANUS_TEST_PG_URL") else {
        eprintln!(
            "SKIPPED postgres_corrupt_rows_are_skipped_and_named: MANUS_TEST_PG_URL is unset"
        );
        return;
    };
    let schema = format!("t_corrupt_{}", std::process::id());
    let mut s = PostgresStore::open_in_schema(&url, &schema).unwrap();
    s.drop_schema(&schema).unwrap();
    let mut s = PostgresStore::open_in_schema(&url, &schema).unwrap();
    let mut raw = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    raw.batch_execute(&format!("SET search_path TO {schema}"))
        .unwrap();
    corrupt_rows_are_skipped_and_named(&mut s, &mut |sql| {
        raw.batch_execute(sql).unwrap();
    });
    s.drop_schema(&schema).unwrap();
}
