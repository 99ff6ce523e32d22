//! The one table of built-in strategies ([`REGISTRY`]) and of named strategy sets
//! ([`PRESETS`]). Ids, menus, defaults, help and docs derive from these tables: adding a
//! strategy is one file in `strategy/` plus one line here.
//!
//! Rule strategies from strategy files join them at run time through [`load_rules`]: from then
//! on [`parse_selection`], [`build`] and [`default_params`] treat their ids like built-in ones.

use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

use super::{Params, Strategy, adx, bollinger, ema_crossover, macd, rsi, smc, stochastic};
use crate::error::CoreError;
use crate::model::Interval;
use crate::rules::{RuleDef, RuleError};

/// How a strategy's signal arises, which decides its default `hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A condition that holds over many candles (RSI extreme, band breakout, strong trend): the
    /// view is the condition now.
    State,
    /// Something that happens on one candle (a crossover, a structure break, a retest): the view
    /// lasts `hold` candles unless invalidated.
    Event,
}

/// One built-in strategy.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its id.
    pub id: &'static str,
    /// State or event.
    pub kind: Kind,
    /// One line for menus and help.
    pub summary: &'static str,
    defaults: fn() -> Map<String, Value>,
    build: Builder,
}

/// Builds a strategy from parameter overrides.
type Builder = fn(&Map<String, Value>) -> Result<Box<dyn Strategy>, CoreError>;

impl Entry {
    const fn of<P: Params>(kind: Kind, summary: &'static str) -> Entry {
        Entry {
            id: P::ID,
            kind,
            summary,
            defaults: defaults_of::<P>,
            build: build_from::<P>,
        }
    }
    /// The default parameters, as JSON.
    pub fn defaults(&self) -> Map<String, Value> {
        (self.defaults)()
    }
    /// Builds the strategy with `params` overriding the defaults.
    pub fn build(&self, params: &Map<String, Value>) -> Result<Box<dyn Strategy>, CoreError> {
        (self.build)(params)
    }
}

/// Every built-in strategy, in display order.
pub const REGISTRY: [Entry; 11] = [
    Entry::of::<rsi::Config>(
        Kind::State,
        "RSI below oversold BUYs, above overbought SELLs",
    ),
    Entry::of::<ema_crossover::Config>(Kind::Event, "fast EMA crossing the slow EMA"),
    Entry::of::<bollinger::Config>(Kind::State, "close outside the Bollinger bands"),
    Entry::of::<macd::Config>(Kind::Event, "MACD crossing its signal line"),
    Entry::of::<stochastic::Config>(Kind::Event, "%K crossing %D in the extreme zones"),
    Entry::of::<adx::Config>(Kind::State, "strong trend (ADX), direction from ±DI"),
    Entry::of::<smc::BosConfig>(Kind::Event, "SMC Break of Structure"),
    Entry::of::<smc::ChochConfig>(Kind::Event, "SMC Change of Character"),
    Entry::of::<smc::OrderBlockConfig>(Kind::Event, "SMC order block retest"),
    Entry::of::<smc::FvgConfig>(Kind::Event, "SMC fair value gap retrace"),
    Entry::of::<smc::SweepConfig>(Kind::Event, "SMC liquidity sweep"),
];

/// Every built-in strategy id, in display order.
pub const IDS: [&str; REGISTRY.len()] = {
    let mut ids = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        ids[i] = REGISTRY[i].id;
        i += 1;
    }
    ids
};

/// A named, coherent set of strategies, usable wherever a list of ids is.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Its name, e.g. `trend`.
    pub name: &'static str,
    /// The strategies.
    pub ids: &'static [&'static str],
    /// Why these belong together.
    pub rationale: &'static str,
}

/// The presets. `all` is every strategy (see [`IDS`]).
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "trend",
        ids: &[
            ema_crossover::ID,
            macd::ID,
            adx::ID,
            bollinger::ID,
            smc::BOS_ID,
        ],
        rationale: "trend-following: each says BUY when price is moving up with strength",
    },
    Preset {
        name: "reversal",
        ids: &[
            rsi::ID,
            stochastic::ID,
            smc::CHOCH_ID,
            smc::LIQUIDITY_SWEEP_ID,
        ],
        rationale: "mean reversion: each says BUY after a stretched move down starts to turn",
    },
    Preset {
        name: "smc",
        ids: &[
            smc::BOS_ID,
            smc::CHOCH_ID,
            smc::ORDER_BLOCK_ID,
            smc::FVG_ID,
            smc::LIQUIDITY_SWEEP_ID,
        ],
        rationale: "Smart Money Concepts: market structure, order blocks, gaps and sweeps",
    },
    Preset {
        name: "all",
        ids: &IDS,
        rationale: "every strategy; trend and reversal views contradict each other, so use \
                    weighted or any confluence with it rather than majority or all",
    },
];

/// The selection used when none is given: by `signals`, `backtest`, `live`, `demo`, `serve
/// --demo` and the Lab alike.
pub const DEFAULT_SELECTION: &str = "trend";

/// Rule strategies loaded from strategy files, selectable by id after the built-ins. Process
/// wide because a selection is parsed in many places (flags, settings, Lab, web) that should
/// all see the same files; entries are only ever added.
static LOADED: RwLock<Vec<RuleDef>> = RwLock::new(Vec::new());

/// Makes these rule strategies selectable by id. Loading an identical definition again is a
/// no-op; a different definition under a loaded id is an error.
pub fn load_rules(defs: &[RuleDef]) -> Result<(), CoreError> {
    let mut loaded = LOADED.write().unwrap_or_else(PoisonError::into_inner);
    for d in defs {
        match loaded.iter().find(|l| l.id == d.id) {
            Some(l) if l == d => {}
            Some(_) => {
                return Err(RuleError::Def {
                    id: d.id.to_string(),
                    message: "is defined differently in two strategy files".to_string(),
                }
                .into());
            }
            None => loaded.push(d.clone()),
        }
    }
    Ok(())
}

/// The loaded rule strategies, in load order.
pub fn loaded_rules() -> Vec<RuleDef> {
    LOADED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn rule(id: &str) -> Option<RuleDef> {
    LOADED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|d| d.id == id)
        .cloned()
}

/// Checks the `on(...)` timeframes of the selected rule strategies against the stream's
/// interval (built-ins need no check).
pub fn check_interval(ids: &[&str], interval: Interval) -> Result<(), CoreError> {
    for id in ids {
        if let Some(d) = rule(id) {
            d.check_interval(interval)?;
        }
    }
    Ok(())
}

/// Every selectable id: the built-ins, then the loaded rule strategies in load order.
pub fn selectable_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = IDS.to_vec();
    ids.extend(loaded_rules().iter().map(|d| d.id));
    ids
}

/// One line saying what `id` does: the registry's summary of a built-in, the `buy` rule of a
/// loaded rule strategy; `None` for an unknown id.
pub fn summary_of(id: &str) -> Option<String> {
    if let Ok(e) = entry(id) {
        return Some(e.summary.to_string());
    }
    rule(id).map(|d| format!("rule: buy when {}", d.buy))
}

/// Comma-separated valid ids and preset names, for error messages.
pub fn id_choices() -> String {
    let presets: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    format!(
        "{} (presets: {})",
        selectable_ids().join(", "),
        presets.join(", ")
    )
}

fn unknown(id: &str) -> CoreError {
    CoreError::UnknownStrategy {
        id: id.to_string(),
        choices: id_choices(),
    }
}

/// The registry entry of `id`.
pub fn entry(id: &str) -> Result<&'static Entry, CoreError> {
    REGISTRY
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| unknown(id))
}

/// The preset called `name` (case-insensitive).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Builds the strategy `id` with `params` overriding its defaults; unknown names, wrong types
/// and values out of range are errors naming the strategy and the parameter.
pub fn build(id: &str, params: &Map<String, Value>) -> Result<Box<dyn Strategy>, CoreError> {
    if let Ok(e) = entry(id) {
        return e.build(params);
    }
    let d = rule(id).ok_or_else(|| unknown(id))?;
    let mut hold = d.hold;
    for (k, v) in params {
        let bad = |reason: String| CoreError::BadParam {
            id: id.to_string(),
            reason,
        };
        if k != "hold" {
            return Err(bad(format!("unknown parameter '{k}'; parameters: hold")));
        }
        hold = v
            .as_u64()
            .and_then(|h| usize::try_from(h).ok())
            .ok_or_else(|| bad(format!("hold must be a whole number, got {v}")))?;
        super::params::hold(hold).map_err(|error| CoreError::ParamRange {
            id: id.to_string(),
            error,
        })?;
    }
    Ok(Box::new(d.compile(hold)?))
}

/// The default parameters of a strategy, as JSON (for help, config files and the Lab).
pub fn default_params(id: &str) -> Result<Map<String, Value>, CoreError> {
    match rule(id) {
        Some(d) if entry(id).is_err() => {
            let mut m = Map::new();
            m.insert("hold".into(), Value::from(d.hold));
            Ok(m)
        }
        _ => Ok(entry(id)?.defaults()),
    }
}

fn defaults_of<P: Params>() -> Map<String, Value> {
    match serde_json::to_value(P::default()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn build_from<P: Params>(params: &Map<String, Value>) -> Result<Box<dyn Strategy>, CoreError> {
    let bad = |reason: String| CoreError::BadParam {
        id: P::ID.to_string(),
        reason,
    };
    let mut obj = defaults_of::<P>();
    for (k, v) in params {
        if !obj.contains_key(k) {
            let known: Vec<&str> = obj.keys().map(String::as_str).collect();
            return Err(bad(format!(
                "unknown parameter '{k}'; parameters: {}",
                known.join(", ")
            )));
        }
        obj.insert(k.clone(), v.clone());
    }
    let cfg: P = serde_json::from_value(Value::Object(obj)).map_err(|e| bad(e.to_string()))?;
    cfg.validate().map_err(|error| CoreError::ParamRange {
        id: P::ID.to_string(),
        error,
    })?;
    Ok(Box::new(cfg.build()))
}

/// Parses a selection like `rsi_mean_reversion,macd`, a preset (`trend`, `all`, ...) or a mix
/// of both into ids (validated, deduplicated, in the order given).
pub fn parse_selection(s: &str) -> Result<Vec<&'static str>, CoreError> {
    let mut out: Vec<&'static str> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let one: [&'static str; 1];
        let ids: &[&'static str] = match preset(part) {
            Some(p) => p.ids,
            None => match (entry(part), rule(part)) {
                (Ok(e), _) => std::slice::from_ref(&e.id),
                (Err(_), Some(d)) => {
                    one = [d.id];
                    &one
                }
                (Err(e), None) => return Err(e),
            },
        };
        for id in ids {
            if !out.contains(id) {
                out.push(id);
            }
        }
    }
    if out.is_empty() {
        return Err(CoreError::NoStrategies);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::params::{MAX_PERIOD, ParamError};

    #[test]
    fn every_entry_builds_with_its_defaults_and_ids_are_unique() {
        for e in &REGISTRY {
            let s = e.build(&Map::new()).unwrap();
            assert_eq!(s.id(), e.id);
            assert!(
                e.defaults().contains_key("hold"),
                "{}: every strategy has hold",
                e.id
            );
            assert_eq!(IDS.iter().filter(|id| **id == e.id).count(), 1);
        }
        for p in &PRESETS {
            assert!(!p.ids.is_empty());
            for id in p.ids {
                assert!(entry(id).is_ok(), "preset {} names {id}", p.name);
            }
            assert!(entry(p.name).is_err(), "a preset name is not a strategy id");
        }
        assert!(parse_selection(DEFAULT_SELECTION).is_ok());
    }

    #[test]
    fn unknown_id_and_param_are_clear_errors() {
        let e = build("rsi", &Map::new()).unwrap_err().to_string();
        assert!(
            e.contains("unknown strategy 'rsi'") && e.contains("rsi_mean_reversion"),
            "{e}"
        );
        assert!(e.contains("presets: trend"), "{e}");
        let mut p = Map::new();
        p.insert("nope".into(), Value::from(3));
        let e = build(rsi::ID, &p).unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter 'nope'") && e.contains("period"),
            "{e}"
        );
        let e = parse_selection("macd,foo").unwrap_err().to_string();
        assert!(e.contains("'foo'"), "{e}");
        assert!(matches!(
            parse_selection(" , "),
            Err(CoreError::NoStrategies)
        ));
        assert_eq!(parse_selection("all").unwrap().len(), REGISTRY.len());
        assert_eq!(parse_selection("macd,macd").unwrap(), vec!["macd"]);
    }

    #[test]
    fn presets_expand_and_mix_with_ids() {
        let trend = parse_selection("trend").unwrap();
        assert_eq!(trend, preset("trend").unwrap().ids.to_vec());
        let mixed = parse_selection("rsi_mean_reversion,TREND,macd").unwrap();
        assert_eq!(mixed[0], rsi::ID);
        assert_eq!(
            mixed.len(),
            1 + trend.len(),
            "macd is in trend: no duplicate"
        );
        assert_eq!(parse_selection("smc").unwrap().len(), 5);
    }

    #[test]
    fn smc_strategies_accept_only_the_parameters_they_read() {
        let mut p = Map::new();
        p.insert("fvg_min_size_pct".into(), Value::from(0.1));
        assert!(build(smc::FVG_ID, &p).is_ok());
        let e = build(smc::BOS_ID, &p).unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter 'fvg_min_size_pct'") && e.contains("swing_length"),
            "{e}"
        );
        let keys: Vec<String> = default_params(smc::BOS_ID)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec!["hold", "swing_length"]);
        assert!(
            default_params(smc::LIQUIDITY_SWEEP_ID)
                .unwrap()
                .contains_key("eq_tolerance_pct")
        );
    }

    #[test]
    fn out_of_range_parameters_are_errors_naming_the_parameter() {
        struct Case {
            id: &'static str,
            param: &'static str,
            value: Value,
            /// The range error expected; `None`: the value does not even deserialize.
            is: Option<fn(&ParamError) -> bool>,
        }
        let huge = Value::from(1_000_000_000_000u64);
        let cases = [
            Case {
                id: smc::ORDER_BLOCK_ID,
                param: "max_zones",
                value: huge.clone(),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Int {
                            name: "max_zones",
                            hi: smc::MAX_ZONES,
                            ..
                        }
                    )
                }),
            },
            Case {
                id: smc::LIQUIDITY_SWEEP_ID,
                param: "max_zones",
                value: Value::from(u64::MAX),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Int {
                            name: "max_zones",
                            ..
                        }
                    )
                }),
            },
            Case {
                id: smc::BOS_ID,
                param: "swing_length",
                value: huge.clone(),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Int {
                            name: "swing_length",
                            lo: 1,
                            hi: smc::MAX_SWING_LENGTH,
                            ..
                        }
                    )
                }),
            },
            Case {
                id: smc::BOS_ID,
                param: "swing_length",
                value: Value::from(1e12),
                is: None,
            },
            Case {
                id: rsi::ID,
                param: "period",
                value: Value::from(0),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Int {
                            name: "period",
                            got: 0,
                            lo: 2,
                            hi: MAX_PERIOD
                        }
                    )
                }),
            },
            Case {
                id: rsi::ID,
                param: "oversold",
                value: Value::from(80.0),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Order {
                            lower: "oversold",
                            upper: "overbought",
                            ..
                        }
                    )
                }),
            },
            Case {
                id: ema_crossover::ID,
                param: "fast",
                value: Value::from(30),
                is: Some(
                    |e| matches!(e, ParamError::Order { lower: "fast", lower_value, .. } if *lower_value == 30.0),
                ),
            },
            Case {
                id: macd::ID,
                param: "slow",
                value: Value::from(5),
                is: Some(
                    |e| matches!(e, ParamError::Order { lower: "fast", upper_value, .. } if *upper_value == 5.0),
                ),
            },
            Case {
                id: bollinger::ID,
                param: "std_dev",
                value: Value::from(-1.0),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Num {
                            name: "std_dev",
                            ..
                        }
                    )
                }),
            },
            Case {
                id: adx::ID,
                param: "threshold",
                value: Value::from(150.0),
                is: Some(
                    |e| matches!(e, ParamError::Num { name: "threshold", hi, .. } if *hi == 100.0),
                ),
            },
            Case {
                id: stochastic::ID,
                param: "hold",
                value: Value::from(0),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Int {
                            name: "hold",
                            got: 0,
                            ..
                        }
                    )
                }),
            },
            Case {
                id: smc::FVG_ID,
                param: "fvg_min_size_pct",
                value: Value::from(-0.5),
                is: Some(|e| {
                    matches!(
                        e,
                        ParamError::Num {
                            name: "fvg_min_size_pct",
                            ..
                        }
                    )
                }),
            },
        ];
        for c in cases {
            let mut p = Map::new();
            p.insert(c.param.into(), c.value);
            let e = build(c.id, &p).unwrap_err();
            match (&e, c.is) {
                (CoreError::ParamRange { id, error }, Some(is)) => {
                    assert_eq!(id, c.id);
                    assert!(is(error), "{}.{}: {error:?}", c.id, c.param);
                    // The message names the parameter, for the user.
                    assert!(e.to_string().contains(c.param), "{}: {e}", c.param);
                }
                (CoreError::BadParam { id, .. }, None) => assert_eq!(id, c.id),
                _ => panic!("{}.{}: unexpected {e:?}", c.id, c.param),
            }
        }
    }
}
