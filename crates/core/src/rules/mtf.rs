//! Multi-timeframe: [`Aggregator`] builds higher-timeframe candles from the stream's closed
//! candles, the same way in a backtest and live.
//!
//! A higher candle covers `[floor(t), next_open)` of its interval (weeks from Monday, months
//! from the 1st, UTC). It closes — and only then is seen by `on(...)` — on the base candle whose
//! close time reaches the higher candle's close time, or, when base candles are missing at its
//! end, on the first base candle that opens after it. A forming higher candle is never seen.

use thiserror::Error;

use crate::model::{Candle, Interval};

const DAY: i64 = 86_400_000;

/// Whether candles of `base_ms` tile `tf` exactly (calendar months tile by days).
pub fn tiles(tf: Interval, base_ms: i64) -> bool {
    let span = match tf {
        Interval::Mo1 => DAY,
        other => other.duration_ms(),
    };
    base_ms > 0 && base_ms <= tf.duration_ms() && span % base_ms == 0
}

/// The base interval of a closed candle, from its own times (`close_time = next_open - 1`).
pub fn base_of(c: &Candle) -> i64 {
    c.close_time - c.open_time + 1
}

/// A higher timeframe the stream's candles do not tile.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[error(
    "on(\"{tf}\"): {tf} is not a multiple of the stream's interval ({})",
    crate::rules::fmt_ms(*base_ms)
)]
pub struct NotAMultiple {
    /// The timeframe of `on(...)`.
    pub tf: Interval,
    /// The stream's interval, in ms.
    pub base_ms: i64,
}

/// One higher timeframe's forming candle.
#[derive(Debug, Clone)]
pub struct Aggregator {
    tf: Interval,
    base_ms: Option<i64>,
    forming: Option<Candle>,
}

impl Aggregator {
    /// Aggregates into `tf`.
    pub fn new(tf: Interval) -> Self {
        Aggregator {
            tf,
            base_ms: None,
            forming: None,
        }
    }

    /// Adds a base candle that falls inside the forming higher candle and is not its last —
    /// all but one base candle in each higher one — and returns `true`; otherwise does nothing
    /// and returns `false` (then [`Aggregator::push`] it). The same result as `push`, without
    /// its checks and its two candle-sized results on the common path.
    #[inline]
    pub fn absorb(&mut self, c: &Candle) -> bool {
        match &mut self.forming {
            // A forming candle exists only once the base interval was checked.
            Some(f) if c.close_time < f.close_time => {
                f.high = f.high.max(c.high);
                f.low = f.low.min(c.low);
                f.close = c.close;
                f.volume += c.volume;
                true
            }
            _ => false,
        }
    }

    /// Adds one closed base candle; returns the higher candles it closes, oldest first (the one
    /// a gap left behind, then its own). Errors when the base interval does not tile `tf`.
    pub fn push(&mut self, c: &Candle) -> Result<[Option<Candle>; 2], NotAMultiple> {
        if self.base_ms.is_none() {
            let base = base_of(c);
            if !tiles(self.tf, base) {
                return Err(NotAMultiple {
                    tf: self.tf,
                    base_ms: base,
                });
            }
            self.base_ms = Some(base);
        }
        let mut out = [None, None];
        if let Some(f) = self.forming
            && f.close_time < c.open_time
        {
            out[0] = self.forming.take();
        }
        let f = match &mut self.forming {
            Some(f) => {
                f.high = f.high.max(c.high);
                f.low = f.low.min(c.low);
                f.close = c.close;
                f.volume += c.volume;
                *f
            }
            None => {
                let open_time = self.tf.floor(c.open_time);
                let f = Candle {
                    open_time,
                    close_time: self.tf.close_time(open_time),
                    ..*c
                };
                self.forming = Some(f);
                f
            }
        };
        if c.close_time >= f.close_time {
            out[1] = self.forming.take();
        }
        Ok(out)
    }

    /// Forgets the forming candle and the base interval.
    pub fn reset(&mut self) {
        self.forming = None;
        self.base_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(open_time: i64, price: f64) -> Candle {
        Candle {
            open_time,
            close_time: open_time + 299_999,
            open: price,
            high: price + 1.0,
            low: price - 1.0,
            close: price,
            volume: 1.0,
        }
    }

    #[test]
    fn closes_on_its_last_base_candle_or_after_a_gap() {
        let mut a = Aggregator::new(Interval::M15);
        let m5 = 300_000;
        assert_eq!(a.push(&c(0, 10.0)).unwrap(), [None, None]);
        assert_eq!(a.push(&c(m5, 11.0)).unwrap(), [None, None]);
        let [gap, own] = a.push(&c(2 * m5, 12.0)).unwrap();
        assert!(gap.is_none());
        let h = own.expect("the third 5m candle closes the 15m one");
        assert_eq!((h.open_time, h.close_time), (0, 3 * m5 - 1));
        assert_eq!(
            (h.open, h.high, h.low, h.close, h.volume),
            (10.0, 13.0, 9.0, 12.0, 3.0)
        );
        // Missing the last candle of the next bucket: it closes when the one after arrives.
        a.push(&c(3 * m5, 20.0)).unwrap();
        a.push(&c(4 * m5, 21.0)).unwrap();
        let [gap, own] = a.push(&c(6 * m5, 30.0)).unwrap();
        let g = gap.expect("closed by the gap");
        assert_eq!((g.open_time, g.close, g.volume), (3 * m5, 21.0, 2.0));
        assert!(own.is_none(), "the 6th candle opens a new bucket");
    }

    #[test]
    fn absorbing_equals_pushing() {
        // Base candles with a gap of two at the end of the second bucket and one mid-bucket.
        let m5 = 300_000;
        let times: Vec<i64> = [0, 1, 2, 3, 4, 6, 7, 9, 10, 11, 12]
            .iter()
            .map(|k| k * m5)
            .collect();
        let (mut pushed, mut absorbed) = (
            Aggregator::new(Interval::M15),
            Aggregator::new(Interval::M15),
        );
        let mut skipped = 0;
        for (i, &t) in times.iter().enumerate() {
            let cd = c(t, 10.0 + (i as f64 * 1.7).sin());
            let want = pushed.push(&cd).unwrap();
            let got = if absorbed.absorb(&cd) {
                skipped += 1;
                [None, None]
            } else {
                absorbed.push(&cd).unwrap()
            };
            assert_eq!(got, want, "candle {i}");
        }
        assert!(skipped >= 4, "the fast path taken: {skipped}");
        assert!(
            !Aggregator::new(Interval::M15).absorb(&c(0, 1.0)),
            "nothing forming yet"
        );
    }

    #[test]
    fn a_timeframe_the_base_does_not_tile_is_an_error() {
        let mut a = Aggregator::new(Interval::H1);
        let mut bad = c(0, 1.0);
        bad.close_time = 7 * 60_000 - 1;
        let e = a.push(&bad).unwrap_err().to_string();
        assert!(
            e.contains("1h is not a multiple of the stream's interval (420000 ms)"),
            "{e}"
        );
        assert!(tiles(Interval::Mo1, 3_600_000) && !tiles(Interval::W1, 3 * DAY));
        assert!(!tiles(Interval::M5, 3_600_000), "lower than the base");
    }
}
