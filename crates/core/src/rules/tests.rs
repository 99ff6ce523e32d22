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

/// The ten strategies of the rules bench: every function family, all four SMC detectors.
fn ten() -> Vec<RuleDef> {
    let mut defs = parse_file(include_str!("../../../../docs/examples/strategies.toml")).unwrap();
    defs.extend(parse_file(include_str!("../../benches/more_rules.toml")).unwrap());
    assert_eq!(defs.len(), 10);
    defs
}

fn boxed(defs: &[RuleDef]) -> Vec<Box<dyn Strategy>> {
    defs.iter()
        .map(|d| Box::new(d.compile(d.hold).unwrap()) as Box<dyn Strategy>)
        .collect()
}

/// What is compared between a decision in the engine and one alone (`NaN != NaN`).
fn seen(d: &crate::strategy::Decision) -> (Action, u64, String, bool) {
    (d.action, d.score.to_bits(), d.reason.to_string(), d.event)
}

fn count_inds(prog: &eval::Program) -> usize {
    prog.nodes
        .iter()
        .filter(|n| matches!(n, eval::Node::Ind(..)))
        .count()
}

#[test]
fn the_engine_graph_is_scheduled_by_kind_children_first() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    use std::collections::HashSet;
    let defs = ten();
    // The same nodes in the order compiled (the builder's program, not scheduled) ...
    let mut b = crate::graph::GraphBuilder::default();
    for mut s in boxed(&defs) {
        assert!(s.share(&mut b));
    }
    let compiled = b.c.prog;
    let e = SignalEngine::new(boxed(&defs), Rule::new(Mode::Any, 10)).unwrap();
    let prog = &e.graph().prog;
    let switches = |p: &eval::Program| {
        p.nodes
            .windows(2)
            .filter(|w| w[0].kind() != w[1].kind())
            .count()
    };
    // ... switch kinds at most nodes; scheduled, at far fewer.
    assert!(
        switches(prog) * 2 < switches(&compiled),
        "{} kind switches scheduled, {} compiled",
        switches(prog),
        switches(&compiled)
    );
    let mut placed = HashSet::new();
    for (p, n) in prog.nodes.iter().enumerate() {
        for ch in n.children().into_iter().flatten() {
            assert!(placed.contains(&ch), "node {p} reads {ch}, placed after it");
        }
        placed.insert(p as eval::Ix);
    }
    // Every index handed out has one place.
    let mut seen: Vec<usize> = (0..prog.nodes.len() as eval::Ix)
        .map(|ix| e.graph().place(ix) as usize)
        .collect();
    seen.sort_unstable();
    assert!(seen.iter().copied().eq(0..prog.nodes.len()));
}

#[test]
fn strategies_sharing_the_engine_graph_decide_as_alone() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    let defs = ten();
    let mut alone: Vec<RuleStrategy> = defs.iter().map(|d| d.compile(d.hold).unwrap()).collect();
    let own_nodes: usize = alone.iter().map(|s| s.prog.nodes.len()).sum();
    let own_inds: usize = alone.iter().map(|s| count_inds(&s.prog)).sum();
    let mut e = SignalEngine::new(boxed(&defs), Rule::new(Mode::Any, 10)).unwrap();
    let g = e.graph();
    // rsi(close, 14) is in four of the ten, ema(close, 50) and ema(close, 200) in two,
    // adx(14) (trend_filter) reads the state of plus_di(14) and minus_di(14) (macd_trend, one
    // state there too), and the bands of bb_revert are sma(close, 20) ± 2·stddev(close, 20),
    // the σ of sweep_vol: 13 indicators instead of 20.
    assert!(
        g.len() < own_nodes && count_inds(&g.prog) + 7 == own_inds && own_inds == 20,
        "{} nodes ({} indicators) shared, {own_nodes} ({own_inds}) alone",
        g.len(),
        count_inds(&g.prog)
    );
    // Five `on("1h", ...)` in three strategies: one hourly aggregator and program.
    let ons = g
        .prog
        .nodes
        .iter()
        .filter(|n| matches!(n, eval::Node::On(_)))
        .count();
    assert_eq!(ons, 1);
    let cs = crate::testing::synthetic(11, 4000);
    let mut fired = 0;
    for (t, c) in cs.iter().enumerate() {
        e.on_closed(c);
        for (i, s) in alone.iter_mut().enumerate() {
            let d = s.on_candle(c).unwrap();
            assert_eq!(seen(&e.decisions()[i]), seen(&d), "{} on {t}", s.id);
            fired += usize::from(d.action != Action::Hold);
        }
    }
    assert!(fired > 100, "the comparison saw signals: {fired}");
    assert_eq!(e.failures(), 0);
    let longest = alone.iter().map(|s| s.warmup()).max();
    assert_eq!(
        Some(e.warmup()),
        longest,
        "the hourly warm-ups, in 5m candles"
    );
    let mut one = defs[0].compile(1).unwrap();
    let mut b = crate::graph::GraphBuilder::default();
    assert!(one.share(&mut b));
    assert!(!one.share(&mut b), "shared once");
    assert!(one.on_candle(&cs[0]).is_err(), "stepped by its engine only");
}

/// 7-minute candles: an hourly `on(...)` cannot be built from them.
fn seven_minute(n: usize) -> Vec<Candle> {
    crate::testing::synthetic(5, n)
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.open_time = i as i64 * 420_000;
            c.close_time = c.open_time + 419_999;
            c
        })
        .collect()
}

#[test]
fn a_failing_shared_node_fails_only_the_strategies_reading_it() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    let defs = [
        def(
            "rsi(close, 14) < 45 and on(\"1h\", close > ema(close, 20))",
            "rsi(close, 14) > 55",
        ),
        def("rsi(close, 14) < 45", "rsi(close, 14) > 55"),
    ];
    let mut e = SignalEngine::new(boxed(&defs), Rule::new(Mode::Any, 2)).unwrap();
    let mut alone = defs[1].compile(1).unwrap();
    let cs = seven_minute(300);
    for c in &cs {
        e.on_closed(c);
        let d = alone.on_candle(c).unwrap();
        assert_eq!(seen(&e.decisions()[1]), seen(&d));
    }
    assert_eq!(e.slots()[0].failures, 300);
    assert_eq!(e.slots()[1].failures, 0);
    let msg = e.slots()[0].last_error.clone().unwrap();
    assert!(msg.contains("1h is not a multiple"), "{msg}");
}

/// Adds a node that panics when the close is above 100, and fails while it does.
#[derive(Debug, Clone)]
struct Boom(eval::Ix);

impl Strategy for Boom {
    fn id(&self) -> &'static str {
        "boom"
    }
    fn on_candle(
        &mut self,
        _: &Candle,
    ) -> Result<crate::strategy::Decision, crate::strategy::StrategyError> {
        unreachable!("shared")
    }
    fn reset(&mut self) {}
    fn warmup(&self) -> usize {
        0
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
    fn share(&mut self, g: &mut crate::graph::GraphBuilder) -> bool {
        let close = g.c.prog.push(eval::Node::Field(eval::Field::Close));
        self.0 = g.c.prog.push(eval::Node::Panic(close));
        true
    }
    fn placed(&mut self, g: &crate::graph::Graph) {
        self.0 = g.place(self.0);
    }
    fn decide(
        &mut self,
        _: &Candle,
        g: &crate::graph::Graph,
    ) -> Result<crate::strategy::Decision, crate::strategy::StrategyError> {
        match g.fault(self.0) {
            Some(f) => Err(crate::strategy::StrategyError(f.to_string())),
            None => Ok(crate::strategy::Decision::hold(
                crate::strategy::Reason::text("ok"),
            )),
        }
    }
}

#[test]
fn a_panicking_shared_node_is_reset_and_the_nodes_after_it_still_step() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    // The panicking node comes first in the graph: the rule's nodes are stepped after it.
    let rule = def(
        "crosses_above(close, sma(close, 3))",
        "crosses_below(close, sma(close, 3))",
    );
    let strategies: Vec<Box<dyn Strategy>> =
        vec![Box::new(Boom(0)), Box::new(rule.compile(1).unwrap())];
    let mut e = SignalEngine::new(strategies, Rule::new(Mode::Any, 2)).unwrap();
    let mut alone = rule.compile(1).unwrap();
    let closes = [
        98.0, 99.0, 97.0, 101.0, 102.0, 96.0, 95.0, 103.0, 99.0, 100.0,
    ];
    let mut views = 0;
    for c in candles(&closes) {
        e.on_closed(&c);
        let d = alone.on_candle(&c).unwrap();
        assert_eq!(seen(&e.decisions()[1]), seen(&d));
        views += usize::from(d.action != Action::Hold);
    }
    assert!(views > 0);
    assert_eq!(e.slots()[0].failures, 3, "closes above 100");
    assert_eq!(e.slots()[1].failures, 0);
    let msg = e.slots()[0].last_error.clone().unwrap();
    assert!(msg.contains("panicked: boom at 103"), "{msg}");
}

#[test]
fn rule_predicates_and_built_in_smc_strategies_share_detectors() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    let rule = def("bos_up or sweep_low", "bos_down or sweep_high");
    let mut strategies = vec![
        crate::strategy::build("smc_bos", &serde_json::Map::new()).unwrap(),
        crate::strategy::build("smc_liquidity_sweep", &serde_json::Map::new()).unwrap(),
    ];
    strategies.push(Box::new(rule.compile(1).unwrap()));
    let mut e = SignalEngine::new(strategies, Rule::new(Mode::Any, 3)).unwrap();
    let nodes = &e.graph().prog.nodes;
    let swings = nodes
        .iter()
        .filter(|n| matches!(n, eval::Node::Swings(..)))
        .count();
    let dets = nodes
        .iter()
        .filter(|n| matches!(n, eval::Node::Smc(..)))
        .count();
    assert_eq!(
        (swings, dets),
        (1, 2),
        "one tracker, one structure, one sweep"
    );
    let mut alone = rule.compile(1).unwrap();
    let mut fired = 0;
    for c in &crate::testing::synthetic(13, 3000) {
        e.on_closed(c);
        let d = alone.on_candle(c).unwrap();
        assert_eq!(seen(&e.decisions()[2]), seen(&d));
        fired += usize::from(d.action != Action::Hold);
    }
    assert!(fired > 20, "{fired}");
    assert_eq!(e.failures(), 0);
}

#[test]
fn scores_are_left_out_of_stepping_and_computed_as_stepped() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    let defs = ten();
    let mut scored = 0;
    for d in &defs {
        let Some(_) = &d.score else { continue };
        scored += 1;
        // The strategy's program, partitioned, against the same program with every node stepped.
        let mut s = d.compile(d.hold).unwrap();
        let mut c = compile::Compiler::default();
        let (_, _, root) = d.compile_into(&mut c).unwrap();
        let (mut whole, root) = (c.prog, root.unwrap());
        assert_eq!(whole.lazy, 0);
        assert!(
            s.prog.lazy >= 3,
            "{}: {} nodes left out of {}",
            d.id,
            s.prog.lazy,
            s.prog.nodes.len()
        );
        let mut known = 0;
        for cd in &crate::testing::synthetic(5, 3000) {
            s.on_candle(cd).unwrap();
            whole.step(cd).unwrap();
            let (got, want) = (s.prog.eval(s.score.unwrap(), cd), whole.value(root));
            assert_eq!(got.to_bits(), want.to_bits(), "{}", d.id);
            known += usize::from(!want.is_nan());
        }
        assert!(known > 2000, "{}: the score had values: {known}", d.id);
    }
    assert_eq!(
        scored, 2,
        "trend_pullback and mean_reversion_htf have scores"
    );
    // In an engine's graph too, and the decisions stay those of the strategies alone (above).
    let e = SignalEngine::new(boxed(&defs), Rule::new(Mode::Any, 10)).unwrap();
    assert!(e.graph().prog.lazy >= 6, "{}", e.graph().prog.lazy);
}

#[test]
fn two_copies_of_the_node_dispatch_step_as_one() {
    use crate::SignalEngine;
    use crate::confluence::{Mode, Rule};
    let defs = ten();
    let engine = SignalEngine::new(boxed(&defs), Rule::new(Mode::Any, 10)).unwrap();
    let mut progs: Vec<(String, eval::Program)> = defs
        .iter()
        .map(|d| (d.id.to_string(), d.compile(d.hold).unwrap().prog))
        .collect();
    progs.push(("the engine's graph".into(), engine.graph().prog.clone()));
    // Strategies alone switch node kinds at almost every node (paired); the scheduled graph of
    // all ten runs long stretches of one kind (single): both loops are covered either way.
    let paired = progs.iter().filter(|(_, p)| p.paired).count();
    assert!(paired >= 5, "{paired} of {} programs paired", progs.len());
    assert!(
        !progs.last().unwrap().1.paired,
        "the ten's graph keeps the single loop"
    );
    let cs = crate::testing::synthetic(11, 3000);
    for (id, p) in &mut progs {
        let mut other = p.clone();
        other.paired = !p.paired;
        for c in &cs {
            p.step(c).unwrap();
            other.step(c).unwrap();
            let bits = |p: &eval::Program| -> Vec<u64> {
                let outs = p.outs.iter().flatten();
                p.vals.iter().chain(outs).map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(p), bits(&other), "{id}");
        }
    }
}
