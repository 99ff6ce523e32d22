//! The warm-up's wake-up (`super::prewarm`), finer than tokio's timer.
//!
//! Tokio's timers count whole milliseconds, and a core left idle for a millisecond has lost
//! what the last warm-up put in its caches (on a virtual machine the idle vCPU gives its
//! physical core away). On Linux a `timerfd`, polled by the runtime like a socket, wakes the
//! loop within microseconds of the time asked, so the warm-ups can come every
//! [`super::prewarm::REWARM`] while the frame is awaited. Elsewhere, and in tests on tokio's
//! paused clock, the tokio timer serves (rounded up to its millisecond).

use std::io;
use std::time::Instant;

/// One timer kept across the loop's turns: a frame that wins the `select!` then drops no timer
/// (cancelling a tokio one takes the timer wheel's lock on the candle's path), and it is set
/// again only when the schedule changes, after the candle.
pub(crate) struct WarmTimer {
    clock: Clock,
    /// The time it is set for; `None`: never fires.
    at: Option<Instant>,
}

enum Clock {
    Tokio(std::pin::Pin<Box<tokio::time::Sleep>>),
    #[cfg(target_os = "linux")]
    Fine(fine::TimerFd),
}

impl WarmTimer {
    /// A timer on tokio's clock: what tests on a paused clock need.
    pub(crate) fn coarse() -> Self {
        WarmTimer {
            clock: Clock::Tokio(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::now(),
            ))),
            at: None,
        }
    }

    /// A `timerfd` where the system has one (it needs a runtime with I/O enabled), else
    /// [`WarmTimer::coarse`].
    pub(crate) fn fine() -> Self {
        #[cfg(target_os = "linux")]
        match fine::TimerFd::new() {
            Ok(fd) => {
                return WarmTimer {
                    clock: Clock::Fine(fd),
                    at: None,
                };
            }
            Err(e) => tracing::debug!(error = %e, "no timerfd; warm-ups on tokio's timer"),
        }
        Self::coarse()
    }

    /// Whether this timer wakes at sub-millisecond precision.
    #[cfg(test)]
    pub(crate) fn is_fine(&self) -> bool {
        !matches!(self.clock, Clock::Tokio(_))
    }

    /// Fires at `at`; with `None`, never. Sets the clock only when `at` changed.
    pub(crate) fn arm(&mut self, at: Option<Instant>) {
        if at == self.at {
            return;
        }
        self.at = at;
        let Some(at) = at else {
            // A clock left set fires once, a wake-up that finds nothing to do.
            return;
        };
        match &mut self.clock {
            Clock::Tokio(sleep) => sleep.as_mut().reset(at.into()),
            #[cfg(target_os = "linux")]
            Clock::Fine(fd) => {
                if let Err(e) = fd.set(at.saturating_duration_since(Instant::now())) {
                    tracing::debug!(error = %e, "timerfd_settime failed; warm-ups on tokio's timer");
                    self.clock = Clock::Tokio(Box::pin(tokio::time::sleep_until(at.into())));
                }
            }
        }
    }

    /// Completes when the armed time has come, then is disarmed (a `select!` branch;
    /// cancel-safe).
    pub(crate) async fn fired(&mut self) {
        if self.at.is_none() {
            return std::future::pending().await;
        }
        let fired: io::Result<()> = match &mut self.clock {
            Clock::Tokio(sleep) => {
                sleep.as_mut().await;
                Ok(())
            }
            #[cfg(target_os = "linux")]
            Clock::Fine(fd) => fd.expired().await,
        };
        if let Err(e) = fired {
            tracing::debug!(error = %e, "timerfd read failed; warm-ups on tokio's timer");
            self.clock = Clock::Tokio(Box::pin(tokio::time::sleep_until(
                tokio::time::Instant::now(),
            )));
        }
        self.at = None;
    }
}

#[cfg(target_os = "linux")]
mod fine {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A one-shot monotonic `timerfd` registered with the runtime's poller.
    pub(super) struct TimerFd(AsyncFd<OwnedFd>);

    impl TimerFd {
        pub(super) fn new() -> io::Result<Self> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // Deprecated for file descriptors someone else may close while registered (tokio
            // #8587); its replacement is `unsafe`, which this workspace forbids. This one is an
            // `OwnedFd` the `AsyncFd` owns, so nothing else can close it.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(fd, Interest::READABLE)?;
            Ok(TimerFd(fd))
        }

        /// Expires `after` from now (at once for zero: a zero time would disarm it).
        pub(super) fn set(&self, after: Duration) -> io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            let spec = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: after.as_secs() as _,
                    tv_nsec: after.subsec_nanos() as _,
                },
            };
            timerfd_settime(self.0.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
            Ok(())
        }

        /// Waits for the expiry and consumes it.
        pub(super) async fn expired(&self) -> io::Result<()> {
            loop {
                let mut ready = self.0.readable().await?;
                let mut count = [0u8; 8];
                match ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut count)?)) {
                    Ok(r) => return r.map(drop),
                    // Readiness was stale: wait again.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_fine_timer_fires_once_at_the_time_asked_and_not_before() {
        let mut t = WarmTimer::fine();
        assert!(t.is_fine(), "Linux has timerfd");
        for wait_us in [300u64, 50, 2_000] {
            let start = Instant::now();
            t.arm(Some(start + Duration::from_micros(wait_us)));
            t.fired().await;
            assert!(
                start.elapsed() >= Duration::from_micros(wait_us),
                "{wait_us} µs"
            );
        }
        // Disarmed after firing, and `None` never fires: the feed's branch wins.
        let quiet = tokio::time::timeout(Duration::from_millis(20), t.fired()).await;
        assert!(quiet.is_err(), "a fired timer does not fire again");
        t.arm(Some(Instant::now() + Duration::from_millis(1)));
        t.arm(None);
        let quiet = tokio::time::timeout(Duration::from_millis(20), t.fired()).await;
        assert!(quiet.is_err(), "a timer armed with None never fires");
    }

    #[tokio::test(start_paused = true)]
    async fn the_coarse_timer_follows_the_paused_clock() {
        let mut t = WarmTimer::coarse();
        assert!(!t.is_fine());
        let start = tokio::time::Instant::now();
        t.arm(Some(start.into_std() + Duration::from_millis(5)));
        t.fired().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(5),
            "paused time advanced to it"
        );
    }
}
