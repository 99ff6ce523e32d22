//! The simulated broker: one all-in position (long or short) with fees, slippage and
//! optional stop-loss / take-profit. See `docs/BACKTESTING.md` for the model in prose.
//!
//! Accounting: opening spends the whole equity `E` at fill price `P` with fee rate `f`, so the
//! quantity is `E / (P·(1+f))` and the entry fee `qty·P·f`; closing at `Q` pays `qty·Q·f`.
//! A long's round trip therefore returns `Q(1−f) / (P(1+f))`. Cash is `cash − s·qty·P − fee`
//! on entry and `cash + s·qty·Q − fee` on exit, with `s = +1` long and `−1` short, so equity
//! marked at `M` is always `cash + s·qty·M`.

use serde::Serialize;

use crate::model::Candle;

/// The direction of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Bought: profits when the price rises.
    Long,
    /// Sold short: profits when the price falls.
    Short,
}

impl Side {
    /// +1 for long, −1 for short.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }

    /// `long` or `short`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// Why a position was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// An opposite signal, filled at the next candle's open.
    Signal,
    /// The stop-loss level was touched.
    StopLoss,
    /// The take-profit level was touched.
    TakeProfit,
    /// The data ended with the position open; closed at the last close.
    EndOfData,
}

impl ExitReason {
    /// Snake-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Signal => "signal",
            ExitReason::StopLoss => "stop_loss",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::EndOfData => "end_of_data",
        }
    }
}

/// One closed round trip.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trade {
    /// Long or short.
    pub side: Side,
    /// Open time (ms) of the candle whose open filled the entry.
    pub entry_time: i64,
    /// Entry fill price, slippage included.
    pub entry_price: f64,
    /// Open time (ms) of the candle in which the exit filled.
    pub exit_time: i64,
    /// Exit fill price, slippage included.
    pub exit_price: f64,
    /// Quantity of the base asset.
    pub qty: f64,
    /// Entry plus exit fees, quote currency.
    pub fees: f64,
    /// Net profit, fees included, quote currency.
    pub pnl: f64,
    /// Net profit as a percentage of the equity committed at entry.
    pub return_pct: f64,
    /// Why it closed.
    pub exit_reason: ExitReason,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    side: Side,
    qty: f64,
    entry_price: f64,
    entry_time: i64,
    entry_fee: f64,
    equity_at_entry: f64,
    stop: Option<f64>,
    take: Option<f64>,
}

/// Costs and exits, as fractions (not bps or percent).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Costs {
    /// Fee per fill as a fraction of notional (10 bps = 0.001).
    pub fee: f64,
    /// Adverse price move per fill as a fraction (buys pay `open·(1+slip)`).
    pub slippage: f64,
    /// Stop-loss distance from the entry price as a fraction.
    pub stop_loss: Option<f64>,
    /// Take-profit distance from the entry price as a fraction.
    pub take_profit: Option<f64>,
}

/// The simulated account: cash plus at most one open position.
#[derive(Debug, Clone)]
pub struct Executor {
    cash: f64,
    open: Option<Open>,
    costs: Costs,
    fees_paid: f64,
}

impl Executor {
    /// A flat account holding `initial` in cash.
    pub fn new(initial: f64, costs: Costs) -> Self {
        Executor {
            cash: initial,
            open: None,
            costs,
            fees_paid: 0.0,
        }
    }

    /// The open position's side, if any.
    pub fn position(&self) -> Option<Side> {
        self.open.map(|o| o.side)
    }

    /// Equity with the open position marked at `mark`.
    pub fn equity(&self, mark: f64) -> f64 {
        match self.open {
            Some(o) => self.cash + o.side.sign() * o.qty * mark,
            None => self.cash,
        }
    }

    /// Total fees paid so far.
    pub fn fees_paid(&self) -> f64 {
        self.fees_paid
    }

    /// Opens a position with all equity at the raw price `raw` (slippage is applied here).
    /// Does nothing when a position is open or equity is gone.
    pub fn enter(&mut self, side: Side, raw: f64, time: i64) {
        if self.open.is_some() || self.cash <= 0.0 || raw <= 0.0 {
            return;
        }
        let s = side.sign();
        let price = raw * (1.0 + s * self.costs.slippage);
        let equity = self.cash;
        let qty = equity / (price * (1.0 + self.costs.fee));
        let fee = qty * price * self.costs.fee;
        self.cash -= s * qty * price + fee;
        self.fees_paid += fee;
        self.open = Some(Open {
            side,
            qty,
            entry_price: price,
            entry_time: time,
            entry_fee: fee,
            equity_at_entry: equity,
            stop: self.costs.stop_loss.map(|x| price * (1.0 - s * x)),
            take: self.costs.take_profit.map(|x| price * (1.0 + s * x)),
        });
    }

    /// Closes the open position at the raw price `raw` (slippage applied here).
    pub fn exit(&mut self, raw: f64, time: i64, reason: ExitReason) -> Option<Trade> {
        let o = self.open.take()?;
        let s = o.side.sign();
        let price = raw * (1.0 - s * self.costs.slippage);
        let fee = o.qty * price * self.costs.fee;
        self.cash += s * o.qty * price - fee;
        self.fees_paid += fee;
        let pnl = s * o.qty * (price - o.entry_price) - o.entry_fee - fee;
        Some(Trade {
            side: o.side,
            entry_time: o.entry_time,
            entry_price: o.entry_price,
            exit_time: time,
            exit_price: price,
            qty: o.qty,
            fees: o.entry_fee + fee,
            pnl,
            return_pct: if o.equity_at_entry > 0.0 {
                pnl / o.equity_at_entry * 100.0
            } else {
                0.0
            },
            exit_reason: reason,
        })
    }

    /// Moves to `target` (flat when `None`) at the raw price `raw`: closes an opposite position
    /// first, then opens. Holding the target already does nothing. Returns the closed trade.
    pub fn rebalance(&mut self, target: Option<Side>, raw: f64, time: i64) -> Option<Trade> {
        if self.position() == target {
            return None;
        }
        let closed = self.exit(raw, time, ExitReason::Signal);
        if let Some(side) = target {
            self.enter(side, raw, time);
        }
        closed
    }

    /// Checks the stop-loss and take-profit levels against the candle's range. When both lie
    /// inside it we cannot know which came first, so the stop wins (the conservative answer).
    /// A candle opening beyond a level (a gap) fills at its open.
    pub fn check_exits(&mut self, c: &Candle) -> Option<Trade> {
        let o = self.open?;
        let hit = match o.side {
            Side::Long => {
                if let Some(stop) = o.stop.filter(|&s| c.low <= s) {
                    Some((c.open.min(stop), ExitReason::StopLoss))
                } else {
                    o.take
                        .filter(|&t| c.high >= t)
                        .map(|t| (c.open.max(t), ExitReason::TakeProfit))
                }
            }
            Side::Short => {
                if let Some(stop) = o.stop.filter(|&s| c.high >= s) {
                    Some((c.open.max(stop), ExitReason::StopLoss))
                } else {
                    o.take
                        .filter(|&t| c.low <= t)
                        .map(|t| (c.open.min(t), ExitReason::TakeProfit))
                }
            }
        };
        let (raw, reason) = hit?;
        self.exit(raw, c.open_time, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    fn candle(t: i64, open: f64, high: f64, low: f64, close: f64) -> Candle {
        Candle {
            open_time: t,
            close_time: t + 59_999,
            open,
            high,
            low,
            close,
            volume: 1.0,
        }
    }

    #[test]
    fn long_round_trip_pays_both_fees() {
        // 10 bps each way, no slippage: 1000 cash at 100 buys 1000/(100·1.001) units.
        let mut x = Executor::new(
            1000.0,
            Costs {
                fee: 0.001,
                ..Costs::default()
            },
        );
        x.enter(Side::Long, 100.0, 0);
        assert!(close(x.equity(100.0), 1000.0 / 1.001));
        let t = x.exit(110.0, 1, ExitReason::Signal).unwrap();
        let expected = 1000.0 * 110.0 * 0.999 / (100.0 * 1.001);
        assert!(close(x.equity(0.0), expected), "{}", x.equity(0.0));
        assert!(close(t.pnl, expected - 1000.0));
        assert!(close(t.fees, x.fees_paid()));
        assert!(close(t.return_pct, (expected / 1000.0 - 1.0) * 100.0));
    }

    #[test]
    fn short_profits_when_price_falls_and_slippage_is_adverse() {
        let mut x = Executor::new(
            1000.0,
            Costs {
                slippage: 0.01,
                ..Costs::default()
            },
        );
        x.enter(Side::Short, 100.0, 0);
        // Sold at 99 (1% worse), 1000/99 units.
        let t = x.exit(80.0, 1, ExitReason::Signal).unwrap();
        // Bought back at 80.8 (1% worse).
        let qty = 1000.0 / 99.0;
        assert!(close(t.entry_price, 99.0) && close(t.exit_price, 80.8));
        assert!(close(t.pnl, qty * (99.0 - 80.8)));
        assert!(close(x.equity(0.0), 1000.0 + qty * 18.2));
    }

    #[test]
    fn rebalance_flips_and_holds() {
        let mut x = Executor::new(100.0, Costs::default());
        assert!(x.rebalance(Some(Side::Long), 10.0, 0).is_none());
        assert!(x.rebalance(Some(Side::Long), 12.0, 1).is_none(), "holds");
        let t = x.rebalance(Some(Side::Short), 20.0, 2).unwrap();
        assert!(close(t.pnl, 100.0));
        assert_eq!(x.position(), Some(Side::Short));
        assert!(close(x.equity(10.0), 300.0), "short 10 units from 20 to 10");
        assert!(x.rebalance(None, 10.0, 3).is_some());
        assert_eq!(x.position(), None);
    }

    #[test]
    fn stop_wins_when_both_levels_are_inside_the_candle() {
        let costs = Costs {
            stop_loss: Some(0.05),
            take_profit: Some(0.05),
            ..Costs::default()
        };
        let mut x = Executor::new(100.0, costs);
        x.enter(Side::Long, 100.0, 0);
        assert!(
            x.check_exits(&candle(0, 100.0, 104.0, 96.0, 100.0))
                .is_none()
        );
        let t = x
            .check_exits(&candle(1, 100.0, 106.0, 94.0, 100.0))
            .unwrap();
        assert_eq!(t.exit_reason, ExitReason::StopLoss);
        assert!(close(t.exit_price, 95.0));

        x.enter(Side::Long, 100.0, 2);
        let t = x
            .check_exits(&candle(3, 101.0, 107.0, 99.0, 106.0))
            .unwrap();
        assert_eq!(t.exit_reason, ExitReason::TakeProfit);
        assert!(close(t.exit_price, 105.0));

        // A gap through the stop fills at the (worse) open.
        x.enter(Side::Long, 100.0, 4);
        let t = x.check_exits(&candle(5, 90.0, 91.0, 88.0, 89.0)).unwrap();
        assert!(close(t.exit_price, 90.0));

        // Shorts mirror it.
        x.enter(Side::Short, 100.0, 6);
        let t = x
            .check_exits(&candle(7, 100.0, 105.5, 94.0, 100.0))
            .unwrap();
        assert_eq!(t.exit_reason, ExitReason::StopLoss);
        assert!(close(t.exit_price, 105.0));
    }
}
