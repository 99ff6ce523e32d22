//! Backtesting with the live code path: [`Backtester::step`] feeds each closed candle to the
//! same [`SignalEngine::on_closed`] that `live` calls, and trades the confluence action through
//! the simulated broker in [`execution`]. Statistics accumulate in [`metrics`]; parameter grids
//! for sweeps live in [`sweep`].
//!
//! Execution model (also in `docs/BACKTESTING.md`): the action decided on candle `i`'s close
//! fills at candle `i+1`'s open, with fee and slippage. BUY opens or holds a long (closing a
//! short first); SELL closes a long and, in long-short mode, opens a short; HOLD changes
//! nothing. Optional stop-loss / take-profit levels are checked against every candle's
//! high/low while a position is open, the stop first when both are touched. A position still
//! open after the last candle is closed at its close (with costs).
//!
//! Key types: [`Config`], [`Backtester`], [`Report`], [`run`].

pub mod execution;
pub mod metrics;
pub mod sweep;

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::confluence::Outcome;
use crate::engine::SignalEngine;
use crate::model::{Action, Candle, Interval};
use execution::{Costs, Executor, ExitReason, Side, Trade};
use metrics::{Accumulator, Metrics};

/// Errors in a backtest's settings.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum BacktestError {
    /// A setting out of range.
    #[error("bad backtest setting: {0}")]
    BadConfig(String),
    /// A sweep grid that does not parse.
    #[error("bad sweep: {0}")]
    BadSweep(String),
}

/// Which positions the strategy may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionMode {
    /// BUY goes long, SELL goes flat.
    #[default]
    LongOnly,
    /// BUY goes long, SELL goes short.
    LongShort,
}

impl PositionMode {
    /// `long-only` or `long-short`.
    pub fn as_str(self) -> &'static str {
        match self {
            PositionMode::LongOnly => "long-only",
            PositionMode::LongShort => "long-short",
        }
    }
}

impl fmt::Display for PositionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PositionMode {
    type Err = BacktestError;
    fn from_str(s: &str) -> Result<Self, BacktestError> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "long-only" | "long" => Ok(PositionMode::LongOnly),
            "long-short" | "both" => Ok(PositionMode::LongShort),
            _ => Err(BacktestError::BadConfig(format!(
                "unknown mode '{s}'; valid modes: long-only, long-short"
            ))),
        }
    }
}

/// Backtest settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The candles' interval (for annualising Sharpe and Sortino).
    pub interval: Interval,
    /// Starting equity, quote currency.
    pub initial_equity: f64,
    /// Fee per fill, basis points of notional.
    pub fee_bps: f64,
    /// Adverse slippage per fill, basis points of price.
    pub slippage_bps: f64,
    /// Long-only or long-short.
    pub mode: PositionMode,
    /// Stop-loss distance from entry, percent.
    pub stop_loss_pct: Option<f64>,
    /// Take-profit distance from entry, percent.
    pub take_profit_pct: Option<f64>,
    /// Keep the close-marked equity of every candle in [`Report::equity`].
    pub keep_equity: bool,
    /// Close the position when the decision goes back to HOLD (otherwise only the opposite
    /// move, a stop or the end of data closes it).
    pub exit_on_hold: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Interval::H1,
            initial_equity: 10_000.0,
            fee_bps: 10.0,
            slippage_bps: 0.0,
            mode: PositionMode::LongOnly,
            stop_loss_pct: None,
            take_profit_pct: None,
            keep_equity: false,
            exit_on_hold: false,
        }
    }
}

impl Config {
    /// Checks ranges: costs ≥ 0 and < 100 %, exits > 0, equity > 0.
    pub fn validate(&self) -> Result<(), BacktestError> {
        let bad = |m: String| Err(BacktestError::BadConfig(m));
        if !(self.initial_equity.is_finite() && self.initial_equity > 0.0) {
            return bad(format!(
                "initial equity must be > 0, got {}",
                self.initial_equity
            ));
        }
        for (name, v) in [
            ("fee-bps", self.fee_bps),
            ("slippage-bps", self.slippage_bps),
        ] {
            if !(v.is_finite() && (0.0..10_000.0).contains(&v)) {
                return bad(format!("{name} must be in [0, 10000), got {v}"));
            }
        }
        for (name, v) in [
            ("stop-loss-pct", self.stop_loss_pct),
            ("take-profit-pct", self.take_profit_pct),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0 && (name != "stop-loss-pct" || v < 100.0))
            {
                return bad(format!(
                    "{name} must be > 0 (and a stop below 100), got {v}"
                ));
            }
        }
        Ok(())
    }

    fn costs(&self) -> Costs {
        Costs {
            fee: self.fee_bps / 10_000.0,
            slippage: self.slippage_bps / 10_000.0,
            stop_loss: self.stop_loss_pct.map(|p| p / 100.0),
            take_profit: self.take_profit_pct.map(|p| p / 100.0),
        }
    }
}

/// What a backtest produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// The statistics.
    pub metrics: Metrics,
    /// Every closed trade, in order.
    pub trades: Vec<Trade>,
    /// Close-marked equity per candle (empty unless [`Config::keep_equity`]); the last value
    /// includes the closing of a position left open.
    pub equity: Vec<f64>,
}

/// A backtest in progress: one engine, one account, fed candles in order.
#[derive(Debug, Clone)]
pub struct Backtester {
    engine: SignalEngine,
    exec: Executor,
    acc: Accumulator,
    cfg: Config,
    pending: Option<Option<Side>>,
    /// The decision on the previous candle: orders follow changes of decision (moves).
    decision: Action,
    trades: Vec<Trade>,
    equity: Vec<f64>,
    /// The last candle's bookkeeping, recorded one step late so `finish` can close out first.
    last: Option<(Candle, f64, bool)>,
}

impl Backtester {
    /// A backtest of `engine` under `cfg`.
    pub fn new(engine: SignalEngine, cfg: Config) -> Result<Self, BacktestError> {
        cfg.validate()?;
        Ok(Backtester {
            engine,
            exec: Executor::new(cfg.initial_equity, cfg.costs()),
            acc: Accumulator::new(cfg.initial_equity),
            cfg,
            pending: None,
            decision: Action::Hold,
            trades: Vec::new(),
            equity: Vec::new(),
            last: None,
        })
    }

    /// Processes one closed candle: fills the order decided on the previous close at this open,
    /// checks stops against this candle's range, asks the engine for a decision on this close
    /// and marks equity at it. Returns the engine's outcome.
    ///
    /// Orders follow *moves*, changes of the decision: a new BUY goes long, a new SELL goes flat
    /// (long-only) or short, and with [`Config::exit_on_hold`] a return to HOLD goes flat. A
    /// decision that merely persists places no order, so a stopped-out position is not re-entered
    /// until the next move.
    pub fn step(&mut self, c: &Candle) -> Outcome {
        let held_at_open = self.exec.position().is_some();
        if let Some(target) = self.pending.take()
            && let Some(t) = self.exec.rebalance(target, c.open, c.open_time)
        {
            self.record_trade(t);
        }
        let held_after_fill = self.exec.position().is_some();
        if let Some(t) = self.exec.check_exits(c) {
            self.record_trade(t);
        }
        let out = self.engine.on_closed(c);
        let moved = out.action != self.decision;
        self.decision = out.action;
        self.pending = match (out.action, self.cfg.mode) {
            _ if !moved => None,
            (Action::Buy, _) => Some(Some(Side::Long)),
            (Action::Sell, PositionMode::LongOnly) => Some(None),
            (Action::Sell, PositionMode::LongShort) => Some(Some(Side::Short)),
            (Action::Hold, _) if self.cfg.exit_on_hold => Some(None),
            (Action::Hold, _) => None,
        };
        if let Some((prev, eq, exposed)) = self.last.take() {
            self.acc
                .candle(prev.open_time, prev.close_time, prev.close, eq, exposed);
        }
        let eq = self.exec.equity(c.close);
        if self.cfg.keep_equity {
            self.equity.push(eq);
        }
        self.last = Some((*c, eq, held_at_open || held_after_fill));
        out
    }

    fn record_trade(&mut self, t: Trade) {
        self.acc.trade(&t);
        self.trades.push(t);
    }

    /// The engine, e.g. to write the [`crate::record::SignalRecord`] of the candle just stepped.
    pub fn engine(&self) -> &SignalEngine {
        &self.engine
    }

    /// The open position, if any.
    pub fn position(&self) -> Option<Side> {
        self.exec.position()
    }

    /// Closes any open position at the last close and summarises.
    pub fn finish(mut self) -> Report {
        if let Some((c, _, exposed)) = self.last.take() {
            if let Some(t) = self.exec.exit(c.close, c.close_time, ExitReason::EndOfData) {
                self.record_trade(t);
            }
            let eq = self.exec.equity(c.close);
            if let Some(e) = self.equity.last_mut() {
                *e = eq;
            }
            self.acc
                .candle(c.open_time, c.close_time, c.close, eq, exposed);
        }
        Report {
            metrics: self.acc.finish(self.cfg.interval, self.exec.fees_paid()),
            trades: self.trades,
            equity: self.equity,
        }
    }
}

/// Backtests `engine` over `candles` under `cfg`.
pub fn run(engine: SignalEngine, cfg: Config, candles: &[Candle]) -> Result<Report, BacktestError> {
    let mut bt = Backtester::new(engine, cfg)?;
    for c in candles {
        bt.step(c);
    }
    Ok(bt.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confluence::{Mode, Rule};
    use crate::strategy::{Decision, Reason, Strategy, StrategyError};

    /// Plays back a fixed script of actions, one per candle.
    #[derive(Debug, Clone)]
    struct Script(Vec<Action>, usize);
    impl Strategy for Script {
        fn id(&self) -> &'static str {
            "script"
        }
        fn on_candle(&mut self, _: &Candle) -> Result<Decision, StrategyError> {
            let a = self.0.get(self.1).copied().unwrap_or(Action::Hold);
            self.1 += 1;
            Ok(Decision::new(a, 0.0, Reason::text("script")))
        }
        fn reset(&mut self) {
            self.1 = 0;
        }
        fn warmup(&self) -> usize {
            0
        }
        fn clone_box(&self) -> Box<dyn Strategy> {
            Box::new(self.clone())
        }
    }

    const DAY: i64 = 86_400_000;

    /// Daily candles opening at `opens[i]` and closing at the next open (the last closes flat).
    fn candles(opens: &[f64]) -> Vec<Candle> {
        opens
            .iter()
            .enumerate()
            .map(|(i, &o)| {
                let c = opens.get(i + 1).copied().unwrap_or(o);
                Candle {
                    open_time: i as i64 * DAY,
                    close_time: (i as i64 + 1) * DAY - 1,
                    open: o,
                    high: o.max(c),
                    low: o.min(c),
                    close: c,
                    volume: 1.0,
                }
            })
            .collect()
    }

    fn engine(script: &str) -> SignalEngine {
        let actions = script
            .chars()
            .map(|ch| match ch {
                'B' => Action::Buy,
                'S' => Action::Sell,
                _ => Action::Hold,
            })
            .collect();
        SignalEngine::new(vec![Box::new(Script(actions, 0))], Rule::new(Mode::All, 1)).unwrap()
    }

    fn cfg(fee_bps: f64, mode: PositionMode) -> Config {
        Config {
            interval: Interval::D1,
            initial_equity: 1000.0,
            fee_bps,
            mode,
            keep_equity: true,
            ..Config::default()
        }
    }

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn three_trades_by_hand() {
        // Opens: 100 110 121 100 90 99 108 120 96 96.
        // BUY on close of day 0 → fill at day 1 open 110; SELL on day 2 → exit day 3 at 100.
        // BUY day 3 → 90 on day 4; SELL day 5 → 108 on day 6. BUY day 6 → 120 on day 7;
        // SELL day 7 → 96 on day 8.
        let opens = [
            100.0, 110.0, 121.0, 100.0, 90.0, 99.0, 108.0, 120.0, 96.0, 96.0,
        ];
        let cs = candles(&opens);
        let fee = 0.001;
        let report = run(engine("B.SB.SBS.."), cfg(10.0, PositionMode::LongOnly), &cs).unwrap();
        let m = report.metrics;
        assert_eq!(m.trades, 3);
        let k = (1.0 - fee) / (1.0 + fee);
        let legs = [100.0 / 110.0 * k, 108.0 / 90.0 * k, 96.0 / 120.0 * k];
        let final_eq = 1000.0 * legs.iter().product::<f64>();
        assert!(
            near(m.final_equity, final_eq),
            "{} vs {final_eq}",
            m.final_equity
        );
        assert!(near(m.total_return_pct, (final_eq / 1000.0 - 1.0) * 100.0));
        for (t, leg) in report.trades.iter().zip(legs) {
            assert!(near(t.return_pct, (leg - 1.0) * 100.0));
            assert_eq!(t.exit_reason, ExitReason::Signal);
        }
        assert_eq!(report.trades[0].entry_time, DAY);
        assert_eq!(report.trades[0].exit_time, 3 * DAY);
        assert!(near(m.win_rate_pct, 100.0 / 3.0));
        // Fees: each leg pays f on entry notional E/(1+f)·… — sum them from the trades.
        let fees: f64 = report.trades.iter().map(|t| t.fees).sum();
        assert!(near(m.fees_paid, fees));
        let gross_loss = -(report.trades[0].pnl + report.trades[2].pnl);
        assert!(near(m.profit_factor, report.trades[1].pnl / gross_loss));
        // Equity curve by hand: after entry at 110 equity is E0/(1+f)·close/110; the worst
        // point is the close of day 7 (=96, entered at 120) after the rise to 108 … check the
        // curve's own peak-to-trough instead of a hand-picked pair.
        let mut peak = 1000.0f64;
        let mut dd = 0.0f64;
        for e in &report.equity {
            peak = peak.max(*e);
            dd = dd.max((peak - e) / peak);
        }
        assert!(near(m.max_drawdown_pct, dd * 100.0));
        // The first trade alone: 1000 → 1000/(1.001)·121/110 at day 1's close, then
        // 1000/1.001·100/110 at day 2's close; the drawdown is at least that fall.
        let top = 1000.0 / (1.0 + fee) * 121.0 / 110.0;
        let bottom = 1000.0 / (1.0 + fee) * 100.0 / 110.0;
        assert!(near(report.equity[1], top));
        assert!(near(report.equity[2], bottom));
        assert!(m.max_drawdown_pct >= (1.0 - bottom / top) * 100.0 - 1e-9);
        // Exposure: days 1–3 (exit at day 3's open), 4–6, 7–8 → 8 of 10 candles.
        assert!(near(m.exposure_pct, 80.0));
        assert!(
            near(m.buy_hold_return_pct, (96.0 / 110.0 - 1.0) * 100.0),
            "first close 110, last 96"
        );
    }

    #[test]
    fn long_short_flips_and_closes_at_the_end() {
        let opens = [100.0, 100.0, 80.0, 80.0, 100.0];
        let cs = candles(&opens);
        // SELL day 0 → short at 100 (day 1); BUY day 2 → cover at 80 and go long (day 3);
        // the data ends: the long closes at the last close (100).
        let r = run(engine("S.B.."), cfg(0.0, PositionMode::LongShort), &cs).unwrap();
        assert_eq!(r.trades.len(), 2);
        assert_eq!(r.trades[0].side, Side::Short);
        assert!(near(r.trades[0].pnl, 200.0));
        assert_eq!(r.trades[1].exit_reason, ExitReason::EndOfData);
        assert!(near(r.metrics.final_equity, 1200.0 * 100.0 / 80.0));
        assert!(near(*r.equity.last().unwrap(), r.metrics.final_equity));
        // Long-only ignores the SELL entry.
        let r = run(engine("S.B.."), cfg(0.0, PositionMode::LongOnly), &cs).unwrap();
        assert_eq!(r.trades.len(), 1);
        assert!(near(r.metrics.final_equity, 1000.0 * 100.0 / 80.0));
    }

    #[test]
    fn stop_loss_exits_inside_the_candle() {
        let cs = candles(&[100.0, 100.0, 90.0, 95.0]);
        let mut c = cfg(0.0, PositionMode::LongOnly);
        c.stop_loss_pct = Some(5.0);
        let r = run(engine("B..."), c, &cs).unwrap();
        assert_eq!(r.trades.len(), 1);
        assert_eq!(r.trades[0].exit_reason, ExitReason::StopLoss);
        assert!(near(r.metrics.final_equity, 950.0));
        assert_eq!(r.trades[0].exit_time, DAY);
    }

    #[test]
    fn a_persisting_decision_does_not_reenter_after_a_stop() {
        // BUY on every candle is one move: the stop on day 1 ends the only trade.
        let cs = candles(&[100.0, 100.0, 90.0, 95.0, 99.0, 99.0]);
        let mut c = cfg(0.0, PositionMode::LongOnly);
        c.stop_loss_pct = Some(5.0);
        let r = run(engine("BBBBBB"), c.clone(), &cs).unwrap();
        assert_eq!(r.trades.len(), 1, "{:?}", r.trades);
        assert_eq!(r.trades[0].exit_reason, ExitReason::StopLoss);
        // A new move after a HOLD enters again.
        let r = run(engine("BB.BBB"), c, &cs).unwrap();
        assert_eq!(r.trades.len(), 2, "{:?}", r.trades);
        assert_eq!(r.trades[1].entry_time, 4 * DAY);
    }

    #[test]
    fn exit_on_hold_closes_when_the_decision_lapses() {
        let cs = candles(&[100.0, 100.0, 110.0, 120.0, 130.0]);
        // BUY on days 0-1, HOLD from day 2: held to the end without exit_on_hold ...
        let r = run(engine("BB..."), cfg(0.0, PositionMode::LongOnly), &cs).unwrap();
        assert_eq!(r.trades.len(), 1);
        assert_eq!(r.trades[0].exit_reason, ExitReason::EndOfData);
        // ... and closed at day 3's open with it.
        let mut c = cfg(0.0, PositionMode::LongOnly);
        c.exit_on_hold = true;
        let r = run(engine("BB..."), c, &cs).unwrap();
        assert_eq!(r.trades.len(), 1);
        assert_eq!(r.trades[0].exit_reason, ExitReason::Signal);
        assert_eq!(r.trades[0].exit_time, 3 * DAY);
        assert!(near(r.trades[0].pnl, 1000.0 * (120.0 / 100.0 - 1.0)));
    }

    #[test]
    fn bad_settings_are_rejected() {
        let mut c = cfg(-1.0, PositionMode::LongOnly);
        assert!(c.validate().is_err());
        c.fee_bps = 1.0;
        c.stop_loss_pct = Some(0.0);
        assert!(matches!(c.validate(), Err(BacktestError::BadConfig(_))));
        assert!("long-short".parse::<PositionMode>().is_ok());
        assert!("sideways".parse::<PositionMode>().is_err());
    }
}
