#!/usr/bin/env python3
"""Cross-checks `manus backtest` against backtesting.py (PyPI `backtesting`) for ema_crossover.

Run through scripts/crosscheck_backtest.sh, which installs backtesting.py into a venv under
target/ and runs `manus backtest` first. This script:

1. computes the EMA crossover signals independently (TA-Lib-style EMA: seeded with the SMA of
   the first `period` closes, then k = 2/(period+1)); BUY when fast-slow goes from <= 0 to > 0,
   SELL when it goes from >= 0 to < 0;
2. runs backtesting.py with the same rules: the decision on a bar's close fills at the next
   bar's open (trade_on_close=False), all equity per trade, `commission` = fee on entry and on
   exit, long-only (SELL closes), open trade closed at the end (finalize_trades=True);
   FractionalBacktest so BTC can be bought in fractions;
3. compares with manus' --json summary and --trades-out trades, and with its --signals-out
   records (signal bars must be identical).

Usage: crosscheck_backtest.py CSV FAST SLOW FEE_BPS MANUS_JSON MANUS_TRADES MANUS_SIGNALS
"""
import json
import sys
import warnings

import numpy as np
import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest


def ema(x: np.ndarray, p: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < p:
        return out
    out[p - 1] = x[:p].mean()
    k = 2.0 / (p + 1)
    for i in range(p, len(x)):
        out[i] = out[i - 1] + k * (x[i] - out[i - 1])
    return out


def signals(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    diff = ema(close, fast) - ema(close, slow)
    sig = np.zeros(len(close), dtype=int)
    prev = np.nan
    for i, d in enumerate(diff):
        if np.isnan(d):
            continue
        if not np.isnan(prev):
            if prev <= 0 < d:
                sig[i] = 1
            elif prev >= 0 > d:
                sig[i] = -1
        prev = d
    return sig


def main() -> None:
    csv, fast, slow, fee_bps, mjson, mtrades, msignals = sys.argv[1:8]
    fast, slow, fee = int(fast), int(slow), float(fee_bps) / 10_000
    raw = pd.read_csv(csv)
    df = pd.DataFrame(
        {
            "Open": raw["open"].values,
            "High": raw["high"].values,
            "Low": raw["low"].values,
            "Close": raw["close"].values,
            "Volume": raw["volume"].values,
        },
        index=pd.to_datetime(raw["open_time"], unit="ms"),
    )
    sig = signals(df["Close"].values, fast, slow)
    df["Signal"] = sig

    # The signal bars manus wrote must be the same bars.
    manus_sig = []
    with open(msignals) as f:
        for line in f:
            a = json.loads(line)["confluence"]
            manus_sig.append({"BUY": 1, "SELL": -1}.get(a, 0))
    manus_sig = np.array(manus_sig)
    mismatch = int((manus_sig != sig).sum())

    class Cross(Strategy):
        def init(self):
            pass

        def next(self):
            s = self.data.Signal[-1]
            if s == 1 and not self.position:
                self.buy()
            elif s == -1 and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(
            df,
            Cross,
            cash=10_000,
            commission=fee,
            trade_on_close=False,
            exclusive_orders=False,
            finalize_trades=True,
            fractional_unit=1e-8,
        )
        st = bt.run()
    trades = st["_trades"]
    m = json.load(open(mjson))
    mt = pd.read_csv(mtrades)

    rows = [
        ("signal bars differing", 0, mismatch),
        ("trades", len(trades), m["trades"]),
        ("total return %", st["Return [%]"], m["total_return_pct"]),
        ("buy & hold %", st["Buy & Hold Return [%]"], m["buy_hold_return_pct"]),
        ("max drawdown %", -st["Max. Drawdown [%]"], m["max_drawdown_pct"]),
        ("win rate %", st["Win Rate [%]"], m["win_rate_pct"]),
        ("exposure %", st["Exposure Time [%]"], m["exposure_pct"]),
        ("profit factor", st["Profit Factor"], m["profit_factor"]),
        ("final equity", st["Equity Final [$]"], m["final_equity"]),
    ]
    print(f"ema_crossover fast={fast} slow={slow} fee={fee_bps} bps on {csv} ({len(df)} candles)")
    print(f"{'metric':<24}{'backtesting.py':>16}{'manus':>16}{'diff':>14}")
    for name, a, b in rows:
        b = float("nan") if b is None else b
        print(f"{name:<24}{a:>16.6f}{b:>16.6f}{b - a:>14.2e}")

    # Trade by trade: entry/exit bars and prices (manus prices are real, bt's are scaled).
    n = min(len(trades), len(mt))
    entry_px = np.abs(trades["EntryPrice"].values[:n] - mt["entry_price"].values[:n])
    exit_px = np.abs(trades["ExitPrice"].values[:n] - mt["exit_price"].values[:n])
    ret = np.abs(trades["ReturnPct"].values[:n] * 100 - mt["return_pct"].values[:n])
    entry_t = (trades["EntryTime"].values[:n].astype("datetime64[ms]").astype(np.int64)
               != mt["entry_time"].values[:n]).sum()
    print(f"trade-by-trade over {n}: entry time mismatches {entry_t}, "
          f"max |entry price diff| {entry_px.max() if n else 0:.6g}, "
          f"max |exit price diff| {exit_px.max() if n else 0:.6g}, "
          f"max |return % diff| {ret.max() if n else 0:.3g}")
    if n and len(mt) and mt["exit_reason"].iloc[-1] == "end_of_data":
        print("note: the last trade was open at the end; manus closes it at the last close, "
              "backtesting.py (finalize_trades) at the last bar's open")


if __name__ == "__main__":
    main()
