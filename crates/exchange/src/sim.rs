//! The simulated exchange: a loopback server that speaks Binance's, Bybit v5's and OKX v5's
//! market-data protocols (WebSocket klines, REST klines/instruments/time, their error payloads)
//! over an accelerated market, with fault drills. Each venue is one module implementing
//! `venue::SimVenue` and its socket framings (`venue::Shape`), listed in `venue::VENUES`.
//!
//! [`SimExchange::start`] binds the server ([`SimConfig`]: symbols, interval, real milliseconds
//! per candle, in-progress updates per candle, pre-closed history, [`SimSource`]) and runs one
//! market clock for the whole server: market time advances `interval / candle_ms` times faster
//! than real time, and keeps running while clients are disconnected, so a client that reconnects
//! must backfill. Every closed candle is recorded ([`SimExchange::closed_candles`]) so tests can
//! compare what a client saw with the truth. Faults come from a [`FaultPlan`] (by candle count)
//! or on demand ([`SimExchange::drop_all`], [`SimExchange::go_silent`],
//! [`SimExchange::server_shutdown`], [`SimExchange::quiet`], ...). Like the real servers it
//! refuses request lines past [`MAX_REQUEST_LINE`] (HTTP 414) and Binance subscriptions past
//! [`MAX_STREAMS`] per connection.
//!
//! Routes (one port): Binance `/ws/<stream>`, `/ws`, `/stream?streams=a/b`, `/api/v3/ping`,
//! `/api/v3/time`, `/api/v3/exchangeInfo`, `/api/v3/klines`; Bybit `/v5/public/spot`,
//! `/v5/market/kline`, `/v5/market/instruments-info`, `/v5/market/time`; OKX `/ws/v5/business`,
//! `/api/v5/market/candles`, `/api/v5/market/history-candles`, `/api/v5/public/instruments`,
//! `/api/v5/public/time`.

mod binance;
mod bybit;
mod conn;
mod drills;
mod http;
mod market;
mod okx;
mod state;
mod venue;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use manus_core::{Candle, Interval};
use tokio::task::JoinHandle;

pub use drills::{BYBIT_MAX_ARGS_CHARS, MAX_REQUEST_LINE, MAX_STREAMS};
use market::{Generator, Replay, Walk, opening, regrid, tick_for};
pub use state::MAX_HISTORY;

/// Most closed candles kept over all symbols (56 bytes each: about 1 GB).
pub const MAX_KEPT: usize = 20_000_000;
use state::{Book, Shared, lock};

/// Where the simulated market's prices come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SimSource {
    /// A seeded random walk per symbol (volatility clustering, trend regimes, occasional
    /// jumps); deterministic given the seed. The first symbol starts at `start_price`, the next
    /// ones at a tenth, a hundredth, a thousandth and a ten-thousandth of it, cycling.
    Synthetic {
        /// Random seed.
        seed: u64,
        /// First symbol's starting price.
        start_price: f64,
    },
    /// A candle list (e.g. from CSV) placed on the interval grid, served to every symbol; the
    /// first `history` candles are history, the rest go live, then it loops (rescaled so prices
    /// stay continuous).
    Replay(Vec<Candle>),
    /// Like [`SimSource::Replay`] but stops producing candles at the end of the list (the clock
    /// keeps running; streams go quiet).
    ReplayOnce(Vec<Candle>),
}

/// Faults fired automatically, counted in live candles (`c` = 0 for the first live candle).
/// Drops and silences hit just before a candle's final frame, so a client misses it and must
/// backfill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Drop every connection before the final of every N-th candle.
    pub drop_every: Option<u64>,
    /// Drop every connection before the final of these candles.
    pub drop_at: Vec<u64>,
    /// Send one malformed frame to every connection at the start of every N-th candle.
    pub malformed_every: Option<u64>,
    /// Send the final frame of every N-th candle twice.
    pub duplicate_final_every: Option<u64>,
    /// Go silent for the duration before the final of this candle.
    pub silent_at: Option<(u64, Duration)>,
    /// The first N REST calls answer HTTP 429 with `Retry-After: S` seconds.
    pub rest_429: Option<(u32, u64)>,
    /// The N REST calls after those answer HTTP 500.
    pub rest_5xx: Option<u32>,
    /// After every drop, fail every REST call for a while (the gap-fill drill: a client must
    /// keep the gap pending and fill it later, losing no candle).
    pub rest_outage_after_drop: Option<RestOutage>,
    /// Cut a Binance connection that sends more than N messages (text, ping, pong) in a
    /// second, as Binance does with N = 5. Off by default: accelerated tests ping far more
    /// often than a real-time client would.
    pub ws_rate_limit: Option<u32>,
}

/// A spell of failing REST calls: every call answers `status` (in the venue's error shape)
/// for `duration` of real time, with `Retry-After: retry_after` seconds when given (e.g. 418
/// with a ban far longer than any client's retry cap).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestOutage {
    /// How long, real time.
    pub duration: Duration,
    /// The HTTP status answered.
    pub status: u16,
    /// The `Retry-After` header, seconds.
    pub retry_after: Option<u64>,
}

/// How to run the simulated exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Address to bind (default `127.0.0.1:0`: an ephemeral port).
    pub bind: SocketAddr,
    /// Upper-case symbols served, e.g. `BTCUSDT`.
    pub symbols: Vec<String>,
    /// The one kline interval served.
    pub interval: Interval,
    /// Real milliseconds per candle.
    pub candle_ms: u64,
    /// In-progress frames per candle before the final.
    pub updates_per_candle: u32,
    /// Candles already closed before the start (for REST bootstrap), at most [`MAX_HISTORY`].
    /// Each symbol keeps this many plus 1,000 of the latest closed candles; REST requests for
    /// older ones are answered as if the market had opened at the oldest kept.
    pub history: usize,
    /// Price source.
    pub source: SimSource,
    /// Planned faults.
    pub faults: FaultPlan,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            symbols: vec!["BTCUSDT".to_string()],
            interval: Interval::M5,
            candle_ms: 200,
            updates_per_candle: 4,
            history: 1500,
            source: SimSource::Synthetic {
                seed: 7,
                start_price: 30_000.0,
            },
            faults: FaultPlan::default(),
        }
    }
}

/// Counters of what the server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// WebSocket connections accepted.
    pub connections_accepted: u64,
    /// WebSocket connections open now.
    pub connections_open: u64,
    /// WebSocket frames sent (klines, control replies, malformed frames; not pings).
    pub frames_sent: u64,
    /// Drop-all events (planned or on demand).
    pub drops: u64,
    /// Connections closed by a drop (or cut for lagging).
    pub connections_dropped: u64,
    /// Malformed frames sent (one per connection per event).
    pub malformed_sent: u64,
    /// Final frames published twice.
    pub duplicates_sent: u64,
    /// Silences started.
    pub silences: u64,
    /// REST calls received.
    pub rest_calls: u64,
    /// REST calls answered with an injected failure.
    pub rest_failures: u64,
    /// Live candles closed since the start (all symbols together count once).
    pub candles_closed: u64,
    /// Binance connections cut for sending more than 5 messages in a second.
    pub rate_limited: u64,
    /// `serverShutdown` notices sent (one per Binance connection open at the announcement).
    pub shutdown_notices: u64,
    /// Requests refused with HTTP 414 for a request line past [`MAX_REQUEST_LINE`].
    pub urls_refused: u64,
    /// Pongs Binance connections received in answer to the server's pings.
    pub pongs: u64,
    /// The slowest such answer, µs.
    pub slowest_pong_us: u64,
}

/// Why the simulated exchange could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration makes no sense.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The address could not be bound.
    #[error("cannot bind the simulated exchange to {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running simulated exchange. Dropping it stops the server (prefer [`SimExchange::shutdown`]).
#[derive(Debug)]
pub struct SimExchange {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::Config(m));
    if cfg.symbols.is_empty() {
        return bad("no symbols".into());
    }
    for s in &cfg.symbols {
        if s.is_empty()
            || s.len() > 20
            || !s
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return bad(format!(
                "symbol '{s}' must be 1-20 upper-case letters or digits"
            ));
        }
    }
    let mut uniq = cfg.symbols.clone();
    uniq.sort();
    uniq.dedup();
    if uniq.len() != cfg.symbols.len() {
        return bad("duplicate symbols".into());
    }
    if cfg.candle_ms == 0 {
        return bad("candle_ms must be at least 1".into());
    }
    if cfg.history > MAX_HISTORY {
        return bad(format!("history must be at most {MAX_HISTORY} candles"));
    }
    let kept = (cfg.history + state::LIVE_RETAIN).saturating_mul(cfg.symbols.len());
    if kept > MAX_KEPT {
        return bad(format!(
            "{} symbols with {} candles of history each would keep {kept} candles; at most {MAX_KEPT} (about 1 GB) in all",
            cfg.symbols.len(),
            cfg.history
        ));
    }
    if u64::from(cfg.updates_per_candle) + 1 > cfg.candle_ms.saturating_mul(1_000_000) {
        return bad("too many updates per candle for candle_ms".into());
    }
    match &cfg.source {
        SimSource::Synthetic { start_price, .. } => {
            if !start_price.is_finite() || *start_price <= 0.0 {
                return bad(format!("start price {start_price} must be positive"));
            }
        }
        SimSource::Replay(list) | SimSource::ReplayOnce(list) => {
            if list.is_empty() {
                return bad("the replay list is empty".into());
            }
            for (i, c) in list.iter().enumerate() {
                if let Err(e) = c.validate() {
                    return bad(format!("replay candle {i}: {e}"));
                }
                if c.low <= 0.0 {
                    return bad(format!("replay candle {i}: non-positive price"));
                }
            }
        }
    }
    Ok(())
}

/// Symbol `i` starts at `start_price / start_divisor(i)`: 1, 10, 100, 1000, 10000, 10, ...
fn start_divisor(i: usize) -> f64 {
    match i {
        0 => 1.0,
        _ => 10f64.powi(((i - 1) % 4 + 1) as i32),
    }
}

/// History books, generators, per-symbol ticks and the first live open time.
type Prepared = (Vec<Book>, Vec<Generator>, Vec<f64>, i64);

fn prepare(cfg: &SimConfig, now_ms: i64) -> Prepared {
    let iv = cfg.interval;
    let n = cfg.symbols.len();
    match &cfg.source {
        SimSource::Synthetic { seed, start_price } => {
            let m0 = iv.floor(now_ms);
            let mut t = m0;
            for _ in 0..cfg.history {
                t = iv.floor(t - 1);
            }
            let one = |i: usize| {
                let p0 = start_price / start_divisor(i);
                let mut walk = Walk::new(*seed, i, p0, iv);
                let mut closed = Vec::with_capacity(cfg.history);
                let mut open = t;
                for _ in 0..cfg.history {
                    let path = walk.next_path(iv, open, cfg.updates_per_candle);
                    closed.extend(path.last().copied());
                    open = iv.next_open(open);
                }
                let last = closed.last().map_or(walk.price(), |c| c.close);
                let book = Book::new(closed, Some(opening(iv, m0, last)));
                (book, Generator::Synthetic(Box::new(walk)), tick_for(p0))
            };
            // Symbols are independent: spread the history over the cores (each symbol's walk
            // is seeded by its index, so the result does not depend on the split).
            let threads = std::thread::available_parallelism()
                .map_or(1, |p| p.get())
                .min(n);
            let chunk = n.div_ceil(threads.max(1));
            let parts: Vec<Vec<(Book, Generator, f64)>> =
                if threads <= 1 || n * cfg.history < 50_000 {
                    vec![(0..n).map(one).collect()]
                } else {
                    std::thread::scope(|scope| {
                        let handles: Vec<_> = (0..n)
                            .step_by(chunk)
                            .map(|lo| {
                                let one = &one;
                                scope.spawn(move || (lo..(lo + chunk).min(n)).map(one).collect())
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                            .collect()
                    })
                };
            let mut books = Vec::with_capacity(n);
            let mut gens = Vec::with_capacity(n);
            let mut ticks = Vec::with_capacity(n);
            for (b, g, tk) in parts.into_iter().flatten() {
                books.push(b);
                gens.push(g);
                ticks.push(tk);
            }
            (books, gens, ticks, m0)
        }
        SimSource::Replay(list) | SimSource::ReplayOnce(list) => {
            let looping = matches!(cfg.source, SimSource::Replay(_));
            let grid = Arc::new(regrid(iv, list));
            let h = cfg.history.min(grid.len());
            let m0 = match h {
                0 => grid[0].open_time,
                _ => iv.next_open(grid[h - 1].open_time),
            };
            let history = grid[..h].to_vec();
            let forming = history.last().map(|c| opening(iv, m0, c.close));
            let books = (0..n)
                .map(|_| Book::new(history.clone(), forming))
                .collect();
            let gens = (0..n)
                .map(|_| Generator::Replay(Replay::new(grid.clone(), h, looping)))
                .collect();
            let ticks = vec![tick_for(grid[0].open); n];
            (books, gens, ticks, m0)
        }
    }
}

impl SimExchange {
    /// Binds the server, records the history, and starts the market clock and the server.
    pub async fn start(cfg: SimConfig) -> Result<SimExchange, SimError> {
        validate(&cfg)?;
        let listener = tokio::net::TcpListener::bind(cfg.bind)
            .await
            .map_err(|source| SimError::Bind {
                addr: cfg.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: cfg.bind,
            source,
        })?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        // Generating a long history for many symbols takes a while: keep it off the runtime.
        let (cfg, (books, gens, ticks, m0)) = tokio::task::spawn_blocking(move || {
            let p = prepare(&cfg, now_ms);
            (cfg, p)
        })
        .await
        .map_err(|e| SimError::Config(format!("preparing the market failed: {e}")))?;
        let mut shared = Shared::new(
            cfg.symbols.clone(),
            cfg.interval,
            ticks,
            books,
            m0,
            cfg.candle_ms,
            cfg.updates_per_candle,
        );
        shared.ws_rate_limit = cfg.faults.ws_rate_limit;
        shared.outage_after_drop = cfg.faults.rest_outage_after_drop;
        let shared = Arc::new(shared);
        // Queued front-first: the 429s come before the 5xx.
        if let Some(n) = cfg.faults.rest_5xx {
            shared.fail_rest(n, 500, None);
        }
        if let Some((n, secs)) = cfg.faults.rest_429 {
            shared.fail_rest(n, 429, Some(secs));
        }
        let app = http::router(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        // Small frames go out at once, as an exchange's do: with Nagle's algorithm a kline frame
        // written after a pong waits for the client's delayed ACK (up to 40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let server = tokio::spawn(async move {
            let graceful = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = graceful.await {
                tracing::warn!(error = %e, "simulated exchange server stopped");
            }
        });
        let driver = tokio::spawn(state::drive(
            shared.clone(),
            gens,
            cfg.faults.clone(),
            cfg.candle_ms,
            cfg.updates_per_candle,
        ));
        tracing::debug!(%addr, symbols = ?cfg.symbols, interval = %cfg.interval, "simulated exchange started");
        Ok(SimExchange {
            shared,
            addr,
            tasks: vec![server, driver],
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// WebSocket base URL, e.g. `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// REST base URL, e.g. `http://127.0.0.1:PORT`.
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The truth: the closed candles kept (the history plus every candle closed since the start,
    /// up to the last `history + 1000`), ascending (empty for an unknown symbol).
    pub fn closed_candles(&self, symbol: &str) -> Vec<Candle> {
        match self.shared.symbol_index(symbol) {
            Some(i) => lock(&self.shared.books)[i].closed.iter().copied().collect(),
            None => Vec::new(),
        }
    }

    /// The interval served.
    pub fn interval(&self) -> Interval {
        self.shared.interval
    }

    /// Market time now, ms (what `/api/v3/time` answers).
    pub fn market_time(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Closes every WebSocket connection abruptly, now.
    pub fn drop_all(&self) {
        self.shared.drop_all();
    }

    /// Keeps connections open but sends (and reads) nothing for `d`; frames meanwhile are lost.
    pub fn go_silent(&self, d: Duration) {
        self.shared.go_silent(d);
    }

    /// The next `n` REST calls fail with `status` (and `Retry-After` when given).
    pub fn fail_rest(&self, n: u32, status: u16, retry_after: Option<u64>) {
        self.shared.fail_rest(n, status, retry_after);
    }

    /// Announces a server shutdown to every Binance connection open now (`serverShutdown`,
    /// raw or combined as the connection's framing), and closes each `grace` later (Binance
    /// documented 10 minutes at first, then removed any figure). Later connections are not
    /// affected: they are on another server.
    pub fn server_shutdown(&self, grace: Duration) {
        self.shared.publish(state::Event::ServerShutdown(grace));
    }

    /// Binance connections opened from now on ping every `every` (default 20 s, as Binance
    /// global; Binance.US documents 3 minutes).
    pub fn set_server_ping(&self, every: Duration) {
        self.shared.drills.set_server_ping(every);
    }

    /// Sends no kline frames for these symbols (all when empty) for `d`, as a market where
    /// nothing trades might; connections stay open and answer pings, and candles still close
    /// (REST serves them). Unknown symbols are ignored.
    pub fn quiet(&self, symbols: &[&str], d: Duration) {
        let n = self.shared.symbols.len();
        let idx: Vec<usize> = if symbols.is_empty() {
            (0..n).collect()
        } else {
            symbols
                .iter()
                .filter_map(|s| self.shared.symbol_index(s))
                .collect()
        };
        self.shared
            .drills
            .quiet(&idx, n, tokio::time::Instant::now() + d);
    }

    /// Every REST call fails as `outage` says, from now for its duration.
    pub fn rest_outage(&self, outage: RestOutage) {
        self.shared.start_outage(outage);
    }

    /// Closes abruptly, now, only the connections subscribed to `symbol` (a client spreading
    /// streams over several connections loses one of them). Unknown symbols drop nothing.
    pub fn drop_connections_of(&self, symbol: &str) {
        if let Some(i) = self.shared.symbol_index(symbol) {
            self.shared.drop_carrying(i);
        }
    }

    /// Sends one malformed frame to every connection.
    pub fn send_malformed(&self) {
        self.shared.send_malformed();
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Stops the market and the server, closing connections with a close frame.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        for t in &mut self.tasks {
            // Upgraded sockets are closed by their own tasks; don't hang on a stuck one.
            if tokio::time::timeout(Duration::from_secs(2), &mut *t)
                .await
                .is_err()
            {
                tracing::warn!("simulated exchange task did not stop in time");
                t.abort();
            }
        }
    }
}

impl Drop for SimExchange {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}
