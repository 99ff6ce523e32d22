//! HTTP tests of the web dashboard against a real server on 127.0.0.1:0: token checks, input
//! validation (4xx JSON), history paging and filters from a SQLite store, `/metrics` format,
//! and live pushes over Server-Sent Events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use manus_core::record::{SignalRecord, Signals};
use manus_core::testing::candle;
use manus_core::{Action, Interval};
use manus_exchange::feed::StreamKey;
use market_manus::stats::StreamStats;
use market_manus::store::sqlite::SqliteStore;
use market_manus::store::{NewBacktestRun, Store};
use market_manus::web::{self, LiveHub, SharedStore, WebError, WebServer};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-0123456789";

fn record(symbol: &str, interval: Interval, i: i64, action: Action) -> SignalRecord {
    SignalRecord {
        symbol: symbol.into(),
        interval,
        open_time: 1_700_000_000_000 + i * interval.duration_ms(),
        close: 100.0 + i as f64,
        signals: Signals(vec![
            ("macd".into(), action),
            ("rsi_mean_reversion".into(), Action::Hold),
        ]),
        confluence: action,
        confidence: 0.5,
        agreeing: vec!["macd".into()],
        events: Vec::new(),
        votes: Default::default(),
        warming_up: false,
        latency_us: Some(7),
        backfilled: Some(false),
        stale: None,
        exchange_time: None,
    }
}

/// A store with 30 BTCUSDT 1m records (every third BUY, every fifth SELL, else HOLD), 10
/// ETHUSDT 5m HOLD records and one backtest run.
fn seeded_store() -> SharedStore {
    let mut s = SqliteStore::open_in_memory().expect("in-memory store");
    for i in 0..30 {
        let a = if i % 3 == 0 {
            Action::Buy
        } else if i % 5 == 0 {
            Action::Sell
        } else {
            Action::Hold
        };
        s.insert_signal("binanceus", &record("BTCUSDT", Interval::M1, i, a), &[])
            .unwrap();
    }
    for i in 0..10 {
        s.insert_signal(
            "bybit",
            &record("ETHUSDT", Interval::M5, i, Action::Hold),
            &[],
        )
        .unwrap();
    }
    s.insert_backtest_run(&NewBacktestRun {
        params: json!({"symbol": "BTCUSDT", "strategies": ["macd"]}),
        metrics: json!({"total_return_pct": 3.5, "trades": 4}),
        equity: json!([[1, 10000.0], [2, 10350.0]]),
        trades: json!([{"side": "long", "entry_time": 1, "exit_time": 2}]),
    })
    .unwrap();
    Arc::new(Mutex::new(Box::new(s) as Box<dyn Store>))
}

async fn server(token: Option<&str>) -> (WebServer, LiveHub) {
    let hub = LiveHub::new();
    let srv = web::spawn(
        "127.0.0.1:0".parse().unwrap(),
        hub.clone(),
        Some(seeded_store()),
        token.map(str::to_string),
    )
    .await
    .expect("server starts");
    (srv, hub)
}

fn client() -> reqwest::Client {
    manus_exchange::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body = if ct.starts_with("application/json") {
        serde_json::from_str(&text).unwrap()
    } else {
        Value::String(text)
    };
    (status, body)
}

#[tokio::test]
async fn pages_and_assets_are_served_offline() {
    let (srv, _hub) = server(None).await;
    for path in ["/", "/history", "/backtests"] {
        let (st, body) = get(&format!("{}{path}", srv.url())).await;
        assert_eq!(st, 200, "{path}");
        assert!(
            body.as_str()
                .unwrap()
                .contains("/assets/lightweight-charts.js")
        );
    }
    let r = client()
        .get(format!("{}/assets/lightweight-charts.js", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(r.headers().contains_key("content-security-policy"));
    assert!(r.text().await.unwrap().len() > 100_000);
    let (st, body) = get(&format!("{}/assets/nope.js", srv.url())).await;
    assert_eq!(st, 404);
    assert!(body["error"].as_str().unwrap().contains("nope.js"));
    srv.shutdown().await;
}

#[tokio::test]
async fn invalid_inputs_get_clear_400s() {
    let (srv, _hub) = server(None).await;
    let cases = [
        ("/api/signals?symbol=BTC/USDT", "invalid symbol"),
        ("/api/signals?interval=7m", "invalid interval"),
        ("/api/signals?decision=MAYBE", "invalid decision"),
        ("/api/signals?from=yesterday", "invalid from"),
        (
            "/api/signals?from=2024-02-01&to=2024-01-01",
            "empty date range",
        ),
        ("/api/signals?limit=0", "invalid limit"),
        ("/api/signals?limit=100000", "invalid limit"),
        ("/api/signals?offset=-1", "invalid offset"),
        ("/api/signals?order=sideways", "invalid order"),
        ("/api/signals?sql=1", "unknown parameter 'sql'"),
        ("/api/signals?symbol=A&symbol=B", "given twice"),
        ("/api/live?symbol=BTCUSDT", "missing parameter 'interval'"),
        ("/api/events?interval=1m", "missing parameter 'symbol'"),
        ("/api/backtests/abc", "invalid backtest id"),
        ("/api/backtests?limit=x", "invalid limit"),
        ("/metrics?x=1", "unknown parameter"),
    ];
    for (path, want) in cases {
        let (st, body) = get(&format!("{}{path}", srv.url())).await;
        assert_eq!(st, 400, "{path}: {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{path}: '{msg}' lacks '{want}'");
    }
    let (st, body) = get(&format!(
        "{}/api/live?symbol=XRPUSDT&interval=1m",
        srv.url()
    ))
    .await;
    assert_eq!(st, 404);
    assert!(body["error"].as_str().unwrap().contains("XRPUSDT"));
    let (st, _) = get(&format!("{}/api/backtests/999", srv.url())).await;
    assert_eq!(st, 404);
    let (st, _) = get(&format!("{}/no/such/page", srv.url())).await;
    assert_eq!(st, 404);
    srv.shutdown().await;
}

#[tokio::test]
async fn signals_filter_and_page() {
    let (srv, _hub) = server(None).await;
    let (st, all) = get(&format!("{}/api/signals?limit=1000", srv.url())).await;
    assert_eq!(st, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 40);
    assert_eq!(all["has_more"], false);

    let (_, buys) = get(&format!(
        "{}/api/signals?symbol=btcusdt&interval=1m&decision=buy&limit=1000",
        srv.url()
    ))
    .await;
    let items = buys["items"].as_array().unwrap();
    assert_eq!(items.len(), 10); // i = 0, 3, ..., 27
    for it in items {
        assert_eq!(it["symbol"], "BTCUSDT");
        assert_eq!(it["confluence"], "BUY");
        assert_eq!(it["exchange"], "binanceus");
    }
    // Newest first by default.
    let t: Vec<i64> = items
        .iter()
        .map(|i| i["open_time"].as_i64().unwrap())
        .collect();
    assert!(t.windows(2).all(|w| w[0] > w[1]), "{t:?}");

    // Paging: 30 BTC rows in pages of 12.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (_, page) = get(&format!(
            "{}/api/signals?symbol=BTCUSDT&limit=12&offset={offset}&order=asc",
            srv.url()
        ))
        .await;
        let items = page["items"].as_array().unwrap();
        seen.extend(items.iter().map(|i| i["open_time"].as_i64().unwrap()));
        if page["has_more"] == false {
            break;
        }
        offset += 12;
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // Date range (ms, end exclusive) and exchange filter.
    let from = 1_700_000_000_000i64 + 10 * 60_000;
    let to = from + 5 * 60_000;
    let (_, r) = get(&format!(
        "{}/api/signals?exchange=binanceus&from={from}&to={to}",
        srv.url()
    ))
    .await;
    assert_eq!(r["items"].as_array().unwrap().len(), 5);
    let (_, r) = get(&format!("{}/api/signals?exchange=bybit", srv.url())).await;
    assert_eq!(r["items"].as_array().unwrap().len(), 10);

    let (st, bt) = get(&format!("{}/api/backtests", srv.url())).await;
    assert_eq!(st, 200);
    let id = bt["items"][0]["id"].as_i64().unwrap();
    assert!(bt["items"][0].get("equity").is_none());
    let (st, one) = get(&format!("{}/api/backtests/{id}", srv.url())).await;
    assert_eq!(st, 200);
    assert_eq!(one["metrics"]["trades"], 4);
    assert_eq!(one["equity"].as_array().unwrap().len(), 2);
    srv.shutdown().await;
}

#[tokio::test]
async fn history_without_a_store_is_a_503() {
    let srv = web::spawn("127.0.0.1:0".parse().unwrap(), LiveHub::new(), None, None)
        .await
        .unwrap();
    let (st, body) = get(&format!("{}/api/signals", srv.url())).await;
    assert_eq!(st, 503);
    assert!(body["error"].as_str().unwrap().contains("--db"));
    srv.shutdown().await;
}

#[tokio::test]
async fn token_is_checked_on_every_request() {
    let (srv, _hub) = server(Some(TOKEN)).await;
    let c = client();
    for path in [
        "/",
        "/api/health",
        "/api/signals",
        "/metrics",
        "/assets/app.js",
    ] {
        let url = format!("{}{path}", srv.url());
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without token");
        assert!(r.headers().contains_key("www-authenticate"));
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("token"));
        // The error never echoes the expected token.
        assert!(!body.to_string().contains(TOKEN));
        let r = c
            .get(&url)
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} wrong token");
        let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} header token");
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = c
            .get(format!("{url}{sep}token={TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} query token");
    }
    // The event stream (the page's push channel) is guarded too.
    let r = c
        .get(format!(
            "{}/api/events?symbol=BTCUSDT&interval=1m",
            srv.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The page itself carries no secret.
    let page = c
        .get(format!("{}/?token={TOKEN}", srv.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(TOKEN));
    srv.shutdown().await;
}

#[tokio::test]
async fn non_loopback_bind_needs_a_token_and_foreign_hosts_are_refused() {
    let e = web::spawn("0.0.0.0:0".parse().unwrap(), LiveHub::new(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(e, WebError::Policy(_)), "{e}");
    assert!(e.to_string().contains("without a token"), "{e}");
    // Without a token, a request naming another host (DNS rebinding) is refused.
    let (srv, _hub) = server(None).await;
    let r = client()
        .get(format!("{}/api/health", srv.url()))
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    srv.shutdown().await;
}

#[test]
fn serve_refuses_a_public_bind_without_token_with_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["serve", "--bind", "0.0.0.0:0", "--no-store"])
        .env_remove("MANUS_WEB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["serve", "--bind", "nonsense", "--no-store"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// One parsed OpenMetrics exposition: samples by `name{labels}`, and each family's type.
struct Exposition {
    samples: std::collections::HashMap<String, f64>,
    types: std::collections::HashMap<String, String>,
}

/// Parses OpenMetrics text strictly enough to catch a malformed line: HELP and TYPE before a
/// family's samples, counter samples named `<family>_total`, label values quoted, numeric
/// values, and `# EOF` as the last line.
fn parse_openmetrics(text: &str) -> Exposition {
    let mut samples = std::collections::HashMap::new();
    let mut types = std::collections::HashMap::<String, String>::new();
    let mut helped = std::collections::HashSet::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "no '# EOF' at the end:\n{text}"
    );
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !n.as_bytes()[0].is_ascii_digit()
    };
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name_ok(name) && !help.is_empty(), "bad HELP '{line}'");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: '{line}'");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "twice: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment '{line}'");
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in '{line}'"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad name in '{line}'");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').expect("label k=v");
            assert!(name_ok(k), "bad label name in '{line}'");
            assert!(
                val.len() >= 2 && val.starts_with('"') && val.ends_with('"'),
                "{line}"
            );
        }
        let family = match name.strip_suffix("_total") {
            Some(f) if types.get(f).is_some_and(|k| k == "counter") => f,
            _ => name,
        };
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("sample before its TYPE: '{line}'"));
        assert!(kind != "counter" || name.ends_with("_total"), "{line}");
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "duplicate '{line}'"
        );
    }
    Exposition { samples, types }
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let (srv, hub) = server(None).await;
    let key = StreamKey {
        symbol: "BTCUSDT".into(),
        interval: Interval::M1,
    };
    hub.publish_candle(&key, &candle(1, 42.5), false);
    hub.publish_record(&record("BTCUSDT", Interval::M1, 1, Action::Sell));
    hub.publish_stats(
        &key,
        StreamStats {
            latency_p99_us: 31,
            reconnections: 2,
            stale: true,
            feed_lag_ms: None,
            ..StreamStats::default()
        },
    );
    let _ = get(&format!("{}/api/nothing", srv.url())).await; // one 404
    let r = client()
        .get(format!("{}/metrics", srv.url()))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = r.text().await.unwrap();
    let Exposition { samples, types } = parse_openmetrics(&text);
    assert_eq!(
        samples[r#"manus_stream_last_price{symbol="BTCUSDT",interval="1m"}"#],
        42.5
    );
    assert_eq!(
        samples[r#"manus_stream_signals_total{symbol="BTCUSDT",interval="1m",decision="SELL"}"#],
        1.0
    );
    assert_eq!(
        samples[r#"manus_stream_signals_total{symbol="BTCUSDT",interval="1m",decision="BUY"}"#],
        0.0
    );
    assert_eq!(
        samples[r#"manus_live_latency_p99_us{symbol="BTCUSDT",interval="1m"}"#],
        31.0
    );
    assert_eq!(
        samples[r#"manus_live_reconnections{symbol="BTCUSDT",interval="1m"}"#],
        2.0
    );
    assert_eq!(
        samples[r#"manus_live_stale{symbol="BTCUSDT",interval="1m"}"#],
        1.0
    );
    // An absent figure is left out, not shown as 0.
    assert!(!types.contains_key("manus_live_feed_lag_ms"), "{text}");
    assert_eq!(types["manus_live_uptime_s"], "gauge");
    assert_eq!(samples[r#"manus_hub_events_total{kind="record"}"#], 1.0);
    assert_eq!(samples[r#"manus_hub_events_total{kind="candle"}"#], 1.0);
    assert_eq!(types["manus_web_requests"], "counter");
    assert!(samples["manus_web_client_errors_total"] >= 1.0);
    // No store attached: no store families.
    assert!(!types.contains_key("manus_store_records"), "{text}");
    srv.shutdown().await;
}

/// Reads SSE frames until one named `want` arrives; returns its data.
async fn next_event(resp: &mut reqwest::Response, buf: &mut String, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if name == want {
                return serde_json::from_str(&data).unwrap();
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no '{want}' event within 5 s"))
            .unwrap()
            .expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn events_push_snapshot_then_live_candles_and_records() {
    let (srv, hub) = server(Some(TOKEN)).await;
    let key = StreamKey {
        symbol: "BTCUSDT".into(),
        interval: Interval::M1,
    };
    hub.publish_candle(&key, &candle(1, 10.0), false);
    let mut resp = client()
        .get(format!(
            "{}/api/events?symbol=BTCUSDT&interval=1m&token={TOKEN}",
            srv.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buf = String::new();
    let snap = next_event(&mut resp, &mut buf, "snapshot").await;
    assert_eq!(snap["candles"].as_array().unwrap().len(), 1);
    assert_eq!(snap["candles"][0]["close"], 10.0);

    // Another stream's events are not sent to this page.
    let other = StreamKey {
        symbol: "ETHUSDT".into(),
        interval: Interval::M1,
    };
    hub.publish_candle(&other, &candle(2, 99.0), true);
    hub.publish_candle(&key, &candle(2, 11.0), true);
    let c = next_event(&mut resp, &mut buf, "candle").await;
    assert_eq!(c["symbol"], "BTCUSDT");
    assert_eq!(c["forming"], true);
    assert_eq!(c["candle"]["close"], 11.0);

    let rec = record("BTCUSDT", Interval::M1, 2, Action::Buy);
    hub.publish_record(&rec);
    let r = next_event(&mut resp, &mut buf, "record").await;
    let back: SignalRecord = serde_json::from_value(r).unwrap();
    assert_eq!(back, rec);

    hub.publish_stats(
        &key,
        StreamStats {
            reconnections: 3,
            ..StreamStats::default()
        },
    );
    let s = next_event(&mut resp, &mut buf, "stats").await;
    assert_eq!(s["stats"]["reconnections"], 3);

    let (_, streams) = get(&format!("{}/api/streams?token={TOKEN}", srv.url())).await;
    assert_eq!(streams.as_array().unwrap().len(), 2);
    drop(resp);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_stored_row_is_skipped_not_a_500() {
    let dir = std::env::temp_dir().join(format!("manus-web-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("manus.db");
    let mut s = SqliteStore::open(&path).unwrap();
    for i in 0..5 {
        s.insert_signal(
            "binanceus",
            &record("BTCUSDT", Interval::M1, i, Action::Buy),
            &[],
        )
        .unwrap();
    }
    let good = s.insert_backtest_run(&NewBacktestRun::default()).unwrap();
    let bad = s.insert_backtest_run(&NewBacktestRun::default()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE signals SET record = 'garbage' WHERE id = (SELECT MIN(id) FROM signals)",
        [],
    )
    .unwrap();
    raw.execute("UPDATE backtest_runs SET trades = '[' WHERE id = ?1", [bad])
        .unwrap();
    let hub = LiveHub::new();
    let srv = web::spawn(
        "127.0.0.1:0".parse().unwrap(),
        hub,
        Some(Arc::new(Mutex::new(Box::new(s) as Box<dyn Store>))),
        None,
    )
    .await
    .unwrap();
    let (status, body) = get(&format!("{}/api/signals?symbol=BTCUSDT", srv.url())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 4);
    assert_eq!(body["skipped"], 1);
    let (status, body) = get(&format!("{}/api/backtests", srv.url())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["id"], good);
    assert_eq!(body["skipped"], 1);
    let (status, _) = get(&format!("{}/api/backtests/{good}", srv.url())).await;
    assert_eq!(status, 200);
    let (status, body) = get(&format!("{}/api/backtests/{bad}", srv.url())).await;
    assert_eq!(status, 422, "{body}");
    srv.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn store_counters_are_on_metrics() {
    use std::sync::atomic::Ordering;
    let (srv, hub) = server(None).await;
    let stats = Arc::new(market_manus::store::sink::SinkStats::default());
    stats.written.store(7, Ordering::Relaxed);
    stats.dropped.store(2, Ordering::Relaxed);
    stats.write_errors.store(3, Ordering::Relaxed);
    hub.attach_store_stats(stats);
    let text = client()
        .get(format!("{}/metrics", srv.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = parse_openmetrics(&text);
    assert_eq!(parsed.types["manus_store_records"], "counter");
    assert_eq!(parsed.samples["manus_store_queue_depth"], 0.0);
    for line in [
        "manus_store_records_total{outcome=\"written\"} 7",
        "manus_store_records_total{outcome=\"failed\"} 3",
        "manus_store_lost_total 5",
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in\n{text}");
    }
    srv.shutdown().await;
}
