//! Keeping the candle path warm for the moment the next closed candle is due.
//!
//! Between two closed candles the consumer sleeps (a minute on a real 1m stream, 20 ms in a
//! fast demo), and an idle core loses its caches: a live candle used to spend most of its
//! engine step waiting on memory (≈ 13 µs against ≈ 2 µs hot, docs/PERFORMANCE.md). Closed
//! candles come at a steady cadence, so the consumer predicts the next one and, from `lead`
//! before it until the frame comes (or is too late to wait for), runs the candle path on
//! scratch copies every [`REWARM`]: the engine stepped on a copy (reading the engine brings its
//! state in, stepping the copy its code and the branch history), a scratch record refilled,
//! the feed's parser run on a sample frame. In between it sleeps, and the frame wakes it at
//! once. Nothing a warm-up does is kept or shown. Each costs ≈ 20 µs of CPU with its wake-up,
//! so about a fifth of a core while a frame is awaited: ≈ 2 % at 20 ms candles, next to
//! nothing on real ones (the window is a few ms, at most half a period).

use std::time::{Duration, Instant};

/// While waiting for the frame, warm again this often (on Linux's `timerfd`; tokio's timers,
/// the fallback, round it up to their millisecond): caches cool within a millisecond (one
/// warm-up 2 ms early left the engine step at ≈ 9 µs; warmed again and again it took ≈ 4 µs).
pub const REWARM: Duration = Duration::from_micros(100);

/// Periods this long or longer are not learned: a reconnect's gap, not a cadence.
const MAX_PERIOD: Duration = Duration::from_secs(3600);

/// When to warm, learned from the arrivals of live closed candles.
#[derive(Debug, Clone)]
pub struct Prewarm {
    /// How long before the predicted arrival to start; zero turns warming off.
    lead: Duration,
    last: Option<Instant>,
    /// Smoothed time between live closed candles.
    period: Option<Duration>,
    /// Smoothed distance of those gaps from `period`; the window starts at least three of it
    /// early.
    jitter: Duration,
    /// The first warm-up for the next candle, if one is planned (none once it ran).
    due: Option<Instant>,
    /// Waiting for this candle's frame ends here (a late or missing frame).
    until: Option<Instant>,
    /// The last warm-up.
    warmed: Option<Instant>,
    /// Warm-ups run (for the tests).
    runs: u64,
}

impl Prewarm {
    /// Starts `lead` before each predicted candle; `Duration::ZERO` never warms.
    pub fn new(lead: Duration) -> Self {
        Prewarm {
            lead,
            last: None,
            period: None,
            jitter: Duration::ZERO,
            due: None,
            until: None,
            warmed: None,
            runs: 0,
        }
    }

    /// A live closed candle arrived at `at`: learn the cadence, plan the next wake-up.
    pub fn arrived(&mut self, at: Instant) {
        if self.lead.is_zero() {
            return;
        }
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last);
            if !gap.is_zero() && gap < MAX_PERIOD {
                // Quick to learn, not thrown by one late frame or a burst after a stall.
                self.period = Some(match self.period {
                    None => gap,
                    Some(p) if gap > p * 3 / 2 || gap < p / 2 => p,
                    Some(p) => {
                        // How far frames stray from the cadence (a real exchange's final
                        // frame comes tens to hundreds of ms after the close, not always
                        // alike): the window widens to cover it.
                        let off = gap.abs_diff(p);
                        self.jitter = (self.jitter * 7 + off) / 8;
                        (p * 7 + gap) / 8
                    }
                });
            }
        }
        self.last = Some(at);
        self.due = None;
        self.until = None;
        if let Some(p) = self.period {
            // At most half a period early: right after a candle there is nothing to gain.
            let lead = self.lead.max(self.jitter * 3).min(p / 2);
            let expected = at + p;
            self.due = Some(expected - lead);
            self.until = Some(expected + (p / 4).min(lead * 2));
        }
    }

    /// When the consumer should wake to warm, if it should.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A warm-up ran at `now`.
    pub fn ran(&mut self, now: Instant) {
        self.runs += 1;
        self.warmed = Some(now);
        self.due = None;
    }

    /// True from the first warm-up for a candle until its frame comes or is too late to wait
    /// for.
    pub fn waiting(&self, now: Instant) -> bool {
        self.due.is_none() && self.until.is_some_and(|u| now < u)
    }

    /// When to warm next: the first warm-up for the coming candle, then [`REWARM`] after the
    /// last while waiting for it; `None` once the wait is over.
    pub fn next(&self, now: Instant) -> Option<Instant> {
        self.due.or_else(|| {
            self.waiting(now)
                .then(|| self.warmed.map_or(now, |w| w + REWARM))
        })
    }

    /// Warm-ups run so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn learns_the_cadence_and_wakes_lead_early() {
        let t0 = Instant::now();
        let mut w = Prewarm::new(2 * MS);
        w.arrived(t0);
        assert_eq!(w.due(), None, "one arrival is no cadence");
        w.arrived(t0 + 20 * MS);
        assert_eq!(w.due(), Some(t0 + 38 * MS));
        assert_eq!(w.next(t0), w.due());
        assert!(!w.waiting(t0 + 37 * MS), "not before the wake-up");
        w.ran(t0 + 38 * MS);
        assert_eq!(w.due(), None);
        assert!(w.waiting(t0 + 39 * MS));
        assert!(w.next(t0 + 38 * MS + REWARM / 2) > Some(t0 + 38 * MS + REWARM / 2));
        assert_eq!(w.next(t0 + 38 * MS + REWARM), Some(t0 + 38 * MS + REWARM));
        // Expected at 40 ms; waited for until 44 ms (twice the lead; a quarter period is 5).
        assert!(w.waiting(t0 + 43 * MS));
        assert!(
            !w.waiting(t0 + 44 * MS),
            "a missing frame is not waited for forever"
        );
        assert_eq!(w.next(t0 + 39 * MS), Some(t0 + 38 * MS + REWARM));
        assert_eq!(w.next(t0 + 44 * MS), None);
        assert_eq!(w.runs(), 1);
    }

    #[test]
    fn one_late_frame_does_not_move_the_cadence() {
        let t0 = Instant::now();
        let mut w = Prewarm::new(2 * MS);
        for k in 0..4 {
            w.arrived(t0 + k * 20 * MS);
        }
        assert_eq!(w.due(), Some(t0 + 78 * MS));
        // 50 ms late (a reconnect), then on time again.
        w.arrived(t0 + 110 * MS);
        assert_eq!(
            w.due(),
            Some(t0 + 128 * MS),
            "the gap of 50 ms was not learned"
        );
        // A steady change of cadence is followed.
        let mut t = t0 + 110 * MS;
        for _ in 0..40 {
            t += 25 * MS;
            w.arrived(t);
        }
        let due = w.due().unwrap();
        let lead = (t + 25 * MS) - due;
        assert!(
            lead > 1500 * Duration::from_micros(1) && lead < 3 * MS,
            "{lead:?}"
        );
    }

    #[test]
    fn frames_that_stray_from_the_cadence_widen_the_window() {
        let t0 = Instant::now();
        let mut w = Prewarm::new(2 * MS);
        // A minute's candles whose frames come 0–400 ms after the close, by turns.
        let mut t = t0;
        for k in 0..40u32 {
            t = t0 + 60_000 * k * MS + (k % 2) * 400 * MS;
            w.arrived(t);
        }
        let (due, until) = (w.due().unwrap(), w.until.unwrap());
        let expected = t + w.period.unwrap();
        let lead = expected - due;
        assert!(lead > 600 * MS && lead < 1300 * MS, "{lead:?}");
        assert_eq!(
            until - expected,
            2 * lead,
            "waited for as long after as before, twice"
        );
        // Frames on the dot keep the window at the lead asked for.
        let mut w = Prewarm::new(2 * MS);
        for k in 0..40u32 {
            w.arrived(t0 + 60_000 * k * MS);
        }
        assert_eq!(w.due(), Some(t0 + 40 * 60_000 * MS - 2 * MS));
    }

    #[test]
    fn a_short_period_caps_the_lead_at_half_of_it() {
        let t0 = Instant::now();
        let mut w = Prewarm::new(10 * MS);
        w.arrived(t0);
        w.arrived(t0 + 4 * MS);
        assert_eq!(w.due(), Some(t0 + 6 * MS));
    }

    #[test]
    fn zero_lead_never_warms() {
        let t0 = Instant::now();
        let mut w = Prewarm::new(Duration::ZERO);
        for k in 0..5 {
            w.arrived(t0 + k * 20 * MS);
        }
        assert_eq!(w.due(), None);
        assert!(!w.waiting(t0 + 99 * MS));
    }
}
