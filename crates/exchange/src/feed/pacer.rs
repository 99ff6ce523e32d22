//! [`Pacer`]: keeps a feed's connection attempts within the exchange's limit on new connections
//! per IP (Binance: 300 per 5 minutes; Bybit: 500 per 5 minutes; OKX: 3 per second). Shared by
//! every shard of a feed, so several shards reconnecting at once still stay inside the window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A sliding window of recent connection attempts; `None` inside when the venue has no limit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pacer(Option<Arc<Window>>);

#[derive(Debug)]
struct Window {
    max: usize,
    per: Duration,
    recent: Mutex<VecDeque<Instant>>,
}

impl Pacer {
    /// At most `max` attempts in any `per`.
    pub fn new(rate: Option<(u32, Duration)>) -> Self {
        Pacer(rate.map(|(max, per)| {
            Arc::new(Window {
                max: (max as usize).max(1),
                per,
                recent: Mutex::new(VecDeque::new()),
            })
        }))
    }

    /// Waits until one more attempt fits the window, and books it.
    pub async fn wait(&self) {
        let Some(w) = &self.0 else { return };
        loop {
            let wake = {
                let mut recent = w.recent.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= w.per)
                {
                    recent.pop_front();
                }
                if recent.len() < w.max {
                    recent.push_back(now);
                    return;
                }
                recent.front().map_or(now, |t| *t + w.per)
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn attempts_past_the_limit_wait_for_the_window() {
        let pacer = Pacer::new(Some((3, Duration::from_secs(1))));
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..7 {
            pacer.wait().await;
            at.push(start.elapsed());
        }
        let s = Duration::from_secs;
        assert_eq!(at, [s(0), s(0), s(0), s(1), s(1), s(1), s(2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
