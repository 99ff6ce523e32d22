//! Test and benchmark data shared by the core's integration tests and benches: the shipped
//! sample file and a seeded synthetic series (regime-switching drift, clustered volatility,
//! wicks and opening gaps, so every strategy's branches run).

// Each test crate uses its own subset of these.
#![allow(dead_code)]

use std::io::BufReader;

use manus_core::Candle;

/// The sample shipped in `data/` (3000 five-minute candles).
pub fn sample() -> Vec<Candle> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/btcusdt_5m_sample.csv"
    );
    let file = std::fs::File::open(path).expect("sample data");
    manus_core::csv::load(BufReader::new(file), None).expect("valid sample")
}

/// SplitMix64: tiny, seeded, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// 5-minute candles: a random walk whose drift changes regime now and then, with clustered
/// volatility, random wicks and occasional opening gaps.
pub fn synthetic(seed: u64, n: usize) -> Vec<Candle> {
    let mut r = Rng(seed);
    let (mut close, mut drift, mut vol) = (100.0_f64, 0.0, 0.002_f64);
    (0..n)
        .map(|i| {
            if r.unit() < 0.01 {
                drift = 0.0008 * r.normal();
            }
            vol = (0.97 * vol + 0.03 * 0.002 * (1.0 + r.normal().abs())).clamp(0.0005, 0.01);
            let open = if r.unit() < 0.02 {
                close * (1.0 + vol * r.normal())
            } else {
                close
            };
            let c = open * (1.0 + drift + vol * r.normal());
            let high = open.max(c) * (1.0 + 0.6 * vol * r.normal().abs());
            let low = open.min(c) * (1.0 - 0.6 * vol * r.normal().abs());
            close = c;
            let t = i as i64 * 300_000;
            Candle {
                open_time: t,
                close_time: t + 299_999,
                open,
                high,
                low,
                close: c,
                volume: 1.0,
            }
        })
        .collect()
}
