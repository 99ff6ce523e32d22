//! Alert delivery end to end against local HTTP servers on 127.0.0.1:0 that answer 200, 429
//! and 500, hang, or are gone. The worker is driven pass by pass with an explicit clock, so
//! backoff is checked exactly and nothing sleeps.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use manus_core::record::{SignalRecord, Signals};
use manus_core::{Action, Interval};
use market_manus::alerts::discord::Discord;
use market_manus::alerts::rules::{AlertRule, AlertRules};
use market_manus::alerts::telegram::Telegram;
use market_manus::alerts::webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Webhook, signature};
use market_manus::alerts::worker::{AlertWorker, DeliveryPolicy, PassReport};
use market_manus::alerts::{Notifier, Outgoing, Secret, http_client};
use market_manus::clock::now_ms;
use market_manus::store::sink::SignalSink;
use market_manus::store::sqlite::SqliteStore;
use market_manus::store::{AlertStatus, NewAlert, SharedStore, shared};

/// A test's directory: removed on drop, also when the test fails.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new() -> Self {
        TempDir(tempfile::tempdir().unwrap())
    }
    fn db(&self) -> PathBuf {
        self.0.path().join("manus.db")
    }
}

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

/// What the server received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A scripted server: answers each request with the next reply (200 when none is left).
#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    fn new(replies: Vec<Reply>) -> Self {
        Script {
            replies: Arc::new(Mutex::new(replies.into())),
            seen: Arc::default(),
        }
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handler(State(s): State<Script>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    s.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let r = s
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| reply(200, r#"{"ok":true}"#));
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// Serves `script` on 127.0.0.1:0; returns the base URL.
async fn serve(script: Script) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handler).with_state(script);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A URL where nothing listens any more.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn record(t: i64, action: Action, confidence: f64) -> SignalRecord {
    SignalRecord {
        symbol: "BTCUSDT".into(),
        interval: Interval::M1,
        open_time: t * 60_000,
        close: 42_000.5,
        signals: Signals(vec![("macd".into(), action)]),
        confluence: action,
        confidence,
        agreeing: vec!["macd".into()],
        events: Vec::new(),
        votes: Default::default(),
        warming_up: false,
        latency_us: None,
        backfilled: None,
        stale: None,
        exchange_time: None,
    }
}

fn policy(max_attempts: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        max_attempts,
        base: Duration::from_millis(100),
        max: Duration::from_secs(60),
    }
}

fn open(dir: &TempDir) -> SharedStore {
    shared(Box::new(SqliteStore::open(&dir.db()).unwrap()))
}

fn client() -> reqwest::Client {
    http_client(Duration::from_secs(5)).unwrap()
}

/// Stores one BUY signal with one alert for `notifier`.
fn queue_one(store: &SharedStore, notifier: &str) {
    let mut s = store.lock().unwrap();
    let a = NewAlert {
        rule: "r".into(),
        notifier: notifier.into(),
        message: "BUY BTCUSDT".into(),
        skipped: None,
    };
    assert!(
        s.insert_signal("binance", &record(1, Action::Buy, 1.0), &[a])
            .unwrap()
    );
}

fn only_alert(store: &SharedStore) -> market_manus::store::Alert {
    let mut all = store.lock().unwrap().alerts(None, 10).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().unwrap()
}

fn report(delivered: usize, retried: usize, failed: usize) -> PassReport {
    PassReport {
        delivered,
        retried,
        failed,
    }
}

#[tokio::test]
async fn telegram_429_waits_retry_after_then_delivers_once() {
    let dir = TempDir::new();
    let store = open(&dir);
    let script = Script::new(vec![reply(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 2","parameters":{"retry_after":2}}"#,
    )]);
    let base = serve(script.clone()).await;
    let tg: Arc<dyn Notifier> = Arc::new(Telegram::new(
        "telegram",
        &base,
        Secret::new("123:TOKEN"),
        "-100",
        client(),
    ));
    queue_one(&store, "telegram");
    let w = AlertWorker::new(store.clone(), vec![tg], policy(5));
    let t0 = now_ms() + 1;
    assert_eq!(w.run_once(t0).await.unwrap(), report(0, 1, 0));
    let a = only_alert(&store);
    assert_eq!(
        a.next_attempt_at,
        t0 + 2_000,
        "retry_after beats the 100 ms backoff"
    );
    assert!(a.last_error.unwrap().contains("429"));
    assert_eq!(w.run_once(t0 + 1_999).await.unwrap(), report(0, 0, 0));
    assert_eq!(w.run_once(t0 + 2_000).await.unwrap(), report(1, 0, 0));
    // Delivered means never again.
    assert_eq!(w.run_once(t0 + 10_000_000).await.unwrap(), report(0, 0, 0));
    let seen = script.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].path, "/bot123:TOKEN/sendMessage");
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(body["chat_id"], "-100");
    assert_eq!(body["text"], "BUY BTCUSDT");
    let a = only_alert(&store);
    assert_eq!(a.status, AlertStatus::Delivered);
    assert_eq!(a.attempts, 2);
    assert_eq!(w.stats().snapshot().delivered, 1);
}

#[tokio::test]
async fn discord_500_backs_off_exponentially_then_gives_up() {
    let dir = TempDir::new();
    let store = open(&dir);
    let script = Script::new(vec![reply(500, "oops"); 10]);
    let base = serve(script.clone()).await;
    let d: Arc<dyn Notifier> = Arc::new(Discord::new(
        "discord",
        Secret::new(format!("{base}/api/webhooks/1/TOKEN")),
        client(),
    ));
    queue_one(&store, "discord");
    let w = AlertWorker::new(store.clone(), vec![d], policy(3));
    let mut t = now_ms() + 1;
    assert_eq!(w.run_once(t).await.unwrap(), report(0, 1, 0));
    assert_eq!(only_alert(&store).next_attempt_at, t + 100);
    t += 100;
    assert_eq!(w.run_once(t).await.unwrap(), report(0, 1, 0));
    assert_eq!(only_alert(&store).next_attempt_at, t + 200, "doubled");
    t += 200;
    assert_eq!(w.run_once(t).await.unwrap(), report(0, 0, 1));
    let a = only_alert(&store);
    assert_eq!(a.status, AlertStatus::Failed);
    assert!(
        a.last_error.as_deref().unwrap().contains("HTTP 500"),
        "{a:?}"
    );
    assert_eq!(w.run_once(t + 10_000_000).await.unwrap(), report(0, 0, 0));
    assert_eq!(script.seen().len(), 3);
    let body: serde_json::Value = serde_json::from_slice(&script.seen()[0].body).unwrap();
    assert_eq!(body["content"], "BUY BTCUSDT");
}

#[tokio::test]
async fn discord_retry_after_header_is_honoured() {
    let dir = TempDir::new();
    let store = open(&dir);
    let mut r = reply(429, r#"{"message":"You are being rate limited."}"#);
    r.headers.push(("retry-after", "7".into()));
    let base = serve(Script::new(vec![r])).await;
    let d: Arc<dyn Notifier> = Arc::new(Discord::new(
        "discord",
        Secret::new(format!("{base}/hook")),
        client(),
    ));
    queue_one(&store, "discord");
    let w = AlertWorker::new(store.clone(), vec![d], policy(3));
    let t = now_ms() + 1;
    w.run_once(t).await.unwrap();
    assert_eq!(only_alert(&store).next_attempt_at, t + 7_000);
}

#[tokio::test]
async fn webhook_is_signed_and_carries_an_idempotency_key() {
    let dir = TempDir::new();
    let store = open(&dir);
    let script = Script::new(vec![]);
    let base = serve(script.clone()).await;
    let h: Arc<dyn Notifier> = Arc::new(Webhook::new(
        "ops",
        &format!("{base}/hook"),
        Some(Secret::new("k3y")),
        client(),
    ));
    queue_one(&store, "ops");
    let w = AlertWorker::new(store.clone(), vec![h], policy(3));
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(1, 0, 0));
    let seen = script.seen();
    assert_eq!(seen.len(), 1);
    let sig = seen[0].headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(
        sig,
        signature(b"k3y", &seen[0].body),
        "signs the exact body"
    );
    assert_ne!(sig, signature(b"other", &seen[0].body));
    let key = seen[0].headers[IDEMPOTENCY_HEADER].to_str().unwrap();
    assert_eq!(key, only_alert(&store).idempotency_key());
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["symbol"], "BTCUSDT");
    assert_eq!(body["interval"], "1m");
    assert_eq!(body["open_time"], 60_000);
    assert_eq!(body["text"], "BUY BTCUSDT");
    assert_eq!(body["idempotency_key"], key);
}

#[tokio::test]
async fn unsigned_webhook_has_no_signature_and_4xx_is_permanent() {
    let dir = TempDir::new();
    let store = open(&dir);
    let script = Script::new(vec![reply(400, "bad chat")]);
    let base = serve(script.clone()).await;
    let h: Arc<dyn Notifier> = Arc::new(Webhook::new("hook", &base, None, client()));
    queue_one(&store, "hook");
    let w = AlertWorker::new(store.clone(), vec![h], policy(5));
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(0, 0, 1));
    assert!(!script.seen()[0].headers.contains_key(SIGNATURE_HEADER));
    let a = only_alert(&store);
    assert_eq!(a.status, AlertStatus::Failed);
    assert!(a.last_error.unwrap().contains("HTTP 400: bad chat"));
}

#[tokio::test]
async fn a_gone_server_is_retried_and_the_token_never_leaks() {
    let dir = TempDir::new();
    let store = open(&dir);
    let tg: Arc<dyn Notifier> = Arc::new(Telegram::new(
        "telegram",
        &dead_url().await,
        Secret::new("999:SUPERSECRET"),
        "1",
        client(),
    ));
    queue_one(&store, "telegram");
    let w = AlertWorker::new(store.clone(), vec![tg], policy(5));
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(0, 1, 0));
    let err = only_alert(&store).last_error.unwrap();
    assert!(err.contains("request failed"), "{err}");
    assert!(!err.contains("SUPERSECRET"), "{err}");
}

#[tokio::test]
async fn a_hanging_server_times_out_as_retryable() {
    let dir = TempDir::new();
    let store = open(&dir);
    let mut slow = reply(200, "{}");
    slow.delay = Duration::from_secs(30);
    let base = serve(Script::new(vec![slow])).await;
    let h: Arc<dyn Notifier> = Arc::new(Webhook::new(
        "hook",
        &base,
        None,
        http_client(Duration::from_millis(200)).unwrap(),
    ));
    queue_one(&store, "hook");
    let w = AlertWorker::new(store.clone(), vec![h], policy(5));
    let started = Instant::now();
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(0, 1, 0));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_unconfigured_notifier_fails_the_alert() {
    let dir = TempDir::new();
    let store = open(&dir);
    queue_one(&store, "removed");
    let w = AlertWorker::new(store.clone(), vec![], policy(5));
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(0, 0, 1));
    assert!(
        only_alert(&store)
            .last_error
            .unwrap()
            .contains("not configured")
    );
}

#[tokio::test]
async fn exactly_once_across_a_restart() {
    let dir = TempDir::new();
    let script = Script::new(vec![]);
    let base = serve(script.clone()).await;
    let mk = || -> Vec<Arc<dyn Notifier>> {
        vec![Arc::new(Webhook::new("hook", &base, None, client()))]
    };
    let rules = || {
        AlertRules::new(vec![AlertRule {
            name: "r".into(),
            symbols: vec![],
            intervals: vec![],
            min_confidence: 0.5,
            strategies: vec![],
            notifiers: vec!["hook".into()],
        }])
    };
    let feed = [
        record(0, Action::Hold, 1.0),
        record(1, Action::Buy, 0.9),
        record(2, Action::Buy, 0.9),
    ];
    {
        let store = open(&dir);
        let sink = SignalSink::spawn(store.clone(), "binance", rules(), 16, None).unwrap();
        for r in &feed {
            assert!(sink.submit(r));
        }
        sink.close();
        let w = AlertWorker::new(store.clone(), mk(), policy(5));
        assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(1, 0, 0));
    }
    // Restart: the same candles are replayed (a backfill), then the BUY continues.
    let store = open(&dir);
    let sink = SignalSink::spawn(store.clone(), "binance", rules(), 16, None).unwrap();
    for r in feed.iter().chain([&record(3, Action::Buy, 0.95)]) {
        assert!(sink.submit(r));
    }
    let stats = sink.stats();
    sink.close();
    let snap = stats.snapshot();
    assert_eq!(
        (snap.written, snap.duplicates, snap.alerts_queued),
        (1, 3, 0)
    );
    let w = AlertWorker::new(store.clone(), mk(), policy(5));
    assert_eq!(
        w.run_once(now_ms() + 100_000).await.unwrap(),
        report(0, 0, 0)
    );
    assert_eq!(script.seen().len(), 1, "one alert in all");
    assert_eq!(
        store
            .lock()
            .unwrap()
            .signals(&Default::default())
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn the_sink_never_blocks_and_counts_drops() {
    let dir = TempDir::new();
    let store = open(&dir);
    let sink = SignalSink::spawn(store.clone(), "binance", AlertRules::default(), 2, None).unwrap();
    let accepted;
    {
        // A stalled store: the writer blocks, the queue fills, submissions must not wait.
        let _held = store.lock().unwrap();
        let started = Instant::now();
        accepted = (0..10)
            .filter(|t| sink.submit(&record(*t, Action::Hold, 1.0)))
            .count();
        assert!(started.elapsed() < Duration::from_millis(500));
        let s = sink.stats().snapshot();
        assert_eq!(s.dropped as usize, 10 - accepted);
        assert!(
            accepted <= 3,
            "capacity 2 plus the one being written: {accepted}"
        );
        assert!(s.depth <= 3 && s.depth >= 1, "{s:?}");
    }
    let stats = sink.stats();
    sink.close();
    let s = stats.snapshot();
    assert_eq!(s.written as usize, accepted);
    assert_eq!(s.depth, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_worker_delivers_when_woken() {
    let dir = TempDir::new();
    let store = open(&dir);
    let script = Script::new(vec![reply(500, "once")]);
    let base = serve(script.clone()).await;
    let notifiers: Vec<Arc<dyn Notifier>> =
        vec![Arc::new(Webhook::new("hook", &base, None, client()))];
    let mut p = policy(5);
    p.base = Duration::from_millis(20);
    let w = AlertWorker::new(store.clone(), notifiers, p);
    let stats = w.stats();
    let wake = Arc::new(tokio::sync::Notify::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(w.run(wake.clone(), Duration::from_millis(20), stop_rx));
    let rules = AlertRules::new(vec![AlertRule {
        name: "r".into(),
        symbols: vec![],
        intervals: vec![],
        min_confidence: 0.0,
        strategies: vec![],
        notifiers: vec!["hook".into()],
    }]);
    let sink = SignalSink::spawn(store.clone(), "binance", rules, 8, Some(wake)).unwrap();
    sink.submit(&record(1, Action::Sell, 1.0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.snapshot().delivered < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let s = stats.snapshot();
    assert_eq!((s.delivered, s.retried, s.failed), (1, 1, 0));
    assert_eq!(script.seen().len(), 2);
    drop(sink);
}

/// The three notifiers, all pointed at `base` (the Telegram token and the Discord webhook
/// token are in their URLs).
fn all_three(base: &str) -> Vec<Arc<dyn Notifier>> {
    vec![
        Arc::new(Telegram::new(
            "telegram",
            base,
            Secret::new("999:SUPERSECRET"),
            "1",
            client(),
        )),
        Arc::new(Discord::new(
            "discord",
            Secret::new(format!("{base}/api/webhooks/1/DISCORDSECRET")),
            client(),
        )),
        Arc::new(Webhook::new(
            "webhook",
            &format!("{base}/hook"),
            Some(Secret::new("k3y")),
            client(),
        )),
    ]
}

#[tokio::test]
async fn a_redirect_is_never_followed_and_names_the_location() {
    // The other host records everything it receives; it must receive nothing.
    let other = Script::new(vec![]);
    let other_base = serve(other.clone()).await;
    let location = format!("{other_base}/collect");
    let redirects: Vec<Reply> = [307, 308, 301, 302]
        .iter()
        .cycle()
        .take(3)
        .map(|&status| {
            let mut r = reply(status, "");
            r.headers.push(("location", location.clone()));
            r
        })
        .collect();
    let endpoint = Script::new(redirects);
    let base = serve(endpoint.clone()).await;
    for n in all_three(&base) {
        let err = n.send(&Outgoing::test(1)).await.unwrap_err();
        assert!(!err.is_retryable(), "{}: {err}", n.kind());
        let text = err.to_string();
        assert!(text.contains("redirect"), "{}: {text}", n.kind());
        assert!(text.contains(&location), "{}: {text}", n.kind());
        assert!(!text.contains("SUPERSECRET"), "{text}");
        assert!(!text.contains("DISCORDSECRET"), "{text}");
    }
    assert_eq!(endpoint.seen().len(), 3);
    for s in endpoint.seen() {
        assert!(!s.headers.contains_key("referer"), "{:?}", s.headers);
    }
    assert!(other.seen().is_empty(), "{:?}", other.seen());
}

#[tokio::test]
async fn a_redirected_alert_fails_with_the_location() {
    let dir = TempDir::new();
    let store = open(&dir);
    let mut r = reply(307, "");
    r.headers
        .push(("location", "http://127.0.0.1:9/elsewhere".into()));
    let base = serve(Script::new(vec![r])).await;
    let h: Arc<dyn Notifier> = Arc::new(Webhook::new("hook", &base, None, client()));
    queue_one(&store, "hook");
    let w = AlertWorker::new(store.clone(), vec![h], policy(5));
    assert_eq!(w.run_once(now_ms() + 1).await.unwrap(), report(0, 0, 1));
    let a = only_alert(&store);
    assert_eq!(a.status, AlertStatus::Failed);
    let err = a.last_error.unwrap();
    assert!(err.contains("HTTP 307"), "{err}");
    assert!(err.contains("http://127.0.0.1:9/elsewhere"), "{err}");
}

/// A server that answers every request `500` with a body that never ends; returns its base URL
/// and the bytes it managed to write.
async fn endless_500() -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let w = w.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                while sock.write_all(chunk.as_bytes()).await.is_ok() {
                    w.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            });
        }
    });
    (format!("http://{addr}"), written)
}

#[tokio::test]
async fn an_endless_error_body_is_capped() {
    let (base, written) = endless_500().await;
    for n in all_three(&base) {
        // A generous timeout: reading the whole body would end in "timed out", not "HTTP 500".
        let started = Instant::now();
        let err = n.send(&Outgoing::test(1)).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with("HTTP 500: xxx"),
            "{}: {text:.80}",
            n.kind()
        );
        assert!(text.len() < 1024, "the error keeps a snippet only");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The client stopped reading: the server could write no more than the socket buffers hold
    // (an uncapped reader would have taken hundreds of MB in this time).
    let w = written.load(Ordering::Relaxed);
    assert!(w < 64 * 1024 * 1024, "server wrote {w} bytes");
}

#[test]
fn a_resumed_candle_that_closed_long_ago_is_recorded_not_sent_and_once_per_move_holds() {
    let dir = TempDir::new();
    let store = open(&dir);
    let rules = AlertRules::new(vec![AlertRule {
        name: "r".into(),
        symbols: vec![],
        intervals: vec![],
        min_confidence: 0.5,
        strategies: vec![],
        notifiers: vec!["hook".into()],
    }]);
    // Minutes before now: a resume after an hour's outage replays these candles.
    let minute_ago = |m: i64| {
        let mut r = record(0, Action::Hold, 0.0);
        r.open_time = (now_ms() / 60_000 - m) * 60_000;
        r.backfilled = Some(true);
        r
    };
    let with = |mut r: SignalRecord, a: Action| {
        r.confluence = a;
        r.confidence = 0.9;
        r
    };
    // A simulated market runs ahead of our clock: age is read on the exchange's clock.
    let mut ahead = with(minute_ago(-10_000), Action::Buy);
    ahead.exchange_time = Some(ahead.open_time + 90_000);
    let feed = [
        with(minute_ago(60), Action::Buy), // stale move: recorded as skipped
        with(minute_ago(59), Action::Buy), // the same move: nothing
        with(minute_ago(30), Action::Hold), // re-arms
        with(minute_ago(2), Action::Sell), // closed within two periods: sent
        with(minute_ago(1), Action::Hold), // re-arms
        ahead,                             // fresh on the exchange's clock: sent
    ];
    let sink = SignalSink::spawn(store.clone(), "binance", rules, 16, None).unwrap();
    for r in &feed {
        assert!(sink.submit(r));
    }
    let stats = sink.stats();
    sink.close();
    assert_eq!(
        stats.snapshot().alerts_queued,
        2,
        "only the fresh ones are queued"
    );
    let mut s = store.lock().unwrap();
    let skipped = s.alerts(Some(AlertStatus::Skipped), 10).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].open_time, feed[0].open_time);
    assert!(
        skipped[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("more than 2 periods")),
        "{skipped:?}"
    );
    let mut pending: Vec<i64> = s
        .alerts(Some(AlertStatus::Pending), 10)
        .unwrap()
        .iter()
        .map(|a| a.open_time)
        .collect();
    pending.sort();
    assert_eq!(pending, [feed[3].open_time, feed[5].open_time]);
    // A skipped row is never due for delivery.
    let mut due: Vec<i64> = s
        .due_alerts(now_ms() + 3_600_000, 10)
        .unwrap()
        .iter()
        .map(|a| a.open_time)
        .collect();
    due.sort();
    assert_eq!(due, pending);
}
