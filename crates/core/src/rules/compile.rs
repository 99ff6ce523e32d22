//! Type checking and compilation of parsed expressions into a [`Program`]: each distinct
//! sub-expression becomes one node (an indicator used by several rules of a strategy with the
//! same arguments is one indicator), and constants such as periods are checked here, once.

use std::collections::{BTreeSet, HashMap};

use crate::indicator::{Atr, Dmi, ExpAvg, Extreme, Macd, Mean, Rsi, Stddev, Stoch, TrueRangeAvg};
use crate::model::Interval;
use crate::smc::fvg::Fvgs;
use crate::smc::liquidity::Liquidity;
use crate::smc::liquidity::SweepEvent;
use crate::smc::order_block::OrderBlocks;
use crate::smc::structure::StructureState;
use crate::smc::swing::Swings;
use crate::smc::zone::ZoneEvent;
use crate::strategy::Params;
use crate::strategy::params::MAX_PERIOD;
use crate::strategy::smc::{BosConfig, FvgConfig, OrderBlockConfig, SweepConfig};

use super::eval::{Arith, Cmp, Det, Field, Ind, Ix, Node, On, Program, Ring, SwingRef};
use super::parse::{Arg, BinOp, Expr, Kind};

/// Most nodes one strategy compiles to (all its rules together).
pub const MAX_NODES: usize = 512;
/// Largest `k` in `x[k]` and `change(x, k)`.
pub const MAX_HISTORY: usize = 10_000;

/// A compile error: the column of the offending token and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub(crate) col: usize,
    pub(crate) message: String,
}

fn fault<T>(col: usize, message: impl Into<String>) -> Result<T, Fault> {
    Err(Fault {
        col,
        message: message.into(),
    })
}

/// The type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Num,
    Bool,
    Str,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Num => "a number",
            Ty::Bool => "a condition",
            Ty::Str => "a string",
        }
    }
}

/// Every function name, for the "unknown function" error.
pub const FUNCTIONS: &[&str] = &[
    "sma",
    "ema",
    "rsi",
    "stddev",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "macd",
    "macd_signal",
    "macd_hist",
    "stoch_k",
    "stoch_d",
    "atr",
    "adx",
    "plus_di",
    "minus_di",
    "highest",
    "lowest",
    "change",
    "abs",
    "min",
    "max",
    "clamp",
    "crosses_above",
    "crosses_below",
    "on",
    "bos_up",
    "bos_down",
    "choch_up",
    "choch_down",
    "ob_retest_bull",
    "ob_retest_bear",
    "fvg_retrace_bull",
    "fvg_retrace_bear",
    "sweep_low",
    "sweep_high",
];

/// Compiles the expressions of one strategy into one program.
#[derive(Debug, Default)]
pub(crate) struct Compiler {
    pub(crate) prog: Program,
    keys: HashMap<String, Ix>,
    /// The indicators and detectors used, as written (for `manus strategy check`).
    pub(crate) uses: BTreeSet<String>,
    /// Inside `on(...)`: its timeframe (no nesting).
    within: Option<Interval>,
    /// Per timeframe of `on(...)`: its node and the keys of its program's nodes.
    tfs: HashMap<Interval, (Ix, HashMap<String, Ix>)>,
    /// Compiling into an engine's shared graph: the strategies were each checked against
    /// [`MAX_NODES`] alone, their sum is not limited.
    pub(crate) shared: bool,
    /// The roots read on every candle (`buy` and `sell`): what [`Program::partition`] keeps
    /// stepped.
    pub(crate) eager: Vec<Ix>,
}

impl Compiler {
    /// A compiler for an engine's shared graph.
    pub(crate) fn shared() -> Self {
        Compiler {
            shared: true,
            ..Compiler::default()
        }
    }

    /// Adds a node unless an identical one exists; returns its index.
    fn add(&mut self, key: String, col: usize, node: impl FnOnce() -> Node) -> Result<Ix, Fault> {
        if let Some(&ix) = self.keys.get(&key) {
            return Ok(ix);
        }
        if self.prog.nodes.len() >= MAX_NODES && !self.shared {
            return fault(
                col,
                format!("the strategy is larger than {MAX_NODES} operations"),
            );
        }
        let ix = self.prog.push(node());
        self.keys.insert(key, ix);
        Ok(ix)
    }

    fn is_close(&self, ix: Ix) -> bool {
        matches!(self.prog.nodes[ix as usize], Node::Field(Field::Close))
    }

    /// Compiles `e` expecting type `want`.
    pub(crate) fn expect(&mut self, e: &Expr, want: Ty) -> Result<Ix, Fault> {
        let (ix, ty) = self.expr(e)?;
        if ty != want {
            return fault(
                e.col,
                format!("expected {}, found {} (`{e}`)", want.name(), ty.name()),
            );
        }
        Ok(ix)
    }

    fn expr(&mut self, e: &Expr) -> Result<(Ix, Ty), Fault> {
        let col = e.col;
        match &e.kind {
            Kind::Num(v) => {
                let v = *v;
                Ok((self.add(format!("{v:?}"), col, || Node::Const(v))?, Ty::Num))
            }
            Kind::Bool(b) => {
                let v = if *b { 1.0 } else { 0.0 };
                Ok((
                    self.add(format!("{v:?}"), col, || Node::Const(v))?,
                    Ty::Bool,
                ))
            }
            Kind::Str(_) => fault(col, "a string is only valid as the timeframe of on(...)"),
            Kind::Name(n) => self.name(n, col, None),
            Kind::Neg(x) => {
                let a = self.expect(x, Ty::Num)?;
                Ok((
                    self.add(format!("neg({a})"), col, || Node::Neg(a))?,
                    Ty::Num,
                ))
            }
            Kind::Not(x) => {
                let a = self.expect(x, Ty::Bool)?;
                Ok((
                    self.add(format!("not({a})"), col, || Node::Not(a))?,
                    Ty::Bool,
                ))
            }
            Kind::Bin(op, a, b) => self.binary(*op, a, b, col),
            Kind::Index(x, k) => {
                let (a, ty) = self.expr(x)?;
                let k = whole(k, "the index", 0, MAX_HISTORY)?;
                if ty == Ty::Str {
                    return fault(col, "a string cannot be indexed");
                }
                let ix = self.add(format!("hist({a},{k})"), col, || {
                    Node::Hist(Box::new(Ring::new(a, k)))
                })?;
                Ok((ix, ty))
            }
            Kind::Call(name, args) => self.name(name, col, Some(args)),
        }
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, col: usize) -> Result<(Ix, Ty), Fault> {
        let arith = match op {
            BinOp::Add => Some(Arith::Add),
            BinOp::Sub => Some(Arith::Sub),
            BinOp::Mul => Some(Arith::Mul),
            BinOp::Div => Some(Arith::Div),
            _ => None,
        };
        let cmp = match op {
            BinOp::Lt => Some(Cmp::Lt),
            BinOp::Le => Some(Cmp::Le),
            BinOp::Gt => Some(Cmp::Gt),
            BinOp::Ge => Some(Cmp::Ge),
            _ => None,
        };
        let name = op.as_str();
        if let BinOp::Eq | BinOp::Ne = op {
            // Numbers or conditions, both sides alike.
            let (x, tx) = self.expr(a)?;
            if tx == Ty::Str {
                return fault(a.col, "a string cannot be compared");
            }
            let y = self.expect(b, tx)?;
            let cmp = if op == BinOp::Eq { Cmp::Eq } else { Cmp::Ne };
            let ix = self.add(format!("{name}({x},{y})"), col, || Node::Cmp(cmp, x, y))?;
            return Ok((ix, Ty::Bool));
        }
        if let (Some(_), Some(_)) | (None, None) = (arith, cmp) {
            // `and` / `or`.
            let x = self.operand(a, Ty::Bool, op)?;
            let y = self.operand(b, Ty::Bool, op)?;
            let node = if op == BinOp::And {
                Node::And(x, y)
            } else {
                Node::Or(x, y)
            };
            return Ok((
                self.add(format!("{name}({x},{y})"), col, || node)?,
                Ty::Bool,
            ));
        }
        let ty = if cmp.is_some() { Ty::Bool } else { Ty::Num };
        let literal = |e: &Expr| match e.kind {
            Kind::Num(v) => Some(v),
            _ => None,
        };
        // A literal operand is folded into its operation: `rsi(close, 14) < 30` is one node,
        // not three (a third of the nodes of typical rules are constants).
        let (key, node) = match (literal(a), literal(b)) {
            (None, Some(k)) => {
                let x = self.operand(a, Ty::Num, op)?;
                let node = match (arith, cmp) {
                    (Some(o), _) => Node::ArithK(o, x, k),
                    (_, Some(c)) => Node::CmpK(c, x, k),
                    _ => unreachable!("arithmetic or comparison"),
                };
                (format!("{name}({x},#{k:?})"), node)
            }
            (Some(k), None) => {
                let y = self.operand(b, Ty::Num, op)?;
                let node = match (arith, cmp) {
                    (Some(o), _) => Node::KArith(o, k, y),
                    (_, Some(c)) => Node::CmpK(c.flip(), y, k),
                    _ => unreachable!("arithmetic or comparison"),
                };
                (format!("{name}(#{k:?},{y})"), node)
            }
            _ => {
                let x = self.operand(a, Ty::Num, op)?;
                let y = self.operand(b, Ty::Num, op)?;
                let node = match (arith, cmp) {
                    (Some(o), _) => Node::Arith(o, x, y),
                    (_, Some(c)) => Node::Cmp(c, x, y),
                    _ => unreachable!("arithmetic or comparison"),
                };
                (format!("{name}({x},{y})"), node)
            }
        };
        Ok((self.add(key, col, || node)?, ty))
    }

    fn operand(&mut self, e: &Expr, want: Ty, op: BinOp) -> Result<Ix, Fault> {
        let (ix, ty) = self.expr(e)?;
        if ty != want {
            return fault(
                e.col,
                format!(
                    "`{}` needs {} on both sides, found {} (`{e}`)",
                    op.as_str(),
                    want.name(),
                    ty.name()
                ),
            );
        }
        Ok(ix)
    }

    /// A call, or a bare name (`close`, `bos_up`).
    fn name(&mut self, name: &str, col: usize, call: Option<&[Arg]>) -> Result<(Ix, Ty), Fault> {
        let args = call.unwrap_or_default();
        let field = match name {
            "open" => Some(Field::Open),
            "high" => Some(Field::High),
            "low" => Some(Field::Low),
            "close" => Some(Field::Close),
            "volume" => Some(Field::Volume),
            _ => None,
        };
        if let Some(f) = field {
            if call.is_some() {
                return fault(col, format!("`{name}` is a candle field, not a function"));
            }
            return Ok((self.add(name.to_string(), col, || Node::Field(f))?, Ty::Num));
        }
        if let Some(part) = smc_part(name) {
            return self.smc(name, part, col, args);
        }
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            return fault(
                a.value.col,
                format!("{name}() takes no named arguments (only the SMC predicates do)"),
            );
        }
        let vals: Vec<&Expr> = args.iter().map(|a| &a.value).collect();
        let arity = |n: usize, sig: &str| -> Result<(), Fault> {
            if vals.len() == n {
                Ok(())
            } else {
                fault(
                    col,
                    format!(
                        "{name} takes {n} argument(s): {name}({sig}); got {}",
                        vals.len()
                    ),
                )
            }
        };
        match name {
            "sma" | "ema" | "rsi" | "stddev" | "highest" | "lowest" => {
                arity(2, "x, n")?;
                let x = self.expect(vals[0], Ty::Num)?;
                let n = whole(vals[1], "n", 2, MAX_PERIOD)?;
                let ind = match name {
                    "sma" => Ind::Sma(Mean::new(n)),
                    "ema" => Ind::Ema(ExpAvg::new(n)),
                    "rsi" => Ind::Rsi(Rsi::new(n)),
                    "stddev" => Ind::Stddev(Stddev::new(n)),
                    "highest" => Ind::Highest(Extreme::new(n)),
                    _ => Ind::Lowest(Extreme::new(n)),
                };
                self.indicator(name, format!("{name}({x},{n})"), col, ind, Some(x), 0, args)
            }
            "bb_upper" | "bb_middle" | "bb_lower" => {
                arity(3, "x, n, k")?;
                let x = self.expect(vals[0], Ty::Num)?;
                let n = whole(vals[1], "n", 2, MAX_PERIOD)?;
                let k = constant(vals[2], "k", 0.0, 10.0)?;
                let part = ["bb_upper", "bb_middle", "bb_lower"]
                    .iter()
                    .position(|p| *p == name)
                    .unwrap_or(0) as u8;
                self.uses.insert(self.written(name, args));
                // SMA ± k·σ, bit-identical to BBANDS (tested in `indicator`): the SMA and σ
                // are the nodes of `sma(x, n)` and `stddev(x, n)`, shared with any other use.
                let mid = self.ind_node(format!("sma({x},{n})"), col, Ind::Sma(Mean::new(n)), x)?;
                let sd = self.ind_node(
                    format!("stddev({x},{n})"),
                    col,
                    Ind::Stddev(Stddev::new(n)),
                    x,
                )?;
                let key = self.scoped(format!("bb({mid},{sd},{k:?}).{part}"));
                let ix = self.add(key, col, || Node::Band { mid, sd, k, part })?;
                Ok((ix, Ty::Num))
            }
            "macd" | "macd_signal" | "macd_hist" => {
                arity(4, "x, fast, slow, signal")?;
                let x = self.expect(vals[0], Ty::Num)?;
                let fast = whole(vals[1], "fast", 2, MAX_PERIOD)?;
                let slow = whole(vals[2], "slow", 2, MAX_PERIOD)?;
                let signal = whole(vals[3], "signal", 1, MAX_PERIOD)?;
                let part = ["macd", "macd_signal", "macd_hist"]
                    .iter()
                    .position(|p| *p == name)
                    .unwrap_or(0);
                let ind = Ind::Macd(Macd::new(fast, slow, signal));
                let key = format!("macd({x},{fast},{slow},{signal})");
                self.indicator(name, key, col, ind, Some(x), part, args)
            }
            "stoch_k" | "stoch_d" => {
                arity(3, "k, k_smooth, d")?;
                let k = whole(vals[0], "k", 1, MAX_PERIOD)?;
                let ks = whole(vals[1], "k_smooth", 1, MAX_PERIOD)?;
                let d = whole(vals[2], "d", 1, MAX_PERIOD)?;
                let part = usize::from(name == "stoch_d");
                let ind = Ind::Stoch(Stoch::new(k, ks, d));
                self.indicator(
                    name,
                    format!("stoch({k},{ks},{d})"),
                    col,
                    ind,
                    None,
                    part,
                    args,
                )
            }
            "atr" | "adx" | "plus_di" | "minus_di" => {
                arity(1, "n")?;
                let lo = if name == "atr" { 1 } else { 2 };
                let n = whole(vals[0], "n", lo, MAX_PERIOD)?;
                if name == "atr" {
                    let ind = match n {
                        1 => Ind::Atr(Atr::new(n)),
                        _ => Ind::AtrN(TrueRangeAvg::new(n)),
                    };
                    return self.indicator(name, format!("atr({n})"), col, ind, None, 0, args);
                }
                // One directional-movement state for the three lines.
                let part = ["adx", "plus_di", "minus_di"]
                    .iter()
                    .position(|p| *p == name)
                    .unwrap_or(0);
                let ind = Ind::Dmi(Dmi::new(n));
                self.indicator(name, format!("dmi({n})"), col, ind, None, part, args)
            }
            "change" => {
                arity(2, "x, n")?;
                let x = self.expect(vals[0], Ty::Num)?;
                let n = whole(vals[1], "n", 1, MAX_HISTORY)?;
                let past = self.add(format!("hist({x},{n})"), col, || {
                    Node::Hist(Box::new(Ring::new(x, n)))
                })?;
                let ix = self.add(format!("-({x},{past})"), col, || {
                    Node::Arith(Arith::Sub, x, past)
                })?;
                Ok((ix, Ty::Num))
            }
            "abs" => {
                arity(1, "x")?;
                let x = self.expect(vals[0], Ty::Num)?;
                Ok((
                    self.add(format!("abs({x})"), col, || Node::Abs(x))?,
                    Ty::Num,
                ))
            }
            "min" | "max" => {
                arity(2, "a, b")?;
                let a = self.expect(vals[0], Ty::Num)?;
                let b = self.expect(vals[1], Ty::Num)?;
                let node = if name == "min" {
                    Node::Min(a, b)
                } else {
                    Node::Max(a, b)
                };
                Ok((self.add(format!("{name}({a},{b})"), col, || node)?, Ty::Num))
            }
            "clamp" => {
                arity(3, "x, lo, hi")?;
                let x = self.expect(vals[0], Ty::Num)?;
                let lo = self.expect(vals[1], Ty::Num)?;
                let hi = self.expect(vals[2], Ty::Num)?;
                let ix = self.add(format!("clamp({x},{lo},{hi})"), col, || {
                    Node::Clamp(x, lo, hi)
                })?;
                Ok((ix, Ty::Num))
            }
            "crosses_above" | "crosses_below" => {
                arity(2, "a, b")?;
                let a = self.expect(vals[0], Ty::Num)?;
                let b = self.expect(vals[1], Ty::Num)?;
                let above = name == "crosses_above";
                let ix = self.add(format!("{name}({a},{b})"), col, || Node::Cross {
                    a,
                    b,
                    above,
                    prev: f64::NAN,
                })?;
                Ok((ix, Ty::Bool))
            }
            "on" => {
                arity(2, "\"timeframe\", expr")?;
                self.on(vals[0], vals[1], col)
            }
            _ => fault(
                col,
                format!(
                    "unknown function '{name}'; functions: {}",
                    FUNCTIONS.join(", ")
                ),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn indicator(
        &mut self,
        name: &str,
        key: String,
        col: usize,
        ind: Ind,
        input: Option<Ix>,
        part: usize,
        args: &[Arg],
    ) -> Result<(Ix, Ty), Fault> {
        self.uses.insert(self.written(name, args));
        let ix = match input {
            Some(x) => self.ind_node(key.clone(), col, ind, x)?,
            None => self.add(self.scoped(key.clone()), col, || {
                Node::Ind(Box::new(ind), None)
            })?,
        };
        if part == 0 {
            return Ok((ix, Ty::Num));
        }
        let key = self.scoped(key);
        let pick = self.add(format!("{key}.{part}"), col, || Node::Pick(ix, part))?;
        Ok((pick, Ty::Num))
    }

    /// The node of an indicator over expression `x` (keyed `key`, scoped to the timeframe).
    fn ind_node(&mut self, key: String, col: usize, ind: Ind, x: Ix) -> Result<Ix, Fault> {
        // Close-only indicators read nothing but the close: over `close` itself they take the
        // candle as it is.
        let input = Some(x).filter(|&x| !self.is_close(x));
        let key = self.scoped(key);
        self.add(key, col, || Node::Ind(Box::new(ind), input))
    }

    /// How a use is listed: as written, with the timeframe when inside `on(...)`.
    fn written(&self, name: &str, args: &[Arg]) -> String {
        let kind = if args.is_empty() && smc_part(name).is_some() {
            Kind::Name(name.to_string())
        } else {
            Kind::Call(name.to_string(), args.to_vec())
        };
        let e = Expr { kind, col: 0 };
        match self.within {
            Some(tf) => format!("{e} on {tf}"),
            None => e.to_string(),
        }
    }

    fn on(&mut self, tf: &Expr, body: &Expr, col: usize) -> Result<(Ix, Ty), Fault> {
        let Kind::Str(s) = &tf.kind else {
            return fault(
                tf.col,
                "the timeframe of on(...) is a string such as \"1h\"",
            );
        };
        if self.within.is_some() {
            return fault(col, "on(...) cannot be nested");
        }
        let interval: Interval = s
            .parse()
            .or_else(|e| fault(tf.col, format!("bad timeframe: {e}")))?;
        // One program per timeframe: this expression joins the earlier ones.
        let (on_ix, keys) = match self.tfs.remove(&interval) {
            Some((ix, keys)) => (Some(ix), keys),
            None => (None, HashMap::new()),
        };
        let prog = match on_ix.map(|ix| &mut self.prog.nodes[ix as usize]) {
            Some(Node::On(on)) => std::mem::take(&mut on.prog),
            _ => Program::default(),
        };
        let mut sub = Compiler {
            prog,
            keys,
            within: Some(interval),
            ..Compiler::default()
        };
        let compiled = sub.expr(body);
        let Compiler {
            prog, keys, uses, ..
        } = sub;
        let sub_len = prog.nodes.len();
        // The timeframe's program goes back in place before anything can fail.
        let on_ix = match on_ix {
            Some(ix) => {
                if let Node::On(on) = &mut self.prog.nodes[ix as usize] {
                    on.prog = prog;
                }
                ix
            }
            None => {
                compiled.as_ref().map_err(Fault::clone)?;
                self.add(format!("on({interval})"), col, || {
                    Node::On(Box::new(On::new(interval, prog)))
                })?
            }
        };
        self.tfs.insert(interval, (on_ix, keys));
        let (root, ty) = compiled?;
        if ty == Ty::Str {
            return fault(body.col, "on(...) needs a number or a condition");
        }
        if self.prog.nodes.len() + sub_len >= MAX_NODES && !self.shared {
            return fault(
                col,
                format!("the strategy is larger than {MAX_NODES} operations"),
            );
        }
        self.uses.extend(uses);
        let key = format!("on({interval},{body})");
        if let Some(&ix) = self.keys.get(&key) {
            return Ok((ix, ty));
        }
        let slot = self.prog.htf.len() as u32;
        self.prog.htf.push(f64::NAN);
        if let Node::On(on) = &mut self.prog.nodes[on_ix as usize] {
            on.roots.push((root, slot));
        }
        let ix = self.add(key, col, || Node::OnValue(on_ix, root, slot))?;
        Ok((ix, ty))
    }

    fn smc(
        &mut self,
        name: &str,
        part: usize,
        col: usize,
        args: &[Arg],
    ) -> Result<(Ix, Ty), Fault> {
        let family = smc_family(name);
        let mut named: Vec<(&str, f64, usize)> = Vec::new();
        for a in args {
            let Some(n) = a.name.as_deref() else {
                return fault(
                    a.value.col,
                    format!("{name} takes only named arguments, e.g. {name}(swing_length = 3)"),
                );
            };
            let Kind::Num(v) = a.value.kind else {
                return fault(a.value.col, format!("{n} must be a number literal"));
            };
            if named.iter().any(|(m, _, _)| *m == n) {
                return fault(a.value.col, format!("{n} given twice"));
            }
            named.push((n, v, a.value.col));
        }
        let get = |key: &str, default: f64| {
            named
                .iter()
                .find(|(n, _, _)| *n == key)
                .map_or(default, |(_, v, _)| *v)
        };
        let allowed: &[&str] = match family {
            Family::Structure => &["swing_length"],
            Family::OrderBlock => &["swing_length", "max_zones", "max_age"],
            Family::Fvg => &["max_zones", "max_age", "min_size_pct"],
            Family::Sweep => &["swing_length", "max_zones", "max_age", "eq_tolerance_pct"],
        };
        if let Some((n, _, c)) = named.iter().find(|(n, _, _)| !allowed.contains(n)) {
            return fault(
                *c,
                format!(
                    "{name} has no argument '{n}'; arguments: {}",
                    allowed.join(", ")
                ),
            );
        }
        let int = |key: &str, default: usize| -> Result<usize, Fault> {
            let v = get(key, default as f64);
            if v.fract() != 0.0 || !(0.0..=1e12).contains(&v) {
                let c = named
                    .iter()
                    .find(|(n, _, _)| *n == key)
                    .map_or(col, |x| x.2);
                return fault(c, format!("{key} must be a whole number, got {v}"));
            }
            Ok(v as usize)
        };
        let bad = |e: crate::strategy::params::ParamError| Fault {
            col: args.first().map_or(col, |a| a.value.col),
            message: format!("{name}: {e}"),
        };
        let ix = match family {
            Family::Structure => {
                let cfg = BosConfig {
                    swing_length: int("swing_length", 5)?,
                    ..BosConfig::default()
                };
                cfg.validate().map_err(bad)?;
                self.structure(cfg.swing_length, col)?
            }
            Family::OrderBlock => {
                let d = OrderBlockConfig::default();
                let cfg = OrderBlockConfig {
                    swing_length: int("swing_length", d.swing_length)?,
                    max_zones: int("max_zones", d.max_zones)?,
                    max_age: int("max_age", d.max_age)?,
                    ..d
                };
                cfg.validate().map_err(bad)?;
                self.order_blocks(&cfg, col)?
            }
            Family::Fvg => {
                let d = FvgConfig::default();
                let cfg = FvgConfig {
                    max_zones: int("max_zones", d.max_zones)?,
                    max_age: int("max_age", d.max_age)?,
                    fvg_min_size_pct: get("min_size_pct", d.fvg_min_size_pct),
                    ..d
                };
                cfg.validate().map_err(bad)?;
                self.fvgs(&cfg, col)?
            }
            Family::Sweep => {
                let d = SweepConfig::default();
                let cfg = SweepConfig {
                    swing_length: int("swing_length", d.swing_length)?,
                    max_zones: int("max_zones", d.max_zones)?,
                    max_age: int("max_age", d.max_age)?,
                    eq_tolerance_pct: get("eq_tolerance_pct", d.eq_tolerance_pct),
                    ..d
                };
                cfg.validate().map_err(bad)?;
                self.liquidity(&cfg, col)?
            }
        };
        self.uses.insert(self.written(name, args));
        let pick = self.add(format!("pick({ix},{part})"), col, || Node::Pick(ix, part))?;
        Ok((pick, Ty::Bool))
    }

    /// `key` inside `on(...)` is another node than outside.
    fn scoped(&self, key: String) -> String {
        match self.within {
            Some(tf) => format!("{tf}:{key}"),
            None => key,
        }
    }

    /// A detector node; `make` builds it over the swing tracker of `swing_length` when it reads
    /// one (one tracker per length, however many detectors read it).
    fn detector(
        &mut self,
        key: String,
        col: usize,
        (swing_length, lookback): (Option<usize>, usize),
        make: impl FnOnce() -> Det,
    ) -> Result<Ix, Fault> {
        let mut swings = None;
        if let Some(l) = swing_length {
            let key = self.scoped(format!("swings({l})"));
            let node = self.add(key, col, || Node::Swings(Box::new(Swings::new(l)), 0))?;
            if let Node::Swings(_, slot) = &self.prog.nodes[node as usize] {
                swings = Some(SwingRef { node, slot: *slot });
            }
        }
        let key = self.scoped(key);
        self.add(key, col, || Node::Smc(Box::new(make()), lookback, swings))
    }

    /// The structure (BOS/CHoCH) detector over swings of `l` bars.
    pub(crate) fn structure(&mut self, l: usize, col: usize) -> Result<Ix, Fault> {
        let make = || Det::Structure {
            state: StructureState::default(),
            last: None,
            seen: 0,
        };
        self.detector(format!("structure({l})"), col, (Some(l), 2 * l + 1), make)
    }

    /// The order-block detector.
    pub(crate) fn order_blocks(&mut self, cfg: &OrderBlockConfig, col: usize) -> Result<Ix, Fault> {
        let (l, z, a) = (cfg.swing_length, cfg.max_zones, cfg.max_age);
        let make = || Det::OrderBlocks {
            blocks: OrderBlocks::new(l, z, a),
            last: ZoneEvent::None,
        };
        self.detector(format!("ob({l},{z},{a})"), col, (Some(l), 2 * l + 2), make)
    }

    /// The fair-value-gap detector.
    pub(crate) fn fvgs(&mut self, cfg: &FvgConfig, col: usize) -> Result<Ix, Fault> {
        let (z, a, m) = (cfg.max_zones, cfg.max_age, cfg.fvg_min_size_pct);
        let make = || Det::Fvgs {
            gaps: Fvgs::new(m, z, a),
            last: ZoneEvent::None,
        };
        self.detector(format!("fvg({z},{a},{m:?})"), col, (None, 3), make)
    }

    /// The liquidity-sweep detector.
    pub(crate) fn liquidity(&mut self, cfg: &SweepConfig, col: usize) -> Result<Ix, Fault> {
        let (l, z, a, t) = (
            cfg.swing_length,
            cfg.max_zones,
            cfg.max_age,
            cfg.eq_tolerance_pct,
        );
        let make = || Det::Liquidity {
            liquidity: Liquidity::new(l, t, z, a),
            last: SweepEvent::None,
        };
        self.detector(
            format!("sweep({l},{z},{a},{t:?})"),
            col,
            (Some(l), 2 * l + 1),
            make,
        )
    }
}

#[derive(Clone, Copy)]
enum Family {
    Structure,
    OrderBlock,
    Fvg,
    Sweep,
}

fn smc_part(name: &str) -> Option<usize> {
    Some(match name {
        "bos_up" | "ob_retest_bull" | "fvg_retrace_bull" | "sweep_low" => 0,
        "bos_down" | "ob_retest_bear" | "fvg_retrace_bear" | "sweep_high" => 1,
        "choch_up" => 2,
        "choch_down" => 3,
        _ => return None,
    })
}

fn smc_family(name: &str) -> Family {
    match name {
        "ob_retest_bull" | "ob_retest_bear" => Family::OrderBlock,
        "fvg_retrace_bull" | "fvg_retrace_bear" => Family::Fvg,
        "sweep_low" | "sweep_high" => Family::Sweep,
        _ => Family::Structure,
    }
}

/// A whole-number literal in `lo..=hi` (periods, `k` of `x[k]`).
fn whole(e: &Expr, what: &str, lo: usize, hi: usize) -> Result<usize, Fault> {
    match e.kind {
        Kind::Num(v) if v.fract() == 0.0 && v >= lo as f64 && v <= hi as f64 => Ok(v as usize),
        _ => fault(
            e.col,
            format!("{what} must be a whole number in {lo}..={hi}, found `{e}`"),
        ),
    }
}

/// A number literal in `lo..=hi`.
fn constant(e: &Expr, what: &str, lo: f64, hi: f64) -> Result<f64, Fault> {
    match e.kind {
        Kind::Num(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => fault(
            e.col,
            format!("{what} must be a number in {lo}..={hi}, found `{e}`"),
        ),
    }
}

/// The lookback of every node (candles before its first value), children first. `base_ms` is
/// the stream's interval, needed to convert the lookback of `on(...)` to base candles; unknown,
/// one higher candle counts as one base candle.
pub(crate) fn lookbacks(prog: &Program, base_ms: Option<i64>) -> Vec<usize> {
    let mut lb: Vec<usize> = Vec::with_capacity(prog.nodes.len());
    for node in &prog.nodes {
        let of = |ix: &Ix| lb[*ix as usize];
        let v = match node {
            Node::Const(_) | Node::Field(_) => 0,
            // An indicator's lines may start at different bars (ADX after ±DI).
            Node::Pick(a, part) => match &prog.nodes[*a as usize] {
                Node::Ind(ind, input) => ind.lookback_of(*part) + input.as_ref().map_or(0, of),
                _ => of(a),
            },
            Node::Neg(a)
            | Node::Not(a)
            | Node::Abs(a)
            | Node::ArithK(_, a, _)
            | Node::KArith(_, _, a)
            | Node::CmpK(_, a, _) => of(a),
            Node::Arith(_, a, b)
            | Node::Cmp(_, a, b)
            | Node::And(a, b)
            | Node::Or(a, b)
            | Node::Min(a, b)
            | Node::Max(a, b)
            | Node::Band { mid: a, sd: b, .. } => of(a).max(of(b)),
            Node::Clamp(a, b, c) => of(a).max(of(b)).max(of(c)),
            Node::Ind(ind, input) => ind.lookback() + input.as_ref().map_or(0, of),
            Node::Hist(r) => of(&r.input) + r.k,
            Node::Cross { a, b, .. } => of(a).max(of(b)) + 1,
            Node::Smc(_, l, _) => *l,
            // The first swing is confirmed on candle `2L`.
            Node::Swings(s, _) => 2 * s.length(),
            #[cfg(test)]
            Node::Panic(a) => of(a),
            Node::On(_) => 0,
            Node::OnValue(on, root, _) => match &prog.nodes[*on as usize] {
                Node::On(on) => {
                    let sub = lookbacks(&on.prog, None);
                    let ratio = base_ms.map_or(1, |b| (on.tf.duration_ms() / b.max(1)).max(1));
                    (sub[*root as usize] + 1) * ratio as usize - 1
                }
                _ => 0,
            },
        };
        lb.push(v);
    }
    lb
}
