//! Performance statistics, accumulated in O(1) memory per candle: [`Accumulator`] takes the
//! equity at each candle's close and each closed trade; [`Metrics`] is the summary.
//!
//! Per-candle returns feed Welford's running mean and variance (Sharpe) and a running sum of
//! squared negative returns (Sortino's downside deviation). Both are annualised with
//! `sqrt(candles per year)`, where a year is 365 days: crypto trades every day.

use serde::Serialize;

use super::execution::Trade;
use crate::model::Interval;

/// Milliseconds in a 365-day year.
pub const YEAR_MS: f64 = 365.0 * 86_400_000.0;

/// The summary of a backtest. Percentages are in percent (12.5 means 12.5 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Final equity over initial, minus one.
    pub total_return_pct: f64,
    /// Last close over first close, minus one (no costs).
    pub buy_hold_return_pct: f64,
    /// Compound annual growth rate over the candles' time span.
    pub cagr_pct: f64,
    /// Largest peak-to-trough fall of the close-marked equity, as a positive number.
    pub max_drawdown_pct: f64,
    /// Annualised mean over standard deviation of per-candle returns (risk-free rate 0).
    pub sharpe: f64,
    /// Annualised mean over downside deviation of per-candle returns (infinite, JSON `null`,
    /// when no candle lost money).
    pub sortino: f64,
    /// Share of closed trades with a positive net profit.
    pub win_rate_pct: f64,
    /// Gross profit over gross loss of closed trades (infinite, JSON `null`, without losses).
    pub profit_factor: f64,
    /// Closed trades (an open position at the end is closed at the last close and counted).
    pub trades: usize,
    /// Share of candles during which a position was open at any moment.
    pub exposure_pct: f64,
    /// Mean net return per trade, percent of the equity committed.
    pub avg_trade_pct: f64,
    /// Best trade's net return, percent.
    pub best_trade_pct: f64,
    /// Worst trade's net return, percent.
    pub worst_trade_pct: f64,
    /// Total fees paid, quote currency.
    pub fees_paid: f64,
    /// Starting equity.
    pub initial_equity: f64,
    /// Ending equity.
    pub final_equity: f64,
    /// Candles processed.
    pub candles: usize,
    /// First candle's open time, ms.
    pub start_time: i64,
    /// Last candle's close time, ms.
    pub end_time: i64,
}

/// Shortest span, in days, over which annualised figures (CAGR, Sharpe, Sortino) are shown:
/// annualising ten days of 5-minute data turns a 2 % loss into "CAGR −52 %" and noise into a
/// Sharpe of −25, numbers that describe the extrapolation, not the strategy.
pub const MIN_ANNUALISED_DAYS: f64 = 90.0;

impl Metrics {
    /// Days from the first candle's open to the last candle's close.
    pub fn span_days(&self) -> f64 {
        (self.end_time + 1 - self.start_time).max(0) as f64 / 86_400_000.0
    }

    /// True when the span is long enough ([`MIN_ANNUALISED_DAYS`]) for annualised figures to
    /// mean something.
    pub fn annualised_meaningful(&self) -> bool {
        self.span_days() >= MIN_ANNUALISED_DAYS
    }
}

/// Streaming accumulator behind [`Metrics`].
#[derive(Debug, Clone)]
pub struct Accumulator {
    initial: f64,
    prev_equity: f64,
    peak: f64,
    max_dd: f64,
    n: u64,
    mean: f64,
    m2: f64,
    down_sq: f64,
    exposed: u64,
    first_close: Option<f64>,
    last_close: f64,
    start_time: Option<i64>,
    end_time: i64,
    trades: usize,
    wins: usize,
    gross_profit: f64,
    gross_loss: f64,
    sum_trade_pct: f64,
    best: f64,
    worst: f64,
}

impl Accumulator {
    /// Starts from `initial` equity.
    pub fn new(initial: f64) -> Self {
        Accumulator {
            initial,
            prev_equity: initial,
            peak: initial,
            max_dd: 0.0,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            down_sq: 0.0,
            exposed: 0,
            first_close: None,
            last_close: 0.0,
            start_time: None,
            end_time: 0,
            trades: 0,
            wins: 0,
            gross_profit: 0.0,
            gross_loss: 0.0,
            sum_trade_pct: 0.0,
            best: f64::NEG_INFINITY,
            worst: f64::INFINITY,
        }
    }

    /// Records one candle: its open/close times, its close, the equity at its close and
    /// whether a position was open at any moment during it.
    pub fn candle(
        &mut self,
        open_time: i64,
        close_time: i64,
        close: f64,
        equity: f64,
        exposed: bool,
    ) {
        self.start_time.get_or_insert(open_time);
        self.end_time = close_time;
        self.first_close.get_or_insert(close);
        self.last_close = close;
        if exposed {
            self.exposed += 1;
        }
        let r = if self.prev_equity != 0.0 {
            equity / self.prev_equity - 1.0
        } else {
            0.0
        };
        self.prev_equity = equity;
        self.n += 1;
        let delta = r - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (r - self.mean);
        if r < 0.0 {
            self.down_sq += r * r;
        }
        if equity > self.peak {
            self.peak = equity;
        } else if self.peak > 0.0 {
            self.max_dd = self.max_dd.max((self.peak - equity) / self.peak);
        }
    }

    /// Records a closed trade.
    pub fn trade(&mut self, t: &Trade) {
        self.trades += 1;
        if t.pnl > 0.0 {
            self.wins += 1;
            self.gross_profit += t.pnl;
        } else {
            self.gross_loss -= t.pnl;
        }
        self.sum_trade_pct += t.return_pct;
        self.best = self.best.max(t.return_pct);
        self.worst = self.worst.min(t.return_pct);
    }

    /// The summary, annualising for `interval`.
    pub fn finish(&self, interval: Interval, fees_paid: f64) -> Metrics {
        let final_equity = self.prev_equity;
        let per_year = YEAR_MS / interval.duration_ms() as f64;
        let std = if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let sharpe = if std > 0.0 {
            self.mean / std * per_year.sqrt()
        } else {
            0.0
        };
        let down = if self.n > 0 {
            (self.down_sq / self.n as f64).sqrt()
        } else {
            0.0
        };
        let sortino = if down > 0.0 {
            self.mean / down * per_year.sqrt()
        } else if self.mean > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let start = self.start_time.unwrap_or(0);
        let years = (self.end_time + 1 - start) as f64 / YEAR_MS;
        let growth = final_equity / self.initial;
        let cagr = if years <= 0.0 || self.n == 0 {
            0.0
        } else if growth <= 0.0 {
            -100.0
        } else {
            (growth.powf(1.0 / years) - 1.0) * 100.0
        };
        let pct = |a: f64, b: f64| if b > 0.0 { a / b * 100.0 } else { 0.0 };
        let t = self.trades as f64;
        Metrics {
            total_return_pct: (growth - 1.0) * 100.0,
            buy_hold_return_pct: match self.first_close {
                Some(f) if f > 0.0 => (self.last_close / f - 1.0) * 100.0,
                _ => 0.0,
            },
            cagr_pct: cagr,
            max_drawdown_pct: self.max_dd * 100.0,
            sharpe,
            sortino,
            win_rate_pct: pct(self.wins as f64, t),
            profit_factor: if self.gross_loss > 0.0 {
                self.gross_profit / self.gross_loss
            } else if self.gross_profit > 0.0 {
                f64::INFINITY
            } else {
                0.0
            },
            trades: self.trades,
            exposure_pct: pct(self.exposed as f64, self.n as f64),
            avg_trade_pct: if self.trades > 0 {
                self.sum_trade_pct / t
            } else {
                0.0
            },
            best_trade_pct: if self.trades > 0 { self.best } else { 0.0 },
            worst_trade_pct: if self.trades > 0 { self.worst } else { 0.0 },
            fees_paid,
            initial_equity: self.initial,
            final_equity,
            candles: self.n as usize,
            start_time: start,
            end_time: self.end_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::execution::{ExitReason, Side};

    fn trade(pnl: f64, pct: f64) -> Trade {
        Trade {
            side: Side::Long,
            entry_time: 0,
            entry_price: 1.0,
            exit_time: 1,
            exit_price: 1.0,
            qty: 1.0,
            fees: 0.0,
            pnl,
            return_pct: pct,
            exit_reason: ExitReason::Signal,
        }
    }

    #[test]
    fn drawdown_returns_and_trade_stats() {
        let mut a = Accumulator::new(100.0);
        // Equity 100 → 120 → 90 → 108 → 130: peak 120, trough 90, drawdown 25 %.
        let eq = [120.0, 90.0, 108.0, 130.0];
        for (i, e) in eq.iter().enumerate() {
            let t = i as i64 * 86_400_000;
            a.candle(t, t + 86_399_999, 10.0 + i as f64, *e, i < 2);
        }
        for (p, r) in [(20.0, 20.0), (-30.0, -25.0), (40.0, 44.0)] {
            a.trade(&trade(p, r));
        }
        let m = a.finish(Interval::D1, 0.0);
        assert!((m.max_drawdown_pct - 25.0).abs() < 1e-9);
        assert!((m.total_return_pct - 30.0).abs() < 1e-9);
        assert!((m.buy_hold_return_pct - 30.0).abs() < 1e-9, "10 → 13");
        assert!((m.exposure_pct - 50.0).abs() < 1e-9);
        assert_eq!(m.trades, 3);
        assert!((m.win_rate_pct - 200.0 / 3.0).abs() < 1e-9);
        assert!((m.profit_factor - 2.0).abs() < 1e-9, "60 / 30");
        assert!((m.avg_trade_pct - 13.0).abs() < 1e-9);
        assert_eq!((m.best_trade_pct, m.worst_trade_pct), (44.0, -25.0));
        // Returns 0.2, -0.25, 0.2, 0.2037…: sample mean/std by hand.
        let rs = [0.2, -0.25, 0.2, 130.0 / 108.0 - 1.0];
        let mean = rs.iter().sum::<f64>() / 4.0;
        let var = rs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0;
        let sharpe = mean / var.sqrt() * 365f64.sqrt();
        assert!((m.sharpe - sharpe).abs() < 1e-9, "{} {}", m.sharpe, sharpe);
        let sortino = mean / (0.0625f64 / 4.0).sqrt() * 365f64.sqrt();
        assert!((m.sortino - sortino).abs() < 1e-9);
        // Four days: 1.3^(365/4) − 1.
        let cagr = (1.3f64.powf(365.0 / 4.0) - 1.0) * 100.0;
        assert!((m.cagr_pct - cagr).abs() / cagr < 1e-9);
    }

    #[test]
    fn no_trades_and_no_losses_are_defined() {
        let mut a = Accumulator::new(1.0);
        a.candle(0, 59_999, 5.0, 1.0, false);
        let m = a.finish(Interval::M1, 0.0);
        assert_eq!((m.trades, m.win_rate_pct, m.profit_factor), (0, 0.0, 0.0));
        assert_eq!((m.sharpe, m.sortino, m.max_drawdown_pct), (0.0, 0.0, 0.0));
        a.trade(&trade(1.0, 1.0));
        assert!(a.finish(Interval::M1, 0.0).profit_factor.is_infinite());
    }
}
