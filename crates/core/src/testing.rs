//! Test support shared by the workspace's tests and benchmarks (feature `testing`, which crates
//! enable on their `manus-core` dev-dependency; never part of a release build): candle
//! builders, a seeded synthetic market, the shipped sample file, and the rule for tests that
//! need an outside service (PostgreSQL, Chromium).

use std::io::BufReader;

use crate::model::Candle;

const MINUTE: i64 = 60_000;

/// The `i`-th one-minute candle (opening at `i` minutes), closing at `close`: open at the
/// close, high one above, low one below, volume 1.
pub fn candle(i: i64, close: f64) -> Candle {
    Candle {
        open_time: i * MINUTE,
        close_time: i * MINUTE + MINUTE - 1,
        open: close,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 1.0,
    }
}

/// One-minute candles from `0` with these closes (as [`candle`]).
pub fn candles(closes: &[f64]) -> Vec<Candle> {
    closes
        .iter()
        .enumerate()
        .map(|(i, &c)| candle(i as i64, c))
        .collect()
}

/// One-minute candles from `0` with these `(open, high, low, close)`, volume 1.
pub fn bars(ohlc: &[(f64, f64, f64, f64)]) -> Vec<Candle> {
    ohlc.iter()
        .enumerate()
        .map(|(i, &(open, high, low, close))| Candle {
            open_time: i as i64 * MINUTE,
            close_time: i as i64 * MINUTE + MINUTE - 1,
            open,
            high,
            low,
            close,
            volume: 1.0,
        })
        .collect()
}

/// Candles that only matter by their `(high, low)`: open and close at the midpoint.
pub fn hl(hl: &[(f64, f64)]) -> Vec<Candle> {
    let ohlc: Vec<_> = hl
        .iter()
        .map(|&(h, l)| {
            let m = (h + l) / 2.0;
            (m, h, l, m)
        })
        .collect();
    bars(&ohlc)
}

/// SplitMix64: tiny, seeded, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` five-minute candles from time 0: a random walk whose drift changes regime now and then,
/// with clustered volatility, random wicks and occasional opening gaps, so every strategy's
/// branches run. Deterministic given `seed`.
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

/// The path of the sample shipped in `data/` (3000 five-minute BTCUSDT candles).
pub fn sample_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/btcusdt_5m_sample.csv")
}

/// The shipped sample's candles.
pub fn sample() -> Vec<Candle> {
    let file =
        std::fs::File::open(sample_path()).expect("the sample file data/btcusdt_5m_sample.csv");
    crate::csv::load(BufReader::new(file), None).expect("a valid sample file")
}

/// True when a missing service must fail a test rather than skip it: under CI (`CI` set, as
/// every CI system does) or when `MANUS_REQUIRE_SERVICES` is set (`scripts/test` sets it).
/// Unset, empty, `0` and `false` count as not set.
pub fn services_required() -> bool {
    services_required_by(|k| std::env::var(k).ok())
}

/// [`services_required`] over any variable lookup (so it can be tested without touching the
/// process environment).
pub fn services_required_by(var: impl Fn(&str) -> Option<String>) -> bool {
    ["CI", "MANUS_REQUIRE_SERVICES"].iter().any(|k| {
        var(k).is_some_and(|v| {
            let v = v.trim();
            !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
        })
    })
}

/// Called by a test whose service is missing (`why` says what is missing and how to get it):
/// fails the test when services are required ([`services_required`]), otherwise prints a loud
/// SKIPPED line and returns, so the test can return early.
pub fn service_missing(test: &str, why: &str) {
    if services_required() {
        panic!(
            "{test}: {why}. Under CI or scripts/test (CI or MANUS_REQUIRE_SERVICES set) a missing \
             service is a failure, not a skip."
        );
    }
    // Straight to the stderr handle, not `eprintln!`: the test harness captures the macros'
    // output of passing tests, which would make the skip silent.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {why} (CI=true or MANUS_REQUIRE_SERVICES=1 makes this a failure) ***\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_required_under_ci_or_the_project_variable() {
        struct Case {
            vars: &'static [(&'static str, &'static str)],
            required: bool,
        }
        let cases = [
            Case {
                vars: &[],
                required: false,
            },
            Case {
                vars: &[("CI", "true")],
                required: true,
            },
            Case {
                vars: &[("CI", "1")],
                required: true,
            },
            Case {
                vars: &[("CI", "false")],
                required: false,
            },
            Case {
                vars: &[("CI", "0")],
                required: false,
            },
            Case {
                vars: &[("CI", "")],
                required: false,
            },
            Case {
                vars: &[("MANUS_REQUIRE_SERVICES", "1")],
                required: true,
            },
            Case {
                vars: &[("MANUS_REQUIRE_SERVICES", "FALSE")],
                required: false,
            },
            Case {
                vars: &[("CI", "false"), ("MANUS_REQUIRE_SERVICES", "yes")],
                required: true,
            },
        ];
        for c in cases {
            let got = services_required_by(|k| {
                c.vars
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            });
            assert_eq!(got, c.required, "{:?}", c.vars);
        }
    }

    #[test]
    fn candle_builders_are_on_the_minute_grid_and_valid() {
        let cs = candles(&[10.0, 11.0, 9.5]);
        assert_eq!(cs.len(), 3);
        for (i, c) in cs.iter().enumerate() {
            assert_eq!(c.open_time, i as i64 * MINUTE);
            assert_eq!(c.close_time, c.open_time + MINUTE - 1);
            assert!(c.validate().is_ok(), "{c:?}");
        }
        assert_eq!(cs[2].close, 9.5);
        assert_eq!(hl(&[(4.0, 2.0)])[0].open, 3.0);
    }

    #[test]
    fn synthetic_is_deterministic_valid_and_seed_dependent() {
        let a = synthetic(7, 500);
        assert_eq!(a, synthetic(7, 500));
        assert_ne!(a, synthetic(8, 500));
        assert!(a.iter().all(|c| c.validate().is_ok()));
        assert!(
            a.windows(2)
                .all(|w| w[1].open_time - w[0].open_time == 300_000)
        );
    }
}
