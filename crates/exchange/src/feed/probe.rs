//! Latency probe (`--latency-breakdown`): when enabled, the socket task notes when it parsed
//! and handed over each live closed candle, so the consumer can split frame-read → record
//! into stages. Off by default; then each call site costs one relaxed load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);

/// The feed-side stamps of the newest closed candle handed straight to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStamps {
    /// When its frame was read off the socket (`Arrival::received_at`, the key).
    pub received_at: Instant,
    /// When the frame was parsed.
    pub parsed_at: Instant,
    /// When the candle was in the consumer's channel.
    pub handed_at: Instant,
}

static LAST: Mutex<Option<FeedStamps>> = Mutex::new(None);

/// Turns the probe on for the rest of the process.
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether the probe is on.
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Notes a closed candle's feed-side stamps (only when enabled).
pub(crate) fn handed(received_at: Instant, parsed_at: Instant) {
    let s = FeedStamps {
        received_at,
        parsed_at,
        handed_at: Instant::now(),
    };
    *LAST.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
}

/// The stamps of the candle whose frame was read at `received_at`, if the feed noted it.
pub fn take(received_at: Instant) -> Option<FeedStamps> {
    let mut g = LAST.lock().unwrap_or_else(|p| p.into_inner());
    match *g {
        Some(s) if s.received_at == received_at => g.take(),
        _ => None,
    }
}
