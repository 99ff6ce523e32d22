//! When to renew a connection before the exchange cuts it (Binance: "a single connection is
//! only valid for 24 hours; expect to be disconnected at the 24 hour mark").
//!
//! With a daily `rotate_at` the handover is anchored to the UTC clock, not to the age of the
//! connection: a socket opened by the 03:00:30 handover is renewed at the next day's 03:00:30.
//! The next occurrence of a time of day is always less than 24 h away, so it always comes before
//! the cut of a socket opened now; the age fallback (`max_connection_age`) is only for feeds
//! without a `rotate_at`. (Judging the next occurrence against "24 h minus a margin" instead
//! made the socket opened by a handover fall back to the 23 h age, and the feed renewed twice a
//! day, at about 02:00:30 and 03:00:30.)

use std::time::Duration;

/// One day, ms.
pub(crate) const DAY_MS: i64 = 24 * 3600 * 1000;

/// A time of day this close is taken as already passed: a socket opened a hair before it is
/// renewed tomorrow rather than at once.
const MIN_LEAD_MS: i64 = 1_000;

/// Time from `now_ms` (UTC, ms) until the next `at` (UTC time of day) at least
/// [`MIN_LEAD_MS`] away; always at most a day.
pub(crate) fn until_time_of_day(now_ms: i64, at: Duration) -> Duration {
    let at_ms = (at.as_millis() as i64).rem_euclid(DAY_MS);
    let day = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let mut next = day + at_ms;
    while next < now_ms + MIN_LEAD_MS {
        next += DAY_MS;
    }
    Duration::from_millis((next - now_ms) as u64)
}

/// How long a socket that became live at `now_ms` runs before it is renewed: until the next
/// `rotate_at` when one is set, else for `max_age`.
pub(crate) fn rotation_wait(
    now_ms: i64,
    rotate_at: Option<Duration>,
    max_age: Duration,
) -> Duration {
    match rotate_at {
        Some(at) => until_time_of_day(now_ms, at),
        None => max_age,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn next_time_of_day_is_the_next_occurrence() {
        struct Case {
            now: i64,
            at_h: u64,
            expected_ms: i64,
        }
        let cases = [
            Case {
                now: 10 * DAY_MS + H,
                at_h: 3,
                expected_ms: 2 * H,
            },
            Case {
                now: 10 * DAY_MS + 4 * H,
                at_h: 3,
                expected_ms: 23 * H,
            },
            // Half a minute before: today's, still ahead.
            Case {
                now: 10 * DAY_MS + 3 * H - 30_000,
                at_h: 3,
                expected_ms: 30_000,
            },
            // Half a second before: too close, tomorrow's.
            Case {
                now: 10 * DAY_MS + 3 * H - 500,
                at_h: 3,
                expected_ms: DAY_MS + 500,
            },
        ];
        for c in cases {
            let got = until_time_of_day(c.now, Duration::from_secs(c.at_h * 3600));
            assert_eq!(got.as_millis() as i64, c.expected_ms);
        }
    }

    /// Drives the rotation rule on a controllable clock for a week: each renewal's socket goes
    /// live `handover_ms` after the renewal starts, and is scheduled from that moment, as the
    /// driver does. Returns the renewal start times.
    fn simulate(start_ms: i64, at: Duration, handover_ms: i64, days: i64) -> Vec<i64> {
        let mut now = start_ms;
        let mut renewals = Vec::new();
        loop {
            let wait = rotation_wait(now, Some(at), Duration::from_secs(23 * 3600));
            assert!(
                wait.as_millis() as i64 <= DAY_MS,
                "a wait past the 24 h cut"
            );
            let renew_at = now + wait.as_millis() as i64;
            if renew_at >= start_ms + days * DAY_MS {
                return renewals;
            }
            renewals.push(renew_at);
            now = renew_at + handover_ms;
        }
    }

    #[test]
    fn renews_exactly_once_a_day_at_the_configured_time() {
        let at = Duration::from_secs(3 * 3600 + 30);
        let at_ms = at.as_millis() as i64;
        // Started mid-morning; handovers taking from a few ms to most of a minute.
        for handover_ms in [5, 1_500, 45_000] {
            let start = 20_000 * DAY_MS + 10 * H + 17 * 60_000;
            let renewals = simulate(start, at, handover_ms, 7);
            assert_eq!(renewals.len(), 7, "handover {handover_ms} ms: {renewals:?}");
            for (d, t) in renewals.iter().enumerate() {
                assert_eq!(*t, 20_001 * DAY_MS + d as i64 * DAY_MS + at_ms);
            }
        }
    }

    #[test]
    fn without_a_time_of_day_the_age_decides() {
        let age = Duration::from_secs(23 * 3600);
        assert_eq!(rotation_wait(123, None, age), age);
    }
}
