//! [`LiveSession`]: one typed way to run the live pipeline (exchange feed, per-stream engines,
//! outputs, store and alerts, web page), used by `manus live`, `manus demo`, `manus serve
//! --demo` and the Lab's real-time test, and the library API for running it from your own code:
//!
//! ```no_run
//! use manus_core::{Interval, confluence::Mode};
//! use market_manus::session::LiveSession;
//!
//! LiveSession::builder()
//!     .symbols(["BTCUSDT"])
//!     .interval(Interval::M5)
//!     .strategies("trend")
//!     .confluence(Mode::Majority)
//!     .on_record(|r| println!("{} {} {}", r.symbol, r.open_time, r.confluence))
//!     .build()?
//!     .run()?;
//! # anyhow::Ok(())
//! ```
//!
//! `run` blocks until Ctrl+C (or `max_candles` closed candles): the candle path runs on a
//! current-thread runtime of its own, as in the binary. [`LiveSession::run_until`] stops on a
//! [`Stopper`](crate::live::Stopper) instead (embedding, tests).
//!
//! The session is where the parts meet: it runs the [`live`](crate::live) pipeline and attaches
//! the terminal dashboard, the store hook and (through [`web_tap`]) the web page. The live
//! pipeline and the web page do not import each other: what both need ([`crate::stats`]) sits
//! below them.

use std::time::Duration;

use anyhow::Context;
use manus_core::confluence::{Mode, Rule};
use manus_core::engine::StrategySpec;
use manus_core::record::SignalRecord;
use manus_core::{Interval, SignalEngine, strategy};
use manus_exchange::feed::{ExchangeKind, FeedConfig, StreamKey};
use manus_exchange::sim::{SimConfig, SimExchange};

use crate::live::run::RecordFn;
use crate::live::{PipelineConfig, Shutdown};

mod plan;
mod run;
pub mod web_tap;

pub use plan::{Plan, WebPlan, WebReadyFn};
pub use run::SessionError;
use run::execute;
pub(crate) use run::{with_runtime, with_runtime_task};

/// The exchange name records of a simulated run are stored under (as `manus demo` stores them).
pub const SIM_EXCHANGE: &str = "sim";

/// A live run, ready to start.
#[derive(Debug)]
pub struct LiveSession {
    plan: Plan,
    simulated: Option<SimConfig>,
}

/// Builds a [`LiveSession`]; every setting has the command line's default.
#[derive(Debug)]
pub struct LiveSessionBuilder {
    exchange: ExchangeKind,
    symbols: Vec<String>,
    intervals: Vec<Interval>,
    strategies: String,
    mode: Mode,
    engine: Option<SignalEngine>,
    ws_url: Option<String>,
    rest_url: Option<String>,
    bootstrap: usize,
    max_candles: Option<u64>,
    db: Option<String>,
    simulated: Option<SimConfig>,
    on_record: Option<RecordFn>,
    web: Option<WebPlan>,
    alerts: Option<std::path::PathBuf>,
}

impl LiveSession {
    /// A builder with the defaults of `manus live`.
    pub fn builder() -> LiveSessionBuilder {
        LiveSessionBuilder {
            exchange: ExchangeKind::BinanceUs,
            symbols: Vec::new(),
            intervals: Vec::new(),
            strategies: strategy::registry::DEFAULT_SELECTION.to_string(),
            mode: Mode::default(),
            engine: None,
            ws_url: None,
            rest_url: None,
            bootstrap: 500,
            max_candles: None,
            db: None,
            simulated: None,
            on_record: None,
            web: None,
            alerts: None,
        }
    }

    /// A session from a checked command-line plan (what `manus live` and `manus demo` run).
    pub fn from_plan(plan: Plan) -> Self {
        LiveSession {
            plan,
            simulated: None,
        }
    }

    /// Runs against a simulated exchange started in this process (its URLs replace the plan's).
    pub fn simulated(mut self, sim: SimConfig) -> Self {
        self.simulated = Some(sim);
        self
    }

    /// The checked plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs until Ctrl+C / SIGTERM, `max_candles`, or a fatal error.
    pub fn run(self) -> anyhow::Result<()> {
        self.run_with(None)
    }

    /// Runs until `shutdown` (from [`Shutdown::manual`]) is triggered, `max_candles`, or a fatal
    /// error; no signal handlers are installed. Blocks: call it on a thread of its own.
    pub fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        self.run_with(Some(shutdown))
    }

    fn run_with(self, shutdown: Option<Shutdown>) -> anyhow::Result<()> {
        let LiveSession {
            mut plan,
            simulated,
        } = self;
        with_runtime_task(plan.headless, |messages, side| async move {
            let mut shutdown = match shutdown {
                Some(s) => s,
                None => Shutdown::install().context("installing signal handlers")?,
            };
            let sim = match simulated {
                // The exchange runs on the side runtime, as a remote exchange would elsewhere.
                Some(cfg) => {
                    let sim = side
                        .spawn(SimExchange::start(cfg))
                        .await
                        .context("starting the simulated exchange")?
                        .context("starting the simulated exchange")?;
                    tracing::info!(
                        "simulated exchange on {} (WebSocket {}, REST {})",
                        sim.addr(),
                        sim.ws_url(),
                        sim.rest_url()
                    );
                    plan.feed.ws_url = sim.ws_url();
                    plan.feed.rest_url = sim.rest_url();
                    Some(sim)
                }
                None => None,
            };
            let result = execute(plan, messages, &side, &mut shutdown).await;
            if let Some(sim) = sim {
                let _ =
                    tokio::time::timeout(Duration::from_millis(300), side.spawn(sim.shutdown()))
                        .await;
            }
            result
        })
    }
}

impl LiveSessionBuilder {
    /// The exchange (default Binance.US); its real URLs unless [`Self::urls`] says otherwise.
    pub fn exchange(mut self, e: ExchangeKind) -> Self {
        self.exchange = e;
        self
    }
    /// The symbols, e.g. `["BTCUSDT", "ETHUSDT"]`.
    pub fn symbols<S: Into<String>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.symbols = symbols.into_iter().map(Into::into).collect();
        self
    }
    /// One interval (call again to add more: every symbol runs on every interval).
    pub fn interval(mut self, i: Interval) -> Self {
        self.intervals.push(i);
        self
    }
    /// Built-in strategies and presets, as `--strategies` takes them (default `trend`).
    pub fn strategies(mut self, selection: &str) -> Self {
        self.strategies = selection.to_string();
        self
    }
    /// How views combine (default majority).
    pub fn confluence(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Your own engine, e.g. with strategies implemented outside this crate; replaces
    /// [`Self::strategies`] and [`Self::confluence`].
    pub fn engine(mut self, engine: SignalEngine) -> Self {
        self.engine = Some(engine);
        self
    }
    /// Other WebSocket and REST base URLs (a proxy, a test exchange).
    pub fn urls(mut self, ws: &str, rest: &str) -> Self {
        self.ws_url = Some(ws.to_string());
        self.rest_url = Some(rest.to_string());
        self
    }
    /// Closed candles fetched per stream for warm-up (default 500).
    pub fn bootstrap(mut self, n: usize) -> Self {
        self.bootstrap = n;
        self
    }
    /// Stop after this many live closed candles (all streams together).
    pub fn max_candles(mut self, n: u64) -> Self {
        self.max_candles = Some(n);
        self
    }
    /// Store records (and resume after a restart): a SQLite path or a `postgres://` URL. A
    /// simulated run's records are stored under exchange [`SIM_EXCHANGE`].
    pub fn db(mut self, db: &str) -> Self {
        self.db = Some(db.to_string());
        self
    }
    /// With [`Self::db`]: notifiers and rules from the `[alerts]` section of this settings file
    /// (as `--alerts-config`); records' alerts are queued in the store and delivered.
    pub fn alerts(mut self, settings: impl Into<std::path::PathBuf>) -> Self {
        self.alerts = Some(settings.into());
        self
    }
    /// Runs against the built-in simulated exchange instead (offline; `manus demo`).
    pub fn simulated(mut self, sim: SimConfig) -> Self {
        self.simulated = Some(sim);
        self
    }
    /// Receives every record (live and backfilled) on the candle thread: keep it short.
    pub fn on_record(mut self, f: impl FnMut(&SignalRecord) + Send + 'static) -> Self {
        self.on_record = Some(RecordFn(Box::new(f)));
        self
    }

    /// Also serves the web dashboard at `addr` (anything but loopback needs a `token`, which
    /// every request must then carry); with [`Self::db`] its history pages read that store.
    pub fn web(mut self, addr: std::net::SocketAddr, token: Option<String>) -> Self {
        self.web = Some(WebPlan {
            addr,
            token,
            on_ready: None,
        });
        self
    }
    /// With [`Self::web`]: called once with the dashboard's URL when it listens.
    pub fn on_web_ready(mut self, f: impl FnOnce(&str) + Send + 'static) -> Self {
        if let Some(w) = &mut self.web {
            w.on_ready = Some(WebReadyFn(Box::new(f)));
        }
        self
    }

    /// Checks everything (symbols, intervals, strategies, ranges) into a session.
    pub fn build(self) -> anyhow::Result<LiveSession> {
        if self.symbols.is_empty() || self.intervals.is_empty() {
            anyhow::bail!("a live session needs at least one symbol and one interval");
        }
        let engine = match self.engine {
            Some(e) => e,
            None => {
                let ids = strategy::parse_selection(&self.strategies)?;
                let specs: Vec<StrategySpec> = ids
                    .iter()
                    .map(|id| StrategySpec {
                        id: id.to_string(),
                        params: Default::default(),
                    })
                    .collect();
                SignalEngine::from_specs(&specs, Rule::new(self.mode, specs.len()))?
            }
        };
        let streams: Vec<StreamKey> = self
            .symbols
            .iter()
            .flat_map(|s| {
                self.intervals.iter().map(|&interval| StreamKey {
                    symbol: s.to_ascii_uppercase(),
                    interval,
                })
            })
            .collect();
        let mut feed = FeedConfig::new(self.exchange, streams);
        if let Some(u) = self.ws_url {
            feed.ws_url = u;
        }
        if let Some(u) = self.rest_url {
            feed.rest_url = u;
        }
        feed.bootstrap = self.bootstrap;
        if let Some(sim) = &self.simulated {
            // Accelerated time: react in candles, not in the minutes a real exchange needs.
            let candle = Duration::from_millis(sim.candle_ms.max(20));
            feed.candle_period = Some(candle);
            feed.silence_timeout = (candle * 8).max(Duration::from_secs(2));
            feed.backoff_initial = Duration::from_millis(100);
            feed.backoff_max = Duration::from_secs(2);
            feed.rotate_at = None;
        }
        if let Some(w) = &self.web {
            crate::web::check_policy(w.addr, w.token.as_deref())?;
        }
        // A simulated market is not the exchange's: its records are kept apart.
        let stored_as = match self.simulated {
            Some(_) => SIM_EXCHANGE,
            None => self.exchange.as_str(),
        };
        if self.alerts.is_some() && self.db.is_none() {
            anyhow::bail!("alerts need a database for their outbox: set one with `db`");
        }
        let store = self
            .db
            .as_deref()
            .map(|db| crate::wiring::StoreTarget::new(db, stored_as, self.alerts.as_deref()))
            .transpose()?;
        let plan = Plan {
            feed,
            engine,
            pipeline: PipelineConfig {
                max_candles: self.max_candles,
                ..PipelineConfig::default()
            },
            // Records go to the callback (or stdout): no dashboard inside someone's program.
            headless: true,
            signals_out: None,
            store,
            web: self.web,
            title: "session".into(),
            on_record: self.on_record,
            bus: None,
        };
        Ok(LiveSession {
            plan,
            simulated: self.simulated,
        })
    }
}
