//! Helpers shared by the feed integration tests: a feed config pointed at a simulated
//! exchange, event collection, and comparison with the exchange's truth.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use manus_core::{Candle, Interval};
use manus_exchange::sim::{SimConfig, SimExchange, SimSource};
use manus_exchange::{ExchangeKind, Feed, FeedConfig, FeedEvent, Origin, StreamKey};

/// Real milliseconds per simulated candle.
pub const CANDLE_MS: u64 = 20;

/// A simulator serving `symbols` at 1m candles of `CANDLE_MS`, with `history` closed candles.
pub fn sim_config(symbols: &[&str], history: usize) -> SimConfig {
    SimConfig {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        interval: Interval::M1,
        candle_ms: CANDLE_MS,
        updates_per_candle: 3,
        history,
        source: SimSource::Synthetic {
            seed: 11,
            start_price: 30_000.0,
        },
        ..SimConfig::default()
    }
}

/// A feed config for `sim`, tuned for accelerated time.
pub fn feed_config(
    sim: &SimExchange,
    kind: ExchangeKind,
    symbols: &[&str],
    bootstrap: usize,
) -> FeedConfig {
    let streams = symbols
        .iter()
        .map(|s| StreamKey {
            symbol: s.to_string(),
            interval: Interval::M1,
        })
        .collect();
    let mut cfg = FeedConfig::new(kind, streams);
    cfg.ws_url = sim.ws_url();
    cfg.rest_url = sim.rest_url();
    cfg.bootstrap = bootstrap;
    cfg.silence_timeout = Duration::from_millis(300);
    cfg.backoff_initial = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.stable_after = Duration::from_millis(500);
    cfg.candle_period = Some(Duration::from_millis(CANDLE_MS));
    cfg.rotate_at = None;
    cfg
}

/// What a feed yielded.
#[derive(Default, Debug)]
pub struct Seen {
    /// Closed candles per symbol, in order, with their origin.
    pub closed: HashMap<String, Vec<(Candle, Origin)>>,
    /// Every other event, in order.
    pub events: Vec<FeedEvent>,
    /// Forming updates that would have overwritten a closed candle.
    pub bad_updates: usize,
}

impl Seen {
    /// Live closed candles of `symbol`.
    pub fn live(&self, symbol: &str) -> usize {
        self.closed
            .get(symbol)
            .map_or(0, |v| v.iter().filter(|(_, o)| *o == Origin::Live).count())
    }
    /// Closed candles of `symbol` with `origin`.
    pub fn count(&self, symbol: &str, origin: Origin) -> usize {
        self.closed
            .get(symbol)
            .map_or(0, |v| v.iter().filter(|(_, o)| *o == origin).count())
    }
    /// Events matching `f`.
    pub fn events_where(&self, f: impl Fn(&FeedEvent) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}

/// Reads events until `done` holds (checked after each event) or `timeout` passes.
pub async fn collect(
    feed: &mut Feed,
    timeout: Duration,
    mut done: impl FnMut(&Seen) -> bool,
) -> Seen {
    let mut seen = Seen::default();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ev = match tokio::time::timeout_at(deadline, feed.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) | Err(_) => break,
        };
        record(&mut seen, ev);
        if done(&seen) {
            break;
        }
    }
    seen
}

/// Adds one event to `seen`.
pub fn record(seen: &mut Seen, ev: FeedEvent) {
    match ev {
        FeedEvent::Closed {
            key,
            candle,
            origin,
            ..
        } => {
            seen.closed
                .entry(key.symbol.clone())
                .or_default()
                .push((candle, origin));
        }
        FeedEvent::Update { key, candle, .. } => {
            let last = seen.closed.get(&key.symbol).and_then(|v| v.last());
            if last.is_some_and(|(c, _)| candle.open_time <= c.open_time) {
                seen.bad_updates += 1;
            }
        }
        other => seen.events.push(other),
    }
}

fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Asserts that `got` is gapless, strictly increasing by one interval, duplicate-free and
/// equal, candle by candle, to the exchange's truth.
pub fn assert_matches_truth(
    symbol: &str,
    got: &[(Candle, Origin)],
    truth: &[Candle],
    interval: Interval,
) {
    assert!(!got.is_empty(), "{symbol}: no closed candles");
    let by_open: HashMap<i64, &Candle> = truth.iter().map(|c| (c.open_time, c)).collect();
    for w in got.windows(2) {
        assert_eq!(
            w[1].0.open_time,
            interval.next_open(w[0].0.open_time),
            "{symbol}: not contiguous after {:?} ({:?} then {:?})",
            w[0].0.open_time,
            w[0].1,
            w[1].1
        );
    }
    for (c, origin) in got {
        let t = by_open.get(&c.open_time).unwrap_or_else(|| {
            panic!(
                "{symbol}: candle {} ({origin:?}) not in the exchange's truth",
                c.open_time
            )
        });
        let same = c.close_time == t.close_time
            && close_enough(c.open, t.open)
            && close_enough(c.high, t.high)
            && close_enough(c.low, t.low)
            && close_enough(c.close, t.close)
            && close_enough(c.volume, t.volume);
        assert!(
            same,
            "{symbol}: {origin:?} candle differs from the truth:\n got  {c:?}\n want {t:?}"
        );
    }
}
