//! Per-stream ordering: decides whether a closed candle is the next one, a duplicate, a
//! correction, stale, or proof of a gap; and whether a forming update may be shown.

use std::collections::VecDeque;

use manus_core::{Candle, Interval};

/// How many recent closed candles are kept to recognise corrections of late re-sends.
const RECENT: usize = 64;

/// What to do with a closed candle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// The next candle (or the first): yield it.
    Accept,
    /// Already yielded with the same values.
    Duplicate,
    /// Already yielded with different values; the kept one stands.
    Correction(Candle),
    /// Older than anything remembered: drop.
    Stale,
    /// Candles are missing from `from` (open time) up to this one.
    Gap {
        /// Open time of the first missing candle.
        from: i64,
    },
}

/// The closed-candle state of one stream.
#[derive(Debug, Clone)]
pub(crate) struct Sequencer {
    interval: Interval,
    recent: VecDeque<Candle>,
    forming: Option<i64>,
}

impl Sequencer {
    /// An empty sequencer for one interval.
    pub fn new(interval: Interval) -> Self {
        Sequencer {
            interval,
            recent: VecDeque::with_capacity(RECENT),
            forming: None,
        }
    }

    /// The last closed candle yielded.
    pub fn last(&self) -> Option<&Candle> {
        self.recent.back()
    }

    /// The open time the next closed candle must have.
    pub fn next_open(&self) -> Option<i64> {
        self.last().map(|c| self.interval.next_open(c.open_time))
    }

    /// Classifies a closed candle without changing state.
    pub fn classify(&self, c: &Candle) -> Verdict {
        let Some(last) = self.last() else {
            return Verdict::Accept;
        };
        let next = self.interval.next_open(last.open_time);
        if c.open_time == next {
            return Verdict::Accept;
        }
        if c.open_time > next {
            return Verdict::Gap { from: next };
        }
        // Recent candles are contiguous, so the index follows from the open time.
        let first = self.recent.front().map_or(i64::MAX, |f| f.open_time);
        if c.open_time < first {
            return Verdict::Stale;
        }
        match self
            .recent
            .iter()
            .rev()
            .find(|k| k.open_time == c.open_time)
        {
            Some(k) if k == c => Verdict::Duplicate,
            Some(k) => Verdict::Correction(*k),
            None => Verdict::Stale,
        }
    }

    /// Records a yielded closed candle (after `Accept`, or to step over a gap the exchange
    /// cannot fill).
    pub fn accept(&mut self, c: Candle) {
        if self
            .last()
            .is_some_and(|l| self.interval.next_open(l.open_time) != c.open_time)
        {
            // Not contiguous: older entries would break the index arithmetic; start over.
            self.recent.clear();
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(c);
    }

    /// True when a forming update may be shown: it is newer than the last closed candle and
    /// not older than the newest update shown (a forming candle never overwrites a closed one).
    pub fn admit_update(&mut self, c: &Candle) -> bool {
        if self.last().is_some_and(|l| c.open_time <= l.open_time) {
            return false;
        }
        if self.forming.is_some_and(|f| c.open_time < f) {
            return false;
        }
        self.forming = Some(c.open_time);
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const M: i64 = 60_000;

    /// The `i`-th one-minute candle with this close.
    pub(crate) fn c(i: i64, close: f64) -> Candle {
        Candle {
            open_time: i * M,
            close_time: i * M + M - 1,
            open: 1.0,
            high: 10.0,
            low: 0.5,
            close,
            volume: 1.0,
        }
    }

    #[test]
    fn classifies_closed_candles() {
        let mut s = Sequencer::new(Interval::M1);
        assert_eq!(s.classify(&c(10, 2.0)), Verdict::Accept);
        s.accept(c(10, 2.0));
        s.accept(c(11, 3.0));
        struct Case {
            input: Candle,
            expected: Verdict,
        }
        let cases = [
            Case {
                input: c(12, 1.0),
                expected: Verdict::Accept,
            },
            Case {
                input: c(11, 3.0),
                expected: Verdict::Duplicate,
            },
            Case {
                input: c(10, 2.0),
                expected: Verdict::Duplicate,
            },
            Case {
                input: c(11, 4.0),
                expected: Verdict::Correction(c(11, 3.0)),
            },
            Case {
                input: c(9, 4.0),
                expected: Verdict::Stale,
            },
            Case {
                input: c(15, 4.0),
                expected: Verdict::Gap { from: 12 * M },
            },
        ];
        for case in cases {
            assert_eq!(s.classify(&case.input), case.expected, "{:?}", case.input);
        }
    }

    #[test]
    fn forming_never_overwrites_closed() {
        let mut s = Sequencer::new(Interval::M1);
        s.accept(c(10, 2.0));
        assert!(!s.admit_update(&c(10, 9.0)), "update of a closed candle");
        assert!(s.admit_update(&c(11, 9.0)));
        assert!(s.admit_update(&c(12, 9.0)));
        assert!(
            !s.admit_update(&c(11, 9.0)),
            "stale update after a newer one"
        );
    }

    #[test]
    fn remembers_a_bounded_window() {
        let mut s = Sequencer::new(Interval::M1);
        for i in 0..200 {
            s.accept(c(i, 2.0));
        }
        assert_eq!(
            s.classify(&c(200 - RECENT as i64, 5.0)),
            Verdict::Correction(c(200 - RECENT as i64, 2.0))
        );
        assert_eq!(s.classify(&c(199 - RECENT as i64, 5.0)), Verdict::Stale);
        assert_eq!(s.next_open(), Some(200 * M));
    }
}
