#!/usr/bin/env python3
"""The reference for issue 17's whole-process targets: what a pandas + TA-Lib user runs.

Reads a headered candle CSV (open_time,open,high,low,close,volume) with pandas and computes, in
batch with TA-Lib's C library (PyPI `ta-lib` wheels bundle it), the indicators behind our eleven
strategies: RSI(14), EMA(9), EMA(21), Bollinger(20, 2), MACD(12, 26, 9), Stochastic(14, 3, 3),
ADX(14) and ATR(14). No strategies, no SMC detectors, no backtest: a fraction of our work.

    pip install ta-lib pandas
    python3 scripts/bench/talib_batch.py FILE.csv
"""
import sys

import pandas as pd
import talib

df = pd.read_csv(sys.argv[1])
o, h, l, c = (df[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close"))
out = {
    "rsi": talib.RSI(c, 14),
    "ema_fast": talib.EMA(c, 9),
    "ema_slow": talib.EMA(c, 21),
    "bb": talib.BBANDS(c, 20, 2.0, 2.0),
    "macd": talib.MACD(c, 12, 26, 9),
    "stoch": talib.STOCH(h, l, c, 14, 3, 0, 3, 0),
    "adx": talib.ADX(h, l, c, 14),
    "atr": talib.ATR(h, l, c, 14),
}
# Touch the results so nothing is skipped.
print(len(df), float(out["rsi"][-1]), float(out["adx"][-1]), file=sys.stderr)
