//! The simulated market: a seeded synthetic random walk (volatility clustering, drifting
//! regimes, occasional jumps) or a replay of a candle list, cut into the in-progress snapshots
//! each candle goes through before its final.
//!
//! Pure and deterministic: no clock, no I/O. Given the same seed (or list), the same candles
//! come out, so a test can compare what a client saw with the truth.

use manus_core::{Candle, Interval};

/// SplitMix64: tiny, fast, and fully deterministic across platforms and crate versions (the
/// sim's output must not change when `rand` changes its algorithms).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Rounds to 8 decimals such that the `f64` we record as truth is exactly what a client gets
/// back when it parses the `{:.8}` string we send.
///
/// `n / 1e8` with an integer `n < 2^53` is the correctly rounded quotient, i.e. the `f64`
/// nearest to the decimal `n·10⁻⁸`, which is also what parsing that decimal yields; larger
/// values take the (slower) trip through the string.
pub(crate) fn q8(x: f64) -> f64 {
    let n = (x * 1e8).round();
    if n.abs() < 9.0e15 {
        n / 1e8
    } else {
        format!("{x:.8}").parse().unwrap_or(x)
    }
}

/// The snapshots of one candle: `updates` in-progress states, then the final (last element).
pub(crate) type Path = Vec<Candle>;

/// Where candles come from.
#[derive(Debug, Clone)]
pub(crate) enum Generator {
    /// Seeded random walk.
    Synthetic(Box<Walk>),
    /// A list replayed on the interval grid.
    Replay(Replay),
}

impl Generator {
    /// The next candle's snapshots (`updates + 1` of them, the last one final), opening at
    /// `open_time`; `None` when a non-looping replay has run out.
    pub(crate) fn next_path(
        &mut self,
        interval: Interval,
        open_time: i64,
        updates: u32,
    ) -> Option<Path> {
        match self {
            Generator::Synthetic(w) => Some(w.next_path(interval, open_time, updates)),
            Generator::Replay(r) => r.next_path(interval, open_time, updates),
        }
    }
}

/// State of the synthetic random walk for one symbol.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    rng: Rng,
    /// Last close.
    price: f64,
    /// Log of the starting price (a weak pull towards it keeps long runs in range).
    anchor: f64,
    /// Price tick (prices are multiples of it).
    tick: f64,
    /// Unconditional per-candle volatility of log returns.
    sigma0: f64,
    /// Current conditional variance (GARCH(1,1)).
    var: f64,
    /// Last candle's log return.
    last_ret: f64,
    /// Slowly wandering drift per candle (trend regimes).
    drift: f64,
    /// Typical base volume per candle.
    base_volume: f64,
}

/// Probability of a jump in a candle.
const JUMP_P: f64 = 0.012;
/// GARCH(1,1) reaction and persistence.
const GARCH_A: f64 = 0.10;
const GARCH_B: f64 = 0.86;

impl Walk {
    /// A walk starting at `start_price`, seeded with `seed` (mixed with the symbol index so
    /// symbols differ), for candles of `interval`.
    pub(crate) fn new(
        seed: u64,
        symbol_index: usize,
        start_price: f64,
        interval: Interval,
    ) -> Self {
        let mut rng = Rng::new(seed ^ (symbol_index as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        // Warm the generator so nearby seeds diverge at once.
        for _ in 0..4 {
            rng.next_u64();
        }
        let tick = tick_for(start_price);
        let minutes = interval.duration_ms() as f64 / 60_000.0;
        let sigma0 = (0.0012 * minutes.sqrt()).min(0.08);
        let price = round_to(start_price, tick).max(tick);
        Walk {
            rng,
            price,
            anchor: price.ln(),
            tick,
            sigma0,
            var: sigma0 * sigma0,
            last_ret: 0.0,
            drift: 0.0,
            base_volume: (1_000_000.0 / price).max(1e-4),
        }
    }

    /// The last close (the next candle's open).
    pub(crate) fn price(&self) -> f64 {
        q8(self.price)
    }

    pub(crate) fn next_path(&mut self, interval: Interval, open_time: i64, updates: u32) -> Path {
        let close_time = interval.close_time(open_time);
        let steps = updates as usize + 1;
        let s0 = self.sigma0;
        self.var = s0 * s0 * (1.0 - GARCH_A - GARCH_B)
            + GARCH_A * self.last_ret * self.last_ret
            + GARCH_B * self.var;
        let sigma = self.var.sqrt();
        // Trend regimes: an AR(1) drift, plus a weak pull back to the starting price.
        self.drift = 0.97 * self.drift + 0.12 * s0 * self.rng.normal();
        let pull = -2e-4 * (self.price.ln() - self.anchor);
        let mu = self.drift + pull;
        let jump = if self.rng.uniform() < JUMP_P {
            let size = (4.0 + 6.0 * self.rng.uniform()) * s0;
            if self.rng.uniform() < 0.5 {
                -size
            } else {
                size
            }
        } else {
            0.0
        };
        let jump_step = (self.rng.uniform() * steps as f64) as usize;
        let sub_sigma = sigma / (steps as f64).sqrt();

        let open = self.price;
        let mut p = open;
        let (mut high, mut low) = (open, open);
        let total_ret_guess = (mu.abs() + sigma + jump.abs()) / s0;
        let volume_total = self.base_volume
            * (0.4 * self.rng.normal()).exp()
            * (0.6 + 0.5 * total_ret_guess.min(8.0));
        let weights: Vec<f64> = (0..steps).map(|_| 0.2 + self.rng.uniform()).collect();
        let weight_sum: f64 = weights.iter().sum();
        let mut volume = 0.0;
        let mut path = Vec::with_capacity(steps);
        for (j, w) in weights.iter().enumerate() {
            let mut r = mu / steps as f64 + sub_sigma * self.rng.normal();
            if j == jump_step {
                r += jump;
            }
            let prev = p;
            p = round_to(p * r.exp(), self.tick).max(self.tick);
            let wick_hi = (self.rng.normal().abs() * sub_sigma * 0.6).exp();
            let wick_lo = (-self.rng.normal().abs() * sub_sigma * 0.6).exp();
            high = high.max(round_to(prev.max(p) * wick_hi, self.tick));
            low = low.min(round_to(prev.min(p) * wick_lo, self.tick).max(self.tick));
            volume += volume_total * w / weight_sum;
            path.push(Candle {
                open_time,
                close_time,
                open: q8(open),
                high: q8(high.max(open).max(p)),
                low: q8(low.min(open).min(p)),
                close: q8(p),
                volume: q8(volume),
            });
        }
        self.last_ret = (p / open).ln();
        self.price = p;
        path
    }
}

/// A tick about a millionth of the price, a power of ten (0.01 at 30 000).
pub(crate) fn tick_for(price: f64) -> f64 {
    let exp = price.abs().max(1e-8).log10().floor() as i32 - 6;
    10f64.powi(exp.max(-8))
}

fn round_to(x: f64, tick: f64) -> f64 {
    (x / tick).round() * tick
}

/// A candle list replayed on the interval grid, optionally looping (each loop rescaled so the
/// series stays continuous).
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    candles: std::sync::Arc<Vec<Candle>>,
    next: usize,
    looping: bool,
    /// Price factor of the current loop.
    scale: f64,
}

impl Replay {
    /// Replays `candles` from index `from`.
    pub(crate) fn new(candles: std::sync::Arc<Vec<Candle>>, from: usize, looping: bool) -> Self {
        Replay {
            candles,
            next: from,
            looping,
            scale: 1.0,
        }
    }

    fn next_path(&mut self, interval: Interval, open_time: i64, updates: u32) -> Option<Path> {
        if self.next >= self.candles.len() {
            if !self.looping || self.candles.is_empty() {
                return None;
            }
            let first = self.candles[0].open;
            let last = self.candles[self.candles.len() - 1].close;
            if first > 0.0 && last > 0.0 {
                self.scale *= last / first;
            }
            self.next = 0;
        }
        let src = self.candles[self.next];
        self.next += 1;
        let s = self.scale;
        let fin = Candle {
            open_time,
            close_time: interval.close_time(open_time),
            open: q8(src.open * s),
            high: q8(src.high * s),
            low: q8(src.low * s),
            close: q8(src.close * s),
            volume: q8(src.volume),
        };
        Some(interpolate(fin, updates))
    }
}

/// In-progress snapshots leading linearly to `fin` (the last element).
pub(crate) fn interpolate(fin: Candle, updates: u32) -> Path {
    let steps = updates as usize + 1;
    let mut path = Vec::with_capacity(steps);
    for j in 1..steps {
        let f = j as f64 / steps as f64;
        let close = q8(fin.open + (fin.close - fin.open) * f);
        let body_hi = fin.open.max(close);
        let body_lo = fin.open.min(close);
        path.push(Candle {
            close,
            high: q8(body_hi + (fin.high - body_hi) * f).max(body_hi),
            low: q8(body_lo - (body_lo - fin.low) * f).min(body_lo),
            volume: q8(fin.volume * f),
            ..fin
        });
    }
    path.push(fin);
    path
}

/// The candle as it stands the instant it opens: no trade yet.
pub(crate) fn opening(interval: Interval, open_time: i64, price: f64) -> Candle {
    Candle {
        open_time,
        close_time: interval.close_time(open_time),
        open: price,
        high: price,
        low: price,
        close: price,
        volume: 0.0,
    }
}

/// Places `candles` on the interval grid starting at the floor of the first open time (a CSV
/// with gaps or another spacing is replayed candle by candle, one per interval).
pub(crate) fn regrid(interval: Interval, candles: &[Candle]) -> Vec<Candle> {
    let Some(first) = candles.first() else {
        return Vec::new();
    };
    let mut t = interval.floor(first.open_time);
    candles
        .iter()
        .map(|c| {
            let out = Candle {
                open_time: t,
                close_time: interval.close_time(t),
                open: q8(c.open),
                high: q8(c.high),
                low: q8(c.low),
                close: q8(c.close),
                volume: q8(c.volume),
            };
            t = interval.next_open(t);
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, n: usize) -> Vec<Path> {
        let mut w = Walk::new(seed, 0, 30_000.0, Interval::M5);
        let mut t = 0;
        (0..n)
            .map(|_| {
                let p = w.next_path(Interval::M5, t, 4);
                t += Interval::M5.duration_ms();
                p
            })
            .collect()
    }

    #[test]
    fn walk_is_deterministic_and_seed_dependent() {
        assert_eq!(run(7, 50), run(7, 50));
        assert_ne!(run(7, 50), run(8, 50));
    }

    #[test]
    fn snapshots_are_valid_continuous_and_grow_to_the_final() {
        let paths = run(11, 2000);
        let mut prev_close = None;
        let mut jumps = 0;
        for p in &paths {
            assert_eq!(p.len(), 5);
            let fin = p[4];
            for c in p {
                c.validate().unwrap();
                assert_eq!(c.open, fin.open);
                assert!(c.high <= fin.high && c.low >= fin.low && c.volume <= fin.volume);
            }
            if let Some(pc) = prev_close {
                assert_eq!(fin.open, pc);
            }
            if ((fin.close / fin.open).ln()).abs() > 0.012 {
                jumps += 1;
            }
            prev_close = Some(fin.close);
        }
        // Jumps and clustered volatility make big candles happen, but rarely.
        assert!(jumps > 0 && jumps < 200, "big candles: {jumps}");
    }

    #[test]
    fn q8_round_trips_through_the_string() {
        let mut rng = Rng::new(3);
        let fixed = [
            30_000.123_456_789_f64,
            0.000_012_345_678_9,
            1.0 / 3.0,
            8.9e7,
            2.0e9,
        ];
        let random = (0..20_000).map(|i| rng.uniform() * 10f64.powi(i % 12 - 4));
        for x in fixed.into_iter().chain(random) {
            let y = q8(x);
            let s = format!("{y:.8}");
            assert_eq!(s.parse::<f64>().unwrap(), y, "{x} -> {s}");
            // Half a unit in the 8th decimal, plus the float error of scaling by 1e8.
            assert!((y - x).abs() <= 0.5e-8 + x.abs() * 4e-16, "{x} -> {y}");
        }
    }

    #[test]
    fn replay_loops_continuously_and_stops_when_told() {
        let src: Vec<Candle> = (0..3)
            .map(|i| {
                let o = 100.0 + i as f64;
                Candle {
                    open_time: i * 60_000,
                    close_time: i * 60_000 + 59_999,
                    open: o,
                    high: o + 2.0,
                    low: o - 1.0,
                    close: o + 1.0,
                    volume: 5.0,
                }
            })
            .collect();
        let src = std::sync::Arc::new(src);
        let mut once = Replay::new(src.clone(), 1, false);
        assert!(once.next_path(Interval::M1, 0, 2).is_some());
        assert!(once.next_path(Interval::M1, 60_000, 2).is_some());
        assert!(once.next_path(Interval::M1, 120_000, 2).is_none());
        let mut looped = Replay::new(src, 2, true);
        let a = looped.next_path(Interval::M1, 0, 2).unwrap();
        let b = looped.next_path(Interval::M1, 60_000, 2).unwrap();
        assert_eq!(b[2].open, a[2].close);
        for c in a.iter().chain(&b) {
            c.validate().unwrap();
        }
    }
}
