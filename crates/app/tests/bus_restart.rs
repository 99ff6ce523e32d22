//! The bus killed mid-run under a real `manus worker`, end to end: the simulated exchange
//! serves a few streams, the worker publishes them to a private `nats-server`, the server is
//! killed (SIGKILL) until the worker's `/metrics` shows a backlog and a retried publish (about
//! ten candles, past the lease TTL) and started again on the same port and JetStream store,
//! and the worker is stopped cleanly (SIGTERM). Every candle and record the worker produced
//! (its own account: one trace line per message handed to its publisher) is in MANUS_CANDLES
//! or MANUS_SIGNALS exactly once, byte for byte; each stream gapless and strictly increasing
//! in stored order over the whole run, outage included; the candles are the exchange's.

mod bus_support;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bus_support::{MINUTE, NatsServer, Stored, assert_one_candle_apart, read_all};
use manus_exchange::sim::SimExchange;
use market_manus::bus::publish::{CandleMsg, PRODUCED_TARGET};
use market_manus::bus::{CANDLES_STREAM, SIGNALS_STREAM};

const CANDLE_MS: u64 = 500;

fn symbols(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("R{i:02}USDT")).collect()
}

fn spawn_worker(
    nats: &str,
    sim: &SimExchange,
    streams: usize,
    metrics: &str,
    log: &std::path::Path,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_manus"))
        .args(["worker", "--bus", nats, "--worker-id", "r1"])
        .args(["--exchange", "binanceus", "--interval", "1m", "--headless"])
        .args(["--symbol", &symbols(streams).join(",")])
        .args(["--ws-url", &sim.ws_url(), "--rest-url", &sim.rest_url()])
        .args(["--bootstrap", "60", "--lease-ttl", "2s"])
        .args(["--reconnect-backoff", "20ms..200ms"])
        .args(["--metrics", metrics])
        .env(
            "RUST_LOG",
            format!("info,async_nats=warn,{PRODUCED_TARGET}=trace"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("manus worker starts")
}

/// `GET /metrics` on `addr`; empty while nothing listens there yet.
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// `name` from a `/metrics` answer (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls `/metrics` (every 50 ms, at most `limit`) until `done` holds; returns that answer.
fn wait_metrics(addr: &str, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = scrape(addr);
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} within {limit:?}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One message the worker produced: its subject, id and body, from its log line
/// `... bus produced SUBJECT ID BODY`.
fn produced(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once("bus produced ")?.1;
            let (subject, rest) = rest.split_once(' ')?;
            let (id, body) = rest.split_once(' ')?;
            Some((subject.to_string(), id.to_string(), body.to_string()))
        })
        .collect()
}

/// The open time in a candle's or record's body.
fn open_time(body: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["open_time"].as_i64().expect("an open time")
}

/// Checks one kind (`signals` or `candles`): every id the worker produced is stored exactly
/// once, with the subject and body it first produced, and nothing else is stored; per stream
/// the open times are gapless and strictly increasing in stored order. Returns them.
fn check(
    what: &str,
    kind: &str,
    streams: usize,
    produced: &[(String, String, String)],
    stored: &[Stored],
) -> BTreeMap<String, Vec<i64>> {
    let prefix = format!("manus.{kind}.");
    let mut first_body: HashMap<&str, (&str, &str)> = HashMap::new();
    for (subject, id, body) in produced.iter().filter(|p| p.0.starts_with(&prefix)) {
        first_body
            .entry(id.as_str())
            .or_insert((subject.as_str(), body.as_str()));
    }
    assert!(!first_body.is_empty(), "{what}: the worker produced none");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for s in stored {
        *seen.entry(s.id.as_str()).or_default() += 1;
        let Some((subject, body)) = first_body.get(s.id.as_str()) else {
            panic!("{what}: {} stored but never produced: {}", s.id, s.body);
        };
        assert_eq!(&s.subject, subject, "{what} {}", s.id);
        assert_eq!(
            &s.body, body,
            "{what} {}: not the body produced first",
            s.id
        );
    }
    let missing: Vec<&&str> = first_body
        .keys()
        .filter(|id| !seen.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} produced but not stored, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let repeated: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{what}: stored more than once: {repeated:?}"
    );

    let mut per: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for s in stored {
        let sym = s.subject.split('.').nth(3).unwrap().to_string();
        per.entry(sym).or_default().push(open_time(&s.body));
    }
    assert_eq!(per.len(), streams, "{what}: every stream has messages");
    for (sym, times) in &per {
        assert_one_candle_apart(&format!("{what} {sym} (stored order)"), times);
    }
    per
}

/// Runs the exchange with `streams` streams and a worker on a bus of its own; kills the bus
/// once three candles of each are published, until `down_until(/metrics answer, candles
/// closed since)` holds; starts it again, waits for three more candles, stops the worker and
/// checks the streams against what it produced.
fn run(test: &str, streams: usize, given_up: bool, down_until: impl Fn(&str, u64) -> bool) {
    let Some(mut nats) = NatsServer::start(test) else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let rt = bus_support::runtime();
    let sim = bus_support::worker_market(&rt, symbols(streams), CANDLE_MS);
    let metrics = bus_support::free_addr();
    let log = logs.path().join("r1.log");
    let mut worker = spawn_worker(&nats.url(), &sim, streams, &metrics, &log);
    let per_candle = 2 * streams as u64; // a candle and a record per stream
    let closed = || sim.stats().candles_closed;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Three candles on every stream, acknowledged, with the bus up.
        wait_metrics(
            &metrics,
            "three candles published",
            Duration::from_secs(60),
            |t| metric(t, "manus_bus_published_total") >= 3 * per_candle,
        );
        nats.kill();
        let down_at = closed();
        let seen = wait_metrics(
            &metrics,
            "the outage on /metrics",
            Duration::from_secs(90),
            |t| down_until(t, closed() - down_at),
        );
        eprintln!(
            "bus down for {} candles; backlog {}",
            closed() - down_at,
            metric(&seen, "manus_bus_backlog")
        );
        nats.spawn();
        // Back: three candles of the exchange later, all the worker produced by then is
        // acknowledged, and two more candles of every stream on top.
        let up_at = closed();
        let deadline = Instant::now() + Duration::from_secs(30);
        while closed() < up_at + 3 {
            assert!(Instant::now() < deadline, "the exchange stalled");
            std::thread::sleep(Duration::from_millis(50));
        }
        let queued = metric(&scrape(&metrics), "manus_bus_queued_total");
        let end = wait_metrics(&metrics, "publishing again", Duration::from_secs(60), |t| {
            metric(t, "manus_bus_published_total") >= queued + 2 * per_candle
                && metric(t, "manus_bus_backlog") == 0
        });
        let lease = |n: &str| metric(&end, n);
        eprintln!(
            "leases: {} acquired, {} lost; streams: {} started, {} stopped",
            lease("manus_worker_leases_acquired_total"),
            lease("manus_worker_leases_lost_total"),
            lease("manus_worker_stream_starts_total"),
            lease("manus_worker_stream_stops_total"),
        );
    }));
    // A clean stop, so each stream's last records are on the bus.
    let pid = rustix::process::Pid::from_child(&worker);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let status = worker.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let dump = || {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("bus produced "))
            .collect();
        eprintln!("--- r1 (without the produced lines)\n{}", lines.join("\n"));
    };
    if let Err(e) = result {
        dump();
        std::panic::resume_unwind(e);
    }
    let signals = rt.block_on(read_all(&nats.url(), SIGNALS_STREAM));
    let candles = rt.block_on(read_all(&nats.url(), CANDLES_STREAM));
    let made = produced(&text);
    let result = std::panic::catch_unwind(|| {
        assert!(status.success(), "worker exited with {status}");
        eprintln!(
            "{} produced, {} records and {} candles stored",
            made.len(),
            signals.len(),
            candles.len()
        );
        let recs = check("records", "signals", streams, &made, &signals);
        let cands = check("candles", "candles", streams, &made, &candles);
        assert_eq!(recs, cands, "a record for every candle, and no other");
        // A stream given up and taken again resumed from the bus: the candles closed while
        // it was stopped were fetched over REST.
        let backfilled = candles
            .iter()
            .filter(|c| {
                serde_json::from_str::<CandleMsg>(&c.body)
                    .unwrap()
                    .backfilled
            })
            .count();
        eprintln!("{backfilled} candles backfilled");
        if given_up {
            assert!(backfilled > 0, "no candle backfilled after a resume");
        }
        // Over the whole run, the outage included: the same span for every stream.
        let first = cands.values().map(|t| t[0]).min().unwrap();
        let last = cands.values().map(|t| t[t.len() - 1]).max().unwrap();
        assert!(
            last - first >= 10 * MINUTE,
            "messages span {} candles",
            (last - first) / MINUTE
        );
        for (sym, t) in &cands {
            assert!(t[0] - first <= MINUTE, "{sym} started late");
            assert!(last - t[t.len() - 1] <= MINUTE, "{sym} ended early");
        }
        // The candles are the exchange's, value for value.
        for c in &candles {
            let m: CandleMsg = serde_json::from_str(&c.body).unwrap();
            let t = m.candle.open_time;
            let truth = sim.closed_candles(&m.symbol);
            let want = truth
                .iter()
                .find(|k| k.open_time == t)
                .unwrap_or_else(|| panic!("{} {t}: not a candle the exchange closed", m.symbol));
            assert_eq!(&m.candle, want, "{}", m.symbol);
        }
        // The worker's own count agrees: nothing dropped, nothing left unacknowledged.
        let exit = text
            .lines()
            .rev()
            .find(|l| l.contains("worker r1 stopped"))
            .expect("an exit line");
        eprintln!("{exit}");
        assert!(
            exit.contains(" 0 dropped") && exit.contains(" 0 unacknowledged"),
            "{exit}"
        );
        // And its trace is whole: a line for every message it acknowledged.
        let published: usize = exit
            .split_once("bus: ")
            .and_then(|(_, r)| r.split(' ').next()?.parse().ok())
            .expect("a published count");
        assert_eq!(published, made.len(), "{exit}");
    });
    if let Err(e) = result {
        dump();
        std::panic::resume_unwind(e);
    }
    drop(sim);
}

/// Killed until the worker's `/metrics` shows the outage: a candle of every stream waiting
/// for the bus, and publishes that timed out and are retried (the client's ack timeout, 5 s:
/// past the lease TTL, so the leases expire on the server meanwhile); four candles at least.
#[test]
fn a_bus_killed_mid_run_loses_nothing_a_worker_produced() {
    const STREAMS: u64 = 8;
    run(
        "a_bus_killed_mid_run_loses_nothing_a_worker_produced",
        STREAMS as usize,
        false,
        |t, candles| {
            metric(t, "manus_bus_backlog") >= 2 * STREAMS
                && metric(t, "manus_bus_retries_total") >= 1
                && candles >= 4
        },
    );
}

/// Down long enough for the worker to give its stream up (its lease round times out while
/// the bus is away, about 15 s: hence one stream only) and two candles more: the stream is
/// stopped, and started again from its last record on the bus once the bus is back, the
/// candles closed meanwhile fetched over REST.
#[test]
fn a_stream_given_up_while_the_bus_is_down_resumes_without_loss() {
    let stopped_at = std::cell::Cell::new(None);
    run(
        "a_stream_given_up_while_the_bus_is_down_resumes_without_loss",
        1,
        true,
        |t, candles| {
            if stopped_at.get().is_none() && metric(t, "manus_worker_stream_stops_total") >= 1 {
                stopped_at.set(Some(candles));
            }
            stopped_at.get().is_some_and(|at| candles >= at + 2)
        },
    );
}
