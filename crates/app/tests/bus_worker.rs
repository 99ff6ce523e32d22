//! Workers sharing streams over a real `nats-server`: three `manus worker` processes and the
//! simulated exchange with 60 streams; one is killed with SIGKILL mid-run and a fourth joins
//! later. Every stream's records in MANUS_SIGNALS must be gapless, strictly increasing and
//! unique from its first to its last; the killed worker's streams must be taken over within
//! the lease TTL plus one candle; the fourth worker must get its fair share; the survivors
//! start and stop only the streams that changed hands (their `/metrics`). A worker whose
//! bus is stopped and killed mid-run loses nothing it produced.

mod bus_support;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bus_support::{MINUTE, NatsServer, assert_one_candle_apart, read_all};
use futures_util::TryStreamExt;
use manus_core::record::SignalRecord;
use market_manus::bus::lease::BUCKET;
use market_manus::bus::{CANDLES_STREAM, SIGNALS_STREAM};

const STREAMS: usize = 60;
const CANDLE_MS: u64 = 1000;
const TTL: Duration = Duration::from_secs(2);

fn symbols() -> Vec<String> {
    (0..STREAMS).map(|i| format!("S{i:02}USDT")).collect()
}

fn worker_with(
    id: &str,
    nats: &str,
    ws: &str,
    rest: &str,
    log: &std::path::Path,
    extra: &[&str],
) -> Child {
    spawn_worker(id, nats, ws, rest, log, &symbols().join(","), extra)
}

fn spawn_worker(
    id: &str,
    nats: &str,
    ws: &str,
    rest: &str,
    log: &std::path::Path,
    symbols: &str,
    extra: &[&str],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["worker", "--bus", nats, "--worker-id", id])
        .args(["--exchange", "binanceus", "--interval", "1m", "--headless"])
        .args(["--symbol", symbols])
        .args(["--ws-url", ws, "--rest-url", rest])
        .args(["--bootstrap", "60", "--lease-ttl", "2s"])
        .args(["--reconnect-backoff", "20ms..200ms"])
        .args(extra)
        .env("RUST_LOG", "info,async_nats=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("manus worker starts")
}

/// Stream lease key → owner, as the bucket holds them now.
async fn owners(kv: &jetstream::kv::Store) -> HashMap<String, String> {
    let keys: Vec<String> = kv.keys().await.unwrap().try_collect().await.unwrap();
    let mut out = HashMap::new();
    for k in keys.into_iter().filter(|k| k.starts_with("streams.")) {
        if let Ok(Some(v)) = kv.get(&k).await {
            out.insert(k, String::from_utf8(v.to_vec()).unwrap());
        }
    }
    out
}

/// Polls the bucket (every 50 ms, at most `limit`) until `done` holds; returns when it did.
async fn wait_owners(
    kv: &jetstream::kv::Store,
    what: &str,
    limit: Duration,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> (Instant, HashMap<String, String>) {
    let deadline = Instant::now() + limit;
    loop {
        let o = owners(kv).await;
        if done(&o) {
            return (Instant::now(), o);
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}: {o:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(o: &HashMap<String, String>, id: &str) -> usize {
    o.values().filter(|v| *v == id).count()
}

/// `GET path` on `addr`: the whole answer.
fn http_get(addr: &str, path: &str) -> String {
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
fn workers_share_streams_fail_over_and_rebalance_without_a_gap() {
    let Some(nats) =
        NatsServer::start("workers_share_streams_fail_over_and_rebalance_without_a_gap")
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let rt = bus_support::runtime();
    let sim = bus_support::worker_market(&rt, symbols(), CANDLE_MS);
    let (ws, rest) = (sim.ws_url(), sim.rest_url());
    let url = nats.url();
    let log = |id: &str| logs.path().join(format!("{id}.log"));
    let metrics_of: BTreeMap<&str, String> = ["w1", "w2", "w3", "w4"]
        .into_iter()
        .map(|id| (id, bus_support::free_addr()))
        .collect();
    let mut workers: BTreeMap<&str, Child> = ["w1", "w2", "w3"]
        .into_iter()
        .map(|id| {
            let m = ["--metrics", metrics_of[id].as_str()];
            (id, worker_with(id, &url, &ws, &rest, &log(id), &m))
        })
        .collect();

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let js = jetstream::new(async_nats::connect(&url).await.unwrap());
            // The workers create the bucket; wait for it.
            let deadline = Instant::now() + Duration::from_secs(30);
            let kv = loop {
                if let Ok(kv) = js.get_key_value(BUCKET).await {
                    break kv;
                }
                assert!(Instant::now() < deadline, "no lease bucket");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let (_, o) = wait_owners(
                &kv,
                "60 streams shared by 3",
                Duration::from_secs(30),
                |o| o.len() == STREAMS && ["w1", "w2", "w3"].iter().all(|w| count(o, w) == 20),
            )
            .await;
            assert_eq!(o.len(), STREAMS);
            // A few candles with everyone up.
            tokio::time::sleep(Duration::from_millis(3 * CANDLE_MS)).await;

            let victim: Vec<String> = o
                .iter()
                .filter(|(_, w)| *w == "w1")
                .map(|(k, _)| k.clone())
                .collect();
            let mut w1 = workers.remove("w1").unwrap();
            w1.kill().unwrap(); // SIGKILL: no release, its leases must expire
            let killed = Instant::now();
            w1.wait().unwrap();
            let (taken, _) = wait_owners(
                &kv,
                "the killed worker's streams taken over",
                Duration::from_secs(20),
                |o| victim.iter().all(|k| o.get(k).is_some_and(|w| w != "w1")),
            )
            .await;
            let takeover = taken - killed;
            eprintln!("takeover after SIGKILL: {takeover:?}");
            assert!(
                takeover <= TTL + Duration::from_millis(CANDLE_MS),
                "takeover took {takeover:?}"
            );
            wait_owners(
                &kv,
                "30 each for the survivors",
                Duration::from_secs(20),
                |o| o.len() == STREAMS && count(o, "w2") == 30 && count(o, "w3") == 30,
            )
            .await;
            tokio::time::sleep(Duration::from_millis(3 * CANDLE_MS)).await;

            let metrics = metrics_of["w4"].clone();
            workers.insert(
                "w4",
                worker_with("w4", &url, &ws, &rest, &log("w4"), &["--metrics", &metrics]),
            );
            wait_owners(
                &kv,
                "a fair share for the joiner",
                Duration::from_secs(30),
                |o| o.len() == STREAMS && ["w2", "w3", "w4"].iter().all(|w| count(o, w) == 20),
            )
            .await;
            // Its /metrics says so (the gauge is set at the end of the lease round that took
            // the last one: poll).
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = http_get(&metrics, "/metrics");
                if text.contains("\nmanus_worker_owned_streams 20\n") {
                    assert!(
                        text.contains("\nmanus_worker_leases_acquired_total 20\n"),
                        "{text}"
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "{text}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(4 * CANDLE_MS)).await;
            // The takeover and the join changed the survivors' stream sets: only the streams
            // that changed were started or stopped (each stream once per lease taken), and no
            // feed was restarted whole, so the streams they kept never reconnected.
            for id in ["w2", "w3", "w4"] {
                let text = http_get(&metrics_of[id], "/metrics");
                let acquired = metric(&text, "manus_worker_leases_acquired_total");
                let released = metric(&text, "manus_worker_leases_released_total")
                    + metric(&text, "manus_worker_leases_lost_total");
                assert!(acquired >= 20, "{id}: {text}");
                assert_eq!(
                    metric(&text, "manus_worker_stream_starts_total"),
                    acquired,
                    "{id}: {text}"
                );
                assert_eq!(
                    metric(&text, "manus_worker_stream_stops_total"),
                    released,
                    "{id}: {text}"
                );
                assert_eq!(metric(&text, "manus_worker_feed_restarts_total"), 0, "{id}");
            }
        });
    }));
    // A clean stop (SIGTERM) for the others, so each stream's last records are on the bus.
    for (_, mut c) in std::mem::take(&mut workers) {
        let pid = rustix::process::Pid::from_child(&c);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = c.wait();
    }
    if let Err(e) = result {
        for id in ["w1", "w2", "w3", "w4"] {
            if let Ok(text) = std::fs::read_to_string(log(id)) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                eprintln!("--- {id} (last lines, newest first)\n{}", tail.join("\n"));
            }
        }
        std::panic::resume_unwind(e);
    }

    let stored = rt.block_on(read_all(&url, SIGNALS_STREAM));
    let mut per: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
    for s in &stored {
        let r: SignalRecord = serde_json::from_str(&s.body).unwrap();
        per.entry(r.symbol.clone())
            .or_default()
            .push((r.open_time, r.backfilled == Some(true)));
    }
    assert_eq!(per.len(), STREAMS, "every stream has records");
    let mut backfilled = 0;
    for (sym, recs) in &per {
        let times: Vec<i64> = recs.iter().map(|r| r.0).collect();
        assert_one_candle_apart(sym, &times);
        backfilled += recs.iter().filter(|r| r.1).count();
    }
    // Every stream ran through the whole test, over the kill and the join (about 10
    // candles at least): its records start and end with the others', give or take a
    // restart's candle or two.
    let first = per.values().map(|r| r[0].0).min().unwrap();
    let last = per.values().map(|r| r[r.len() - 1].0).max().unwrap();
    assert!(
        last - first >= 10 * MINUTE,
        "records span {} candles",
        (last - first) / MINUTE
    );
    for (sym, recs) in &per {
        assert!(recs[0].0 - first <= 2 * MINUTE, "{sym} started late");
        assert!(
            last - recs[recs.len() - 1].0 <= 2 * MINUTE,
            "{sym} ended early"
        );
    }
    // The killed worker's streams resumed from the bus: what closed meanwhile was backfilled.
    assert!(backfilled > 0, "no backfilled record after a takeover");
    drop(sim);
}

/// `name` from a `/metrics` answer (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Per stream (the subject's symbol), the open times of a stream's messages in stored order.
fn open_times(stored: &[bus_support::Stored]) -> BTreeMap<String, Vec<i64>> {
    let mut per: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in stored {
        let v: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        let sym = s.subject.split('.').nth(3).unwrap().to_string();
        per.entry(sym)
            .or_default()
            .push(v["open_time"].as_i64().expect("an open time"));
    }
    per
}

/// Every stream gapless, strictly increasing and unique, all of them over the same span (give
/// or take `slack` candles at either end), at least `min_span` candles long.
fn assert_gapless(what: &str, per: &BTreeMap<String, Vec<i64>>, streams: usize, min_span: i64) {
    assert_eq!(per.len(), streams, "{what}: every stream has messages");
    for (sym, times) in per {
        assert_one_candle_apart(&format!("{what} {sym}"), times);
    }
    let first = per.values().map(|t| t[0]).min().unwrap();
    let last = per.values().map(|t| t[t.len() - 1]).max().unwrap();
    assert!(
        last - first >= min_span * MINUTE,
        "{what}: messages span {} candles",
        (last - first) / MINUTE
    );
    for (sym, t) in per {
        assert!(t[0] - first <= 2 * MINUTE, "{what} {sym} started late");
        assert!(
            last - t[t.len() - 1] <= 2 * MINUTE,
            "{what} {sym} ended early"
        );
    }
}

/// The bus goes away twice while a worker runs: stopped (SIGTERM), then killed (SIGKILL), each
/// time for longer than the lease TTL, and started again on the same port and store. Every
/// candle and record the worker produced is on the bus at the end: each stream gapless,
/// strictly increasing and unique from start to end, in MANUS_SIGNALS and MANUS_CANDLES.
#[test]
fn a_bus_restart_mid_run_loses_nothing_the_worker_produced() {
    const N: usize = 20;
    let Some(mut nats) =
        NatsServer::start("a_bus_restart_mid_run_loses_nothing_the_worker_produced")
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let rt = bus_support::runtime();
    let syms: Vec<String> = symbols().into_iter().take(N).collect();
    let sim = bus_support::worker_market(&rt, syms.clone(), CANDLE_MS);
    let metrics = bus_support::free_addr();
    let log = logs.path().join("r1.log");
    let mut w = spawn_worker(
        "r1",
        &nats.url(),
        &sim.ws_url(),
        &sim.rest_url(),
        &log,
        &syms.join(","),
        &["--metrics", &metrics],
    );
    // Acknowledged messages so far (candles and records), once the worker serves /metrics.
    let published = || {
        std::net::TcpStream::connect(&metrics).ok().map_or(0, |_| {
            metric(&http_get(&metrics, "/metrics"), "manus_bus_published_total")
        })
    };
    // Waits until `n` more messages than `from` are acknowledged.
    let wait_published = |from: u64, n: u64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p = published();
            if p >= from + n {
                return p;
            }
            assert!(Instant::now() < deadline, "{what}: {p} published");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Three candles per stream (a candle and a record each) with the bus up.
        let p = wait_published(0, 6 * N as u64, "running");
        // Down for longer than the lease TTL: the worker's candles queue meanwhile.
        nats.stop();
        std::thread::sleep(TTL + Duration::from_millis(2 * CANDLE_MS));
        nats.spawn();
        let p = wait_published(p, 8 * N as u64, "publishing after a graceful restart");
        nats.kill();
        std::thread::sleep(TTL + Duration::from_millis(2 * CANDLE_MS));
        nats.spawn();
        wait_published(p, 8 * N as u64, "publishing after a kill");
        std::thread::sleep(Duration::from_millis(2 * CANDLE_MS));
    }));
    // A clean stop, so each stream's last records are on the bus.
    let pid = rustix::process::Pid::from_child(&w);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let _ = w.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if let Err(e) = result {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("--- r1 (last lines, newest first)\n{}", tail.join("\n"));
        std::panic::resume_unwind(e);
    }
    let signals = rt.block_on(read_all(&nats.url(), SIGNALS_STREAM));
    let candles = rt.block_on(read_all(&nats.url(), CANDLES_STREAM));
    // Both outages (about 4 candles each) lie inside the span.
    let result = std::panic::catch_unwind(|| {
        assert_gapless("records", &open_times(&signals), N, 12);
        assert_gapless("candles", &open_times(&candles), N, 12);
    });
    if let Err(e) = result {
        eprintln!("--- r1\n{text}");
        std::panic::resume_unwind(e);
    }
    // And the worker's own count agrees: nothing dropped, nothing left unacknowledged.
    let exit = text
        .lines()
        .rev()
        .find(|l| l.contains("worker r1 stopped"))
        .unwrap_or_else(|| panic!("no exit line: {text}"));
    eprintln!("{exit}");
    assert!(
        exit.contains(" 0 dropped") && exit.contains(" 0 unacknowledged"),
        "{exit}"
    );
    drop(sim);
}

#[test]
fn a_worker_needs_a_bus_and_no_local_outputs() {
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_manus"))
            .args(["worker", "--symbol", "BTCUSDT", "--interval", "1m"])
            .args(extra)
            .env_remove("MANUS_BUS")
            .env_remove("MANUS_DB")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("worker needs a bus"), "{err}");
    let (code, err) = run(&["--bus", "nats://127.0.0.1:1", "--db", "x.db"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("manus sink --bus"), "{err}");
    let (code, err) = run(&["--bus", "http://127.0.0.1:1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("scheme 'http'"), "{err}");
}
