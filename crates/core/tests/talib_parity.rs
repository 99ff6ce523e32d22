//! Parity with the TA-Lib C library.
//!
//! The fixtures in `test_data/talib/` were computed by the C library (through the PyPI `ta-lib`
//! wheel) by `scripts/gen_talib_fixtures.py`; this test needs no Python. Every candle is fed one
//! at a time through our streaming wrappers, and for every output column we assert:
//!
//! * the warm-up is the same: as many leading `None` as TA-Lib has leading NaN, and
//!   `lookback()` equals that count;
//! * after it, neither side has a gap;
//! * every value agrees within [`TOLERANCE`] relative error (see [`rel_err`]).
//!
//! All mismatches are collected before failing, each naming its series, column and index, and
//! the worst error per column is printed (`cargo test -- --nocapture` to see it on success).

use std::collections::BTreeMap;
use std::fs;

use manus_core::Candle;
use manus_core::indicator::{
    Adx, Atr, Bands, Bbands, Dmi, Ema, Indicator, Macd, MacdValue, MinusDi, PlusDi, Rsi, Sma,
    Stoch, StochValue,
};

/// The project's parity standard.
const TOLERANCE: f64 = 1e-9;

/// The fixture series, one CSV each.
const SERIES: [&str; 4] = ["random_walk", "gaps", "flat_runs", "tiny"];

/// Columns of a fixture that are inputs, not outputs.
const INPUTS: [&str; 6] = ["open_time", "open", "high", "low", "close", "volume"];

/// One fixture: its candles and every output column (`None` = TA-Lib's NaN).
struct Fixture {
    name: &'static str,
    candles: Vec<Candle>,
    columns: BTreeMap<String, Vec<Option<f64>>>,
}

fn load(name: &'static str) -> Fixture {
    let path = format!("{}/test_data/talib/{name}.csv", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); header.len()];
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(
            cells.len(),
            header.len(),
            "{name}.csv row {row}: wrong number of cells"
        );
        for (col, cell) in cols.iter_mut().zip(&cells) {
            col.push(if cell.is_empty() {
                None
            } else {
                Some(
                    cell.parse()
                        .unwrap_or_else(|e| panic!("{name}.csv row {row}: {cell}: {e}")),
                )
            });
        }
    }
    let mut columns: BTreeMap<String, Vec<Option<f64>>> =
        header.iter().map(|h| h.to_string()).zip(cols).collect();
    let input = |c: &str| {
        columns[c]
            .iter()
            .map(|v| v.expect("input cell"))
            .collect::<Vec<f64>>()
    };
    let (t, o, h, l, c, v) = (
        input("open_time"),
        input("open"),
        input("high"),
        input("low"),
        input("close"),
        input("volume"),
    );
    let candles = (0..c.len())
        .map(|i| Candle {
            open_time: t[i] as i64,
            close_time: t[i] as i64 + 59_999,
            open: o[i],
            high: h[i],
            low: l[i],
            close: c[i],
            volume: v[i],
        })
        .collect();
    for name in INPUTS {
        columns.remove(name);
    }
    Fixture {
        name,
        candles,
        columns,
    }
}

/// One indicator's run over a series: its `lookback()` and, per bar, its outputs in the order
/// of [`Case::columns`].
struct Run {
    lookback: usize,
    bars: Vec<Option<Vec<f64>>>,
}

fn stream<I: Indicator>(mut ind: I, candles: &[Candle], out: fn(I::Output) -> Vec<f64>) -> Run {
    let bars = candles.iter().map(|c| ind.update(c).map(out)).collect();
    Run {
        lookback: ind.lookback(),
        bars,
    }
}

fn one(v: f64) -> Vec<f64> {
    vec![v]
}
fn bands(b: Bands) -> Vec<f64> {
    vec![b.upper, b.middle, b.lower]
}
fn macd(m: MacdValue) -> Vec<f64> {
    vec![m.macd, m.signal, m.hist]
}
fn stoch(s: StochValue) -> Vec<f64> {
    vec![s.k, s.d]
}

/// One row of the table: an indicator with its parameters and the fixture columns it must
/// reproduce.
struct Case {
    columns: &'static [&'static str],
    run: fn(&[Candle]) -> Run,
    scale: Scale,
}

/// What a relative error is relative to (see [`rel_err`]).
#[derive(Clone, Copy)]
enum Scale {
    /// The values themselves: prices, ranges, bounded oscillators.
    Own,
    /// The values, but at least [`PRICE_DIFF_FLOOR`] × the bar's close: for MACD, whose lines
    /// are differences of price-level EMAs. One unit in the last place of an EMA (the crate's
    /// fused multiply-add against C's separate multiply and add) survives that cancellation as
    /// an absolute error of ~1e-16 × price, which is an arbitrarily large share of a MACD value
    /// near a zero crossing.
    PriceDiff,
}

/// The floor of [`Scale::PriceDiff`], as a fraction of the close: values under a millionth of
/// the price are held to an absolute 1e-15 × price (a few ulps of the inputs).
const PRICE_DIFF_FLOOR: f64 = 1e-6;

/// The parameters the strategies use by default.
const DEFAULTS: &[Case] = &[
    Case {
        columns: &["rsi_14"],
        run: |c| stream(Rsi::new(14), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["sma_20"],
        run: |c| stream(Sma::new(20), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["ema_9"],
        run: |c| stream(Ema::new(9), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["ema_21"],
        run: |c| stream(Ema::new(21), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["bb_20_2_upper", "bb_20_2_middle", "bb_20_2_lower"],
        run: |c| stream(Bbands::new(20, 2.0), c, bands),
        scale: Scale::Own,
    },
    Case {
        columns: &[
            "macd_12_26_9_macd",
            "macd_12_26_9_signal",
            "macd_12_26_9_hist",
        ],
        run: |c| stream(Macd::new(12, 26, 9), c, macd),
        scale: Scale::PriceDiff,
    },
    Case {
        columns: &["stoch_14_3_3_k", "stoch_14_3_3_d"],
        run: |c| stream(Stoch::new(14, 3, 3), c, stoch),
        scale: Scale::Own,
    },
    Case {
        columns: &["atr_14"],
        run: |c| stream(Atr::new(14), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["adx_14"],
        run: |c| stream(Adx::new(14), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["plus_di_14"],
        run: |c| stream(PlusDi::new(14), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["minus_di_14"],
        run: |c| stream(MinusDi::new(14), c, one),
        scale: Scale::Own,
    },
];

/// Non-default parameters: proves each one reaches TA-Lib.
const NON_DEFAULTS: &[Case] = &[
    Case {
        columns: &["rsi_2"],
        run: |c| stream(Rsi::new(2), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["sma_5"],
        run: |c| stream(Sma::new(5), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["ema_50"],
        run: |c| stream(Ema::new(50), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["bb_10_1.5_upper", "bb_10_1.5_middle", "bb_10_1.5_lower"],
        run: |c| stream(Bbands::new(10, 1.5), c, bands),
        scale: Scale::Own,
    },
    Case {
        columns: &["macd_5_35_5_macd", "macd_5_35_5_signal", "macd_5_35_5_hist"],
        run: |c| stream(Macd::new(5, 35, 5), c, macd),
        scale: Scale::PriceDiff,
    },
    Case {
        columns: &["stoch_5_3_3_k", "stoch_5_3_3_d"],
        run: |c| stream(Stoch::new(5, 3, 3), c, stoch),
        scale: Scale::Own,
    },
    Case {
        columns: &["atr_7"],
        run: |c| stream(Atr::new(7), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["adx_7"],
        run: |c| stream(Adx::new(7), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["plus_di_7"],
        run: |c| stream(PlusDi::new(7), c, one),
        scale: Scale::Own,
    },
    Case {
        columns: &["minus_di_7"],
        run: |c| stream(MinusDi::new(7), c, one),
        scale: Scale::Own,
    },
];

/// Relative error, scaled by the larger magnitude. Exactly equal values (including two zeros)
/// have none; the `f64::MIN_POSITIVE` floor only keeps the division defined, so a zero against
/// a non-zero counts as a full (1.0) error rather than being excused.
fn rel_err(ours: f64, talib: f64, scale: Scale, close: f64) -> f64 {
    if ours == talib {
        return 0.0;
    }
    let floor = match scale {
        Scale::Own => f64::MIN_POSITIVE,
        Scale::PriceDiff => (PRICE_DIFF_FLOOR * close.abs()).max(f64::MIN_POSITIVE),
    };
    (ours - talib).abs() / ours.abs().max(talib.abs()).max(floor)
}

/// The worst error seen in one column.
#[derive(Default)]
struct Worst {
    err: f64,
    at: Option<(&'static str, usize, f64, f64)>,
}

/// Checks every case on every fixture; prints the worst error per column and fails listing
/// every mismatch.
fn check(cases: &[Case]) {
    let fixtures: Vec<Fixture> = SERIES.into_iter().map(load).collect();
    let mut failures: Vec<String> = Vec::new();
    let mut worst: BTreeMap<&str, Worst> = BTreeMap::new();
    for case in cases {
        for fx in &fixtures {
            let run = (case.run)(&fx.candles);
            assert_eq!(run.bars.len(), fx.candles.len());
            let our_warm_up = run.bars.iter().take_while(|b| b.is_none()).count();
            for (k, &col) in case.columns.iter().enumerate() {
                let series = fx.name;
                let at = |i: usize| format!("series={series} column={col} index={i}");
                let Some(talib) = fx.columns.get(col) else {
                    failures.push(format!(
                        "series={series} column={col}: missing from fixture"
                    ));
                    continue;
                };
                let warm_up = talib.iter().take_while(|v| v.is_none()).count();
                if our_warm_up != warm_up {
                    failures.push(format!(
                        "{}: first value at index {our_warm_up}, TA-Lib's at {warm_up}",
                        at(our_warm_up.min(warm_up))
                    ));
                }
                if run.lookback != warm_up {
                    failures.push(format!(
                        "series={series} column={col}: lookback() = {}, TA-Lib warms up {warm_up}",
                        run.lookback
                    ));
                }
                let w = worst.entry(col).or_default();
                for (i, (ours, theirs)) in run.bars.iter().zip(talib).enumerate() {
                    match (ours.as_ref().map(|o| o[k]), *theirs) {
                        (None, None) => {}
                        (Some(o), None) => {
                            failures.push(format!("{}: ours {o:?}, TA-Lib NaN", at(i)))
                        }
                        (None, Some(t)) => {
                            failures.push(format!("{}: ours None, TA-Lib {t:?}", at(i)))
                        }
                        (Some(o), Some(t)) => {
                            let e = if o.is_nan() {
                                f64::INFINITY
                            } else {
                                rel_err(o, t, case.scale, fx.candles[i].close)
                            };
                            if e > w.err || w.at.is_none() {
                                *w = Worst {
                                    err: e.max(w.err),
                                    at: Some((series, i, o, t)),
                                };
                            }
                            if e > TOLERANCE {
                                failures.push(format!(
                                    "{}: ours {o:?}, TA-Lib {t:?}, relative error {e:.3e}",
                                    at(i)
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("worst relative error per column (tolerance {TOLERANCE:e}):");
    for (col, w) in &worst {
        match w.at {
            Some((series, i, o, t)) if w.err > 0.0 => eprintln!(
                "  {col:<22} {:.3e}  at series={series} index={i} (ours {o:?}, TA-Lib {t:?})",
                w.err
            ),
            _ => eprintln!("  {col:<22} 0 (bit-identical)"),
        }
    }
    if !failures.is_empty() {
        const SHOWN: usize = 60;
        let mut per_column: BTreeMap<&str, usize> = BTreeMap::new();
        for f in &failures {
            let col = f
                .split("column=")
                .nth(1)
                .and_then(|s| s.split([' ', ':']).next());
            *per_column.entry(col.unwrap_or("?")).or_default() += 1;
        }
        panic!(
            "{} parity failure(s) (per column: {per_column:?}); the first {}:\n{}",
            failures.len(),
            SHOWN.min(failures.len()),
            failures
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn default_parameters_match_talib_c() {
    check(DEFAULTS);
}

#[test]
fn non_default_parameters_match_talib_c() {
    check(NON_DEFAULTS);
}

/// The `adx` strategy's combined [`Dmi`] (+DI, −DI and ADX from one state) reproduces the
/// fixture's `adx_N`, `plus_di_N` and `minus_di_N` columns from ADX's first value on (its
/// ±DI exist earlier in TA-Lib; `Dmi` answers once all three do).
#[test]
fn combined_dmi_matches_talib_c() {
    let mut checked = 0;
    for name in SERIES {
        let fx = load(name);
        for period in [14usize, 7] {
            let cols = [
                format!("plus_di_{period}"),
                format!("minus_di_{period}"),
                format!("adx_{period}"),
            ];
            let talib: Vec<&Vec<Option<f64>>> = cols.iter().map(|c| &fx.columns[c]).collect();
            let mut dmi = Dmi::new(period);
            let first = talib[2].iter().take_while(|v| v.is_none()).count();
            assert_eq!(dmi.lookback(), first, "series={name} period={period}");
            for (i, c) in fx.candles.iter().enumerate() {
                let ours = dmi.update(c).map(|v| [v.plus_di, v.minus_di, v.adx]);
                match ours {
                    None => assert!(i < first, "series={name} period={period} index={i}: None"),
                    Some(o) => {
                        assert!(i >= first, "series={name} index={i}: a value before ADX's");
                        for k in 0..3 {
                            let t = talib[k][i].expect("TA-Lib has a value here");
                            let e = rel_err(o[k], t, Scale::Own, c.close);
                            assert!(
                                e <= TOLERANCE,
                                "series={name} {} index={i}: ours {:?}, TA-Lib {t:?} ({e:.3e})",
                                cols[k],
                                o[k]
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 6000, "only {checked} values checked");
}

/// Guards against the fixtures and the table drifting apart: every output column the generator
/// writes is checked by exactly one case, every series has the same columns, and the inputs are
/// valid candles.
#[test]
fn every_fixture_column_is_checked() {
    let checked: Vec<&str> = DEFAULTS
        .iter()
        .chain(NON_DEFAULTS)
        .flat_map(|c| c.columns.to_vec())
        .collect();
    let mut unique = checked.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), checked.len(), "a column is checked twice");
    let mut total = 0;
    for name in SERIES {
        let fx = load(name);
        assert!(
            fx.candles.len() >= 500,
            "{name}: only {} candles",
            fx.candles.len()
        );
        total += fx.candles.len();
        for (i, c) in fx.candles.iter().enumerate() {
            assert_eq!(
                c.validate(),
                Ok(()),
                "series={name} index={i}: invalid candle"
            );
        }
        let present: Vec<&str> = fx.columns.keys().map(String::as_str).collect();
        assert_eq!(
            present, unique,
            "series={name}: fixture columns differ from the table"
        );
    }
    assert!(total >= 2000, "only {total} candles across the fixtures");
}
