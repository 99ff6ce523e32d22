//! Streaming indicators: the [`Indicator`] trait and thin wrappers over the `ta-lib` crate's
//! stream handles ([`Sma`], [`Ema`], [`Stddev`], [`Highest`], [`Lowest`], [`Bbands`], [`Macd`], [`Atr`], [`Adx`],
//! [`PlusDi`], [`MinusDi`]) — plus [`Rsi`], transcribed in-house to match the TA-Lib C library
//! where the crate does not (see `indicator/rsi.rs`), and [`Stoch`] and [`Dmi`],
//! transcribed for speed (`indicator/stoch.rs`, `indicator/dmi.rs`).
//!
//! `ta-lib` is TA-Lib's own Rust port: its `*_open` warms a handle on history and `update`
//! costs O(1) per bar, bit-identical to the batch call. Until `lookback + 1` candles exist a
//! handle cannot be opened, so [`Streamed`] buffers them and opens the stream on the first bar
//! that has an output — the same warm-up (leading empty values) as TA-Lib's batch functions.

use std::sync::OnceLock;

use ta_lib::{Core, MAType, RetCode};

use crate::model::Candle;

// RSI is the one indicator computed in-house: the crate's 0/0 answer differs from the C
// library's (see the module's docs).
mod rsi;
pub use rsi::{Rsi, RsiSpec, RsiStream};
// The slow stochastic too: the crate's layered stream was the costliest indicator per bar.
mod stoch;
pub use stoch::Stoch;
// +DI, −DI and ADX from one state, for the `adx` strategy (three crate streams cost 3×).
mod dmi;
pub use dmi::{Dmi, DmiValue};
// Highest and lowest over a window, for the rule language (the crate's streams cost 2×).
mod extreme;
pub use extreme::Extreme;
// The simple moving average too, for the rule language.
mod mean;
pub use mean::Mean;
// And the exponential one.
mod exp_avg;
pub use exp_avg::ExpAvg;
// And the average true range (periods of 2 and more).
mod true_range;
pub use true_range::TrueRangeAvg;

/// A streaming indicator: one closed candle in, O(1) work, `None` while warming up.
pub trait Indicator {
    /// What one bar produces.
    type Output: Copy;
    /// Commits a closed candle and returns its value (`None` during warm-up).
    fn update(&mut self, c: &Candle) -> Option<Self::Output>;
    /// The value a forming candle would have, without committing it.
    fn peek(&self, c: &Candle) -> Option<Self::Output>;
    /// Forgets all history.
    fn reset(&mut self);
    /// How many leading candles yield no value (TA-Lib's lookback).
    fn lookback(&self) -> usize;
}

fn core() -> &'static Core {
    static CORE: OnceLock<Core> = OnceLock::new();
    CORE.get_or_init(Core::new)
}

/// How one TA-Lib function is opened and stepped; the parameters live in the implementor.
pub trait Spec: Clone + std::fmt::Debug {
    /// The `ta-lib` stream handle.
    type Stream: Clone + std::fmt::Debug;
    /// One bar's output.
    type Output: Copy;
    /// TA-Lib's lookback for these parameters.
    fn lookback(&self) -> usize;
    /// Opens a handle on `lookback + 1` bars of history (high, low, close).
    fn open(
        &self,
        h: &[f64],
        l: &[f64],
        c: &[f64],
    ) -> Result<(Self::Stream, Self::Output), RetCode>;
    /// Commits one bar.
    fn update(s: &mut Self::Stream, c: &Candle) -> Result<Self::Output, RetCode>;
    /// Evaluates one bar without committing it.
    fn peek(s: &Self::Stream, c: &Candle) -> Result<Self::Output, RetCode>;
}

#[derive(Debug, Clone)]
enum State<S: Spec> {
    Warming {
        high: Vec<f64>,
        low: Vec<f64>,
        close: Vec<f64>,
    },
    Live(S::Stream),
}

impl<S: Spec> State<S> {
    fn empty() -> Self {
        State::Warming {
            high: Vec::new(),
            low: Vec::new(),
            close: Vec::new(),
        }
    }
}

/// A TA-Lib function made into an [`Indicator`]: buffers until the lookback is reached, then
/// streams in O(1).
#[derive(Debug, Clone)]
pub struct Streamed<S: Spec> {
    spec: S,
    state: State<S>,
}

impl<S: Spec> Streamed<S> {
    fn with_spec(spec: S) -> Self {
        Streamed {
            spec,
            state: State::empty(),
        }
    }
}

impl<S: Spec> Indicator for Streamed<S> {
    type Output = S::Output;

    fn update(&mut self, c: &Candle) -> Option<S::Output> {
        match &mut self.state {
            State::Live(stream) => S::update(stream, c).ok(),
            State::Warming { high, low, close } => {
                high.push(c.high);
                low.push(c.low);
                close.push(c.close);
                if close.len() <= self.spec.lookback() {
                    return None;
                }
                let (stream, out) = self.spec.open(high, low, close).ok()?;
                self.state = State::Live(stream);
                Some(out)
            }
        }
    }

    fn peek(&self, c: &Candle) -> Option<S::Output> {
        match &self.state {
            State::Live(stream) => S::peek(stream, c).ok(),
            State::Warming { high, low, close } => {
                if close.len() < self.spec.lookback() {
                    return None;
                }
                // The forming bar is the first with an output: open on a copy (runs once).
                let mut h = high.clone();
                let mut l = low.clone();
                let mut cl = close.clone();
                h.push(c.high);
                l.push(c.low);
                cl.push(c.close);
                self.spec.open(&h, &l, &cl).ok().map(|(_, out)| out)
            }
        }
    }

    fn reset(&mut self) {
        self.state = State::empty();
    }

    fn lookback(&self) -> usize {
        self.spec.lookback()
    }
}

/// Upper, middle and lower Bollinger band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    /// Middle + k·σ.
    pub upper: f64,
    /// The moving average.
    pub middle: f64,
    /// Middle − k·σ.
    pub lower: f64,
}

impl Bands {
    /// The bands of a moving average `mid` and a standard deviation `sd`, in BBANDS' own order
    /// (the width first, then added and subtracted): TA-Lib's `BBANDS` to the bit.
    #[inline]
    pub fn of(mid: f64, sd: f64, k: f64) -> Bands {
        let w = sd * k;
        Bands {
            upper: mid + w,
            middle: mid,
            lower: mid - w,
        }
    }
}

/// MACD line, signal line and histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of the MACD line.
    pub signal: f64,
    /// MACD − signal.
    pub hist: f64,
}

/// Slow stochastic %K and %D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StochValue {
    /// Slow %K.
    pub k: f64,
    /// Slow %D.
    pub d: f64,
}

// Parameters are validated by TA-Lib's own lookback functions; an invalid one is a
// programming error caught by the strategy configs, so the lookback falls back to "never".
fn lb(r: Result<usize, RetCode>) -> usize {
    r.unwrap_or(NEVER)
}

/// The lookback of parameters TA-Lib refuses: no value ever.
const NEVER: usize = usize::MAX - 1;

macro_rules! close_spec {
    ($(#[$doc:meta])* $spec:ident, $alias:ident, $stream:ty, $lookback:ident, $open:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $spec {
            /// Time period.
            pub period: i32,
        }
        impl Spec for $spec {
            type Stream = $stream;
            type Output = f64;
            fn lookback(&self) -> usize {
                lb(core().$lookback(self.period))
            }
            fn open(&self, _: &[f64], _: &[f64], c: &[f64]) -> Result<($stream, f64), RetCode> {
                core().$open(c, self.period)
            }
            fn update(s: &mut $stream, c: &Candle) -> Result<f64, RetCode> {
                s.update(c.close)
            }
            fn peek(s: &$stream, c: &Candle) -> Result<f64, RetCode> {
                s.peek(c.close)
            }
        }
        $(#[$doc])*
        pub type $alias = Streamed<$spec>;
        impl $alias {
            /// A new indicator over closes with this period.
            pub fn new(period: usize) -> Self {
                Streamed::with_spec($spec { period: period as i32 })
            }
        }
    };
}

macro_rules! hlc_spec {
    ($(#[$doc:meta])* $spec:ident, $alias:ident, $stream:ty, $lookback:ident, $open:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $spec {
            /// Time period.
            pub period: i32,
        }
        impl Spec for $spec {
            type Stream = $stream;
            type Output = f64;
            fn lookback(&self) -> usize {
                lb(core().$lookback(self.period))
            }
            fn open(&self, h: &[f64], l: &[f64], c: &[f64]) -> Result<($stream, f64), RetCode> {
                core().$open(h, l, c, self.period)
            }
            fn update(s: &mut $stream, c: &Candle) -> Result<f64, RetCode> {
                s.update(c.high, c.low, c.close)
            }
            fn peek(s: &$stream, c: &Candle) -> Result<f64, RetCode> {
                s.peek(c.high, c.low, c.close)
            }
        }
        $(#[$doc])*
        pub type $alias = Streamed<$spec>;
        impl $alias {
            /// A new indicator over high/low/close with this period.
            pub fn new(period: usize) -> Self {
                Streamed::with_spec($spec { period: period as i32 })
            }
        }
    };
}

close_spec!(
    /// Simple moving average.
    SmaSpec, Sma, ta_lib::SmaStream, sma_lookback, sma_open
);
close_spec!(
    /// Exponential moving average, SMA-seeded as in TA-Lib.
    EmaSpec, Ema, ta_lib::EmaStream, ema_lookback, ema_open
);
close_spec!(
    /// Highest value over the period (TA-Lib's `MAX`).
    MaxSpec, Highest, ta_lib::MaxStream, max_lookback, max_open
);
close_spec!(
    /// Lowest value over the period (TA-Lib's `MIN`).
    MinSpec, Lowest, ta_lib::MinStream, min_lookback, min_open
);

/// Population standard deviation over closes (TA-Lib's `STDDEV` with one deviation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StddevSpec {
    /// Time period.
    pub period: i32,
}

impl Spec for StddevSpec {
    type Stream = ta_lib::StddevStream;
    type Output = f64;
    fn lookback(&self) -> usize {
        lb(core().stddev_lookback(self.period, 1.0))
    }
    fn open(&self, _: &[f64], _: &[f64], c: &[f64]) -> Result<(Self::Stream, f64), RetCode> {
        core().stddev_open(c, self.period, 1.0)
    }
    fn update(s: &mut Self::Stream, c: &Candle) -> Result<f64, RetCode> {
        s.update(c.close)
    }
    fn peek(s: &Self::Stream, c: &Candle) -> Result<f64, RetCode> {
        s.peek(c.close)
    }
}

/// Population standard deviation.
pub type Stddev = Streamed<StddevSpec>;

impl Stddev {
    /// σ of the last `period` closes.
    pub fn new(period: usize) -> Self {
        Streamed::with_spec(StddevSpec {
            period: period as i32,
        })
    }
}

hlc_spec!(
    /// Average True Range (Wilder).
    AtrSpec, Atr, ta_lib::AtrStream, atr_lookback, atr_open
);
hlc_spec!(
    /// Average Directional Index.
    AdxSpec, Adx, ta_lib::AdxStream, adx_lookback, adx_open
);
hlc_spec!(
    /// Plus Directional Indicator (+DI).
    PlusDiSpec, PlusDi, ta_lib::PlusDiStream, plus_di_lookback, plus_di_open
);
hlc_spec!(
    /// Minus Directional Indicator (−DI).
    MinusDiSpec, MinusDi, ta_lib::MinusDiStream, minus_di_lookback, minus_di_open
);

/// Bollinger Bands over closes with an SMA middle and population standard deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BbandsSpec {
    /// Time period.
    pub period: i32,
    /// Multiplier of σ for the upper band.
    pub dev_up: f64,
    /// Multiplier of σ for the lower band.
    pub dev_down: f64,
}

impl Spec for BbandsSpec {
    type Stream = ta_lib::BbandsStream;
    type Output = Bands;
    fn lookback(&self) -> usize {
        lb(core().bbands_lookback(self.period, self.dev_up, self.dev_down, MAType::SMA))
    }
    fn open(&self, _: &[f64], _: &[f64], c: &[f64]) -> Result<(Self::Stream, Bands), RetCode> {
        let (s, (upper, middle, lower)) =
            core().bbands_open(c, self.period, self.dev_up, self.dev_down, MAType::SMA)?;
        Ok((
            s,
            Bands {
                upper,
                middle,
                lower,
            },
        ))
    }
    fn update(s: &mut Self::Stream, c: &Candle) -> Result<Bands, RetCode> {
        s.update(c.close).map(|(upper, middle, lower)| Bands {
            upper,
            middle,
            lower,
        })
    }
    fn peek(s: &Self::Stream, c: &Candle) -> Result<Bands, RetCode> {
        s.peek(c.close).map(|(upper, middle, lower)| Bands {
            upper,
            middle,
            lower,
        })
    }
}

/// Bollinger Bands (SMA middle, population σ).
pub type Bbands = Streamed<BbandsSpec>;

impl Bbands {
    /// Bands of `period` bars at `k` standard deviations either side.
    pub fn new(period: usize, k: f64) -> Self {
        Streamed::with_spec(BbandsSpec {
            period: period as i32,
            dev_up: k,
            dev_down: k,
        })
    }
}

/// MACD over closes (TA-Lib's `MACD`: SMA-seeded EMAs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdSpec {
    /// Fast EMA period.
    pub fast: i32,
    /// Slow EMA period.
    pub slow: i32,
    /// Signal EMA period.
    pub signal: i32,
}

impl Spec for MacdSpec {
    type Stream = ta_lib::MacdStream;
    type Output = MacdValue;
    fn lookback(&self) -> usize {
        lb(core().macd_lookback(self.fast, self.slow, self.signal))
    }
    fn open(&self, _: &[f64], _: &[f64], c: &[f64]) -> Result<(Self::Stream, MacdValue), RetCode> {
        let (s, (macd, signal, hist)) = core().macd_open(c, self.fast, self.slow, self.signal)?;
        Ok((s, MacdValue { macd, signal, hist }))
    }
    fn update(s: &mut Self::Stream, c: &Candle) -> Result<MacdValue, RetCode> {
        s.update(c.close)
            .map(|(macd, signal, hist)| MacdValue { macd, signal, hist })
    }
    fn peek(s: &Self::Stream, c: &Candle) -> Result<MacdValue, RetCode> {
        s.peek(c.close)
            .map(|(macd, signal, hist)| MacdValue { macd, signal, hist })
    }
}

/// Moving Average Convergence/Divergence.
pub type Macd = Streamed<MacdSpec>;

impl Macd {
    /// MACD(fast, slow, signal).
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        Streamed::with_spec(MacdSpec {
            fast: fast as i32,
            slow: slow as i32,
            signal: signal as i32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::candles;

    #[test]
    fn sma_warms_up_then_streams() {
        let mut sma = Sma::new(3);
        let out: Vec<_> = candles(&[1.0, 2.0, 3.0, 4.0, 5.0])
            .iter()
            .map(|c| sma.update(c))
            .collect();
        assert_eq!(out, vec![None, None, Some(2.0), Some(3.0), Some(4.0)]);
        assert_eq!(sma.lookback(), 2);
    }

    #[test]
    fn warm_up_lengths_match_talib_lookbacks() {
        assert_eq!(Rsi::new(14).lookback(), 14);
        assert_eq!(Ema::new(9).lookback(), 8);
        assert_eq!(Bbands::new(20, 2.0).lookback(), 19);
        assert_eq!(Macd::new(12, 26, 9).lookback(), 33);
        assert_eq!(Stoch::new(14, 3, 3).lookback(), 17);
        assert_eq!(Atr::new(14).lookback(), 14);
        assert_eq!(Adx::new(14).lookback(), 27);
        assert_eq!(PlusDi::new(14).lookback(), 14);
    }

    #[test]
    fn peek_during_warm_up_equals_the_first_update() {
        let cs = candles(&[5.0, 6.0, 4.0, 7.0]);
        let mut ema = Ema::new(3);
        ema.update(&cs[0]);
        assert_eq!(ema.peek(&cs[1]), None);
        ema.update(&cs[1]);
        let peeked = ema.peek(&cs[2]);
        assert!(peeked.is_some());
        assert_eq!(ema.update(&cs[2]), peeked);
        let peeked = ema.peek(&cs[3]);
        assert_eq!(ema.update(&cs[3]), peeked);
    }

    #[test]
    fn reset_starts_over() {
        let cs = candles(&[1.0, 2.0, 3.0]);
        let mut sma = Sma::new(2);
        cs.iter().for_each(|c| {
            sma.update(c);
        });
        sma.reset();
        assert_eq!(sma.update(&cs[0]), None);
    }

    /// The rule language computes `bb_*(x, n, k)` as `sma(x, n) ± k · stddev(x, n)` so that
    /// it shares those two streams with other rules: that must be TA-Lib's `BBANDS` (SMA
    /// middle) to the bit, on ordinary series and on ones that make the variance collapse.
    #[test]
    fn bands_are_sma_and_k_stddev_to_the_bit() {
        let mut series: Vec<Vec<Candle>> = (1..4)
            .map(|seed| crate::testing::synthetic(seed, 20_000))
            .collect();
        let near_flat: Vec<f64> = (0..5000)
            .map(|i| match i % 700 {
                0..300 => 1e6,
                _ => 1e6 + ((i * 7919) % 13) as f64 * 1e-3,
            })
            .collect();
        let steps: Vec<f64> = (0..5000)
            .map(|i| match i % 100 {
                0..40 => 5.0,
                _ => 1e-8 * (i % 17) as f64 + 3e4 * ((i / 300) % 3) as f64,
            })
            .collect();
        series.push(candles(&near_flat));
        series.push(candles(&steps));
        let bits = |b: Option<(f64, f64, f64)>| b.map(|(u, m, l)| [u, m, l].map(f64::to_bits));
        for cs in &series {
            for (n, k) in [(20, 2.0), (5, 1.5), (2, 2.0), (50, 3.0)] {
                let (mut bb, mut sma, mut sd) = (Bbands::new(n, k), Mean::new(n), Stddev::new(n));
                let mut values = 0;
                for (t, c) in cs.iter().enumerate() {
                    let want = bb.update(c).map(|b| (b.upper, b.middle, b.lower));
                    let got = sma.update(c).zip(sd.update(c)).map(|(m, s)| {
                        let b = Bands::of(m, s, k);
                        (b.upper, b.middle, b.lower)
                    });
                    assert_eq!(bits(got), bits(want), "n {n}, k {k}, bar {t}");
                    values += usize::from(want.is_some());
                }
                assert_eq!(values, cs.len() - (n - 1));
            }
        }
    }
}

/// Test support for the in-house transcriptions of `ta-lib` streams.
#[cfg(test)]
pub(crate) mod bit_parity {
    use super::Indicator;
    use crate::model::Candle;

    /// One field of the seeded synthetic series for each seed.
    pub fn synthetic_field(seeds: std::ops::Range<u64>, f: fn(&Candle) -> f64) -> Vec<Vec<f64>> {
        seeds
            .map(|seed| {
                crate::testing::synthetic(seed, 5000)
                    .iter()
                    .map(f)
                    .collect()
            })
            .collect()
    }

    /// `mine` equals `theirs` to the bit on every candle, and they share a lookback; returns
    /// how many values they gave.
    pub fn assert_same_bits<A, B>(mut mine: A, mut theirs: B, cs: &[Candle], what: &str) -> usize
    where
        A: Indicator<Output = f64>,
        B: Indicator<Output = f64>,
    {
        let mut values = 0;
        for (t, c) in cs.iter().enumerate() {
            let want = theirs.update(c);
            assert_eq!(
                mine.update(c).map(f64::to_bits),
                want.map(f64::to_bits),
                "{what} at {t}"
            );
            values += usize::from(want.is_some());
        }
        assert_eq!(mine.lookback(), theirs.lookback(), "{what}");
        values
    }
}
