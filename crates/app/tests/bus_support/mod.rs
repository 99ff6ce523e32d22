//! Shared by the bus tests: a private `nats-server` with JetStream on a free loopback port and
//! a store directory of its own (so a test can restart it and never sees another test's
//! messages), and a reader of a whole stream.

#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures_util::StreamExt;

/// Where `nats-server` is: `MANUS_NATS_SERVER` (scripts/setup-test-deps writes it), else on
/// PATH, else Debian's /usr/sbin.
fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MANUS_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// A running private server.
pub struct NatsServer {
    bin: PathBuf,
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one; `None` (after [`manus_core::testing::service_missing`]) when there is no
    /// `nats-server` on this machine.
    pub fn start(test: &str) -> Option<NatsServer> {
        let Some(bin) = server_bin() else {
            manus_core::testing::service_missing(
                test,
                "no nats-server (run scripts/setup-test-deps, or set MANUS_NATS_SERVER)",
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = NatsServer {
            bin,
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        s.spawn();
        Some(s)
    }

    /// A free port with no server on it yet (for a client that must start first).
    pub fn reserve(test: &str) -> Option<NatsServer> {
        let mut s = Self::start(test)?;
        s.stop();
        Some(s)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and store; returns once it accepts.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL: no chance to write anything out) and waits.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it gracefully (SIGTERM: JetStream writes its state out) and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&c);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its subject.
    pub subject: String,
    /// Its `Nats-Msg-Id`.
    pub id: String,
    /// Its body.
    pub body: String,
    /// Its `Manus-Read-Us` (when the frame behind it was read, µs since the epoch).
    pub read_at_us: Option<u64>,
}

/// Every message of `stream`, oldest first.
pub async fn read_all(url: &str, stream: &str) -> Vec<Stored> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let mut st = js.get_stream(stream).await.unwrap();
    let n = st.info().await.unwrap().state.messages;
    let mut out = Vec::new();
    if n == 0 {
        return out;
    }
    let consumer = st
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    while (out.len() as u64) < n {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .expect("the stream's messages within 10 s")
            .unwrap()
            .unwrap();
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let read_at_us = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Manus-Read-Us"))
            .and_then(|v| v.as_str().parse().ok());
        out.push(Stored {
            read_at_us,
            subject: m.subject.to_string(),
            id,
            body: String::from_utf8(m.payload.to_vec()).unwrap(),
        });
    }
    out
}

/// The runtime the worker tests drive the simulator and the bus client on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A simulated Binance market for workers: `symbols` replaying the synthetic 1-minute series
/// (300 candles of history up to now), a candle every `candle_ms`.
pub fn worker_market(
    rt: &tokio::runtime::Runtime,
    symbols: Vec<String>,
    candle_ms: u64,
) -> manus_exchange::sim::SimExchange {
    use manus_core::Interval;
    use manus_exchange::sim::{FaultPlan, SimConfig, SimExchange, SimSource};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let history = 300;
    let start = Interval::M1.floor(now) - history as i64 * 60_000;
    let key = manus_exchange::feed::StreamKey {
        symbol: "SIM".into(),
        interval: Interval::M1,
    };
    rt.block_on(SimExchange::start(SimConfig {
        symbols,
        interval: Interval::M1,
        candle_ms,
        updates_per_candle: 2,
        history,
        source: SimSource::Replay(market_manus::live::scripted::synthetic_candles(
            &key,
            start,
            history + 5000,
        )),
        faults: FaultPlan::default(),
        ..SimConfig::default()
    }))
    .expect("sim starts")
}

/// A free loopback address, e.g. for a worker's `--metrics`.
pub fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

/// One candle, in milliseconds of market time (the tests' streams are 1m).
pub const MINUTE: i64 = 60_000;

/// `times` (one stream's, in stored order) go up one candle at a time: no gap, no repeat.
pub fn assert_one_candle_apart(what: &str, times: &[i64]) {
    for w in times.windows(2) {
        assert_eq!(
            w[1] - w[0],
            MINUTE,
            "{what}: gap or repeat between {} and {}",
            w[0],
            w[1]
        );
    }
}
