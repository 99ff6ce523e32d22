//! The rule language against independent references:
//!
//! 1. rule strategies restating built-ins give the built-ins' views on every candle of the
//!    TA-Lib fixtures, the shipped sample and a synthetic series;
//! 2. every indicator function equals the TA-Lib C fixtures to 1e-9 (relative), warm-up
//!    included;
//! 3. `on(tf, expr)` equals resampling the base candles, computing the indicator on the
//!    resampled series and aligning by "last higher candle closed by this candle's close", on
//!    series with weekend gaps and missing candles;
//! 4. rule strategies (with `on(...)`) do not repaint: a replay of any prefix gives the same
//!    outputs, and evaluating forming candles changes nothing.

use std::collections::BTreeMap;
use std::fs;

use manus_core::confluence::{Mode, Rule};
use manus_core::indicator::{Ema, Indicator, Rsi};
use manus_core::model::Interval;
use manus_core::rules::{Formula, RuleDef, parse_file};
use manus_core::strategy::{self, Strategy};
use manus_core::testing::{Rng, sample, synthetic};
use manus_core::{Action, Candle, SignalEngine};
use serde_json::Map;

const TOLERANCE: f64 = 1e-9;
const FIXTURES: [&str; 4] = ["random_walk", "gaps", "flat_runs", "tiny"];

/// A TA-Lib fixture: candles and output columns (`None` = TA-Lib's NaN).
fn fixture(name: &str) -> (Vec<Candle>, BTreeMap<String, Vec<Option<f64>>>) {
    let path = format!("{}/test_data/talib/{name}.csv", env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); header.len()];
    for line in lines {
        for (col, cell) in cols.iter_mut().zip(line.split(',')) {
            col.push((!cell.is_empty()).then(|| cell.parse().unwrap()));
        }
    }
    let mut columns: BTreeMap<String, Vec<Option<f64>>> = header.into_iter().zip(cols).collect();
    let mut input = |c: &str| -> Vec<f64> {
        columns
            .remove(c)
            .unwrap()
            .into_iter()
            .map(Option::unwrap)
            .collect()
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
    (candles, columns)
}

fn all_series() -> Vec<(String, Vec<Candle>)> {
    let mut out: Vec<(String, Vec<Candle>)> = FIXTURES
        .iter()
        .map(|n| (n.to_string(), fixture(n).0))
        .collect();
    out.push(("sample".into(), sample()));
    out.push(("synthetic".into(), synthetic(7, 4000)));
    out
}

fn rule(id: &'static str, buy: &str, sell: &str, hold: usize) -> RuleDef {
    RuleDef {
        id,
        buy: buy.into(),
        sell: sell.into(),
        hold,
        score: None,
    }
}

/// `(view, event)` per candle.
fn views(s: &mut dyn Strategy, cs: &[Candle]) -> Vec<(Action, bool)> {
    cs.iter()
        .map(|c| {
            let d = s.on_candle(c).unwrap();
            (d.action, d.event)
        })
        .collect()
}

#[test]
fn rules_restating_built_ins_give_their_views_on_every_candle() {
    let cases = [
        (
            rule(
                "ema_rule",
                "crosses_above(ema(close, 9), ema(close, 21))",
                "crosses_below(ema(close, 9), ema(close, 21))",
                12,
            ),
            "ema_crossover",
        ),
        (
            rule("rsi_rule", "rsi(close, 14) < 30", "rsi(close, 14) > 70", 1),
            "rsi_mean_reversion",
        ),
    ];
    for (def, builtin) in cases {
        for (name, cs) in all_series() {
            let mut ours = def.compile(def.hold).unwrap();
            let mut theirs = strategy::build(builtin, &Map::new()).unwrap();
            let (a, b) = (views(&mut ours, &cs), views(theirs.as_mut(), &cs));
            let signals = b.iter().filter(|v| v.0 != Action::Hold).count();
            assert!(
                signals > 0 || name == "tiny",
                "{name}: {builtin} never speaks"
            );
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x, y, "{name}: {} vs {builtin} at candle {i}", def.id);
            }
        }
    }
}

/// Fixture column → the formula that must reproduce it.
const PARITY: &[(&str, &str)] = &[
    ("rsi_14", "rsi(close, 14)"),
    ("rsi_2", "rsi(close, 2)"),
    ("sma_20", "sma(close, 20)"),
    ("sma_5", "sma(close, 5)"),
    ("ema_9", "ema(close, 9)"),
    ("ema_21", "ema(close, 21)"),
    ("ema_50", "ema(close, 50)"),
    ("bb_20_2_upper", "bb_upper(close, 20, 2)"),
    ("bb_20_2_middle", "bb_middle(close, 20, 2)"),
    ("bb_20_2_lower", "bb_lower(close, 20, 2)"),
    ("bb_10_1.5_upper", "bb_upper(close, 10, 1.5)"),
    ("bb_10_1.5_lower", "bb_lower(close, 10, 1.5)"),
    ("macd_12_26_9_macd", "macd(close, 12, 26, 9)"),
    ("macd_12_26_9_signal", "macd_signal(close, 12, 26, 9)"),
    ("macd_12_26_9_hist", "macd_hist(close, 12, 26, 9)"),
    ("macd_5_35_5_hist", "macd_hist(close, 5, 35, 5)"),
    ("stoch_14_3_3_k", "stoch_k(14, 3, 3)"),
    ("stoch_14_3_3_d", "stoch_d(14, 3, 3)"),
    ("stoch_5_3_3_k", "stoch_k(5, 3, 3)"),
    ("atr_14", "atr(14)"),
    ("atr_7", "atr(7)"),
    ("adx_14", "adx(14)"),
    ("adx_7", "adx(7)"),
    ("plus_di_14", "plus_di(14)"),
    ("minus_di_14", "minus_di(14)"),
    ("minus_di_7", "minus_di(7)"),
];

fn rel_err(a: f64, b: f64, close: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    // MACD lines are differences of price-level EMAs: held to 1e-6 of the price near zero, as in
    // talib_parity.rs.
    (a - b).abs() / a.abs().max(b.abs()).max(1e-6 * close.abs())
}

#[test]
fn indicator_functions_equal_talib() {
    let mut failures = Vec::new();
    for name in FIXTURES {
        let (cs, cols) = fixture(name);
        // σ is not a fixture column; TA-Lib's BBANDS(20, 2) has it as (upper - middle) / 2.
        let sigma: Vec<Option<f64>> = cols["bb_20_2_upper"]
            .iter()
            .zip(&cols["bb_20_2_middle"])
            .map(|(u, m)| Some((u.as_ref()? - m.as_ref()?) / 2.0))
            .collect();
        let mut cases: Vec<(&str, &str, &Vec<Option<f64>>)> =
            PARITY.iter().map(|(c, f)| (*c, *f, &cols[*c])).collect();
        cases.push(("bb_20_2 σ", "stddev(close, 20)", &sigma));
        for (col, formula, talib) in cases {
            let mut f = Formula::new(formula).unwrap();
            let ours: Vec<Option<f64>> = cs.iter().map(|c| f.update(c)).collect();
            let warm = talib.iter().take_while(|v| v.is_none()).count();
            assert_eq!(f.lookback(), warm, "{name} {formula}: lookback");
            for (i, (o, t)) in ours.iter().zip(talib.iter()).enumerate() {
                let ok = match (o, t) {
                    (None, None) => true,
                    (Some(o), Some(t)) => rel_err(*o, *t, cs[i].close) <= TOLERANCE,
                    _ => false,
                };
                if !ok {
                    failures.push(format!("{name} {col} {formula} [{i}]: {o:?} vs {t:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}",
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn nested_indicators_and_extremes_equal_direct_computation() {
    let cs = synthetic(3, 600);
    let mut rsi = Rsi::new(14);
    let mut ema_of_rsi = Ema::new(5);
    let mut f = Formula::new("ema(rsi(close, 14), 5)").unwrap();
    let mut h = Formula::new("highest(high, 10) - lowest(low, 10)").unwrap();
    for (i, c) in cs.iter().enumerate() {
        let expected = rsi
            .update(c)
            .and_then(|r| ema_of_rsi.update(&Candle { close: r, ..*c }));
        assert_eq!(f.update(c), expected, "ema(rsi) at {i}");
        let range = (i >= 9).then(|| {
            let w = &cs[i - 9..=i];
            w.iter().map(|c| c.high).fold(f64::MIN, f64::max)
                - w.iter().map(|c| c.low).fold(f64::MAX, f64::min)
        });
        assert_eq!(h.update(c), range, "highest - lowest at {i}");
    }
}

/// Five-minute candles over `days` with no Saturdays or Sundays and ~3% of the rest missing.
fn gappy(seed: u64, days: i64) -> Vec<Candle> {
    let mut r = Rng(seed);
    let day = 86_400_000;
    // 2024-01-01 was a Monday.
    let start = 1_704_067_200_000_i64;
    synthetic(seed, (days * 288) as usize)
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let t = start + i as i64 * 300_000;
            Candle {
                open_time: t,
                close_time: t + 299_999,
                ..c
            }
        })
        .filter(|c| (c.open_time - start) / day % 7 < 5)
        .filter(|_| r.unit() > 0.03)
        .collect()
}

/// The reference: resample into `tf`, compute `ind` on the higher candles, then give each base
/// candle the value of the last higher candle whose close time is at most its own.
fn reference<I: Indicator<Output = f64>>(
    cs: &[Candle],
    tf: Interval,
    mut ind: I,
) -> Vec<Option<f64>> {
    let mut higher: Vec<Candle> = Vec::new();
    for c in cs {
        let open = tf.floor(c.open_time);
        match higher.last_mut() {
            Some(h) if h.open_time == open => {
                h.high = h.high.max(c.high);
                h.low = h.low.min(c.low);
                h.close = c.close;
                h.volume += c.volume;
            }
            _ => higher.push(Candle {
                open_time: open,
                close_time: tf.close_time(open),
                ..*c
            }),
        }
    }
    let values: Vec<Option<f64>> = higher.iter().map(|h| ind.update(h)).collect();
    cs.iter()
        .map(|c| {
            let closed = higher.partition_point(|h| h.close_time <= c.close_time);
            closed.checked_sub(1).and_then(|k| values[k])
        })
        .collect()
}

#[test]
fn on_equals_resample_compute_align() {
    let cs = gappy(11, 120);
    assert!(cs.len() > 20_000);
    type Reference = fn(&[Candle], Interval) -> Vec<Option<f64>>;
    let cases: [(&str, Interval, Reference); 4] = [
        ("on(\"1h\", ema(close, 5))", Interval::H1, |cs, tf| {
            reference(cs, tf, Ema::new(5))
        }),
        ("on(\"4h\", rsi(close, 6))", Interval::H4, |cs, tf| {
            reference(cs, tf, Rsi::new(6))
        }),
        ("on(\"1d\", ema(close, 3))", Interval::D1, |cs, tf| {
            reference(cs, tf, Ema::new(3))
        }),
        ("on(\"15m\", rsi(close, 14))", Interval::M15, |cs, tf| {
            reference(cs, tf, Rsi::new(14))
        }),
    ];
    for (formula, tf, reference) in cases {
        let expected = reference(&cs, tf);
        let mut f = Formula::new(formula).unwrap();
        let got: Vec<Option<f64>> = cs.iter().map(|c| f.update(c)).collect();
        let with_values = expected.iter().flatten().count();
        assert!(
            with_values > cs.len() / 2,
            "{formula}: {with_values} values"
        );
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "{formula} at base candle {i} ({})", cs[i].open_time);
        }
    }
}

fn strategies_file() -> Vec<RuleDef> {
    parse_file(include_str!("../../../docs/examples/strategies.toml")).unwrap()
}

fn rule_engine(defs: &[RuleDef]) -> SignalEngine {
    let strategies: Vec<Box<dyn Strategy>> = defs
        .iter()
        .map(|d| Box::new(d.compile(d.hold).unwrap()) as Box<dyn Strategy>)
        .collect();
    let n = strategies.len();
    SignalEngine::new(strategies, Rule::new(Mode::Any, n)).unwrap()
}

type Out = (Vec<(Action, u64, bool)>, Action);

fn step(e: &mut SignalEngine, c: &Candle) -> Out {
    let o = e.on_closed(c);
    (
        e.decisions()
            .iter()
            .map(|d| (d.action, d.score.to_bits(), d.event))
            .collect(),
        o.action,
    )
}

#[test]
fn rule_strategies_do_not_repaint() {
    let defs = strategies_file();
    assert!(defs.iter().any(|d| d.buy.contains("on(")));
    for (name, cs) in [("sample", sample()), ("gappy", gappy(5, 40))] {
        let mut e = rule_engine(&defs);
        let full: Vec<Out> = cs.iter().map(|c| step(&mut e, c)).collect();
        for (k, d) in defs.iter().enumerate() {
            let spoke = full.iter().filter(|o| o.0[k].0 != Action::Hold).count();
            assert!(spoke > 0, "{name}: {} never has a view", d.id);
        }
        let n = cs.len();
        for cut in [1, 2, 50, n / 7, n / 3 + 11, n / 2, n - 1] {
            let mut e = rule_engine(&defs);
            for (i, c) in cs[..cut].iter().enumerate() {
                // A forming candle (the next one, half-way) evaluated first changes nothing.
                if let Some(next) = cs.get(i + 1) {
                    let _ = e.provisional(&Candle {
                        close: (next.open + next.close) / 2.0,
                        ..*next
                    });
                }
                assert_eq!(step(&mut e, c), full[i], "{name}: prefix {cut}, candle {i}");
            }
        }
    }
}

#[test]
fn nothing_fires_before_the_declared_warm_up() {
    let defs = strategies_file();
    let cs = sample();
    for d in &defs {
        let mut s = d.compile(d.hold).unwrap();
        let first = cs
            .iter()
            .position(|c| s.on_candle(c).unwrap().action != Action::Hold);
        let declared = s.warmup();
        assert_eq!(
            declared,
            d.summary(Interval::M5).unwrap().warmup,
            "{}",
            d.id
        );
        if let Some(first) = first {
            assert!(
                first + 1 >= declared,
                "{}: fired on candle {} < {declared}",
                d.id,
                first + 1
            );
        }
    }
}
