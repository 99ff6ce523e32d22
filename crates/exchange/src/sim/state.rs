//! Shared server state: the order books of candles (truth + forming), the market clock, the
//! event bus every connection listens to, counters, and the driver task that advances the
//! market one snapshot at a time and fires the planned faults.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use manus_core::{Candle, Interval};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::market::{Generator, opening};
use super::venue::SHAPES;
use super::{FaultPlan, RestOutage, SimStats};

/// Locks a mutex, recovering the data if a holder panicked (the books stay usable).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most closed candles of starting history per symbol (`SimConfig::history`).
pub const MAX_HISTORY: usize = 1_000_000;

/// Closed candles a book keeps beyond its starting history: one full REST page (1,000 is both
/// Binance's and Bybit's largest), enough to backfill any drop the fault drills make.
pub(crate) const LIVE_RETAIN: usize = 1_000;

/// One symbol's candles: a bounded ring of the latest closed ones, and the forming one. Older
/// candles are forgotten, as if the market had opened at the oldest one kept: a request that
/// starts before it gets the page from the oldest kept on (how both exchanges answer a range
/// before a symbol's listing), one that ends before it an empty page.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Closed candles, ascending, gapless (the truth, as far back as kept).
    pub closed: VecDeque<Candle>,
    /// The candle in progress, as last published.
    pub forming: Option<Candle>,
    /// Most closed candles kept.
    keep: usize,
}

impl Book {
    /// A book holding `history` (ascending) that keeps `LIVE_RETAIN` candles more than that.
    pub fn new(history: Vec<Candle>, forming: Option<Candle>) -> Self {
        Book {
            keep: history.len() + LIVE_RETAIN,
            closed: history.into(),
            forming,
        }
    }

    /// Records a closed candle, forgetting the oldest beyond the bound.
    pub fn push_closed(&mut self, c: Candle) {
        self.closed.push_back(c);
        while self.closed.len() > self.keep.max(1) {
            self.closed.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.closed.len() + usize::from(self.forming.is_some())
    }

    fn get(&self, i: usize) -> Candle {
        match self.closed.get(i) {
            Some(c) => *c,
            // Only called with i < len(), so the forming candle exists here.
            None => self.forming.unwrap_or(self.closed[self.closed.len() - 1]),
        }
    }

    fn lower_bound(&self, t: i64) -> usize {
        let n = self.closed.partition_point(|c| c.open_time < t);
        match self.forming {
            Some(f) if n == self.closed.len() && f.open_time < t => n + 1,
            _ => n,
        }
    }

    /// Candles (closed, then the forming one) opening in `[start, end]`: the first `limit`
    /// from `start` when given, else the last `limit` up to `end` — Binance's rule.
    pub fn select(&self, start: Option<i64>, end: Option<i64>, limit: usize) -> Vec<Candle> {
        let lo = start.map_or(0, |s| self.lower_bound(s));
        let hi = end.map_or(self.len(), |e| self.lower_bound(e.saturating_add(1)));
        if lo >= hi {
            return Vec::new();
        }
        let (from, to) = if start.is_some() {
            (lo, hi.min(lo + limit))
        } else {
            (hi.saturating_sub(limit).max(lo), hi)
        };
        (from..to).map(|i| self.get(i)).collect()
    }
}

/// What every connection hears, in order.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// One market step: a kline snapshot per symbol (one bus message per step, however many
    /// symbols).
    Klines(Arc<Step>),
    /// Close every connection abruptly.
    Drop,
    /// Close abruptly the connections subscribed to this symbol (index).
    DropCarrying(usize),
    /// Send nothing (and read nothing) until then.
    Silent(Instant),
    /// Send one malformed frame (the number picks its flavour).
    Malformed(u64),
    /// Announce a shutdown (Binance `serverShutdown`), then close after this long.
    ServerShutdown(Duration),
}

/// One market step: every symbol's snapshot at the same market time.
#[derive(Debug)]
pub(crate) struct Step {
    /// Exchange event time, ms.
    pub event_time: i64,
    /// True when these are the candles' finals.
    pub closed: bool,
    /// One per symbol that has a candle.
    pub items: Vec<Frames>,
}

/// One symbol's snapshot, rendered lazily — once per protocol shape, by the first connection
/// that needs it — so shapes nobody listens to cost nothing.
#[derive(Debug)]
pub(crate) struct Frames {
    /// Symbol index.
    pub symbol: usize,
    /// The snapshot.
    pub candle: Candle,
    /// One rendering per [`SHAPES`] slot.
    cache: [OnceLock<Utf8Bytes>; SHAPES.len()],
}

impl Frames {
    fn new(symbol: usize, candle: Candle) -> Self {
        Frames {
            symbol,
            candle,
            cache: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The payload in the framing of `slot`.
    pub fn frame(&self, shared: &Shared, slot: usize, step: &Step) -> Utf8Bytes {
        self.cache[slot]
            .get_or_init(|| SHAPES[slot].render(shared, slot, step, self).into())
            .clone()
    }
}

/// Lock-free counters behind [`SimStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections_accepted: AtomicU64,
    pub connections_open: AtomicU64,
    pub frames_sent: AtomicU64,
    pub drops: AtomicU64,
    pub connections_dropped: AtomicU64,
    pub malformed_sent: AtomicU64,
    pub duplicates_sent: AtomicU64,
    pub silences: AtomicU64,
    pub rest_calls: AtomicU64,
    pub rest_failures: AtomicU64,
    pub candles_closed: AtomicU64,
    pub rate_limited: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimStats {
            connections_accepted: g(&self.connections_accepted),
            connections_open: g(&self.connections_open),
            frames_sent: g(&self.frames_sent),
            drops: g(&self.drops),
            connections_dropped: g(&self.connections_dropped),
            malformed_sent: g(&self.malformed_sent),
            duplicates_sent: g(&self.duplicates_sent),
            silences: g(&self.silences),
            rest_calls: g(&self.rest_calls),
            rest_failures: g(&self.rest_failures),
            candles_closed: g(&self.candles_closed),
            rate_limited: g(&self.rate_limited),
            ..SimStats::default()
        }
    }
}

/// A pending run of failing REST answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RestFault {
    pub remaining: u32,
    pub status: u16,
    pub retry_after: Option<u64>,
}

/// The market clock: market time runs `interval / candle_ms` times faster than real time, but
/// never passes the next snapshot the driver has not published yet, so `serverTime` and the
/// books always agree (no candle looks closed before its final is recorded).
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    m0: i64,
    interval_ms: i64,
    candle_ns: u128,
    last_step: AtomicI64,
    next_step: AtomicI64,
}

impl Clock {
    /// Market time now, ms.
    pub fn now(&self) -> i64 {
        let el = self.start.elapsed().as_nanos();
        let real = self.m0 + (el * self.interval_ms as u128 / self.candle_ns.max(1)) as i64;
        let lo = self.last_step.load(Ordering::Acquire);
        let hi = self.next_step.load(Ordering::Acquire) - 1;
        real.min(hi).max(lo)
    }
}

/// Everything the handlers and the driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Upper-case symbols, in configuration order.
    pub symbols: Vec<String>,
    /// The one interval served.
    pub interval: Interval,
    /// Per shape slot, per symbol: the stream name clients subscribe to (Binance
    /// `btcusdt@kline_5m`, Bybit `kline.5.BTCUSDT`, OKX `candle5m:BTC-USDT`; none where the
    /// venue lacks the interval).
    pub names: Vec<Vec<Option<Arc<str>>>>,
    /// Per-symbol price tick (for exchangeInfo).
    pub ticks: Vec<f64>,
    /// Per-symbol candles.
    pub books: Mutex<Vec<Book>>,
    /// The event bus.
    pub events: broadcast::Sender<Event>,
    /// The market clock.
    pub clock: Clock,
    /// Counters.
    pub counters: Counters,
    /// Pending REST failures, consumed front first.
    pub rest_faults: Mutex<VecDeque<RestFault>>,
    /// Connections opened while silent start silent.
    pub silent_until: Mutex<Option<Instant>>,
    /// Set once to stop everything.
    pub shutdown: watch::Sender<bool>,
    /// Binance request weight used in the current market minute: (minute, weight).
    pub weight: Mutex<(u64, u32)>,
    /// Next connection id.
    pub next_conn: AtomicU64,
    /// Incoming messages per second allowed on a Binance connection (none: unlimited).
    pub ws_rate_limit: Option<u32>,
    /// Shutdown notices, quiet streams, request-line and stream caps.
    pub drills: super::drills::Drills,
    /// The REST outage every drop starts, if planned.
    pub outage_after_drop: Option<RestOutage>,
    /// The REST outage under way: until when, and how calls fail.
    pub outage: Mutex<Option<(Instant, RestOutage)>>,
}

impl Shared {
    /// Builds the shared state; the clock starts now at market time `m0`.
    pub fn new(
        symbols: Vec<String>,
        interval: Interval,
        ticks: Vec<f64>,
        books: Vec<Book>,
        m0: i64,
        candle_ms: u64,
        updates: u32,
    ) -> Self {
        let (events, _) = broadcast::channel(4096);
        let (shutdown, _) = watch::channel(false);
        let dur = interval.next_open(m0) - m0;
        let names = SHAPES
            .iter()
            .map(|shape| {
                symbols
                    .iter()
                    .map(|s| shape.name(s, interval).map(Into::into))
                    .collect()
            })
            .collect();
        Shared {
            symbols,
            interval,
            names,
            ticks,
            books: Mutex::new(books),
            events,
            clock: Clock {
                start: Instant::now(),
                m0,
                interval_ms: interval.duration_ms(),
                candle_ns: u128::from(candle_ms) * 1_000_000,
                last_step: AtomicI64::new(m0),
                next_step: AtomicI64::new(m0 + dur / (i64::from(updates) + 1)),
            },
            counters: Counters::default(),
            rest_faults: Mutex::new(VecDeque::new()),
            silent_until: Mutex::new(None),
            shutdown,
            weight: Mutex::new((0, 0)),
            next_conn: AtomicU64::new(1),
            ws_rate_limit: None,
            drills: Default::default(),
            outage_after_drop: None,
            outage: Mutex::new(None),
        }
    }

    /// Symbol `i`'s stream name in the framing of `slot`.
    pub fn name(&self, slot: usize, i: usize) -> Option<&str> {
        self.names.get(slot)?.get(i)?.as_deref()
    }

    /// Index of an upper-case symbol.
    pub fn symbol_index(&self, symbol: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s == symbol)
    }

    /// A counters snapshot.
    pub fn stats(&self) -> SimStats {
        let mut s = self.counters.snapshot();
        s.shutdown_notices = self.drills.shutdown_notices.load(Ordering::Relaxed);
        s.urls_refused = self.drills.urls_refused.load(Ordering::Relaxed);
        s.pongs = self.drills.pongs.load(Ordering::Relaxed);
        s.slowest_pong_us = self.drills.slowest_pong_us.load(Ordering::Relaxed);
        s
    }

    /// Publishes an event (no receivers is fine).
    pub fn publish(&self, ev: Event) {
        let _ = self.events.send(ev);
    }

    /// Starts a silence of `d` for every connection.
    pub fn go_silent(&self, d: Duration) {
        let until = Instant::now() + d;
        *lock(&self.silent_until) = Some(until);
        bump(&self.counters.silences);
        self.publish(Event::Silent(until));
    }

    /// Closes every connection.
    pub fn drop_all(&self) {
        bump(&self.counters.drops);
        self.publish(Event::Drop);
        if let Some(o) = self.outage_after_drop {
            self.start_outage(o);
        }
    }

    /// Fails every REST call as `o` says, from now for its duration.
    pub fn start_outage(&self, o: RestOutage) {
        *lock(&self.outage) = Some((Instant::now() + o.duration, o));
    }

    /// Closes the connections carrying symbol `i`.
    pub fn drop_carrying(&self, i: usize) {
        bump(&self.counters.drops);
        self.publish(Event::DropCarrying(i));
    }

    /// Sends one malformed frame to every connection.
    pub fn send_malformed(&self) {
        let n = self.counters.malformed_sent.load(Ordering::Relaxed);
        self.publish(Event::Malformed(n));
    }

    /// Queues `n` failing REST answers ahead of any already planned.
    pub fn fail_rest(&self, n: u32, status: u16, retry_after: Option<u64>) {
        if n > 0 {
            lock(&self.rest_faults).push_front(RestFault {
                remaining: n,
                status,
                retry_after,
            });
        }
    }

    /// Takes one failure off the queue, if any is pending.
    pub fn take_rest_fault(&self) -> Option<RestFault> {
        if let Some((until, o)) = *lock(&self.outage)
            && Instant::now() < until
        {
            return Some(RestFault {
                remaining: 1,
                status: o.status,
                retry_after: o.retry_after,
            });
        }
        let mut q = lock(&self.rest_faults);
        let f = q.front_mut()?;
        let out = *f;
        f.remaining -= 1;
        if f.remaining == 0 {
            q.pop_front();
        }
        Some(out)
    }

    /// Adds `w` to this market minute's Binance request weight and returns the total. The
    /// market's minutes (not real ones) keep the budget in step with the accelerated candles.
    pub fn use_weight(&self, w: u32) -> u32 {
        let minute = self.clock.now().div_euclid(60_000) as u64;
        let mut g = lock(&self.weight);
        if g.0 != minute {
            *g = (minute, 0);
        }
        g.1 += w;
        g.1
    }
}

/// Resolves once shutdown is signalled (the guard `wait_for` returns is not `Send`, so it is
/// dropped here rather than held across a `select!`).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// True on every `n`-th live candle (1-based count `c + 1`).
fn every(n: Option<u64>, c: u64) -> bool {
    matches!(n, Some(n) if n > 0 && (c + 1).is_multiple_of(n))
}

/// Advances the market: `updates + 1` snapshots per candle, evenly spaced over `candle_ms` of
/// real time (deadlines from the start, so timer jitter never accumulates), firing the fault
/// plan on the way. Runs until shutdown.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    mut gens: Vec<Generator>,
    plan: FaultPlan,
    candle_ms: u64,
    updates: u32,
) {
    let steps = u64::from(updates) + 1;
    let step = Duration::from_nanos((candle_ms * 1_000_000 / steps).max(1));
    let start = shared.clock.start;
    let interval = shared.interval;
    let mut shutdown = shared.shutdown.subscribe();
    let mut paths: Vec<Option<Vec<Candle>>> = vec![None; gens.len()];
    let mut open = shared.clock.m0;
    let mut k: u64 = 0;
    loop {
        k += 1;
        let deadline = start + step * u32::try_from(k).unwrap_or(u32::MAX);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopped(&mut shutdown) => return,
        }
        let c = (k - 1) / steps;
        let j = ((k - 1) % steps) as usize;
        let is_final = j as u64 == steps - 1;
        let next_open = interval.next_open(open);
        let dur = next_open - open;
        if j == 0 {
            for (g, p) in gens.iter_mut().zip(paths.iter_mut()) {
                *p = g.next_path(interval, open, updates);
            }
            if every(plan.malformed_every, c) {
                shared.send_malformed();
            }
        }
        let event_time = open + dur * (j as i64 + 1) / steps as i64;
        // Record first, so REST answers and `closed_candles` already hold what the frames say.
        let mut snaps = Vec::with_capacity(paths.len());
        {
            let mut books = lock(&shared.books);
            for (b, p) in books.iter_mut().zip(&paths) {
                let Some(snap) = p.as_ref().and_then(|p| p.get(j)).copied() else {
                    snaps.push(None);
                    continue;
                };
                if is_final {
                    b.push_closed(snap);
                    b.forming = Some(opening(interval, next_open, snap.close));
                } else {
                    b.forming = Some(snap);
                }
                snaps.push(Some(snap));
            }
        }
        if is_final {
            shared
                .counters
                .candles_closed
                .fetch_add(1, Ordering::Relaxed);
            let next_dur = interval.next_open(next_open) - next_open;
            shared.clock.last_step.store(event_time, Ordering::Release);
            shared
                .clock
                .next_step
                .store(next_open + next_dur / steps as i64, Ordering::Release);
        } else {
            shared.clock.last_step.store(event_time, Ordering::Release);
            let next = open + dur * (j as i64 + 2) / steps as i64;
            shared.clock.next_step.store(next, Ordering::Release);
        }
        if is_final {
            // Faults hit before the final goes out, so a client has to backfill it.
            if every(plan.drop_every, c) || plan.drop_at.contains(&c) {
                shared.drop_all();
            }
            if let Some((at, d)) = plan.silent_at
                && at == c
            {
                shared.go_silent(d);
            }
        }
        let items: Vec<Frames> = snaps
            .iter()
            .enumerate()
            .filter_map(|(i, snap)| Some(Frames::new(i, (*snap)?)))
            .collect();
        if !items.is_empty() {
            let step = Arc::new(Step {
                event_time,
                closed: is_final,
                items,
            });
            shared.publish(Event::Klines(step.clone()));
            if is_final && every(plan.duplicate_final_every, c) {
                bump(&shared.counters.duplicates_sent);
                shared.publish(Event::Klines(step));
            }
        }
        if is_final {
            open = next_open;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(n: i64, forming: bool) -> Book {
        let c = |t: i64| opening(Interval::M1, t * 60_000, 1.0);
        Book::new((0..n).map(c).collect(), forming.then(|| c(n)))
    }

    #[test]
    fn select_follows_binance_rules() {
        struct Case {
            start: Option<i64>,
            end: Option<i64>,
            limit: usize,
            expected: Vec<i64>,
        }
        let m = 60_000;
        let cases = [
            Case {
                start: None,
                end: None,
                limit: 3,
                expected: vec![7, 8, 9],
            },
            Case {
                start: Some(2 * m),
                end: None,
                limit: 3,
                expected: vec![2, 3, 4],
            },
            Case {
                start: Some(2 * m + 1),
                end: None,
                limit: 2,
                expected: vec![3, 4],
            },
            Case {
                start: None,
                end: Some(4 * m),
                limit: 2,
                expected: vec![3, 4],
            },
            Case {
                start: Some(m),
                end: Some(2 * m),
                limit: 10,
                expected: vec![1, 2],
            },
            Case {
                start: Some(8 * m),
                end: None,
                limit: 10,
                expected: vec![8, 9],
            },
            Case {
                start: Some(20 * m),
                end: None,
                limit: 10,
                expected: vec![],
            },
            Case {
                start: Some(5 * m),
                end: Some(4 * m),
                limit: 10,
                expected: vec![],
            },
        ];
        let b = book(9, true);
        for case in cases {
            let got: Vec<i64> = b
                .select(case.start, case.end, case.limit)
                .iter()
                .map(|c| c.open_time / m)
                .collect();
            assert_eq!(
                got, case.expected,
                "{:?} {:?} {}",
                case.start, case.end, case.limit
            );
        }
        assert_eq!(book(3, false).select(None, None, 10).len(), 3);
    }

    #[test]
    fn a_book_keeps_a_bounded_ring_and_answers_from_its_oldest() {
        let m = 60_000;
        let c = |t: i64| opening(Interval::M1, t * m, 1.0);
        let mut b = Book::new((0..10).map(c).collect(), None);
        // Far more closes than it keeps: memory stays at history + one REST page.
        for t in 10..10 + 3 * LIVE_RETAIN as i64 {
            b.push_closed(c(t));
        }
        assert_eq!(b.closed.len(), 10 + LIVE_RETAIN);
        let last = 9 + 3 * LIVE_RETAIN as i64;
        let oldest = last - (10 + LIVE_RETAIN as i64) + 1;
        assert_eq!(b.closed.back().unwrap().open_time, last * m);
        assert_eq!(b.closed.front().unwrap().open_time, oldest * m);
        // A range starting before the oldest kept starts at it; one ending before it is empty.
        let page = b.select(Some(0), None, 5);
        assert_eq!(page[0].open_time, oldest * m);
        assert_eq!(page.len(), 5);
        assert!(b.select(Some(0), Some(oldest * m - 1), 5).is_empty());
        // The latest page is whole.
        assert_eq!(b.select(None, None, 1000).len(), 1000);
    }
}
