//! [`Feed`]: the live feed. `connect` (and `add`, for streams added at run time) validates
//! symbols and intervals with the exchange, then a driver task per connection (streams past
//! the venue's cap are sharded: [`super::shards`])
//! subscribes first (buffering), bootstraps history over REST, and merges the two
//! through a per-stream [`Sequencer`], filling every gap (reconnects, lost frames, channel
//! overflow) over REST so the closed candles it yields are gapless and duplicate-free.
//!
//! What the consumer receives as a [`FeedEvent`] (disconnects, backfills, staleness, corrections,
//! warnings) is logged here at debug level only: the consumer reports it, once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use manus_core::{Candle, Interval};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::conn::{self, ConnEvent, ConnHandle, ConnParams};
use super::keepalive::Keepalive;
use super::lanes::SharedLanes;
use super::pacer::Pacer;
use super::pending::{EMPTY_ANSWERS, PendingGap};
use super::rest::RestClient;
use super::rotation::rotation_wait;
use super::sequencer::Verdict;
use super::shards;
use super::wire::WsKline;
use super::{
    Arrival, CloseReason, FeedConfig, FeedCounters, FeedError, FeedEvent, FeedWarning, MarketFeed,
    Origin, StreamKey,
};

/// Bootstrap requests in flight at once: enough to hide round trips, few enough that the
/// request budget, not a burst, sets the pace.
const BOOTSTRAP_REQUESTS: usize = 8;

/// A live feed for one or many streams on one exchange. Its stream set can change while it
/// runs ([`Feed::add`], [`Feed::remove`]) without touching the streams that stay.
#[derive(Debug)]
pub struct Feed {
    rx: mpsc::Receiver<FeedEvent>,
    counters: Arc<FeedCounters>,
    /// Running shards by id: one driver and connection each.
    shards: HashMap<u64, Shard>,
    next_shard: u64,
    /// Each running stream: its key as its lane holds it, its shard and lane. An event read
    /// after its stream was removed (or removed and added again on another shard) carries
    /// another `Arc`, and is dropped.
    live: HashMap<StreamKey, (Arc<StreamKey>, u64, usize)>,
    /// The key [`Feed::wanted`] found running last (cleared by [`Feed::remove`]).
    last_wanted: Option<Arc<StreamKey>>,
    /// What new shards are made of.
    cfg: FeedConfig,
    rest: RestClient,
    pacer: Pacer,
    out: mpsc::Sender<FeedEvent>,
    /// Intervals the exchange already accepted.
    intervals: Vec<Interval>,
}

/// One connection's driver task.
struct Shard {
    lanes: SharedLanes,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// Its lanes not retired.
    live: usize,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("live", &self.live).finish()
    }
}

impl Feed {
    /// Validates every symbol and interval with the exchange (an unknown one gives the
    /// exchange's error, e.g. `-1121 Invalid symbol.`), then starts the driver task.
    pub async fn connect(cfg: FeedConfig) -> Result<Feed, FeedError> {
        if cfg.streams.is_empty() {
            return Err(FeedError::Invalid("no streams to subscribe to".into()));
        }
        for (i, s) in cfg.streams.iter().enumerate() {
            if cfg.streams[..i].contains(s) {
                return Err(FeedError::Invalid(format!("stream {s} listed twice")));
            }
        }
        let venue = cfg.exchange.venue();
        venue.check_ws_base(&cfg.ws_url)?;
        // An accelerated simulator's minutes pass as fast as its candles: so do its rate-limit
        // windows and `Retry-After`s.
        let scale = cfg.candle_period.map_or(1.0, |p| {
            p.as_secs_f64() * 1000.0 / cfg.streams[0].interval.duration_ms() as f64
        });
        let rest = RestClient::new(cfg.exchange, &cfg.rest_url)?
            .with_retry_delay(cfg.backoff_initial)
            .with_time_scale(scale);
        let cap = cfg.channel_capacity.max(1);
        let (out, rx) = mpsc::channel(cap);
        let mut feed = Feed {
            rx,
            counters: Arc::new(FeedCounters::default()),
            shards: HashMap::new(),
            next_shard: 0,
            live: HashMap::new(),
            last_wanted: None,
            rest,
            pacer: Pacer::new(venue.connection_rate()),
            out,
            intervals: Vec::new(),
            cfg: FeedConfig {
                streams: Vec::new(),
                resume_after: HashMap::new(),
                ..cfg.clone()
            },
        };
        feed.check(&cfg.streams).await?;
        feed.spawn(&cfg.streams, &cfg.resume_after)?;
        Ok(feed)
    }

    /// Names first: a stream the protocol cannot spell fails before any request. Then the
    /// exchange judges the symbols and each interval not judged yet, spending request weight
    /// sparingly (500 streams would otherwise cost minutes of rate-limit waits before the
    /// first candle): symbols in batches, each interval once.
    async fn check(&mut self, streams: &[StreamKey]) -> Result<(), FeedError> {
        crate::venue::lookup(self.cfg.exchange.venue(), streams)?;
        let mut symbols: Vec<&str> = Vec::new();
        for s in streams {
            if !symbols.contains(&s.symbol.as_str()) {
                symbols.push(&s.symbol);
            }
        }
        self.rest.check_symbols(&symbols).await?;
        for s in streams {
            if !self.intervals.contains(&s.interval) {
                // The exchange itself judges the interval (Binance -1120, Bybit 10001, OKX 51000).
                self.rest
                    .klines(&s.symbol, s.interval, None, None, 1)
                    .await?;
                self.intervals.push(s.interval);
            }
        }
        Ok(())
    }

    /// Starts `streams` on shards of their own (see `super::shards`), each a driver task over
    /// its own connection, resuming after `resume_after` where given.
    fn spawn(
        &mut self,
        streams: &[StreamKey],
        resume_after: &HashMap<StreamKey, i64>,
    ) -> Result<(), FeedError> {
        let venue = self.cfg.exchange.venue();
        let cap = self.cfg.channel_capacity.max(1);
        for streams in shards::split(streams, venue.max_streams()) {
            let (conn_tx, conn_rx) = mpsc::channel(cap);
            let lanes = SharedLanes::new(&streams, self.cfg.candle_period);
            let params = ConnParams {
                venue,
                url: venue.ws_url(&self.cfg.ws_url, &streams),
                subscribe: venue.subscribe_messages(&streams)?,
                lookup: Arc::new(crate::venue::lookup(venue, &streams)?),
                keepalive: Keepalive::plan(venue, self.cfg.silence_timeout),
                counters: self.counters.clone(),
                tx: conn_tx,
                lanes: lanes.clone(),
                out: self.out.clone(),
                pacer: self.pacer.clone(),
            };
            let shard = FeedConfig {
                resume_after: streams
                    .iter()
                    .filter_map(|k| Some((k.clone(), *resume_after.get(k)?)))
                    .collect(),
                streams,
                ..self.cfg.clone()
            };
            let id = self.next_shard;
            self.next_shard += 1;
            for (i, lane) in lanes.lock().streams.iter().enumerate() {
                self.live
                    .insert((*lane.key).clone(), (lane.key.clone(), id, i));
            }
            let n = shard.streams.len();
            let driver = Driver::new(
                shard,
                self.rest.clone(),
                params,
                conn_rx,
                self.out.clone(),
                lanes.clone(),
            );
            let (stop, stop_rx) = oneshot::channel();
            self.shards.insert(
                id,
                Shard {
                    lanes,
                    stop: Some(stop),
                    task: tokio::spawn(driver.run(stop_rx)),
                    live: n,
                },
            );
        }
        Ok(())
    }

    /// The streams running now.
    pub fn streams(&self) -> impl Iterator<Item = &StreamKey> {
        self.live.keys()
    }

    /// Adds `streams` while the feed runs (those already running are left alone): validated
    /// like [`Feed::connect`]'s, then run on connections of their own, bootstrapped and
    /// resumed after `resume_after` like a fresh feed's. The running streams' connections are
    /// not touched.
    pub async fn add(
        &mut self,
        streams: &[StreamKey],
        resume_after: &HashMap<StreamKey, i64>,
    ) -> Result<(), FeedError> {
        let mut new: Vec<StreamKey> = Vec::new();
        for s in streams {
            if !self.live.contains_key(s) && !new.contains(s) {
                new.push(s.clone());
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        self.check(&new).await?;
        self.spawn(&new, resume_after)
    }

    /// Stops `streams` (those not running are ignored): no event of theirs is yielded after
    /// this returns. A connection left with none of its streams closes; one that still carries
    /// others goes on, dropping the removed streams' frames (nothing is fetched for them).
    pub fn remove(&mut self, streams: &[StreamKey]) {
        self.last_wanted = None;
        for s in streams {
            let Some((_, id, i)) = self.live.remove(s) else {
                continue;
            };
            let Some(shard) = self.shards.get_mut(&id) else {
                continue;
            };
            {
                let mut lanes = shard.lanes.lock();
                let lane = &mut lanes.streams[i];
                lane.retired = true;
                lane.gap = None;
            }
            shard.live -= 1;
            if shard.live == 0 {
                if let Some(stop) = shard.stop.take() {
                    let _ = stop.send(());
                }
                // Ends on its own once stopped; it is not waited for.
                self.shards.remove(&id);
            }
        }
    }

    /// The next event; `None` once the feed has stopped. Cancel-safe.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        loop {
            let ev = self.rx.recv().await?;
            if self.wanted(&ev) {
                return Some(ev);
            }
        }
    }

    /// False for an event of a stream removed since it was queued.
    fn wanted(&mut self, ev: &FeedEvent) -> bool {
        let key = match ev {
            FeedEvent::Update { key, .. }
            | FeedEvent::Closed { key, .. }
            | FeedEvent::Backfilled { key, .. }
            | FeedEvent::Stale { key, .. }
            | FeedEvent::Correction { key, .. } => key,
            _ => return true,
        };
        // The stream found wanted last, by pointer: hashing the key is the costlier part of
        // handing a candle over. `remove` forgets it.
        if self
            .last_wanted
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(k, key))
        {
            return true;
        }
        let wanted = self
            .live
            .get(key.as_ref())
            .is_some_and(|(k, _, _)| Arc::ptr_eq(k, key));
        if wanted {
            self.last_wanted = Some(key.clone());
        }
        wanted
    }

    /// Shared counters for dashboards.
    pub fn counters(&self) -> Arc<FeedCounters> {
        self.counters.clone()
    }

    /// Stops the drivers and their connections and waits (briefly) for them to end.
    pub async fn shutdown(mut self) {
        let shards: Vec<Shard> = self.shards.drain().map(|(_, s)| s).collect();
        for mut s in shards {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
            if tokio::time::timeout(Duration::from_secs(2), &mut s.task)
                .await
                .is_err()
            {
                s.task.abort();
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        for s in self.shards.values() {
            s.task.abort();
        }
    }
}

impl MarketFeed for Feed {
    async fn next(&mut self) -> Option<FeedEvent> {
        Feed::next(self).await
    }
    fn warm(&mut self) {
        for s in self.shards.values() {
            s.lanes.lock().warm();
        }
    }
    fn counters(&self) -> Arc<FeedCounters> {
        self.counters.clone()
    }
}

/// The consumer went away or shutdown was asked: stop the driver.
struct Stop;

struct Driver {
    cfg: FeedConfig,
    rest: RestClient,
    /// The same client (and budget) for gap fills: it never sleeps through a long wait, the
    /// gap stays pending instead and the driver goes on with every other stream.
    fill_rest: RestClient,
    /// No fill is tried before this (the exchange asked every request to wait).
    rest_not_before: Option<Instant>,
    params: ConnParams,
    conn_rx: mpsc::Receiver<ConnEvent>,
    out: mpsc::Sender<FeedEvent>,
    lanes: SharedLanes,
    next_id: u64,
    active: Option<ConnHandle>,
    pending: Option<ConnHandle>,
    backoff: Backoff,
    reconnect_due: Option<Instant>,
    rotate_due: Option<Instant>,
    ever_connected: bool,
}

impl Driver {
    fn new(
        cfg: FeedConfig,
        rest: RestClient,
        params: ConnParams,
        conn_rx: mpsc::Receiver<ConnEvent>,
        out: mpsc::Sender<FeedEvent>,
        lanes: SharedLanes,
    ) -> Self {
        Driver {
            backoff: Backoff::new(cfg.backoff_initial, cfg.backoff_max),
            fill_rest: rest
                .clone()
                .with_max_retries(1)
                .with_max_wait(cfg.backoff_initial.max(Duration::from_millis(100))),
            rest_not_before: None,
            cfg,
            rest,
            params,
            conn_rx,
            out,
            lanes,
            next_id: 0,
            active: None,
            pending: None,
            reconnect_due: None,
            rotate_due: None,
            ever_connected: false,
        }
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let _ = self.run_inner(&mut stop).await;
        if let Some(c) = self.active.take() {
            c.stop();
        }
        if let Some(c) = self.pending.take() {
            c.stop();
        }
    }

    async fn run_inner(&mut self, stop: &mut oneshot::Receiver<()>) -> Result<(), Stop> {
        // The lanes start busy: klines wait in the channel until the bootstrap is merged.
        tokio::select! {
            biased;
            _ = &mut *stop => return Err(Stop),
            r = self.start() => r?,
        }
        self.settle();
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                _ = &mut *stop => return Err(Stop),
                ev = self.conn_rx.recv() => match ev {
                    Some(ev) => {
                        self.lanes.lock().busy = true;
                        self.on_conn_event(ev).await?
                    }
                    None => return Err(Stop),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.lanes.lock().busy = true;
                    self.on_timer().await?
                }
            }
            self.settle();
        }
    }

    /// Lets socket tasks hand klines to the consumer again once nothing waits for the driver:
    /// they send to it under the same lock, so an empty queue here means nothing is in flight.
    fn settle(&mut self) {
        let mut lanes = self.lanes.lock();
        if self.conn_rx.is_empty() {
            lanes.busy = false;
        }
    }

    /// Subscribe first, then bootstrap: klines arriving meanwhile wait in the channel and are
    /// merged afterwards, so nothing falls between the REST answer and the stream.
    async fn start(&mut self) -> Result<(), Stop> {
        self.active = Some(self.spawn_conn());
        // Wait until the subscription is live (or failed) before asking for history.
        let wait = tokio::time::timeout(self.cfg.silence_timeout, self.conn_rx.recv()).await;
        match wait {
            Ok(Some(ev @ ConnEvent::Connected { .. }))
            | Ok(Some(ev @ ConnEvent::Closed { .. })) => {
                self.on_conn_event(ev).await?;
            }
            Ok(Some(other)) => self.on_conn_event(other).await?,
            Ok(None) => return Err(Stop),
            Err(_) => warn!("no subscription confirmation yet; bootstrapping anyway"),
        }
        self.bootstrap().await
    }

    async fn bootstrap(&mut self) -> Result<(), Stop> {
        if self.cfg.bootstrap == 0 && self.cfg.resume_after.is_empty() {
            return Ok(());
        }
        let now = match self.rest.server_time().await {
            Ok(t) => t,
            Err(e) => {
                return self
                    .emit(FeedEvent::Warning(FeedWarning::BootstrapSkipped(e)))
                    .await;
            }
        };
        // Each stream's plan first; then the requests run a few at a time (hundreds of
        // streams would otherwise wait for each other's round trips while their klines pile
        // up) and are merged strictly in stream order.
        let mut plans = Vec::with_capacity(self.cfg.streams.len());
        for i in 0..self.cfg.streams.len() {
            let key = self.lanes.lock().streams[i].key.clone();
            let resume = self.cfg.resume_after.get(&key).copied();
            let plan =
                resume.map(|last| resume_plan(key.interval, last, now, self.cfg.resume_max as u64));
            let missed = plan.map_or(0, |p| p.fetch);
            if let Some(p) = plan
                && p.gap > 0
            {
                self.emit(FeedEvent::Warning(FeedWarning::ResumeCapped {
                    key: key.clone(),
                    missed: p.missed,
                    cap: self.cfg.resume_max as u64,
                    gap: p.gap,
                    from: p.gap_from,
                    to: p.gap_to,
                }))
                .await?;
            }
            plans.push((i, key, resume, plan, missed));
        }
        let rest = self.rest.clone();
        let bootstrap = self.cfg.bootstrap;
        let mut fetched = futures_util::stream::iter(plans)
            .map(|(i, key, resume, plan, missed)| {
                let rest = rest.clone();
                async move {
                    let count = bootstrap + missed as usize;
                    let rows = rest
                        .last_closed(&key.symbol, key.interval, count, now)
                        .await;
                    (i, key, resume, plan, missed, rows)
                }
            })
            .buffered(BOOTSTRAP_REQUESTS);
        while let Some((i, key, resume, plan, missed, rows)) = fetched.next().await {
            match rows {
                Ok(rows) => {
                    info!(stream = %key, candles = rows.len(), resumed = missed, "bootstrapped");
                    // Candles after the consumer's newest are history it lacks: delivered as
                    // backfill (records), the ones before as warm-up (no records). Past the cap
                    // the oldest missed ones are warm-up too: they stay a known gap.
                    let backfill_from = match (resume, plan) {
                        (Some(_), Some(p)) if p.gap > 0 => p.gap_to + 1,
                        (Some(last), _) => last + 1,
                        (None, _) => i64::MAX,
                    };
                    for c in rows {
                        let (origin, arrival) = if c.open_time >= backfill_from {
                            // Stamped with the exchange's clock of the fetch: how old a
                            // resumed candle is, on the clock that made it.
                            let arrival = Arrival {
                                event_time: now,
                                ..rest_arrival()
                            };
                            (Origin::Backfill, arrival)
                        } else {
                            (Origin::Bootstrap, rest_arrival())
                        };
                        self.offer_closed(i, c, origin, arrival).await?;
                    }
                }
                Err(e) => {
                    self.emit(FeedEvent::Warning(FeedWarning::BootstrapFailed {
                        key: key.clone(),
                        error: e,
                    }))
                    .await?;
                }
            }
            self.lanes.lock().streams[i].last_close_at = Instant::now();
        }
        Ok(())
    }

    fn spawn_conn(&mut self) -> ConnHandle {
        self.next_id += 1;
        debug!(id = self.next_id, url = %self.params.url, "connecting");
        conn::spawn(self.next_id, self.params.clone())
    }

    fn next_deadline(&self) -> Instant {
        let mut d = Instant::now() + Duration::from_secs(3600);
        for t in [self.reconnect_due, self.rotate_due].into_iter().flatten() {
            d = d.min(t);
        }
        let not_before = self.rest_not_before;
        for s in self.lanes.lock().streams.iter().filter(|s| !s.retired) {
            if !s.stale {
                d = d.min(s.stale_at());
            }
            if let Some(g) = &s.gap {
                d = d.min(not_before.map_or(g.retry_at, |t| g.retry_at.max(t)));
            }
        }
        d
    }

    /// Stream `i`'s key.
    fn key(&self, i: usize) -> Arc<StreamKey> {
        self.lanes.lock().streams[i].key.clone()
    }

    /// Classifies a closed candle of stream `i` (no state change).
    fn classify(&self, i: usize, c: &Candle) -> Verdict {
        self.lanes.lock().streams[i].seq.classify(c)
    }

    async fn emit(&self, ev: FeedEvent) -> Result<(), Stop> {
        self.out.send(ev).await.map_err(|_| Stop)
    }

    async fn on_conn_event(&mut self, ev: ConnEvent) -> Result<(), Stop> {
        match ev {
            ConnEvent::Kline {
                kline, received_at, ..
            } => self.on_kline(kline, received_at).await,
            ConnEvent::Connected { id } => self.on_connected(id).await,
            ConnEvent::Closed { id, reason } => self.on_closed_conn(id, reason).await,
            ConnEvent::Lost { id } => {
                debug!(id, "klines lost to a full internal channel; backfilling");
                self.emit(FeedEvent::Warning(FeedWarning::Overflow)).await?;
                self.fill_all().await
            }
            ConnEvent::ServerShutdown { id } => self.on_server_shutdown(id),
            ConnEvent::ExchangeMessage { id, msg } => {
                debug!(id, %msg, "exchange error on the socket");
                self.emit(FeedEvent::Warning(FeedWarning::ExchangeMessage(msg)))
                    .await
            }
        }
    }

    async fn on_connected(&mut self, id: u64) -> Result<(), Stop> {
        let url = self.params.url.clone();
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            // Proactive handover: the new socket is live, so the old one can go.
            let mut new = self.pending.take().expect("checked above");
            new.connected_at = Some(Instant::now());
            if let Some(old) = self.active.replace(new) {
                old.stop();
            }
            FeedCounters::bump(&self.params.counters.reconnections);
            info!(id, "connection handed over");
            self.schedule_rotation();
            return self.emit(FeedEvent::Connected { url }).await;
        }
        let Some(active) = self.active.as_mut().filter(|a| a.id == id) else {
            return Ok(());
        };
        active.connected_at = Some(Instant::now());
        self.schedule_rotation();
        let reconnect = self.ever_connected;
        self.ever_connected = true;
        self.emit(FeedEvent::Connected { url }).await?;
        if reconnect {
            FeedCounters::bump(&self.params.counters.reconnections);
            self.fill_all().await?;
        }
        Ok(())
    }

    /// The active connection's server is going away: start the same handover as the daily
    /// renewal, so the new socket is live before the old one closes.
    fn on_server_shutdown(&mut self, id: u64) -> Result<(), Stop> {
        let active = self.active.as_ref().is_some_and(|a| a.id == id);
        let pending = self.pending.as_ref().is_some_and(|p| p.id == id);
        if (active && self.pending.is_none()) || pending {
            // A handover socket that landed on the departing server is replaced (dropping
            // its handle closes it).
            info!(id, "server going away (serverShutdown); handing over");
            self.pending = Some(self.spawn_conn());
        }
        Ok(())
    }

    async fn on_closed_conn(&mut self, id: u64, reason: CloseReason) -> Result<(), Stop> {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            self.pending = None;
            warn!(id, %reason, "handover connection failed; retrying later");
            self.rotate_due = Some(Instant::now() + self.cfg.backoff_max);
            return Ok(());
        }
        if self.active.as_ref().is_none_or(|a| a.id != id) {
            return Ok(());
        }
        let old = self.active.take().expect("checked above");
        if old
            .connected_at
            .is_some_and(|t| t.elapsed() >= self.cfg.stable_after)
        {
            self.backoff.reset();
        }
        debug!(id, %reason, "disconnected");
        self.emit(FeedEvent::Disconnected { reason }).await?;
        self.rotate_due = None;
        if let Some(p) = self.pending.take() {
            // A handover was under way: its socket becomes the active one.
            self.active = Some(p);
            return Ok(());
        }
        let delay = self.backoff.next_delay();
        self.reconnect_due = Some(Instant::now() + delay);
        self.emit(FeedEvent::Reconnecting {
            in_ms: delay.as_millis() as u64,
            attempt: self.backoff.attempt(),
        })
        .await
    }

    async fn on_timer(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if self.reconnect_due.is_some_and(|t| t <= now) {
            self.reconnect_due = None;
            self.active = Some(self.spawn_conn());
        }
        if self.rotate_due.is_some_and(|t| t <= now) {
            self.rotate_due = None;
            if self.pending.is_none()
                && self
                    .active
                    .as_ref()
                    .is_some_and(|a| a.connected_at.is_some())
            {
                info!("renewing the connection before the exchange's cut-off");
                self.pending = Some(self.spawn_conn());
            }
        }
        if self.rest_not_before.is_none_or(|t| t <= now) {
            self.rest_not_before = None;
            let due: Vec<usize> = {
                let lanes = self.lanes.lock();
                (0..lanes.streams.len())
                    .filter(|&i| {
                        lanes.streams[i]
                            .gap
                            .as_ref()
                            .is_some_and(|g| g.retry_at <= now)
                    })
                    .collect()
            };
            for i in due {
                if self.rest_not_before.is_some() {
                    break;
                }
                self.retry_gap(i).await?;
            }
        }
        self.publish_gaps();
        for i in 0..self.cfg.streams.len() {
            let key = {
                let mut lanes = self.lanes.lock();
                let s = &mut lanes.streams[i];
                if s.retired || s.stale || now < s.stale_at() {
                    continue;
                }
                s.stale = true;
                s.key.clone()
            };
            debug!(stream = %key, "stale: no closed candle for two and a half periods");
            self.emit(FeedEvent::Stale { key, stale: true }).await?;
        }
        Ok(())
    }

    /// Sets when the active connection is renewed (see [`super::rotation`]).
    fn schedule_rotation(&mut self) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let wait = rotation_wait(now_ms, self.cfg.rotate_at, self.cfg.max_connection_age);
        self.rotate_due = Some(Instant::now() + wait);
    }

    async fn on_kline(&mut self, k: WsKline, received_at: std::time::Instant) -> Result<(), Stop> {
        if self.lanes.lock().streams[k.idx].retired {
            return Ok(());
        }
        let arrival = Arrival {
            event_time: k.event_time,
            received_at,
        };
        if k.closed {
            return self
                .offer_closed(k.idx, k.candle, Origin::Live, arrival)
                .await;
        }
        // A forming candle proves the ones before it have closed: fill those now rather than
        // one candle later (once per expected candle, not per update). The final of the one
        // just before may still trail it (Bybit does not document the order), so that one is
        // left to its final.
        let fill = {
            let mut lanes = self.lanes.lock();
            let s = &mut lanes.streams[k.idx];
            match s.seq.next_open() {
                Some(next)
                    if s.key.interval.floor(k.candle.open_time - 1) > next
                        && s.update_fill_for != Some(next)
                        && s.gap.is_none() =>
                {
                    s.update_fill_for = Some(next);
                    Some((next, s.key.interval.floor(k.candle.open_time - 1) - 1))
                }
                _ => None,
            }
        };
        if let Some((from, to)) = fill
            && let Err(e) = self.fill(k.idx, from, to, None).await?
        {
            self.gap_failed(k.idx, from, to, e).await?;
        }
        let admitted = {
            let mut lanes = self.lanes.lock();
            let s = &mut lanes.streams[k.idx];
            s.seq.admit_update(&k.candle).then(|| s.key.clone())
        };
        if let Some(key) = admitted {
            self.emit(FeedEvent::Update {
                key,
                candle: k.candle,
                arrival,
            })
            .await?;
        }
        Ok(())
    }

    /// Offers a closed candle to its stream's sequencer and yields what follows.
    async fn offer_closed(
        &mut self,
        i: usize,
        c: Candle,
        origin: Origin,
        arrival: Arrival,
    ) -> Result<(), Stop> {
        if self.lanes.lock().streams[i].retired {
            return Ok(());
        }
        if origin == Origin::Live && self.hold(i, c, arrival) {
            return Ok(());
        }
        match self.classify(i, &c) {
            Verdict::Accept => self.yield_closed(i, c, origin, arrival).await,
            Verdict::Duplicate => Ok(()),
            Verdict::Stale => {
                debug!(stream = %self.key(i), open_time = c.open_time, "stale final ignored");
                Ok(())
            }
            Verdict::Correction(kept) => {
                let key = self.key(i);
                debug!(stream = %key, open_time = c.open_time, "exchange re-sent a final candle with different values; the first stands");
                self.emit(FeedEvent::Correction {
                    key,
                    kept,
                    ignored: c,
                })
                .await
            }
            Verdict::Gap { from } => {
                if origin == Origin::Live {
                    let filled = self.fill(i, from, c.open_time - 1, None).await?;
                    let still = matches!(self.classify(i, &c), Verdict::Gap { .. });
                    if let Err(e) = filled {
                        // Not filled: the gap stays pending and this candle waits behind it.
                        self.gap_failed(i, from, c.open_time - 1, e).await?;
                        self.hold(i, c, arrival);
                        return Ok(());
                    }
                    if still {
                        // The exchange answered without the missing candles: REST may lag the
                        // stream; ask again a few times before calling it the exchange's hole.
                        let mut g = self.new_gap(from, c.open_time - 1);
                        g.empty_answers = 1;
                        g.hold(c, arrival);
                        g.retry_at = Instant::now() + g.backoff.next_delay();
                        self.lanes.lock().streams[i].gap = Some(g);
                        self.publish_gaps();
                        return Ok(());
                    }
                }
                if let Verdict::Gap { from } = self.classify(i, &c) {
                    let key = self.key(i);
                    let missing = key.interval.bars_between(from, c.open_time);
                    debug!(stream = %key, missing, "gap the exchange could not fill");
                    self.emit(FeedEvent::Warning(FeedWarning::Unfillable {
                        key: key.clone(),
                        missing: missing as u64,
                        before: c.open_time,
                    }))
                    .await?;
                    return self.yield_closed(i, c, origin, arrival).await;
                }
                // The fill may have included it (REST caught up): offer again.
                match self.classify(i, &c) {
                    Verdict::Accept => self.yield_closed(i, c, origin, arrival).await,
                    Verdict::Correction(kept) => {
                        let key = self.key(i);
                        self.emit(FeedEvent::Correction {
                            key,
                            kept,
                            ignored: c,
                        })
                        .await
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    async fn yield_closed(
        &mut self,
        i: usize,
        c: Candle,
        origin: Origin,
        arrival: Arrival,
    ) -> Result<(), Stop> {
        let (key, was_stale) = {
            let mut lanes = self.lanes.lock();
            let s = &mut lanes.streams[i];
            s.seq.accept(c);
            s.last_close_at = Instant::now();
            (s.key.clone(), std::mem::replace(&mut s.stale, false))
        };
        self.emit(FeedEvent::Closed {
            key: key.clone(),
            candle: c,
            origin,
            arrival,
        })
        .await?;
        if was_stale {
            debug!(stream = %key, "fresh again");
            self.emit(FeedEvent::Stale { key, stale: false }).await?;
        }
        Ok(())
    }

    /// Fetches candles opening in `[from, to]` and yields the missing ones as backfill. With
    /// `now_ms`, rows not closed by that exchange time are left out (the forming candle).
    async fn fill(
        &mut self,
        i: usize,
        from: i64,
        to: i64,
        now_ms: Option<i64>,
    ) -> Result<Result<usize, FeedError>, Stop> {
        if to < from {
            return Ok(Ok(0));
        }
        let key = self.key(i);
        let rows = self
            .fill_rest
            .klines_range(&key.symbol, key.interval, from, to, |_| {})
            .await;
        self.apply_fill(i, rows, now_ms).await
    }

    /// Yields the missing candles among fetched `rows` as backfill (rows not closed by the
    /// exchange time `now_ms` left out); a failed fetch makes every request wait when the
    /// exchange asked for it, and is returned.
    async fn apply_fill(
        &mut self,
        i: usize,
        rows: Result<Vec<Candle>, FeedError>,
        now_ms: Option<i64>,
    ) -> Result<Result<usize, FeedError>, Stop> {
        let key = self.key(i);
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                debug!(stream = %key, error = %e, "backfill failed");
                if let Some(wait) = e.wait() {
                    // The whole address must wait, not just this stream.
                    let t = Instant::now() + wait;
                    self.rest_not_before = Some(self.rest_not_before.map_or(t, |n| n.max(t)));
                }
                return Ok(Err(e));
            }
        };
        let mut count = 0;
        for c in rows {
            if now_ms.is_some_and(|now| c.close_time >= now) {
                break;
            }
            match self.classify(i, &c) {
                Verdict::Accept => {}
                Verdict::Gap { .. } => {
                    warn!(stream = %key, open_time = c.open_time, "exchange history has a hole");
                }
                _ => continue,
            }
            self.yield_closed(i, c, Origin::Backfill, rest_arrival())
                .await?;
            count += 1;
        }
        if count > 0 {
            self.params
                .counters
                .backfilled
                .fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
            debug!(stream = %key, count, "backfilled");
            self.emit(FeedEvent::Backfilled { key, count }).await?;
        }
        Ok(Ok(count))
    }

    /// After a reconnect or lost frames: fetch every candle that closed since the last one
    /// yielded, judged by the exchange's clock.
    async fn fill_all(&mut self) -> Result<(), Stop> {
        let now = match self.fill_rest.server_time().await {
            Ok(t) => t,
            Err(e) => {
                // The next live close will expose the gap, and it stays pending until filled.
                warn!(error = %e, "exchange time unavailable; gap fill deferred");
                return Ok(());
            }
        };
        let mut ranges = Vec::new();
        for i in 0..self.cfg.streams.len() {
            let lanes = self.lanes.lock();
            let s = &lanes.streams[i];
            if s.retired {
                continue;
            }
            let Some(from) = s.seq.next_open() else {
                continue;
            };
            if s.gap.is_some() {
                // Already pending: its retry fetches this too.
                continue;
            }
            let to = s.key.interval.floor(now) - 1;
            if to >= from {
                ranges.push((i, s.key.clone(), from, to));
            }
        }
        // A few requests in flight, merged in stream order, as in the bootstrap.
        let rest = self.fill_rest.clone();
        let mut fetched = futures_util::stream::iter(ranges)
            .map(|(i, key, from, to)| {
                let rest = rest.clone();
                async move {
                    let rows = rest
                        .klines_range(&key.symbol, key.interval, from, to, |_| {})
                        .await;
                    (i, from, to, rows)
                }
            })
            .buffered(BOOTSTRAP_REQUESTS);
        while let Some((i, from, to, rows)) = fetched.next().await {
            if let Err(e) = self.apply_fill(i, rows, Some(now)).await? {
                self.gap_failed(i, from, to, e).await?;
            }
        }
        Ok(())
    }

    /// A fresh pending gap over `[from, to]`.
    fn new_gap(&self, from: i64, to: i64) -> PendingGap {
        PendingGap::new(
            from,
            to,
            Backoff::new(self.cfg.backoff_initial, self.cfg.backoff_max),
        )
    }

    /// Holds a live closed candle behind stream `i`'s pending gap, if it has one.
    fn hold(&self, i: usize, c: Candle, arrival: Arrival) -> bool {
        let mut lanes = self.lanes.lock();
        let Some(g) = lanes.streams[i].gap.as_mut() else {
            return false;
        };
        if c.open_time < g.from {
            // Already yielded: the sequencer judges it (duplicate or correction).
            return false;
        }
        let before = g.held.len();
        if g.hold(c, arrival) && g.held.len() > before {
            // Counted here; a full refresh of the gap counters walks every stream.
            self.params
                .counters
                .held_candles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        true
    }

    /// A fill of `[from, to]` failed: the gap becomes (or stays) pending, retried later.
    async fn gap_failed(&mut self, i: usize, from: i64, to: i64, e: FeedError) -> Result<(), Stop> {
        let warning = {
            let mut lanes = self.lanes.lock();
            let s = &mut lanes.streams[i];
            if s.gap.is_none() {
                s.gap = Some(self.new_gap(from, to));
            }
            let key = s.key.clone();
            let g = s.gap.as_mut().expect("set above");
            g.to = g.to.max(to);
            let delay = g.schedule(&e);
            FeedWarning::GapPending {
                key,
                from: g.from,
                held: g.held.len(),
                late_ms: g.late().as_millis() as u64,
                attempt: g.backoff.attempt(),
                retry_in_ms: delay.as_millis() as u64,
                error: e,
            }
        };
        self.publish_gaps();
        debug!(%warning, "gap pending");
        self.emit(FeedEvent::Warning(warning)).await
    }

    /// Tries stream `i`'s pending gap again; once filled, releases the held candles in order.
    async fn retry_gap(&mut self, i: usize) -> Result<(), Stop> {
        let Some(mut g) = self.lanes.lock().streams[i].gap.take() else {
            return Ok(());
        };
        let (from, to) = (g.from, g.upper());
        if let Err(e) = self.fill(i, from, to, None).await? {
            self.lanes.lock().streams[i].gap = Some(g);
            return self.gap_failed(i, from, to, e).await;
        }
        // Did the answer reach the oldest held candle (or the known end)?
        let next = self.lanes.lock().streams[i].seq.next_open();
        let filled = match g.held.front() {
            Some((c, _)) => next.is_none_or(|n| n >= c.open_time),
            None => next.is_none_or(|n| n > to),
        };
        if !filled {
            g.empty_answers += 1;
            if g.empty_answers < EMPTY_ANSWERS {
                g.from = next.unwrap_or(g.from);
                g.retry_at = Instant::now() + g.backoff.next_delay();
                self.lanes.lock().streams[i].gap = Some(g);
                self.publish_gaps();
                return Ok(());
            }
        }
        self.publish_gaps();
        info!(stream = %self.key(i), held = g.held.len(), late_ms = g.late().as_millis() as u64, "pending gap filled; releasing held candles");
        // Released in order; one that finds a new gap starts a new pending gap, and the rest
        // queue behind it again.
        let mut step_over = !filled;
        for (c, arrival) in g.held {
            if std::mem::take(&mut step_over) && matches!(self.classify(i, &c), Verdict::Gap { .. })
            {
                // The exchange's history has a hole it confirmed three times: step over it.
                let key = self.key(i);
                let missing = next.map_or(0, |n| key.interval.bars_between(n, c.open_time));
                self.emit(FeedEvent::Warning(FeedWarning::Unfillable {
                    key,
                    missing: missing as u64,
                    before: c.open_time,
                }))
                .await?;
                self.yield_closed(i, c, Origin::Live, arrival).await?;
                continue;
            }
            self.offer_closed(i, c, Origin::Live, arrival).await?;
        }
        self.publish_gaps();
        Ok(())
    }

    /// Refreshes the pending-gap counters a dashboard shows.
    fn publish_gaps(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let (mut gaps, mut held, mut late) = (0u64, 0u64, 0u64);
        for s in &self.lanes.lock().streams {
            if let Some(g) = &s.gap {
                gaps += 1;
                held += g.held.len() as u64;
                late = late.max(g.late().as_millis() as u64);
            }
        }
        let c = &self.params.counters;
        c.gaps_pending.store(gaps, Relaxed);
        c.held_candles.store(held, Relaxed);
        c.held_late_ms.store(late, Relaxed);
    }
}

/// Arrival metadata for a REST row.
fn rest_arrival() -> Arrival {
    Arrival {
        event_time: 0,
        received_at: std::time::Instant::now(),
    }
}

/// What a resumed stream fetches: `missed` candles closed after the consumer's newest (`last`,
/// an open time) and before `now`; at most `cap` of them (`fetch`), the oldest `gap` left out,
/// from open time `gap_from` to `gap_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResumePlan {
    pub missed: u64,
    pub fetch: u64,
    pub gap: u64,
    pub gap_from: i64,
    pub gap_to: i64,
}

/// Counts the candles closed after open time `last` by `now`, stepping back from the forming
/// candle (calendar-aware, so months work), at most `cap + 1` steps.
pub(crate) fn resume_plan(interval: Interval, last: i64, now: i64, cap: u64) -> ResumePlan {
    let forming = interval.floor(now);
    let mut open = forming;
    let mut missed = 0u64;
    // Fixed-length intervals are counted at once; the step loop is for calendar months.
    let step = interval.duration_ms();
    if interval.floor(forming - 1) == forming - step {
        missed = u64::try_from((forming - last) / step - 1).unwrap_or(0);
    } else {
        loop {
            open = interval.floor(open - 1);
            if open <= last || missed > cap {
                break;
            }
            missed += 1;
        }
    }
    let fetch = missed.min(cap);
    let gap = missed - fetch;
    // The gap runs from the candle after `last` to the one before the first fetched.
    let gap_from = interval.floor(last) + step;
    let first_fetched = forming - step * fetch as i64;
    ResumePlan {
        missed,
        fetch,
        gap,
        gap_from,
        gap_to: first_fetched - step,
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    const M: i64 = 60_000;

    #[test]
    fn resume_plan_counts_missed_candles_and_caps_them() {
        struct Case {
            name: &'static str,
            last: i64,
            now: i64,
            cap: u64,
            expected: ResumePlan,
        }
        let cases = [
            Case {
                name: "nothing missed: the last closed candle is the newest known",
                last: 99 * M,
                now: 100 * M + 5_000,
                cap: 1000,
                expected: ResumePlan {
                    missed: 0,
                    fetch: 0,
                    gap: 0,
                    gap_from: 100 * M,
                    gap_to: 99 * M,
                },
            },
            Case {
                name: "25 candles closed while down",
                last: 74 * M,
                now: 100 * M + 5_000,
                cap: 1000,
                expected: ResumePlan {
                    missed: 25,
                    fetch: 25,
                    gap: 0,
                    gap_from: 75 * M,
                    gap_to: 74 * M,
                },
            },
            Case {
                name: "past the cap: the oldest are a gap",
                last: 0,
                now: 100 * M + 5_000,
                cap: 10,
                expected: ResumePlan {
                    missed: 99,
                    fetch: 10,
                    gap: 89,
                    gap_from: M,
                    gap_to: 89 * M,
                },
            },
        ];
        for c in cases {
            assert_eq!(
                resume_plan(Interval::M1, c.last, c.now, c.cap),
                c.expected,
                "{}",
                c.name
            );
        }
        // Calendar months are stepped, not divided.
        let jan = 1_704_067_200_000; // 2024-01-01
        let may_10 = 1_715_299_200_000; // 2024-05-10
        let p = resume_plan(Interval::Mo1, jan, may_10, 1000);
        assert_eq!(
            (p.missed, p.fetch),
            (3, 3),
            "Feb, Mar, Apr closed; May forms"
        );
    }
}
