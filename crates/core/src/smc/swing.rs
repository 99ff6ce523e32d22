//! Swing highs and lows, reported only once confirmed.
//!
//! With `L = swing_length`, the bar at index `c` is a **swing high** when its high is the strict
//! maximum of the `2L + 1` bars `c - L ..= c + L`, ties going to the earliest bar:
//!
//! - `high[c] >  high[j]` for the `L` bars on its left, and
//! - `high[c] >= high[j]` for the `L` bars on its right.
//!
//! So a flat top of equal highs yields exactly one swing high, at its first bar. Swing lows
//! mirror this (`low[c] < low[j]` on the left, `<=` on the right). A bar can be both.
//!
//! A swing is **confirmed** on the candle at index `c + L`, once its right side has closed, and
//! is reported then and only then. The first `L` bars have no complete left side and are never
//! swings. Cost per candle: amortised `O(1)`, memory `O(L)`.

use crate::model::Candle;

/// A confirmed swing point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwingPoint {
    /// Index (0-based, in candles fed since the last reset) of the swing bar itself.
    pub index: u64,
    /// Its high (swing high) or low (swing low).
    pub price: f64,
}

/// What one candle confirmed: the swing `L` bars back, if any, as a high and/or a low.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Confirmed {
    /// A swing high confirmed on this candle.
    pub high: Option<SwingPoint>,
    /// A swing low confirmed on this candle.
    pub low: Option<SwingPoint>,
}

/// A queue of `(index, price)` in a `Vec` read from `start`: popping the front moves `start`,
/// and the dead prefix is dropped once it is as long as a window. Cheaper than a `VecDeque`,
/// whose wrap-around arithmetic cost more than the comparisons here.
#[derive(Debug, Clone)]
struct Queue {
    items: Vec<(u64, f64)>,
    start: usize,
    window: usize,
}

impl Queue {
    fn new(length: usize) -> Self {
        let window = 2 * length + 1;
        Queue {
            items: Vec::with_capacity(2 * window),
            start: 0,
            window,
        }
    }
    fn front(&self) -> Option<&(u64, f64)> {
        self.items.get(self.start)
    }
    fn back(&self) -> Option<&(u64, f64)> {
        self.items[self.start..].last()
    }
    fn pop_front(&mut self) {
        self.start += 1;
    }
    fn pop_back(&mut self) {
        self.items.pop();
    }
    fn push_back(&mut self, item: (u64, f64)) {
        if self.start >= self.window {
            self.items.drain(..self.start);
            self.start = 0;
        }
        self.items.push(item);
    }
    fn clear(&mut self) {
        self.items.clear();
        self.start = 0;
    }
}

/// Streaming swing detector.
///
/// Each side keeps a monotonic queue of the window's candidates (the classic sliding-window
/// maximum): a bar is dropped once a later bar beats it, since it can never again be the
/// window's earliest extreme. The centre bar is a swing exactly when it heads its queue. This
/// costs amortised O(1) per candle instead of rescanning `2L + 1` bars, which four SMC
/// detectors each did on every candle.
#[derive(Debug, Clone)]
pub struct Swings {
    length: usize,
    /// `(index, high)`: highs non-increasing from the front, so the front is the window's
    /// highest high and, among equals, the earliest.
    highs: Queue,
    /// `(index, low)`: lows non-decreasing from the front.
    lows: Queue,
    seen: u64,
}

impl Swings {
    /// A detector with `length` bars on each side (at least 1).
    pub fn new(length: usize) -> Self {
        let length = length.max(1);
        Swings {
            length,
            highs: Queue::new(length),
            lows: Queue::new(length),
            seen: 0,
        }
    }

    /// Bars on each side of a swing.
    pub fn length(&self) -> usize {
        self.length
    }

    /// Candles fed since the last reset; the newest candle's index is `seen() - 1`.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one closed candle; reports the swing(s) it confirms.
    pub fn update(&mut self, c: &Candle) -> Confirmed {
        let i = self.seen;
        self.seen += 1;
        // Strict comparisons keep an earlier equal bar in front: ties go to the earliest bar.
        while self.highs.back().is_some_and(|&(_, h)| h < c.high) {
            self.highs.pop_back();
        }
        self.highs.push_back((i, c.high));
        while self.lows.back().is_some_and(|&(_, l)| l > c.low) {
            self.lows.pop_back();
        }
        self.lows.push_back((i, c.low));
        let l = self.length as u64;
        if i < 2 * l {
            return Confirmed::default();
        }
        // The window is `i - 2L ..= i`; its centre `i - L` has a full left and right side.
        let start = i - 2 * l;
        while self.highs.front().is_some_and(|&(j, _)| j < start) {
            self.highs.pop_front();
        }
        while self.lows.front().is_some_and(|&(j, _)| j < start) {
            self.lows.pop_front();
        }
        let centre = i - l;
        let head = |q: &Queue| {
            q.front()
                .filter(|&&(j, _)| j == centre)
                .map(|&(index, price)| SwingPoint { index, price })
        };
        Confirmed {
            high: head(&self.highs),
            low: head(&self.lows),
        }
    }

    /// Forgets all history.
    pub fn reset(&mut self) {
        self.highs.clear();
        self.lows.clear();
        self.seen = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hl;

    /// `(confirmed on candle, is_high, swing index, price)`.
    type Seen = (u64, bool, u64, f64);

    fn run(length: usize, bars: &[(f64, f64)]) -> Vec<Seen> {
        let mut s = Swings::new(length);
        let mut out = Vec::new();
        for (t, c) in hl(bars).iter().enumerate() {
            let got = s.update(c);
            if let Some(p) = got.high {
                out.push((t as u64, true, p.index, p.price));
            }
            if let Some(p) = got.low {
                out.push((t as u64, false, p.index, p.price));
            }
        }
        out
    }

    #[test]
    fn swings_are_confirmed_exactly_length_bars_later() {
        struct Case {
            name: &'static str,
            length: usize,
            bars: Vec<(f64, f64)>,
            expected: Vec<Seen>,
        }
        let cases = [
            Case {
                name: "peak at 2 with L=2 is reported on candle 4, not before",
                length: 2,
                bars: vec![
                    (10.0, 9.0),
                    (11.0, 10.0),
                    (13.0, 12.0),
                    (12.0, 11.0),
                    (11.5, 10.5),
                ],
                expected: vec![(4, true, 2, 13.0)],
            },
            Case {
                name: "right side not closed yet: nothing",
                length: 2,
                bars: vec![(10.0, 9.0), (11.0, 10.0), (13.0, 12.0), (12.0, 11.0)],
                expected: vec![],
            },
            Case {
                name: "trough mirrored",
                length: 1,
                bars: vec![(10.0, 9.0), (9.0, 8.0), (10.0, 9.5)],
                expected: vec![(2, false, 1, 8.0)],
            },
            Case {
                name: "flat top: the first of two equal highs is the swing",
                length: 1,
                bars: vec![(10.0, 9.0), (12.0, 11.0), (12.0, 11.0), (10.0, 9.0)],
                expected: vec![(2, true, 1, 12.0)],
            },
            Case {
                name: "an equal high on the left disqualifies",
                length: 2,
                bars: vec![
                    (12.0, 9.0),
                    (11.0, 10.0),
                    (12.0, 10.5),
                    (11.0, 10.0),
                    (10.0, 9.5),
                ],
                expected: vec![],
            },
            Case {
                name: "outside bar is both a swing high and a swing low",
                length: 1,
                bars: vec![(10.0, 9.0), (11.0, 8.0), (10.0, 9.0)],
                expected: vec![(2, true, 1, 11.0), (2, false, 1, 8.0)],
            },
            Case {
                name: "the first L bars have no left side and are never swings",
                length: 2,
                bars: vec![
                    (15.0, 1.0),
                    (12.0, 9.0),
                    (11.0, 10.0),
                    (11.0, 10.0),
                    (11.0, 10.0),
                ],
                expected: vec![],
            },
        ];
        for c in cases {
            assert_eq!(run(c.length, &c.bars), c.expected, "{}", c.name);
        }
    }

    #[test]
    fn reset_starts_over_and_length_is_at_least_one() {
        let mut s = Swings::new(0);
        assert_eq!(s.length(), 1);
        for c in hl(&[(10.0, 9.0), (11.0, 10.0)]) {
            s.update(&c);
        }
        s.reset();
        assert_eq!(s.seen(), 0);
        let bars = hl(&[(10.0, 9.0), (11.0, 10.0), (10.0, 9.0)]);
        let got: Vec<_> = bars.iter().map(|c| s.update(c)).collect();
        assert_eq!(
            got[2].high,
            Some(SwingPoint {
                index: 1,
                price: 11.0
            })
        );
    }

    /// The definition read literally: rescan the `2L + 1` bars around each centre.
    fn naive(length: usize, bars: &[(f64, f64)]) -> Vec<Seen> {
        let l = length;
        let mut out = Vec::new();
        for t in 2 * l..bars.len() {
            let c = t - l;
            let (ch, cl) = bars[c];
            let left = &bars[c - l..c];
            let right = &bars[c + 1..=t];
            if left.iter().all(|&(h, _)| ch > h) && right.iter().all(|&(h, _)| ch >= h) {
                out.push((t as u64, true, c as u64, ch));
            }
            if left.iter().all(|&(_, lo)| cl < lo) && right.iter().all(|&(_, lo)| cl <= lo) {
                out.push((t as u64, false, c as u64, cl));
            }
        }
        out
    }

    proptest::proptest! {
        /// Prices on a coarse grid, so equal highs and lows (the tie rules) are common.
        #[test]
        fn streaming_equals_the_definition(
            length in 1usize..6,
            steps in proptest::collection::vec((0u8..6, 0u8..4), 0..120),
        ) {
            let bars: Vec<(f64, f64)> = steps
                .iter()
                .map(|&(h, d)| (f64::from(h) + 10.0, f64::from(h) + 10.0 - f64::from(d)))
                .collect();
            proptest::prop_assert_eq!(run(length, &bars), naive(length, &bars));
        }
    }
}
