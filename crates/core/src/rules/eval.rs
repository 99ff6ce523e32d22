//! The compiled form: a [`Program`] is a flat list of streaming nodes in dependency order
//! (children before parents), so one candle is one pass over the list: O(size of the
//! expressions), no allocation, and a node used by several rules is stepped once.
//!
//! Every value is an `f64`; booleans are `1.0`/`0.0`, and `NaN` is "no value yet" (warming
//! up). Comparisons and `and`/`or`/`not` keep `NaN` where the answer is unknown, and a rule
//! whose value is not exactly `1.0` is false — so a condition still warming up is false.

use crate::indicator::{
    Atr, Bands, Dmi, ExpAvg, Extreme, Indicator, Macd, Mean, Rsi, Stddev, Stoch, TrueRangeAvg,
};
use crate::model::{Candle, Interval};
use crate::smc::Side;
use crate::smc::fvg::Fvgs;
use crate::smc::liquidity::{Liquidity, SweepEvent};
use crate::smc::order_block::OrderBlocks;
use crate::smc::structure::{Break, BreakKind, StructureState};
use crate::smc::swing::{Confirmed, Swings};
use crate::smc::zone::ZoneEvent;

use super::mtf::{Aggregator, NotAMultiple};

/// Index of a node in its program.
pub(crate) type Ix = u32;

/// A candle field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Open,
    High,
    Low,
    Close,
    Volume,
}

/// Arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// Comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    /// The same relation with the operands swapped: `k < x` is `x > k`.
    pub(crate) fn flip(self) -> Cmp {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
            other => other,
        }
    }

    /// `a op b`, unknown (NaN) when either side is.
    fn eval(self, a: f64, b: f64) -> f64 {
        if a.is_nan() || b.is_nan() {
            return f64::NAN;
        }
        truth(match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        })
    }
}

impl Arith {
    /// `a op b`; a division by zero has no value.
    fn eval(self, a: f64, b: f64) -> f64 {
        finite(match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
        })
    }
}

/// A streaming indicator's state.
// Boxed in `Node::Ind`, so the largest variant costs nothing elsewhere.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Ind {
    /// TA-Lib's `SMA`, transcribed (`indicator/mean.rs`).
    Sma(Mean),
    /// TA-Lib's `EMA`, transcribed (`indicator/exp_avg.rs`).
    Ema(ExpAvg),
    Rsi(Rsi),
    Stddev(Stddev),
    /// TA-Lib's `MAX`, transcribed (`indicator/extreme.rs`).
    Highest(Extreme<true>),
    /// TA-Lib's `MIN`, transcribed.
    Lowest(Extreme<false>),
    /// Outputs: macd, signal, hist.
    Macd(Macd),
    /// Outputs: %K, %D.
    Stoch(Stoch),
    /// `atr(1)`: the crate's stream.
    Atr(Atr),
    /// `atr(n)`, n ≥ 2: TA-Lib's `ATR`, transcribed (`indicator/true_range.rs`).
    AtrN(TrueRangeAvg),
    /// Outputs: ADX, +DI, −DI, each from its own lookback on (`adx(n)`, `plus_di(n)` and
    /// `minus_di(n)` share one state, which the three `ta-lib` streams did not).
    Dmi(Dmi),
}

impl Ind {
    /// Steps over `c` and returns output 0; a multi-output indicator leaves all its outputs in
    /// `outs[i]` (for the nodes picking the others), a single-output one writes nothing there.
    #[inline(always)]
    fn update(&mut self, c: &Candle, outs: &mut [[f64; OUTS]], i: usize) -> f64 {
        fn one(v: Option<f64>) -> f64 {
            v.unwrap_or(f64::NAN)
        }
        let mut many = |v: [f64; OUTS]| {
            outs[i] = v;
            v[0]
        };
        match self {
            Ind::Sma(x) => one(x.update(c)),
            Ind::Ema(x) => one(x.update(c)),
            Ind::Rsi(x) => one(x.update(c)),
            Ind::Stddev(x) => one(x.update(c)),
            Ind::Highest(x) => one(x.update(c)),
            Ind::Lowest(x) => one(x.update(c)),
            Ind::Atr(x) => one(x.update(c)),
            Ind::AtrN(x) => one(x.update(c)),
            Ind::Dmi(x) => many(match x.update_lines(c) {
                Some(v) => [v.adx, v.plus_di, v.minus_di, f64::NAN],
                None => [f64::NAN; OUTS],
            }),
            Ind::Macd(x) => many(match x.update(c) {
                Some(m) => [m.macd, m.signal, m.hist, f64::NAN],
                None => [f64::NAN; OUTS],
            }),
            Ind::Stoch(x) => many(match x.update(c) {
                Some(s) => [s.k, s.d, f64::NAN, f64::NAN],
                None => [f64::NAN; OUTS],
            }),
        }
    }

    fn reset(&mut self) {
        match self {
            Ind::Sma(i) => i.reset(),
            Ind::Ema(i) => i.reset(),
            Ind::Rsi(i) => i.reset(),
            Ind::Stddev(i) => i.reset(),
            Ind::Highest(i) => i.reset(),
            Ind::Lowest(i) => i.reset(),
            Ind::Macd(i) => i.reset(),
            Ind::Stoch(i) => i.reset(),
            Ind::Atr(i) => i.reset(),
            Ind::AtrN(i) => i.reset(),
            Ind::Dmi(i) => i.reset(),
        }
    }

    /// TA-Lib's lookback, in candles of the indicator's input.
    pub(crate) fn lookback(&self) -> usize {
        match self {
            Ind::Sma(i) => i.lookback(),
            Ind::Ema(i) => i.lookback(),
            Ind::Rsi(i) => i.lookback(),
            Ind::Stddev(i) => i.lookback(),
            Ind::Highest(i) => i.lookback(),
            Ind::Lowest(i) => i.lookback(),
            Ind::Macd(i) => i.lookback(),
            Ind::Stoch(i) => i.lookback(),
            Ind::Atr(i) => i.lookback(),
            Ind::AtrN(i) => i.lookback(),
            Ind::Dmi(i) => i.lookback(),
        }
    }

    /// The lookback of output `part` (that of the node itself for part 0).
    pub(crate) fn lookback_of(&self, part: usize) -> usize {
        match self {
            Ind::Dmi(i) if part > 0 => i.di_lookback(),
            _ => self.lookback(),
        }
    }
}

/// An SMC detector; its outputs are the predicates it answers, `1.0` on the candle of the event.
/// The detectors over swings read a [`Node::Swings`] (`swings`), so that every detector with
/// one `swing_length` shares one tracker; each keeps its last event for the built-in
/// strategies that read it from the engine's graph.
#[derive(Debug, Clone)]
pub(crate) enum Det {
    /// Outputs: bos_up, bos_down, choch_up, choch_down.
    Structure {
        state: StructureState,
        last: Option<Break>,
        /// Candles fed: the index of the next.
        seen: u64,
    },
    /// Outputs: ob_retest_bull, ob_retest_bear.
    OrderBlocks {
        blocks: OrderBlocks,
        last: ZoneEvent,
    },
    /// Outputs: fvg_retrace_bull, fvg_retrace_bear.
    Fvgs { gaps: Fvgs, last: ZoneEvent },
    /// Outputs: sweep_low, sweep_high.
    Liquidity {
        liquidity: Liquidity,
        last: SweepEvent,
    },
}

/// A [`Node::Swings`] a detector reads: the node, and its slot in [`Program::swung`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SwingRef {
    pub(crate) node: Ix,
    pub(crate) slot: u32,
}

impl Det {
    fn update(&mut self, c: &Candle, sw: Confirmed, out: &mut [f64; OUTS]) {
        *out = [0.0; OUTS];
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let zone = |e: &ZoneEvent, out: &mut [f64; OUTS]| {
            if let ZoneEvent::Retest(r) = e {
                out[0] = flag(r.zone.side == Side::Bull);
                out[1] = flag(r.zone.side == Side::Bear);
            }
        };
        match self {
            Det::Structure {
                state, last, seen, ..
            } => {
                *last = state.update(c, sw, *seen);
                *seen += 1;
                if let Some(b) = last {
                    let part = match (b.kind, b.side) {
                        (BreakKind::Bos, Side::Bull) => 0,
                        (BreakKind::Bos, Side::Bear) => 1,
                        (BreakKind::Choch, Side::Bull) => 2,
                        (BreakKind::Choch, Side::Bear) => 3,
                    };
                    out[part] = 1.0;
                }
            }
            Det::OrderBlocks { blocks, last, .. } => {
                *last = blocks.update_with(c, sw).event;
                zone(last, out);
            }
            Det::Fvgs { gaps, last } => {
                *last = gaps.update(c).event;
                zone(last, out);
            }
            Det::Liquidity {
                liquidity, last, ..
            } => {
                *last = liquidity.update_with(c, sw).event;
                if let SweepEvent::Sweep(s) = last {
                    out[0] = flag(s.side == Side::Bull);
                    out[1] = flag(s.side == Side::Bear);
                }
            }
        }
    }

    fn reset(&mut self) {
        match self {
            Det::Structure {
                state, last, seen, ..
            } => {
                state.reset();
                *last = None;
                *seen = 0;
            }
            Det::OrderBlocks { blocks, last, .. } => {
                blocks.reset();
                *last = ZoneEvent::None;
            }
            Det::Fvgs { gaps, last } => {
                gaps.reset();
                *last = ZoneEvent::None;
            }
            Det::Liquidity {
                liquidity, last, ..
            } => {
                liquidity.reset();
                *last = SweepEvent::None;
            }
        }
    }
}

/// `x[k]`: a ring of the last `k + 1` values of `x`.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    pub(crate) input: Ix,
    pub(crate) k: usize,
    buf: Vec<f64>,
    pos: usize,
}

impl Ring {
    pub(crate) fn new(input: Ix, k: usize) -> Self {
        Ring {
            input,
            k,
            buf: vec![f64::NAN; k + 1],
            pos: 0,
        }
    }
}

/// `on(tf, ...)`: one program over the higher-timeframe candles aggregated from the base ones,
/// holding every expression of the timeframe (one aggregator and one copy of each indicator
/// however many `on(tf, ...)` use them); after each higher candle it copies the value of each
/// expression in `roots` to its slot in [`Program::htf`], read by a [`Node::OnValue`].
#[derive(Debug, Clone)]
pub(crate) struct On {
    pub(crate) tf: Interval,
    pub(crate) prog: Program,
    pub(crate) agg: Aggregator,
    /// `(node in prog, slot)`.
    pub(crate) roots: Vec<(Ix, u32)>,
}

impl On {
    pub(crate) fn new(tf: Interval, prog: Program) -> Self {
        On {
            agg: Aggregator::new(tf),
            tf,
            prog,
            roots: Vec::new(),
        }
    }

    /// One base candle: most only extend the forming higher candle. Out of line: it is rare
    /// in a program, and inlined it cost the common nodes registers.
    #[inline(never)]
    fn step(&mut self, c: &Candle, htf: &mut [f64]) -> Result<(), NotAMultiple> {
        if self.agg.absorb(c) {
            return Ok(());
        }
        self.close(c, htf)
    }

    /// A base candle that may close higher candles: steps the program over those it closes.
    #[inline(never)]
    fn close(&mut self, c: &Candle, htf: &mut [f64]) -> Result<(), NotAMultiple> {
        for higher in self.agg.push(c)?.into_iter().flatten() {
            self.prog.step(&higher)?;
            for &(root, slot) in &self.roots {
                htf[slot as usize] = self.prog.value(root);
            }
        }
        Ok(())
    }
}

/// One node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(f64),
    Field(Field),
    Neg(Ix),
    Not(Ix),
    Abs(Ix),
    Arith(Arith, Ix, Ix),
    /// `a op k` with a literal `k`.
    ArithK(Arith, Ix, f64),
    /// `k op a` with a literal `k`.
    KArith(Arith, f64, Ix),
    Cmp(Cmp, Ix, Ix),
    /// `a op k` with a literal `k`.
    CmpK(Cmp, Ix, f64),
    And(Ix, Ix),
    Or(Ix, Ix),
    Min(Ix, Ix),
    Max(Ix, Ix),
    Clamp(Ix, Ix, Ix),
    /// An indicator over `input` (a sub-expression), or over the candle itself when `None`.
    Ind(Box<Ind>, Option<Ix>),
    /// Output `part` of a multi-output node.
    Pick(Ix, usize),
    /// A Bollinger band from its SMA and σ nodes: `mid + k·sd` (part 0), `mid` (1) or
    /// `mid − k·sd` (2) — TA-Lib's `BBANDS` to the bit, so the SMA and σ are shared.
    Band {
        mid: Ix,
        sd: Ix,
        k: f64,
        part: u8,
    },
    Hist(Box<Ring>),
    /// `crosses_above` (`true`) or `crosses_below` of `a - b`; `prev` is last candle's `a - b`.
    Cross {
        a: Ix,
        b: Ix,
        above: bool,
        prev: f64,
    },
    /// A detector, its lookback (the earliest candle an event can come on) and the swing
    /// tracker it reads, if any.
    Smc(Box<Det>, usize, Option<SwingRef>),
    /// A swing tracker and its slot in [`Program::swung`], where it leaves the swings it
    /// confirmed on the candle (typed, for the detectors reading it).
    Swings(Box<Swings>, u32),
    On(Box<On>),
    /// The value of expression `root` of the timeframe program in node `on`, from its `slot`.
    OnValue(Ix, Ix, u32),
    /// Panics when its input is above 100: for the engine's isolation tests.
    #[cfg(test)]
    Panic(Ix),
}

/// Outputs per node: the value, plus the other lines of multi-output indicators and detectors.
pub(crate) const OUTS: usize = 4;

/// A compiled set of expressions: the nodes in dependency order, each node's value on the last
/// candle, and the extra lines of multi-output nodes (kept apart so the common path writes one
/// `f64`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    pub(crate) nodes: Vec<Node>,
    pub(crate) vals: Vec<f64>,
    pub(crate) outs: Vec<[f64; OUTS]>,
    /// What each swing tracker confirmed on the last candle.
    pub(crate) swung: Vec<Confirmed>,
    /// The value of each `on(tf, expr)` as of its last closed higher candle.
    pub(crate) htf: Vec<f64>,
    /// The last stateful node stepping began on: where a panic happened (written only by the
    /// nodes that run foreign code, so the arithmetic stays one store per node).
    pub(crate) at: usize,
    /// How many nodes at the end stepping leaves out ([`Program::partition`]).
    pub(crate) lazy: usize,
    /// Step alternate nodes through two copies of the dispatch ([`Program::partition`] decides).
    pub(crate) paired: bool,
}

fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Maps infinities (a division by zero) to "no value".
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { f64::NAN }
}

/// `match $node` with the arms of the pure nodes ([`Node::is_pure`]): their value from the
/// candle `$c`, the values `$v` of the nodes they read and the outputs `$outs` and `$htf` — one
/// definition for stepping ([`Program::step_from`]) and for computing on demand
/// ([`Program::eval`]). A macro, not a function, so that stepping keeps one dispatch per node;
/// the arms after the others handle the rest.
macro_rules! pure_or {
    ($node:expr, $c:expr, $v:ident, $outs:expr, $htf:expr, $($rest:tt)*) => {
        match $node {
            Node::Const(x) => *x,
            Node::Field(f) => field($c, *f),
            Node::Neg(a) => -$v(*a),
            Node::Abs(a) => $v(*a).abs(),
            Node::Not(a) => not($v(*a)),
            Node::Arith(op, a, b) => op.eval($v(*a), $v(*b)),
            Node::ArithK(op, a, k) => op.eval($v(*a), *k),
            Node::KArith(op, k, a) => op.eval(*k, $v(*a)),
            Node::Cmp(op, a, b) => op.eval($v(*a), $v(*b)),
            Node::CmpK(op, a, k) => op.eval($v(*a), *k),
            Node::And(a, b) => and($v(*a), $v(*b)),
            Node::Or(a, b) => or($v(*a), $v(*b)),
            Node::Min(a, b) => nan_or($v(*a), $v(*b), f64::min),
            Node::Max(a, b) => nan_or($v(*a), $v(*b), f64::max),
            Node::Clamp(x, lo, hi) => clamp($v(*x), $v(*lo), $v(*hi)),
            Node::Pick(ix, part) => $outs[*ix as usize][*part],
            Node::Band { mid, sd, k, part } => band($v(*mid), $v(*sd), *k, *part),
            Node::OnValue(_, _, slot) => $htf[*slot as usize],
            $($rest)*
        }
    };
}

impl Program {
    /// Appends a node (its children must already be in).
    pub(crate) fn push(&mut self, mut node: Node) -> Ix {
        debug_assert_eq!(self.lazy, 0, "nodes are added before the partition");
        if let Node::Swings(_, slot) = &mut node {
            *slot = self.swung.len() as u32;
            self.swung.push(Confirmed::default());
        }
        self.nodes.push(node);
        self.vals.push(f64::NAN);
        self.outs.push([f64::NAN; OUTS]);
        (self.nodes.len() - 1) as Ix
    }

    /// The value of node `ix` (its place in `nodes`) on the last candle; for a node stepping
    /// leaves out, use [`Program::eval`].
    pub(crate) fn value(&self, ix: Ix) -> f64 {
        self.vals[ix as usize]
    }

    /// The value of node `ix` on the last candle `c`: computed now if stepping left it out
    /// ([`Program::partition`]), from the values of the nodes it reads, as stepping would have.
    pub(crate) fn eval(&self, ix: Ix, c: &Candle) -> f64 {
        let i = ix as usize;
        if i < self.nodes.len() - self.lazy {
            return self.vals[i];
        }
        let v = |ix: Ix| self.eval(ix, c);
        pure_or!(&self.nodes[i], c, v, self.outs, self.htf,
            // Only pure nodes are left out (`Node::is_pure`).
            _ => self.vals[i],
        )
    }

    /// Moves to the end, where stepping does not reach, the nodes that no root in `eager` needs:
    /// pure nodes (no state) read only by other such nodes — a `score` expression, wanted only
    /// on the candles with a signal, which [`Program::eval`] computes then. Children still come
    /// first. Returns where each node went (`new[old]`).
    pub(crate) fn partition(&mut self, eager: &[Ix]) -> Vec<Ix> {
        let n = self.nodes.len();
        let mut keep: Vec<bool> = self.nodes.iter().map(|x| !x.is_pure()).collect();
        for &r in eager {
            keep[r as usize] = true;
        }
        // Readers come after what they read: walking back, a node's readers are settled.
        for i in (0..n).rev() {
            if keep[i] {
                for c in self.nodes[i].children().into_iter().flatten() {
                    keep[c as usize] = true;
                }
            }
        }
        let order: Vec<usize> = (0..n)
            .filter(|&i| keep[i])
            .chain((0..n).filter(|&i| !keep[i]))
            .collect();
        let new = self.reorder(&order);
        self.lazy = keep.iter().filter(|&&k| !k).count();
        let stepped = &self.nodes[..n - self.lazy];
        let switches = stepped
            .windows(2)
            .filter(|w| w[0].kind() != w[1].kind())
            .count();
        // Many nodes of a different kind almost every time — a rule strategy's program, alone
        // or in an engine: one jump taking each kind in turn is mispredicted at nearly every
        // node; two copies of it, taking every other node, each see half as many targets, and
        // the processor predicts them better (`trend_pullback` about −20 % alone and in an
        // engine, docs/PERFORMANCE.md). A graph with long runs of one kind (many strategies,
        // scheduled) keeps the single loop, and so does one of a few costly nodes (the
        // built-ins' swing trackers and detectors), where the jump is not what costs.
        self.paired = stepped.len() >= 8 && switches * 4 >= (stepped.len() - 1) * 3;
        new
    }

    /// Reorders the nodes, children still before parents, so that nodes running the same code
    /// follow each other: stepping then jumps to the same branch as the node before far more
    /// often, which the processor predicts (a graph built strategy after strategy alternates
    /// kinds at almost every node). Greedy: among the nodes whose children are placed, take
    /// the next one of the current kind, else of the next kind up (wrapping round). Returns
    /// where each node went (`new[old]`).
    pub(crate) fn schedule(&mut self) -> Vec<Ix> {
        use std::collections::BTreeSet;
        let n = self.nodes.len();
        let mut waiting = vec![0usize; n];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.nodes.iter().enumerate() {
            let mut kids: Vec<usize> = node
                .children()
                .into_iter()
                .flatten()
                .map(|c| c as usize)
                .collect();
            kids.sort_unstable();
            kids.dedup();
            waiting[i] = kids.len();
            for c in kids {
                readers[c].push(i);
            }
        }
        let mut ready: BTreeSet<(u16, usize)> = (0..n)
            .filter(|&i| waiting[i] == 0)
            .map(|i| (self.nodes[i].kind(), i))
            .collect();
        let mut order = Vec::with_capacity(n);
        let mut kind = 0;
        while let Some(&next) = ready
            .range((kind, 0)..)
            .next()
            .or_else(|| ready.iter().next())
        {
            ready.remove(&next);
            let (k, i) = next;
            kind = k;
            order.push(i);
            for &r in &readers[i] {
                waiting[r] -= 1;
                if waiting[r] == 0 {
                    ready.insert((self.nodes[r].kind(), r));
                }
            }
        }
        debug_assert_eq!(order.len(), n, "a node reads itself");
        self.reorder(&order)
    }

    /// Puts node `order[p]` at `p`, renumbering what nodes read; returns `new[old]`.
    fn reorder(&mut self, order: &[usize]) -> Vec<Ix> {
        let n = self.nodes.len();
        // new[old] = where old goes.
        let mut new = vec![0 as Ix; n];
        for (p, &i) in order.iter().enumerate() {
            new[i] = p as Ix;
        }
        let mut nodes: Vec<Option<Node>> = std::mem::take(&mut self.nodes)
            .into_iter()
            .map(Some)
            .collect();
        self.nodes = order
            .iter()
            .map(|&i| {
                let mut node = nodes[i].take().expect("each node placed once");
                for c in node.children_mut().into_iter().flatten() {
                    *c = new[*c as usize];
                }
                node
            })
            .collect();
        self.vals = order.iter().map(|&i| self.vals[i]).collect();
        self.outs = order.iter().map(|&i| self.outs[i]).collect();
        new
    }

    /// Steps every node over one closed candle, children first; stops at the first error.
    pub(crate) fn step(&mut self, c: &Candle) -> Result<(), NotAMultiple> {
        self.step_from(c, 0).map_err(|(_, e)| e)
    }

    /// Steps nodes `start..` over one closed candle; on an error, returns the failing node's
    /// index with it, the nodes after it not stepped (the caller may go on from the next one).
    pub(crate) fn step_from(
        &mut self,
        c: &Candle,
        start: usize,
    ) -> Result<(), (usize, NotAMultiple)> {
        // Each loop in a function of its own, so that neither changes the other's code.
        if self.paired {
            self.step_nodes::<true>(c, start)
        } else {
            self.step_nodes::<false>(c, start)
        }
    }

    #[inline(never)]
    fn step_nodes<const PAIRED: bool>(
        &mut self,
        c: &Candle,
        start: usize,
    ) -> Result<(), (usize, NotAMultiple)> {
        let Program {
            nodes,
            vals,
            outs,
            swung,
            htf,
            at,
            lazy,
            ..
        } = self;
        let end = nodes.len() - *lazy;
        // One node's step; a macro so that the paired loop below has its own copy of the jump.
        macro_rules! step_node {
            ($node:expr, $i:expr) => {{
                let (node, i) = ($node, $i);
                let v = |ix: Ix| vals[ix as usize];
                let value = pure_or!(node, c, v, outs, htf,
                    Node::Ind(ind, input) => {
                        *at = i;
                        match input {
                            // Over the candle itself: read in place, not copied.
                            None => ind.update(c, outs, i),
                            Some(ix) => {
                                let x = v(*ix);
                                if x.is_nan() {
                                    // A series that has not started yet is not fed: the
                                    // indicator's warm-up begins with the input's first value, as
                                    // TA-Lib's batch call over a series with leading NaN.
                                    outs[i] = [f64::NAN; OUTS];
                                    f64::NAN
                                } else {
                                    let cd = Candle {
                                        open: x,
                                        high: x,
                                        low: x,
                                        close: x,
                                        ..*c
                                    };
                                    ind.update(&cd, outs, i)
                                }
                            }
                        }
                    }
                    Node::Hist(r) => {
                        let x = v(r.input);
                        r.buf[r.pos] = x;
                        r.pos += 1;
                        if r.pos == r.buf.len() {
                            r.pos = 0;
                        }
                        r.buf[r.pos]
                    }
                    Node::Cross { a, b, above, prev } => {
                        let d = v(*a) - v(*b);
                        let p = *prev;
                        *prev = d;
                        if d.is_nan() {
                            f64::NAN
                        } else if *above {
                            truth(p <= 0.0 && d > 0.0)
                        } else {
                            truth(p >= 0.0 && d < 0.0)
                        }
                    }
                    Node::Smc(det, _, swings) => {
                        *at = i;
                        let sw = swings.map_or_else(Confirmed::default, |r| swung[r.slot as usize]);
                        det.update(c, sw, &mut outs[i]);
                        outs[i][0]
                    }
                    Node::Swings(s, slot) => {
                        *at = i;
                        swung[*slot as usize] = s.update(c);
                        0.0
                    }
                    Node::On(on) => {
                        *at = i;
                        on.step(c, htf).map_err(|e| (i, e))?;
                        0.0
                    }
                    #[cfg(test)]
                    Node::Panic(a) => {
                        *at = i;
                        assert!(v(*a) <= 100.0, "boom at {}", v(*a));
                        0.0
                    }
                );
                vals[i] = value;
            }};
        }
        let mut i = start;
        let mut todo = nodes[start..end].iter_mut();
        if PAIRED {
            while let Some(node) = todo.next() {
                step_node!(node, i);
                let Some(node) = todo.next() else { break };
                step_node!(node, i + 1);
                i += 2;
            }
        } else {
            for node in todo {
                step_node!(node, i);
                i += 1;
            }
        }
        Ok(())
    }

    /// Forgets all history.
    pub(crate) fn reset(&mut self) {
        self.vals.fill(f64::NAN);
        self.outs.fill([f64::NAN; OUTS]);
        self.swung.fill(Confirmed::default());
        self.htf.fill(f64::NAN);
        for i in 0..self.nodes.len() {
            self.reset_node(i);
        }
    }

    /// Forgets the history of node `i` alone (its value is left to the caller).
    pub(crate) fn reset_node(&mut self, i: usize) {
        match &mut self.nodes[i] {
            Node::Ind(ind, _) => ind.reset(),
            Node::Smc(d, ..) => d.reset(),
            Node::Swings(s, _) => s.reset(),
            Node::Hist(r) => {
                r.buf.fill(f64::NAN);
                r.pos = 0;
            }
            Node::Cross { prev, .. } => *prev = f64::NAN,
            Node::On(on) => {
                on.prog.reset();
                on.agg.reset();
                for &(_, slot) in &on.roots {
                    self.htf[slot as usize] = f64::NAN;
                }
            }
            _ => {}
        }
    }
}

/// The child slots of a node, borrowed as the node is (`children_of!(node)` or
/// `children_of!(node, mut)`): one list for reading and renumbering.
macro_rules! children_of {
    ($node:expr $(, $m:tt)?) => {
        match $node {
            Node::Const(_) | Node::Field(_) | Node::Swings(..) | Node::On(_) => [None, None, None],
            Node::Smc(_, _, Some(SwingRef { node, .. })) => [Some(node), None, None],
            Node::Smc(_, _, None) => [None, None, None],
            Node::Neg(a)
            | Node::Not(a)
            | Node::Abs(a)
            | Node::Pick(a, _)
            | Node::ArithK(_, a, _)
            | Node::KArith(_, _, a)
            | Node::CmpK(_, a, _) => [Some(a), None, None],
            Node::Arith(_, a, b)
            | Node::Cmp(_, a, b)
            | Node::And(a, b)
            | Node::Or(a, b)
            | Node::Min(a, b)
            | Node::Max(a, b)
            | Node::Cross { a, b, .. } => [Some(a), Some(b), None],
            Node::Band { mid, sd, .. } => [Some(mid), Some(sd), None],
            Node::Clamp(a, b, c) => [Some(a), Some(b), Some(c)],
            Node::Ind(_, Some(input)) => [Some(input), None, None],
            Node::Ind(_, None) => [None, None, None],
            Node::Hist(r) => [Some(&$($m)? r.input), None, None],
            // `root` is a node of the timeframe's own program.
            Node::OnValue(on, ..) => [Some(on), None, None],
            #[cfg(test)]
            Node::Panic(a) => [Some(a), None, None],
        }
    };
}

impl Node {
    /// The nodes this one reads (at most three).
    pub(crate) fn children(&self) -> [Option<Ix>; 3] {
        children_of!(self).map(|c| c.copied())
    }

    /// The nodes this one reads, to be renumbered.
    fn children_mut(&mut self) -> [Option<&mut Ix>; 3] {
        children_of!(self, mut)
    }

    /// No state: its value is a function of the candle and of the values of the nodes it reads
    /// on that candle, so it can be computed when wanted ([`Program::eval`]).
    pub(crate) fn is_pure(&self) -> bool {
        match self {
            Node::Const(_)
            | Node::Field(_)
            | Node::Neg(_)
            | Node::Not(_)
            | Node::Abs(_)
            | Node::Arith(..)
            | Node::ArithK(..)
            | Node::KArith(..)
            | Node::Cmp(..)
            | Node::CmpK(..)
            | Node::And(..)
            | Node::Or(..)
            | Node::Min(..)
            | Node::Max(..)
            | Node::Clamp(..)
            | Node::Pick(..)
            | Node::Band { .. }
            | Node::OnValue(..) => true,
            Node::Ind(..)
            | Node::Hist(_)
            | Node::Cross { .. }
            | Node::Smc(..)
            | Node::Swings(..)
            | Node::On(_) => false,
            #[cfg(test)]
            Node::Panic(_) => false,
        }
    }

    /// Which code stepping this node runs (the branch taken, and the one under it for
    /// indicators, operators and detectors), for [`Program::schedule`].
    pub(crate) fn kind(&self) -> u16 {
        let arith = |op: &Arith| *op as u16;
        let cmp = |op: &Cmp| *op as u16;
        match self {
            Node::Const(_) => 0,
            Node::Field(f) => 1 + *f as u16,
            Node::Swings(..) => 10,
            Node::On(_) => 11,
            Node::OnValue(..) => 12,
            Node::Smc(d, ..) => {
                20 + match **d {
                    Det::Structure { .. } => 0,
                    Det::OrderBlocks { .. } => 1,
                    Det::Fvgs { .. } => 2,
                    Det::Liquidity { .. } => 3,
                }
            }
            Node::Ind(ind, input) => {
                let k = match **ind {
                    Ind::Sma(_) => 0,
                    Ind::Ema(_) => 1,
                    Ind::Rsi(_) => 2,
                    Ind::Stddev(_) => 3,
                    Ind::Highest(_) => 4,
                    Ind::Lowest(_) => 5,
                    Ind::Macd(_) => 6,
                    Ind::Stoch(_) => 7,
                    Ind::Atr(_) => 8,
                    Ind::AtrN(_) => 9,
                    Ind::Dmi(_) => 10,
                };
                30 + 2 * k + u16::from(input.is_some())
            }
            Node::Pick(_, part) => 60 + *part as u16,
            Node::Band { part, .. } => 70 + u16::from(*part),
            Node::Hist(_) => 80,
            Node::Neg(_) => 90,
            Node::Abs(_) => 91,
            Node::Arith(op, ..) => 100 + arith(op),
            Node::ArithK(op, ..) => 110 + arith(op),
            Node::KArith(op, ..) => 120 + arith(op),
            Node::Min(..) => 130,
            Node::Max(..) => 131,
            Node::Clamp(..) => 132,
            Node::Cross { above, .. } => 140 + u16::from(*above),
            Node::Cmp(op, ..) => 150 + cmp(op),
            Node::CmpK(op, ..) => 160 + cmp(op),
            Node::Not(_) => 170,
            Node::And(..) => 171,
            Node::Or(..) => 172,
            // Early, right after the candle's fields: the isolation tests need nodes after it.
            #[cfg(test)]
            Node::Panic(_) => 9,
        }
    }
}

#[inline(always)]
fn field(c: &Candle, f: Field) -> f64 {
    match f {
        Field::Open => c.open,
        Field::High => c.high,
        Field::Low => c.low,
        Field::Close => c.close,
        Field::Volume => c.volume,
    }
}

#[inline(always)]
fn not(a: f64) -> f64 {
    if a.is_nan() { a } else { truth(a != 1.0) }
}

/// False when either side is, unknown when either side is and neither is false.
#[inline(always)]
fn and(a: f64, b: f64) -> f64 {
    decided_by(a, b, 0.0)
}

/// True when either side is, unknown when either side is and neither is true.
#[inline(always)]
fn or(a: f64, b: f64) -> f64 {
    decided_by(a, b, 1.0)
}

/// `and` (`wins` = false) and `or` (`wins` = true): `wins` when either side has it, unknown when
/// either side is, else the other truth value.
#[inline(always)]
fn decided_by(a: f64, b: f64, wins: f64) -> f64 {
    if a == wins || b == wins {
        wins
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        1.0 - wins
    }
}

#[inline(always)]
fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() || lo.is_nan() || hi.is_nan() || lo > hi {
        f64::NAN
    } else {
        x.clamp(lo, hi)
    }
}

#[inline(always)]
fn band(m: f64, s: f64, k: f64, part: u8) -> f64 {
    if m.is_nan() || s.is_nan() {
        f64::NAN
    } else {
        let b = Bands::of(m, s, k);
        match part {
            0 => b.upper,
            1 => b.middle,
            _ => b.lower,
        }
    }
}

fn nan_or(a: f64, b: f64, f: fn(f64, f64) -> f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        f(a, b)
    }
}
