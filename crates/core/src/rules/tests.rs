//! Errors name the strategy, the key and the column; the evaluator's semantics on small series.

use super::*;
use crate::model::{Action, Candle};
use crate::strategy::Strategy;
use crate::testing::candles;

fn def(buy: &str, sell: &str) -> RuleDef {
    RuleDef {
        id: "t",
        buy: buy.into(),
        sell: sell.into(),
        hold: 1,
        score: None,
    }
}

/// The BUY view on every candle of `closes` for `buy` (sell never true).
fn buys(buy: &str, closes: &[f64]) -> Vec<bool> {
    let mut s = def(buy, "false").compile(1).unwrap();
    candles(closes)
        .iter()
        .map(|c| s.on_candle(c).unwrap().action == Action::Buy)
        .collect()
}

#[test]
fn errors_name_the_strategy_key_and_column() {
    struct Case {
        buy: &'static str,
        key: &'static str,
        col: usize,
        says: &'static str,
    }
    let cases = [
        Case {
            buy: "close and 3",
            key: "buy",
            col: 1,
            says: "`and` needs a condition on both sides, found a number (`close`)",
        },
        Case {
            buy: "close > 1 and 3",
            key: "buy",
            col: 15,
            says: "found a number (`3`)",
        },
        Case {
            buy: "close",
            key: "buy",
            col: 1,
            says: "expected a condition, found a number",
        },
        Case {
            buy: "foo(close) > 1",
            key: "buy",
            col: 1,
            says: "unknown function 'foo'; functions: sma",
        },
        Case {
            buy: "ema(close) > 1",
            key: "buy",
            col: 1,
            says: "ema takes 2 argument(s): ema(x, n); got 1",
        },
        Case {
            buy: "ema(close, 1.5) > 1",
            key: "buy",
            col: 12,
            says: "n must be a whole number in 2..=100000",
        },
        Case {
            buy: "on(\"7m\", close > 1)",
            key: "buy",
            col: 4,
            says: "bad timeframe: unknown interval '7m'",
        },
        Case {
            buy: "on(\"1h\", on(\"4h\", close > 1))",
            key: "buy",
            col: 10,
            says: "on(...) cannot be nested",
        },
        Case {
            buy: "close >",
            key: "buy",
            col: 8,
            says: "unexpected end of expression",
        },
        Case {
            buy: "close > > 1",
            key: "buy",
            col: 9,
            says: "unexpected '>'",
        },
        Case {
            buy: "ema(close, 9, period = 3) > 1",
            key: "buy",
            col: 24,
            says: "takes no named arguments",
        },
        Case {
            buy: "bos_up(swing_length = 0)",
            key: "buy",
            col: 23,
            says: "swing_length must be in 1..=1000",
        },
        Case {
            buy: "bos_up(depth = 2)",
            key: "buy",
            col: 16,
            says: "bos_up has no argument 'depth'; arguments: swing_length",
        },
        Case {
            buy: "close[close] > 1",
            key: "buy",
            col: 7,
            says: "the index must be a whole number",
        },
        Case {
            buy: "rsi(close, 14) < 30 == 1",
            key: "buy",
            col: 24,
            says: "expected a condition, found a number",
        },
    ];
    for c in cases {
        let e = def(c.buy, "false").compile(1).unwrap_err();
        let RuleError::Expr {
            id,
            key,
            col,
            message,
        } = &e
        else {
            panic!("{}: {e}", c.buy);
        };
        assert_eq!(
            (id.as_str(), *key, *col),
            ("t", c.key, c.col),
            "{}: {e}",
            c.buy
        );
        assert!(message.contains(c.says), "{}: {message}", c.buy);
        assert!(
            e.to_string().starts_with("strategy 't', buy, column"),
            "{e}"
        );
    }
    let e = RuleDef {
        score: Some("close > 1".into()),
        ..def("true", "false")
    }
    .compile(1)
    .unwrap_err();
    assert!(matches!(e, RuleError::Expr { key: "score", .. }), "{e}");
    let e = def("true", "1 +").compile(1).unwrap_err();
    assert!(
        matches!(
            e,
            RuleError::Expr {
                key: "sell",
                col: 4,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn size_and_depth_are_limited() {
    let deep = format!("{}close{} > 1", "(".repeat(40), ")".repeat(40));
    let e = def(&deep, "false").compile(1).unwrap_err().to_string();
    assert!(e.contains("nested deeper than 32 levels"), "{e}");
    let long = format!("close > 1{}", " or close > 1".repeat(200));
    let e = def(&long, "false").compile(1).unwrap_err().to_string();
    assert!(e.contains("longer than 2000 bytes"), "{e}");
    // Distinct sub-expressions count; repeated ones are shared.
    // 300 distinct sums in each rule (a literal operand folds into its `+`): 600 in all.
    let sums = |from: usize| -> String { (from..from + 300).map(|i| format!("+{i}")).collect() };
    let e = def(
        &format!("close{} > 0", sums(0)),
        &format!("close{} < 0", sums(1000)),
    )
    .compile(1)
    .unwrap_err()
    .to_string();
    assert!(e.contains("larger than 512 operations"), "{e}");
    let same = vec!["ema(close, 9) > close"; 60].join(" and ");
    let s = def(&same, "ema(close, 9) < close").compile(1).unwrap();
    let indicators = s
        .prog
        .nodes
        .iter()
        .filter(|n| matches!(n, eval::Node::Ind(..)))
        .count();
    assert_eq!(indicators, 1, "one ema for every use, in buy and sell");
    // close, ema, >, 59 ands, <
    assert_eq!(s.prog.nodes.len(), 63);
}

#[test]
fn history_change_and_extremes() {
    let closes = [5.0, 3.0, 4.0, 8.0, 1.0, 2.0];
    assert_eq!(
        buys("close > close[1]", &closes),
        [false, false, true, true, false, true]
    );
    assert_eq!(
        buys("change(close, 2) == 1", &closes),
        [false, false, false, false, false, false]
    );
    assert_eq!(
        buys("change(close, 2) == 5", &closes),
        [false, false, false, true, false, false]
    );
    assert_eq!(
        buys("highest(close, 3) == 8 and lowest(close, 3) == 1", &closes),
        [false, false, false, false, true, true]
    );
    assert_eq!(buys("close[0] == close", &closes), [true; 6]);
}

#[test]
fn warming_up_is_false_even_under_not() {
    let closes = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(
        buys("not close[2] > 100", &closes),
        [false, false, true, true]
    );
    // Decidable before close[2] exists, but nothing is said before the warm-up (3 candles).
    assert_eq!(
        buys("close[2] > 100 or true", &closes),
        [false, false, true, true]
    );
    assert_eq!(
        buys("not (close[2] > 100 and false)", &closes),
        [false, false, true, true]
    );
    assert_eq!(buys("close / (close - close) > 0", &closes), [false; 4]);
}

#[test]
fn crosses_need_the_previous_candle() {
    let closes = [1.0, 3.0, 2.0, 2.0, 3.0, 1.0];
    // close vs 2: -1, +1 (above), 0, 0, +1 (above, from 0), -1 (below)
    assert_eq!(
        buys("crosses_above(close, 2)", &closes),
        [false, true, false, false, true, false]
    );
    assert_eq!(
        buys("crosses_below(close, 2)", &closes),
        [false, false, false, false, false, true]
    );
}

#[test]
fn hold_score_and_conflicts() {
    let closes = [1.0, 2.0, 3.0, 2.0, 2.0, 2.0];
    let mut s = RuleDef {
        score: Some("clamp(close / 4, 0, 1)".into()),
        ..def("close > close[1]", "close == 3")
    }
    .compile(2)
    .unwrap();
    let got: Vec<(Action, f64, bool)> = candles(&closes)
        .iter()
        .map(|c| {
            let d = s.on_candle(c).unwrap();
            (d.action, d.score, d.event)
        })
        .collect();
    use Action::{Buy as B, Hold as H};
    assert_eq!(
        got,
        [
            (H, 0.0, false),
            (B, 0.5, true),
            // Both true on candle 2: no side, and the BUY view ends.
            (H, 0.0, false),
            (H, 0.0, false),
            (H, 0.0, false),
            (H, 0.0, false),
        ]
    );
}

#[test]
fn files_parse_and_ids_are_checked() {
    let ok = r#"
[[strategy]]
id = "trend_pullback"
buy  = "close > ema(close, 200) and rsi(close, 14) < 35 and on(\"1h\", ema(close, 50) > ema(close, 200))"
sell = "rsi(close, 14) > 70 or crosses_below(close, ema(close, 50))"
hold = 1
score = "clamp((35 - rsi(close, 14)) / 35, 0, 1)"
"#;
    let defs = parse_file(ok).unwrap();
    assert_eq!(defs[0].id, "trend_pullback");
    let s = defs[0].summary(Interval::M5).unwrap();
    // ema(200) on 1h: 199 hourly lookback → 200 hours of 12 five-minute candles.
    assert_eq!(s.warmup, 200 * 12);
    assert_eq!(
        s.uses,
        [
            "ema(close, 200)",
            "ema(close, 200) on 1h",
            "ema(close, 50)",
            "ema(close, 50) on 1h",
            "rsi(close, 14)"
        ]
    );
    let e = defs[0].summary(Interval::H4).unwrap_err().to_string();
    assert!(
        e.contains("1h is not a multiple of the stream's interval (4h)"),
        "{e}"
    );
    for (text, says) in [
        (
            "[[strategy]]\nid = \"Up\"\nbuy = \"true\"\nsell = \"false\"",
            "a-z, 0-9 and _",
        ),
        (
            "[[strategy]]\nid = \"macd\"\nbuy = \"true\"\nsell = \"false\"",
            "built-in",
        ),
        (
            "[[strategy]]\nid = \"trend\"\nbuy = \"true\"\nsell = \"false\"",
            "preset",
        ),
        (
            "[[strategy]]\nid = \"a\"\nbuy = \"true\"\nsell = \"false\"\nhold = 0",
            "hold must be in",
        ),
        (
            "[[strategy]]\nid = \"a\"\nbuy = \"true\"\nsell = \"false\"\nfoo = 1",
            "unknown field",
        ),
        (
            "[[strategy]]\nid = \"a\"\nbuy = \"true\"\nsell = \"false\"\n[[strategy]]\nid = \"a\"\nbuy = \"true\"\nsell = \"false\"",
            "defined twice",
        ),
        ("", "no [[strategy]]"),
    ] {
        let e = parse_file(text).unwrap_err().to_string();
        assert!(e.contains(says), "{text}: {e}");
    }
}

#[test]
fn loaded_rules_build_like_built_ins() {
    use crate::strategy::registry;
    let defs = parse_file(
        "[[strategy]]\nid = \"unit_loaded\"\nbuy = \"close > 2\"\nsell = \"close < 1\"\nhold = 3",
    )
    .unwrap();
    registry::load_rules(&defs).unwrap();
    registry::load_rules(&defs).unwrap();
    let other =
        parse_file("[[strategy]]\nid = \"unit_loaded\"\nbuy = \"close > 3\"\nsell = \"close < 1\"")
            .unwrap();
    assert!(registry::load_rules(&other).is_err());
    assert_eq!(
        registry::parse_selection("macd,unit_loaded").unwrap(),
        ["macd", "unit_loaded"]
    );
    assert_eq!(registry::default_params("unit_loaded").unwrap()["hold"], 3);
    let mut p = serde_json::Map::new();
    p.insert("hold".into(), 7.into());
    assert!(registry::build("unit_loaded", &p).is_ok());
    p.insert("period".into(), 7.into());
    let e = registry::build("unit_loaded", &p).unwrap_err().to_string();
    assert!(
        e.contains("unknown parameter 'period'; parameters: hold"),
        "{e}"
    );
    assert!(registry::id_choices().contains("unit_loaded"));
}

#[test]
fn on_uses_only_closed_higher_candles() {
    // 5m candles, 15m timeframe: the value changes on the third candle of each bucket.
    let cs: Vec<Candle> = (0..9)
        .map(|i| {
            let t = i * 300_000;
            Candle {
                open_time: t,
                close_time: t + 299_999,
                open: i as f64 + 1.0,
                high: i as f64 + 1.0,
                low: i as f64 + 1.0,
                close: i as f64 + 1.0,
                volume: 1.0,
            }
        })
        .collect();
    let mut s = def("on(\"15m\", close) >= 3", "false").compile(1).unwrap();
    let got: Vec<bool> = cs
        .iter()
        .map(|c| s.on_candle(c).unwrap().action == Action::Buy)
        .collect();
    assert_eq!(
        got,
        [false, false, true, true, true, true, true, true, true]
    );
    let mut s = def("on(\"15m\", close) == 6", "false").compile(1).unwrap();
    let got: Vec<bool> = cs
        .iter()
        .map(|c| s.on_candle(c).unwrap().action == Action::Buy)
        .collect();
    assert_eq!(
        got,
        [false, false, false, false, false, true, true, true, false]
    );
}

mod property_tests {
    use proptest::prelude::{Strategy as Gen, prop, prop_assert, proptest};

    use super::*;

    /// Tokens of the language, glued at random: mostly nonsense, sometimes valid.
    fn soup() -> impl Gen<Value = String> {
        let token = prop::sample::select(vec![
            "close",
            "high",
            "rsi(",
            "ema(",
            "on(",
            "\"1h\"",
            "'5m'",
            "bos_up",
            "sweep_low(",
            "swing_length",
            "=",
            "==",
            "<",
            ">=",
            "and",
            "or",
            "not",
            "-",
            "+",
            "*",
            "/",
            "(",
            ")",
            "[",
            "]",
            ",",
            "1",
            "14",
            "2.5",
            "0",
            "true",
            " ",
            "é",
            "crosses_above(",
            "x",
        ]);
        prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        /// Any input is an error with a column inside the text, or a strategy that runs.
        #[test]
        fn never_panics(buy in soup()) {
            match def(&buy, "false").compile(1) {
                Ok(mut s) => {
                    for c in &candles(&[1.0, 2.0, 3.0, 2.0, 1.0, 4.0]) {
                        let _ = s.on_candle(c);
                    }
                }
                Err(RuleError::Expr { col, .. }) => {
                    prop_assert!(col >= 1 && col <= buy.chars().count() + 1, "{col} in {buy:?}");
                }
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
