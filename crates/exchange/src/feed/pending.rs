//! [`PendingGap`]: a gap in one stream that REST could not fill yet. A gap is filled or it
//! stays pending: it is retried with backoff across any wait the exchange asks for (a 418 ban,
//! a long `Retry-After`, Bybit's ten-minute 403), while the stream's live closed candles wait
//! behind it in order (`held`) and are released, late but complete, once it is filled.

use std::collections::VecDeque;
use std::time::Duration;

use manus_core::Candle;
use tokio::time::Instant;

use super::Arrival;
use super::backoff::Backoff;
use super::error::FeedError;

/// Live closed candles held per stream at most; past it the oldest held one is let go and
/// becomes part of the gap (it is fetched with the rest), so memory stays bounded whatever the
/// outage lasts.
pub(crate) const MAX_HELD: usize = 10_000;

/// Successful answers that still lack the missing candles before the hole counts as the
/// exchange's own (REST can lag the stream by a moment, so one empty answer proves nothing).
pub(crate) const EMPTY_ANSWERS: u32 = 3;

/// One stream's unfilled gap.
#[derive(Debug)]
pub(crate) struct PendingGap {
    /// Open time of the first missing candle.
    pub from: i64,
    /// Open time of the last missing candle when nothing is held (a fill after a reconnect
    /// knows where the exchange's clock was).
    pub to: i64,
    /// Live closed candles waiting behind the gap, ascending.
    pub held: VecDeque<(Candle, Arrival)>,
    /// Retry delays.
    pub backoff: Backoff,
    /// When the next attempt is due.
    pub retry_at: Instant,
    /// Answers that came back without the missing candles.
    pub empty_answers: u32,
}

impl PendingGap {
    /// A gap over `[from, to]` (open times), retried with `backoff`.
    pub fn new(from: i64, to: i64, backoff: Backoff) -> Self {
        PendingGap {
            from,
            to,
            held: VecDeque::new(),
            backoff,
            retry_at: Instant::now(),
            empty_answers: 0,
        }
    }

    /// The open time of the last missing candle: the one before the oldest held.
    pub fn upper(&self) -> i64 {
        self.held.front().map_or(self.to, |(c, _)| c.open_time - 1)
    }

    /// Holds a live closed candle behind the gap; `false` when it is not newer than the last
    /// one held (a re-send) or not past the gap.
    pub fn hold(&mut self, c: Candle, arrival: Arrival) -> bool {
        if c.open_time < self.from
            || self
                .held
                .back()
                .is_some_and(|(h, _)| c.open_time <= h.open_time)
        {
            return false;
        }
        if self.held.len() == MAX_HELD {
            self.held.pop_front();
        }
        self.held.push_back((c, arrival));
        true
    }

    /// Schedules the next attempt after a failure: the backoff's delay, or longer when the
    /// exchange asked for a wait. Returns the delay.
    pub fn schedule(&mut self, error: &FeedError) -> Duration {
        let delay = self
            .backoff
            .next_delay()
            .max(error.wait().unwrap_or_default());
        self.retry_at = Instant::now() + delay;
        delay
    }

    /// How long the oldest held candle has waited.
    pub fn late(&self) -> Duration {
        self.held
            .front()
            .map_or(Duration::ZERO, |(_, a)| a.received_at.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::sequencer::tests::{M, c};

    fn arrival() -> Arrival {
        Arrival {
            event_time: 0,
            received_at: std::time::Instant::now(),
        }
    }

    #[test]
    fn holds_in_order_and_the_range_ends_before_the_oldest_held() {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        let mut g = PendingGap::new(5 * M, 7 * M, backoff);
        assert_eq!(g.upper(), 7 * M, "nothing held: the known end");
        assert!(!g.hold(c(4, 1.0), arrival()), "before the gap");
        assert!(g.hold(c(9, 1.0), arrival()));
        assert!(!g.hold(c(9, 2.0), arrival()), "a re-send");
        assert!(g.hold(c(10, 1.0), arrival()));
        assert_eq!(g.upper(), 9 * M - 1);
        assert_eq!(g.held.len(), 2);
    }

    #[test]
    fn held_candles_are_bounded_and_the_oldest_joins_the_gap() {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        let mut g = PendingGap::new(0, 0, backoff);
        for i in 1..=(MAX_HELD as i64 + 5) {
            assert!(g.hold(c(i, 1.0), arrival()));
        }
        assert_eq!(g.held.len(), MAX_HELD);
        assert_eq!(
            g.upper(),
            6 * M - 1,
            "candles 1..=5 are fetched with the gap"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wait_from_the_exchange_outlasts_the_backoff() {
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let mut g = PendingGap::new(0, 0, backoff);
        let ban = FeedError::RateLimited {
            status: 418,
            retry_after: Duration::from_secs(7200),
        };
        let d = g.schedule(&ban);
        assert_eq!(d, Duration::from_secs(7200));
        assert_eq!(g.retry_at, Instant::now() + d);
        let d = g.schedule(&FeedError::Http("down".into()));
        assert!(d <= Duration::from_millis(100), "{d:?}");
    }
}
