//! The five Smart-Money-Concepts strategies over the detectors in [`crate::smc`].
//!
//! - `smc_bos` ([`SmcBos`]): BUY on a bullish Break of Structure, SELL on a bearish one.
//! - `smc_choch` ([`SmcChoch`]): BUY on a bullish Change of Character, SELL on a bearish one.
//! - `smc_order_block` ([`SmcOrderBlock`]): BUY on a retest of a live bullish order block,
//!   SELL on a retest of a bearish one.
//! - `smc_fvg` ([`SmcFvg`]): BUY on a retrace into an unfilled bullish fair value gap, SELL
//!   into a bearish one.
//! - `smc_liquidity_sweep` ([`SmcLiquiditySweep`]): BUY after a sweep of lows, SELL after a
//!   sweep of highs.
//!
//! Each detector signals an event on one candle; the strategy's view lasts `hold` candles from
//! it unless the close goes back through the broken level or zone first (see [`Hold`]). Each has
//! its own config type with only the fields its detector reads. Exact definitions and the score
//! formulas are in `docs/STRATEGIES.md`.

use serde::{Deserialize, Serialize};

use super::hold::{Hold, Signal};
use super::params::{self, Params};
use super::{Decision, Reason, Strategy, StrategyError};
use crate::graph::{Graph, GraphBuilder};
use crate::model::Candle;
use crate::rules::eval::{Det, Ix};
use crate::smc::Side;
use crate::smc::fvg::Fvgs;
use crate::smc::liquidity::{Liquidity, Sweep, SweepEvent};
use crate::smc::order_block::OrderBlocks;
use crate::smc::structure::{Break, BreakKind, Structure};
use crate::smc::zone::{Retest, ZoneEvent};

/// Break of Structure.
pub const BOS_ID: &str = "smc_bos";
/// Change of Character.
pub const CHOCH_ID: &str = "smc_choch";
/// Order Block retest.
pub const ORDER_BLOCK_ID: &str = "smc_order_block";
/// Fair Value Gap retrace.
pub const FVG_ID: &str = "smc_fvg";
/// Liquidity Sweep.
pub const LIQUIDITY_SWEEP_ID: &str = "smc_liquidity_sweep";

/// Largest `swing_length` accepted (a swing then needs 2001 candles to confirm).
pub const MAX_SWING_LENGTH: usize = 1_000;
/// Most live zones or pools per side.
pub const MAX_ZONES: usize = 1_000;
/// Longest zone or pool lifetime, in candles.
pub const MAX_AGE: usize = 1_000_000;

/// Default `hold` of every SMC strategy (reason in `docs/STRATEGIES.md`).
pub const HOLD: usize = 12;

fn swing_length(v: usize) -> Result<(), params::ParamError> {
    params::int_in("swing_length", v, 1, MAX_SWING_LENGTH)
}

fn zones(max_zones: usize, max_age: usize) -> Result<(), params::ParamError> {
    params::int_in("max_zones", max_zones, 1, MAX_ZONES)?;
    params::int_in("max_age", max_age, 0, MAX_AGE)
}

macro_rules! smc_config {
    (
        $(#[$doc:meta])* $name:ident for $strategy:ident ($id:ident) {
            $($(#[$fdoc:meta])* $field:ident: $ty:ty = $default:expr,)*
        }
        validate($cfg:ident) $validate:block
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Candles a view lasts after its event, unless invalidated sooner.
            pub hold: usize,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    hold: HOLD,
                    $($field: $default,)*
                }
            }
        }

        impl Params for $name {
            const ID: &'static str = $id;
            type Strategy = $strategy;
            fn validate(&self) -> Result<(), params::ParamError> {
                params::hold(self.hold)?;
                let $cfg = self;
                $validate
            }
            fn build(self) -> $strategy {
                $strategy::new(self)
            }
        }
    };
}

smc_config! {
    /// Parameters of `smc_bos`.
    BosConfig for SmcBos (BOS_ID) {
        /// Candles on each side of a swing point; confirmed only after the right side closed.
        swing_length: usize = 5,
    }
    validate(c) { swing_length(c.swing_length) }
}

smc_config! {
    /// Parameters of `smc_choch`.
    ChochConfig for SmcChoch (CHOCH_ID) {
        /// Candles on each side of a swing point; confirmed only after the right side closed.
        swing_length: usize = 5,
    }
    validate(c) { swing_length(c.swing_length) }
}

smc_config! {
    /// Parameters of `smc_order_block`.
    OrderBlockConfig for SmcOrderBlock (ORDER_BLOCK_ID) {
        /// Candles on each side of a swing point.
        swing_length: usize = 5,
        /// Live blocks kept per side; the oldest is dropped.
        max_zones: usize = 5,
        /// Candles a block stays live after its birth; `0` = until mitigated or pushed out.
        max_age: usize = 300,
    }
    validate(c) {
        swing_length(c.swing_length)?;
        zones(c.max_zones, c.max_age)
    }
}

smc_config! {
    /// Parameters of `smc_fvg`.
    FvgConfig for SmcFvg (FVG_ID) {
        /// Live gaps kept per side; the oldest is dropped.
        max_zones: usize = 5,
        /// Candles a gap stays live after its birth; `0` = until filled or pushed out.
        max_age: usize = 300,
        /// Smallest gap kept, in percent of the close.
        fvg_min_size_pct: f64 = 0.0,
    }
    validate(c) {
        zones(c.max_zones, c.max_age)?;
        params::num_in("fvg_min_size_pct", c.fvg_min_size_pct, 0.0, 100.0)
    }
}

smc_config! {
    /// Parameters of `smc_liquidity_sweep`.
    SweepConfig for SmcLiquiditySweep (LIQUIDITY_SWEEP_ID) {
        /// Candles on each side of a swing point.
        swing_length: usize = 5,
        /// Liquidity pools kept per side; the oldest is dropped.
        max_zones: usize = 5,
        /// Candles a pool stays live after its latest touch; `0` = until swept or pushed out.
        max_age: usize = 300,
        /// Swing highs (lows) within this percentage of each other form one pool.
        eq_tolerance_pct: f64 = 0.05,
    }
    validate(c) {
        swing_length(c.swing_length)?;
        zones(c.max_zones, c.max_age)?;
        params::num_in("eq_tolerance_pct", c.eq_tolerance_pct, 0.0, 100.0)
    }
}

/// `0.5` plus half of how far beyond `level` the close got, as a share of the candle's range.
fn break_score(b: &Break, c: &Candle) -> f64 {
    let range = c.high - c.low;
    let past = b.side.sign() * (c.close - b.level);
    let share = if range > 0.0 {
        (past / range).clamp(0.0, 1.0)
    } else {
        1.0
    };
    b.side.sign() * (0.5 + 0.5 * share)
}

fn break_decision(b: &Break, c: &Candle) -> Decision {
    let reason = match (b.kind, b.side) {
        (BreakKind::Bos, Side::Bull) => {
            Reason::new("BOS up: close", c.close, "> swing high", b.level)
        }
        (BreakKind::Bos, Side::Bear) => {
            Reason::new("BOS down: close", c.close, "< swing low", b.level)
        }
        (BreakKind::Choch, Side::Bull) => {
            Reason::new("CHoCH up: close", c.close, "> swing high", b.level)
        }
        (BreakKind::Choch, Side::Bear) => {
            Reason::new("CHoCH down: close", c.close, "< swing low", b.level)
        }
    };
    Decision::new(b.side.action(), break_score(b, c), reason)
}

fn structure_hold(trend: Option<Side>) -> Decision {
    Decision::hold(Reason::text(match trend {
        Some(Side::Bull) => "structure up, no break",
        Some(Side::Bear) => "structure down, no break",
        None => "no structure yet",
    }))
}

/// Warm-up HOLD until `seen` candles can have produced an event, otherwise the view.
fn gate(seen: u64, warmup: usize, d: Decision) -> Decision {
    if seen < warmup as u64 && d.action == crate::model::Action::Hold {
        Decision::WARMING_UP
    } else {
        d
    }
}

/// A break needs a confirmed swing (candle `2L`) and a later close: `2L + 2` candles.
fn break_warmup(swing_length: usize) -> usize {
    2 * swing_length.max(1) + 2
}

/// A BOS or CHoCH strategy over one structure tracker: its own, or the engine graph's node
/// `shared` (read by BOS, CHoCH and the rule predicates of its `swing_length` alike).
#[derive(Debug, Clone)]
struct Breaks {
    structure: Structure,
    kind: BreakKind,
    hold: Hold,
    shared: Option<Ix>,
    /// Candles decided on while shared.
    seen: u64,
}

impl Breaks {
    fn on_candle(&mut self, c: &Candle) -> Decision {
        let brk = self.structure.update(c).brk;
        self.respond(c, brk, self.structure.trend(), self.structure.seen())
    }

    fn respond(
        &mut self,
        c: &Candle,
        brk: Option<Break>,
        trend: Option<Side>,
        seen: u64,
    ) -> Decision {
        // The view ends when the close goes back through the broken level.
        let signal = match brk {
            Some(b) if b.kind == self.kind => {
                Some(Signal::until_close_beyond(break_decision(&b, c), b.level))
            }
            _ => None,
        };
        let d = self.hold.step(c, signal, structure_hold(trend));
        gate(seen, self.warmup(), d)
    }

    fn share(&mut self, g: &mut GraphBuilder) -> bool {
        if self.shared.is_some() || self.structure.seen() > 0 {
            return false;
        }
        self.shared = g.c.structure(self.structure.swing_length(), 0).ok();
        self.shared.is_some()
    }

    fn placed(&mut self, g: &Graph) {
        self.shared = self.shared.map(|ix| g.place(ix));
    }

    fn decide(&mut self, id: &str, c: &Candle, g: &Graph) -> Result<Decision, StrategyError> {
        let Some(ix) = self.shared else {
            return Ok(self.on_candle(c));
        };
        match g.det(ix) {
            Ok(Det::Structure { state, last, .. }) => {
                self.seen += 1;
                Ok(self.respond(c, *last, state.trend(), self.seen))
            }
            Ok(_) => Err(StrategyError(format!("{id}: not a structure node"))),
            Err(f) => Err(StrategyError(format!("{id}: {f}"))),
        }
    }

    /// A CHoCH needs a break to set the structure first: one candle more than a BOS.
    fn warmup(&self) -> usize {
        break_warmup(self.structure.swing_length()) + usize::from(self.kind == BreakKind::Choch)
    }
}

macro_rules! break_strategy {
    ($(#[$doc:meta])* $name:ident, $cfg:ident, $id:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(Breaks);

        impl $name {
            /// A new strategy with these parameters.
            pub fn new(cfg: $cfg) -> Self {
                $name(Breaks {
                    structure: Structure::new(cfg.swing_length),
                    kind: $kind,
                    hold: Hold::new(cfg.hold),
                    shared: None,
                    seen: 0,
                })
            }
        }

        impl Strategy for $name {
            fn id(&self) -> &'static str {
                $id
            }
            fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
                if self.0.shared.is_some() {
                    return Err(shared_error($id));
                }
                Ok(self.0.on_candle(c))
            }
            fn reset(&mut self) {
                self.0.structure.reset();
                self.0.hold.reset();
                self.0.seen = 0;
            }
            fn warmup(&self) -> usize {
                self.0.warmup()
            }
            fn clone_box(&self) -> Box<dyn Strategy> {
                Box::new(self.clone())
            }
            fn share(&mut self, g: &mut GraphBuilder) -> bool {
                self.0.share(g)
            }
            fn placed(&mut self, g: &Graph) {
                self.0.placed(g)
            }
            fn decide(&mut self, c: &Candle, g: &Graph) -> Result<Decision, StrategyError> {
                self.0.decide($id, c, g)
            }
        }
    };
}

/// `on_candle` on a strategy whose detector lives in an engine's graph.
fn shared_error(id: &str) -> StrategyError {
    StrategyError(format!(
        "{id}: its detector is in an engine's graph; the engine steps it"
    ))
}

/// The shared detector `ix` once the graph stepped it, or the failure.
fn shared_det<'g>(id: &str, g: &'g Graph, ix: Ix) -> Result<&'g Det, StrategyError> {
    g.det(ix).map_err(|f| StrategyError(format!("{id}: {f}")))
}

fn wrong_node(id: &str) -> StrategyError {
    StrategyError(format!("{id}: its graph node is not its detector"))
}

break_strategy!(
    /// Break of Structure: a close beyond the last confirmed swing in the direction of the
    /// current structure (or the very first break).
    SmcBos,
    BosConfig,
    BOS_ID,
    BreakKind::Bos
);
break_strategy!(
    /// Change of Character: the first close beyond the last confirmed swing against the current
    /// structure.
    SmcChoch,
    ChochConfig,
    CHOCH_ID,
    BreakKind::Choch
);

/// `0.5` plus half the retest's depth into the zone (a deeper entry is closer to the invalidation
/// level, so the same target pays more per unit of risk). The view ends when a close goes
/// through the far side of the zone (the zone failed).
fn zone_signal(r: &Retest, c: &Candle, bull: &'static str, bear: &'static str) -> Signal {
    let score = r.zone.side.sign() * (0.5 + 0.5 * r.depth);
    let (reason, level) = match r.zone.side {
        Side::Bull => (
            Reason::new(bull, c.low, "<= top", r.zone.top),
            r.zone.bottom,
        ),
        Side::Bear => (
            Reason::new(bear, c.high, ">= bottom", r.zone.bottom),
            r.zone.top,
        ),
    };
    Signal::until_close_beyond(Decision::new(r.zone.side.action(), score, reason), level)
}

/// Order Block retest: price returns into a live block left by a structure break.
#[derive(Debug, Clone)]
pub struct SmcOrderBlock {
    blocks: OrderBlocks,
    cfg: OrderBlockConfig,
    hold: Hold,
    /// The engine graph's detector it reads instead of `blocks`, and the candles since.
    shared: Option<Ix>,
    seen: u64,
}

impl SmcOrderBlock {
    /// A new strategy with these parameters.
    pub fn new(cfg: OrderBlockConfig) -> Self {
        SmcOrderBlock {
            blocks: OrderBlocks::new(cfg.swing_length, cfg.max_zones, cfg.max_age),
            hold: Hold::new(cfg.hold),
            cfg,
            shared: None,
            seen: 0,
        }
    }

    fn respond(&mut self, c: &Candle, event: ZoneEvent, seen: u64) -> Decision {
        let (signal, idle) = match event {
            ZoneEvent::Retest(r) => (
                Some(zone_signal(
                    &r,
                    c,
                    "bullish order block retest: low",
                    "bearish order block retest: high",
                )),
                Decision::WARMING_UP,
            ),
            ZoneEvent::Conflict => {
                // Retests both ways on one candle: no side can be taken, nor kept.
                self.hold.end();
                (
                    None,
                    Decision::hold(Reason::text("order blocks retested both ways")),
                )
            }
            ZoneEvent::None => (None, Decision::hold(Reason::text("no order block retest"))),
        };
        let d = self.hold.step(c, signal, idle);
        gate(seen, self.warmup(), d)
    }
}

impl Strategy for SmcOrderBlock {
    fn id(&self) -> &'static str {
        ORDER_BLOCK_ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        if self.shared.is_some() {
            return Err(shared_error(ORDER_BLOCK_ID));
        }
        let event = self.blocks.update(c).event;
        Ok(self.respond(c, event, self.blocks.seen()))
    }
    fn reset(&mut self) {
        self.blocks.reset();
        self.hold.reset();
        self.seen = 0;
    }
    fn warmup(&self) -> usize {
        // The earliest block is born with the earliest break; a retest needs one more candle.
        break_warmup(self.cfg.swing_length) + 1
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
    fn share(&mut self, g: &mut GraphBuilder) -> bool {
        if self.shared.is_some() || self.blocks.seen() > 0 {
            return false;
        }
        self.shared = g.c.order_blocks(&self.cfg, 0).ok();
        self.shared.is_some()
    }
    fn placed(&mut self, g: &Graph) {
        self.shared = self.shared.map(|ix| g.place(ix));
    }

    fn decide(&mut self, c: &Candle, g: &Graph) -> Result<Decision, StrategyError> {
        let Some(ix) = self.shared else {
            return self.on_candle(c);
        };
        let Det::OrderBlocks { last, .. } = shared_det(ORDER_BLOCK_ID, g, ix)? else {
            return Err(wrong_node(ORDER_BLOCK_ID));
        };
        self.seen += 1;
        Ok(self.respond(c, *last, self.seen))
    }
}

/// Fair Value Gap retrace: price returns into an unfilled three-candle imbalance.
#[derive(Debug, Clone)]
pub struct SmcFvg {
    gaps: Fvgs,
    cfg: FvgConfig,
    hold: Hold,
    /// The engine graph's detector it reads instead of `gaps`, and the candles since.
    shared: Option<Ix>,
    seen: u64,
}

impl SmcFvg {
    /// A new strategy with these parameters.
    pub fn new(cfg: FvgConfig) -> Self {
        SmcFvg {
            gaps: Fvgs::new(cfg.fvg_min_size_pct, cfg.max_zones, cfg.max_age),
            hold: Hold::new(cfg.hold),
            cfg,
            shared: None,
            seen: 0,
        }
    }

    fn respond(&mut self, c: &Candle, event: ZoneEvent, seen: u64) -> Decision {
        let (signal, idle) = match event {
            ZoneEvent::Retest(r) => (
                Some(zone_signal(
                    &r,
                    c,
                    "bullish FVG retrace: low",
                    "bearish FVG retrace: high",
                )),
                Decision::WARMING_UP,
            ),
            ZoneEvent::Conflict => {
                self.hold.end();
                (
                    None,
                    Decision::hold(Reason::text("gaps retraced both ways")),
                )
            }
            ZoneEvent::None => (None, Decision::hold(Reason::text("no gap retrace"))),
        };
        let d = self.hold.step(c, signal, idle);
        gate(seen, self.warmup(), d)
    }
}

impl Strategy for SmcFvg {
    fn id(&self) -> &'static str {
        FVG_ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        if self.shared.is_some() {
            return Err(shared_error(FVG_ID));
        }
        let event = self.gaps.update(c).event;
        Ok(self.respond(c, event, self.gaps.seen()))
    }
    fn reset(&mut self) {
        self.gaps.reset();
        self.hold.reset();
        self.seen = 0;
    }
    fn warmup(&self) -> usize {
        // Three candles make a gap, the fourth can retrace into it.
        4
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
    fn share(&mut self, g: &mut GraphBuilder) -> bool {
        if self.shared.is_some() || self.gaps.seen() > 0 {
            return false;
        }
        self.shared = g.c.fvgs(&self.cfg, 0).ok();
        self.shared.is_some()
    }
    fn placed(&mut self, g: &Graph) {
        self.shared = self.shared.map(|ix| g.place(ix));
    }

    fn decide(&mut self, c: &Candle, g: &Graph) -> Result<Decision, StrategyError> {
        let Some(ix) = self.shared else {
            return self.on_candle(c);
        };
        let Det::Fvgs { last, .. } = shared_det(FVG_ID, g, ix)? else {
            return Err(wrong_node(FVG_ID));
        };
        self.seen += 1;
        Ok(self.respond(c, *last, self.seen))
    }
}

/// `0.5` for one swing, `+0.25` per extra equal high/low swept with it, at most `1`. The view
/// ends when a close goes beyond the sweep's wick (the sweep became a breakout).
fn sweep_signal(s: &Sweep) -> Signal {
    let score = s.side.sign() * (0.5 + 0.25 * f64::from(s.touches.saturating_sub(1))).min(1.0);
    let equal = s.touches > 1;
    let reason = match s.side {
        Side::Bull if equal => Reason::new("sweep of lows: low", s.wick, "< equal lows", s.level),
        Side::Bull => Reason::new("sweep of lows: low", s.wick, "< swing low", s.level),
        Side::Bear if equal => {
            Reason::new("sweep of highs: high", s.wick, "> equal highs", s.level)
        }
        Side::Bear => Reason::new("sweep of highs: high", s.wick, "> swing high", s.level),
    };
    Signal::until_close_beyond(Decision::new(s.side.action(), score, reason), s.wick)
}

/// Liquidity Sweep: a wick through a swing (or equal highs/lows) that closes back inside.
#[derive(Debug, Clone)]
pub struct SmcLiquiditySweep {
    liquidity: Liquidity,
    cfg: SweepConfig,
    hold: Hold,
    /// The engine graph's detector it reads instead of `liquidity`, and the candles since.
    shared: Option<Ix>,
    seen: u64,
}

impl SmcLiquiditySweep {
    /// A new strategy with these parameters.
    pub fn new(cfg: SweepConfig) -> Self {
        SmcLiquiditySweep {
            liquidity: Liquidity::new(
                cfg.swing_length,
                cfg.eq_tolerance_pct,
                cfg.max_zones,
                cfg.max_age,
            ),
            hold: Hold::new(cfg.hold),
            cfg,
            shared: None,
            seen: 0,
        }
    }

    fn respond(&mut self, c: &Candle, event: SweepEvent, seen: u64) -> Decision {
        let (signal, idle) = match event {
            SweepEvent::Sweep(s) => (Some(sweep_signal(&s)), Decision::WARMING_UP),
            SweepEvent::Conflict => {
                self.hold.end();
                (
                    None,
                    Decision::hold(Reason::text("highs and lows both swept")),
                )
            }
            SweepEvent::None => (None, Decision::hold(Reason::text("no sweep"))),
        };
        let d = self.hold.step(c, signal, idle);
        gate(seen, self.warmup(), d)
    }
}

impl Strategy for SmcLiquiditySweep {
    fn id(&self) -> &'static str {
        LIQUIDITY_SWEEP_ID
    }
    fn on_candle(&mut self, c: &Candle) -> Result<Decision, StrategyError> {
        if self.shared.is_some() {
            return Err(shared_error(LIQUIDITY_SWEEP_ID));
        }
        let event = self.liquidity.update(c).event;
        Ok(self.respond(c, event, self.liquidity.seen()))
    }
    fn reset(&mut self) {
        self.liquidity.reset();
        self.hold.reset();
        self.seen = 0;
    }
    fn warmup(&self) -> usize {
        // A pool exists from candle 2L on; the next candle can sweep it.
        break_warmup(self.cfg.swing_length)
    }
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }
    fn share(&mut self, g: &mut GraphBuilder) -> bool {
        if self.shared.is_some() || self.liquidity.seen() > 0 {
            return false;
        }
        self.shared = g.c.liquidity(&self.cfg, 0).ok();
        self.shared.is_some()
    }
    fn placed(&mut self, g: &Graph) {
        self.shared = self.shared.map(|ix| g.place(ix));
    }

    fn decide(&mut self, c: &Candle, g: &Graph) -> Result<Decision, StrategyError> {
        let Some(ix) = self.shared else {
            return self.on_candle(c);
        };
        let Det::Liquidity { last, .. } = shared_det(LIQUIDITY_SWEEP_ID, g, ix)? else {
            return Err(wrong_node(LIQUIDITY_SWEEP_ID));
        };
        self.seen += 1;
        Ok(self.respond(c, *last, self.seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;
    use crate::strategy::build;
    use crate::testing::bars;
    use serde_json::{Map, Value};

    type Ohlc = (f64, f64, f64, f64);

    /// `(candle index, action, score, reason)` of every non-HOLD decision.
    fn signals(s: &mut dyn Strategy, ohlc: &[Ohlc]) -> Vec<(usize, Action, f64, String)> {
        bars(ohlc)
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let d = s.on_candle(c).unwrap();
                assert!((-1.0..=1.0).contains(&d.score), "score {}", d.score);
                (d.action != Action::Hold).then(|| (i, d.action, d.score, d.reason.to_string()))
            })
            .collect()
    }

    /// Asserts equal signals, scores within 1e-9.
    fn same(got: &[(usize, Action, f64, String)], expected: &[(usize, Action, f64, &str)]) {
        assert_eq!(got.len(), expected.len(), "{got:?}");
        for (g, e) in got.iter().zip(expected) {
            assert_eq!((g.0, g.1, g.3.as_str()), (e.0, e.1, e.3));
            assert!((g.2 - e.2).abs() < 1e-9, "score {} vs {}", g.2, e.2);
        }
    }

    /// The strategy with the given parameters (each strategy takes the ones it reads) and
    /// `hold = 1`, so its views are exactly its detector's events.
    fn with(params: &[(&str, Value)], id: &str) -> Box<dyn Strategy> {
        build(id, &own(params, id, 1)).unwrap()
    }

    fn own(params: &[(&str, Value)], id: &str, hold: usize) -> Map<String, Value> {
        let known = crate::strategy::default_params(id).unwrap();
        let mut m: Map<String, Value> = params
            .iter()
            .filter(|(k, _)| known.contains_key(*k))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        m.insert("hold".into(), Value::from(hold));
        m
    }

    fn l1(id: &str) -> Box<dyn Strategy> {
        with(&[("swing_length", Value::from(1))], id)
    }

    // L = 1: swing high 12 (candle 1), BOS up on candle 3, swing low 9 (candle 4), CHoCH down on
    // candle 6, swing low 8 (candle 7), BOS down on candle 9.
    const TREND: [Ohlc; 10] = [
        (10.0, 10.5, 9.5, 10.2),
        (10.2, 12.0, 10.0, 11.0),
        (11.0, 11.5, 10.5, 11.0),
        (11.0, 12.5, 10.5, 12.5),
        (12.3, 12.4, 9.0, 9.5),
        (9.5, 10.0, 9.2, 9.8),
        (9.8, 9.9, 8.5, 8.8),
        (8.8, 9.0, 8.0, 8.5),
        (8.5, 8.7, 8.2, 8.6),
        (8.6, 8.6, 7.5, 7.8),
    ];

    #[test]
    fn bos_and_choch_strategies_fire_on_their_own_breaks() {
        struct Case {
            id: &'static str,
            expected: Vec<(usize, Action, f64, &'static str)>,
        }
        let cases = [
            Case {
                id: BOS_ID,
                expected: vec![
                    // Close 12.5 is 0.5 past 12 over a 2.0 range: 0.5 + 0.5 * 0.25.
                    (
                        3,
                        Action::Buy,
                        0.625,
                        "BOS up: close 12.50 > swing high 12.00",
                    ),
                    // Close 7.8 is 0.2 past 8 over a 1.1 range.
                    (
                        9,
                        Action::Sell,
                        -(0.5 + 0.5 * 0.2 / 1.1),
                        "BOS down: close 7.80 < swing low 8.00",
                    ),
                ],
            },
            Case {
                id: CHOCH_ID,
                expected: vec![(
                    6,
                    Action::Sell,
                    -(0.5 + 0.5 * 0.2 / 1.4),
                    "CHoCH down: close 8.80 < swing low 9.00",
                )],
            },
        ];
        for c in cases {
            same(&signals(l1(c.id).as_mut(), &TREND), &c.expected);
        }
    }

    #[test]
    fn the_default_swing_length_is_five_and_confirms_late() {
        // A peak at candle 5 is confirmed on candle 10; a close above it on candle 9 (before
        // confirmation) is not a break, the one on candle 11 is.
        let mut ohlc: Vec<Ohlc> = (0..5)
            .map(|i| {
                let b = 10.0 + 0.1 * i as f64;
                (b, b + 0.2, b - 0.2, b + 0.1)
            })
            .collect();
        ohlc.push((10.5, 13.0, 10.4, 11.0)); // 5: the peak
        for _ in 0..3 {
            ohlc.push((11.0, 11.5, 10.6, 11.0)); // 6..=8
        }
        ohlc.push((11.0, 12.9, 10.9, 12.9)); // 9: high stays below 13, close 12.9
        ohlc.push((12.9, 12.95, 11.0, 11.2)); // 10: confirms the peak
        ohlc.push((11.2, 13.5, 11.1, 13.4)); // 11: close 13.4 > 13
        let mut s = build(BOS_ID, &own(&[], BOS_ID, 1)).unwrap();
        assert_eq!(s.warmup(), 12);
        let got = signals(s.as_mut(), &ohlc);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (11, Action::Buy));
    }

    #[test]
    fn order_block_strategy_buys_the_retest_and_stops_after_mitigation() {
        let base = vec![
            (10.0, 10.5, 9.5, 10.2),
            (10.2, 12.0, 10.0, 11.5), // 1: swing high 12
            (11.5, 11.8, 10.8, 11.0), // 2: down
            (11.0, 11.2, 10.4, 10.6), // 3: down: the block 10.4..11.2
            (10.6, 11.9, 10.5, 11.8), // 4
            (11.8, 12.6, 11.7, 12.5), // 5: BOS up
            (12.5, 12.9, 12.2, 12.8), // 6
            (12.8, 12.9, 10.8, 11.5), // 7: low 10.8 into the block: depth 0.5
            (11.5, 12.0, 11.3, 11.9), // 8: left the block
            (11.9, 12.0, 10.0, 10.1), // 9: close below 10.4: mitigated
            (10.1, 11.2, 10.0, 11.0), // 10: would have been a retest
        ];
        let got = signals(l1(ORDER_BLOCK_ID).as_mut(), &base);
        same(
            &got,
            &[(
                7,
                Action::Buy,
                0.75,
                "bullish order block retest: low 10.80 <= top 11.20",
            )],
        );
    }

    #[test]
    fn fvg_strategy_signals_retraces_in_both_directions() {
        struct Case {
            name: &'static str,
            ohlc: Vec<Ohlc>,
            expected: Vec<(usize, Action, f64)>,
        }
        let cases = [
            Case {
                name: "bullish gap 101..103, retrace to 102",
                ohlc: vec![
                    (100.0, 101.0, 99.0, 100.5),
                    (100.5, 104.0, 100.4, 103.8),
                    (103.8, 105.0, 103.0, 104.5),
                    (104.5, 106.0, 104.0, 105.5),
                    (105.5, 105.6, 102.0, 104.0),
                ],
                expected: vec![(4, Action::Buy, 0.75)],
            },
            Case {
                name: "bearish gap 97..99, retrace to 97.5",
                ohlc: vec![
                    (100.0, 101.0, 99.0, 99.5),
                    (99.5, 99.6, 96.0, 96.2),
                    (96.2, 97.0, 95.0, 95.5),
                    (95.5, 97.5, 95.2, 96.0),
                ],
                expected: vec![(3, Action::Sell, -0.625)],
            },
            Case {
                name: "gap smaller than fvg_min_size_pct: nothing",
                ohlc: vec![
                    (100.0, 101.0, 99.0, 100.5),
                    (100.5, 101.2, 100.4, 101.1),
                    (101.1, 101.5, 101.05, 101.4),
                    (101.4, 101.45, 100.9, 101.0),
                ],
                expected: vec![],
            },
        ];
        for c in cases {
            let mut s = with(&[("fvg_min_size_pct", Value::from(0.1))], FVG_ID);
            let got: Vec<_> = signals(s.as_mut(), &c.ohlc)
                .into_iter()
                .map(|(i, a, sc, _)| (i, a, sc))
                .collect();
            assert_eq!(got, c.expected, "{}", c.name);
        }
    }

    #[test]
    fn liquidity_sweep_strategy_scores_equal_lows_higher() {
        let ohlc = [
            (10.0, 10.5, 9.5, 10.2),
            (10.2, 10.4, 9.0, 9.8),   // 1: swing low 9.00
            (9.8, 10.6, 9.6, 10.4),   // 2
            (10.4, 10.8, 10.0, 10.1), // 3: swing high 10.8
            (10.1, 10.3, 9.004, 9.5), // 4: swing low 9.004: equal lows
            (9.5, 10.0, 9.4, 9.9),    // 5
            (9.9, 10.0, 8.8, 9.3),    // 6: sweep of the equal lows
            (9.3, 11.0, 9.2, 10.5),   // 7: sweep of the high 10.8
        ];
        let got = signals(l1(LIQUIDITY_SWEEP_ID).as_mut(), &ohlc);
        same(
            &got,
            &[
                (
                    6,
                    Action::Buy,
                    0.75,
                    "sweep of lows: low 8.80 < equal lows 9.00",
                ),
                (
                    7,
                    Action::Sell,
                    -0.5,
                    "sweep of highs: high 11.00 > swing high 10.80",
                ),
            ],
        );
    }

    #[test]
    fn warm_up_is_reported_and_reset_replays_identically() {
        for id in [BOS_ID, CHOCH_ID, ORDER_BLOCK_ID, FVG_ID, LIQUIDITY_SWEEP_ID] {
            let mut s = l1(id);
            let first = s.on_candle(&bars(&TREND[..1])[0]).unwrap();
            assert_eq!(first.action, Action::Hold, "{id}");
            assert_eq!(first.reason.to_string(), "warming up", "{id}");
            s.reset();
            let a = signals(s.as_mut(), &TREND);
            s.reset();
            let b = signals(s.as_mut(), &TREND);
            assert_eq!(a, b, "{id}");
            let copy = s.clone_box();
            assert_eq!(copy.id(), id);
        }
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use crate::model::Action;
    use crate::strategy::build;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Random candles: `(log return, upper wick, lower wick)` per bar, on a price near 100.
    fn candles(bars: &[(f64, f64, f64)]) -> Vec<Candle> {
        let mut close = 100.0_f64;
        bars.iter()
            .enumerate()
            .map(|(i, &(ret, up, down))| {
                let open = close;
                close = open * ret.exp();
                Candle {
                    open_time: i as i64 * 60_000,
                    close_time: i as i64 * 60_000 + 59_999,
                    open,
                    high: open.max(close) * (1.0 + up),
                    low: open.min(close) * (1.0 - down),
                    close,
                    volume: 1.0,
                }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Scores in [-1, 1] with the action's sign, no signal before the warm-up, and a
        /// clone taken mid-stream (as `provisional` does) continues exactly like the original.
        #[test]
        fn decisions_are_well_formed_and_clones_independent(
            bars in prop::collection::vec(
                (-0.01f64..0.01, 0.0f64..0.005, 0.0f64..0.005), 20..200),
            length in 1usize..6,
            cut in 0usize..200,
        ) {
            let cs = candles(&bars);
            let mut params = Map::new();
            params.insert("swing_length".into(), Value::from(length));
            params.insert("max_age".into(), Value::from(50));
            for id in [BOS_ID, CHOCH_ID, ORDER_BLOCK_ID, FVG_ID, LIQUIDITY_SWEEP_ID] {
                let known = crate::strategy::default_params(id).unwrap();
                let p: Map<String, Value> = params
                    .iter()
                    .filter(|(k, _)| known.contains_key(k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut s = build(id, &p).unwrap();
                let mut copy = None;
                let mut outs = Vec::new();
                for (i, c) in cs.iter().enumerate() {
                    if i == cut.min(cs.len() - 1) {
                        copy = Some((i, s.clone_box()));
                    }
                    let d = s.on_candle(c).unwrap();
                    prop_assert!((-1.0..=1.0).contains(&d.score));
                    match d.action {
                        Action::Buy => prop_assert!(d.score >= 0.5),
                        Action::Sell => prop_assert!(d.score <= -0.5),
                        Action::Hold => prop_assert_eq!(d.score, 0.0),
                    }
                    if d.action != Action::Hold {
                        prop_assert!(i + 1 >= s.warmup(), "{} fired on candle {}", id, i + 1);
                    }
                    outs.push((d.action, d.score.to_bits(), d.reason.to_string()));
                }
                let (from, mut copy) = copy.unwrap();
                for (i, c) in cs.iter().enumerate().skip(from) {
                    let d = copy.on_candle(c).unwrap();
                    prop_assert_eq!(&(d.action, d.score.to_bits(), d.reason.to_string()), &outs[i]);
                }
            }
        }
    }
}
