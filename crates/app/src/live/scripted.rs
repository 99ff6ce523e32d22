//! [`ScriptedFeed`]: an in-memory [`MarketFeed`] that replays a list of events, for tests and
//! benchmarks of the pipeline without sockets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use manus_core::{Candle, Interval};
use manus_exchange::feed::{Arrival, FeedCounters, FeedEvent, MarketFeed, Origin, StreamKey};

/// Replays events in order; then ends (`None`) or, with [`ScriptedFeed::hold_open`], waits
/// forever like a quiet live feed.
#[derive(Debug, Default)]
pub struct ScriptedFeed {
    events: VecDeque<FeedEvent>,
    counters: Arc<FeedCounters>,
    hold_open: bool,
}

impl ScriptedFeed {
    /// A feed that yields `events` and then ends.
    pub fn new(events: impl IntoIterator<Item = FeedEvent>) -> Self {
        ScriptedFeed {
            events: events.into_iter().collect(),
            counters: Arc::default(),
            hold_open: false,
        }
    }
    /// After the script, wait forever instead of ending.
    pub fn hold_open(mut self) -> Self {
        self.hold_open = true;
        self
    }
    /// Events not yet yielded.
    pub fn remaining(&self) -> usize {
        self.events.len()
    }
}

impl MarketFeed for ScriptedFeed {
    async fn next(&mut self) -> Option<FeedEvent> {
        match self.events.pop_front() {
            Some(ev) => {
                FeedCounters::bump(&self.counters.messages_received);
                FeedCounters::bump(&self.counters.messages_processed);
                Some(ev)
            }
            None if self.hold_open => std::future::pending().await,
            None => None,
        }
    }
    fn counters(&self) -> Arc<FeedCounters> {
        self.counters.clone()
    }
}

/// A deterministic zig-zag market for stream `key`: candle `n` opens at `n` intervals after
/// `start`, with a slow sine wave plus a wiggle so strategies fire.
pub fn synthetic_candles(key: &StreamKey, start: i64, n: usize) -> Vec<Candle> {
    let d = key.interval.duration_ms();
    (0..n)
        .map(|i| {
            let x = i as f64;
            let base = 100.0 + 10.0 * (x / 15.0).sin() + 2.0 * (x / 3.0).cos();
            let open = base - 0.5 * (x / 2.0).sin();
            let close = base + 0.5 * (x / 2.0).sin();
            let open_time = start + i as i64 * d;
            Candle {
                open_time,
                close_time: Interval::close_time(key.interval, open_time),
                open,
                high: open.max(close) + 0.3,
                low: open.min(close) - 0.3,
                close,
                volume: 10.0 + (x / 5.0).cos().abs(),
            }
        })
        .collect()
}

/// A closed-candle event received now.
pub fn closed(key: &Arc<StreamKey>, candle: Candle, origin: Origin) -> FeedEvent {
    FeedEvent::Closed {
        key: key.clone(),
        candle,
        origin,
        arrival: Arrival {
            event_time: candle.close_time,
            received_at: Instant::now(),
        },
    }
}

/// An in-progress update event received now.
pub fn update(key: &Arc<StreamKey>, candle: Candle) -> FeedEvent {
    FeedEvent::Update {
        key: key.clone(),
        candle,
        arrival: Arrival {
            event_time: candle.open_time,
            received_at: Instant::now(),
        },
    }
}
