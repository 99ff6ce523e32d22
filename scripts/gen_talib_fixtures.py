#!/usr/bin/env python3
"""Generate the TA-Lib parity fixtures in crates/core/test_data/talib/.

Regenerate with:

    pip install ta-lib numpy && python3 scripts/gen_talib_fixtures.py

The PyPI `ta-lib` wheel bundles the TA-Lib C library, so every output column here is what the
C reference computes. The series are synthetic and seeded, so the files are reproducible byte
for byte (for a given TA-Lib C version, recorded in each file's first line). The Rust test
crates/core/tests/talib_parity.rs reads them without Python.

File format: one `# ...` comment line, then a CSV header, then one row per candle. Floats are
written with repr() so they round-trip exactly; a NaN (TA-Lib's warm-up) is an empty cell.

Series:
  random_walk  GARCH(1,1)-style random walk around 30k (volatility clustering).
  gaps         a random walk whose bars frequently open far above/below the previous close.
  flat_runs    starts flat and keeps falling into 20-60 bar runs where open = high = low =
               close (and runs where only the close is frozen inside a constant range): the
               divide-by-zero paths of RSI, STOCH, ATR and the DMI family.
  tiny         a micro-cap quote drifting from about 1e-6 down to about 1e-8, with a flat run.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import talib

OUT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "crates", "core", "test_data", "talib"
)
SEED = 20_261_125
MINUTE_MS = 60_000
SMA = talib.MA_Type.SMA


# --------------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------------


def garch_returns(rng: np.random.Generator, n: int, base_vol: float) -> np.ndarray:
    """Log returns with volatility clustering: sigma2 = w + a*r^2 + b*sigma2."""
    a, b = 0.12, 0.85
    w = base_vol**2 * (1.0 - a - b)
    sigma2 = base_vol**2
    r = np.empty(n)
    for i in range(n):
        r[i] = math.sqrt(sigma2) * rng.standard_normal()
        sigma2 = w + a * r[i] ** 2 + b * sigma2
    return r


def bar(rng: np.random.Generator, open_: float, close: float, vol: float):
    """High/low around an open and a close, wicks proportional to the bar's volatility."""
    hi = max(open_, close) * (1.0 + abs(rng.standard_normal()) * vol * 0.6)
    lo = min(open_, close) * (1.0 - abs(rng.standard_normal()) * vol * 0.6)
    return hi, lo


def volume(rng: np.random.Generator) -> float:
    return float(rng.lognormal(mean=3.0, sigma=1.0))


def random_walk(rng: np.random.Generator, n: int = 1200) -> list[tuple]:
    rets = garch_returns(rng, n, 0.004)
    price = 30_000.0
    rows = []
    for r in rets:
        o = price
        c = o * math.exp(r)
        h, lo = bar(rng, o, c, abs(r) + 0.001)
        rows.append((o, h, lo, c, volume(rng)))
        price = c
    return rows


def gaps(rng: np.random.Generator, n: int = 600) -> list[tuple]:
    rets = garch_returns(rng, n, 0.006)
    price = 150.0
    rows = []
    for r in rets:
        o = price
        u = rng.random()
        if u < 0.15:  # gap up, often clearing the previous bar entirely
            o = price * math.exp(rng.uniform(0.01, 0.05))
        elif u < 0.30:  # gap down
            o = price * math.exp(-rng.uniform(0.01, 0.05))
        c = o * math.exp(r)
        h, lo = bar(rng, o, c, abs(r) + 0.002)
        rows.append((o, h, lo, c, volume(rng)))
        price = c
    return rows


def flat_runs(rng: np.random.Generator, n: int = 700) -> list[tuple]:
    rows = []
    price = 100.0
    # Flat from the very first bar: the Wilder sums of gains, losses, true range and DM
    # are exactly zero, so every 0/0 guard fires.
    for _ in range(40):
        rows.append((price, price, price, price, volume(rng)))
    kind = 0
    while len(rows) < n:
        # A trending/random segment.
        seg = int(rng.integers(15, 60))
        drift = rng.choice([-0.004, 0.0, 0.004])
        for r in garch_returns(rng, seg, 0.005) + drift:
            o = price
            c = o * math.exp(r)
            h, lo = bar(rng, o, c, abs(r) + 0.001)
            rows.append((o, h, lo, c, volume(rng)))
            price = c
        run = int(rng.integers(20, 61))
        if kind % 3 == 0:
            # Fully flat: O = H = L = C.
            for _ in range(run):
                rows.append((price, price, price, price, volume(rng)))
        elif kind % 3 == 1:
            # Frozen close inside a constant range: zero RSI deltas, constant stochastic
            # window, zero directional movement but non-zero true range.
            h, lo = price * 1.002, price * 0.997
            for _ in range(run):
                rows.append((price, h, lo, price, volume(rng)))
        else:
            # Flat on a round number (exactly representable) after a jump to it.
            price = float(round(price))
            for _ in range(run):
                rows.append((price, price, price, price, volume(rng)))
        kind += 1
    return rows[:n]


def tiny(rng: np.random.Generator, n: int = 600) -> list[tuple]:
    # Drift from 1e-6 to 1e-8 over the series, with clustered noise.
    drift = math.log(1e-8 / 1e-6) / n
    rets = garch_returns(rng, n, 0.01) + drift
    price = 1e-6
    rows = []
    for i, r in enumerate(rets):
        if 250 <= i < 280:  # a flat run at ~1e-7
            rows.append((price, price, price, price, volume(rng)))
            continue
        o = price
        c = o * math.exp(r)
        h, lo = bar(rng, o, c, abs(r) + 0.002)
        rows.append((o, h, lo, c, volume(rng)))
        price = c
    return rows


# --------------------------------------------------------------------------------------------
# Indicators (the C library)
# --------------------------------------------------------------------------------------------


def outputs(o, h, lo, c) -> list[tuple[str, np.ndarray]]:
    cols: list[tuple[str, np.ndarray]] = []

    def add(name, arr):
        cols.append((name, arr))

    # Defaults the strategies use.
    add("rsi_14", talib.RSI(c, timeperiod=14))
    add("sma_20", talib.SMA(c, timeperiod=20))
    add("ema_9", talib.EMA(c, timeperiod=9))
    add("ema_21", talib.EMA(c, timeperiod=21))
    up, mid, low = talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=SMA)
    add("bb_20_2_upper", up)
    add("bb_20_2_middle", mid)
    add("bb_20_2_lower", low)
    m, s, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    add("macd_12_26_9_macd", m)
    add("macd_12_26_9_signal", s)
    add("macd_12_26_9_hist", hist)
    k, d = talib.STOCH(
        h, lo, c, fastk_period=14, slowk_period=3, slowk_matype=SMA, slowd_period=3,
        slowd_matype=SMA,
    )
    add("stoch_14_3_3_k", k)
    add("stoch_14_3_3_d", d)
    add("atr_14", talib.ATR(h, lo, c, timeperiod=14))
    add("adx_14", talib.ADX(h, lo, c, timeperiod=14))
    add("plus_di_14", talib.PLUS_DI(h, lo, c, timeperiod=14))
    add("minus_di_14", talib.MINUS_DI(h, lo, c, timeperiod=14))

    # Non-default parameters: prove they pass through.
    add("rsi_2", talib.RSI(c, timeperiod=2))
    add("sma_5", talib.SMA(c, timeperiod=5))
    add("ema_50", talib.EMA(c, timeperiod=50))
    up, mid, low = talib.BBANDS(c, timeperiod=10, nbdevup=1.5, nbdevdn=1.5, matype=SMA)
    add("bb_10_1.5_upper", up)
    add("bb_10_1.5_middle", mid)
    add("bb_10_1.5_lower", low)
    m, s, hist = talib.MACD(c, fastperiod=5, slowperiod=35, signalperiod=5)
    add("macd_5_35_5_macd", m)
    add("macd_5_35_5_signal", s)
    add("macd_5_35_5_hist", hist)
    k, d = talib.STOCH(
        h, lo, c, fastk_period=5, slowk_period=3, slowk_matype=SMA, slowd_period=3,
        slowd_matype=SMA,
    )
    add("stoch_5_3_3_k", k)
    add("stoch_5_3_3_d", d)
    add("atr_7", talib.ATR(h, lo, c, timeperiod=7))
    add("adx_7", talib.ADX(h, lo, c, timeperiod=7))
    add("plus_di_7", talib.PLUS_DI(h, lo, c, timeperiod=7))
    add("minus_di_7", talib.MINUS_DI(h, lo, c, timeperiod=7))
    return cols


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def cell(x: float) -> str:
    x = float(x)
    return "" if math.isnan(x) else repr(x)


def check(rows: list[tuple], name: str) -> None:
    for i, (o, h, lo, c, v) in enumerate(rows):
        ok = all(map(math.isfinite, (o, h, lo, c, v))) and lo <= min(o, c) and h >= max(o, c)
        if not ok or v < 0:
            sys.exit(f"{name}[{i}] is not a valid candle: {(o, h, lo, c, v)}")


def write(name: str, rows: list[tuple]) -> int:
    check(rows, name)
    arr = np.array(rows, dtype=np.float64)
    o, h, lo, c, v = (np.ascontiguousarray(arr[:, j]) for j in range(5))
    cols = outputs(o, h, lo, c)
    version = talib.__ta_version__
    if isinstance(version, bytes):
        version = version.decode()
    header = ["open_time", "open", "high", "low", "close", "volume"] + [n for n, _ in cols]
    path = os.path.join(OUT_DIR, f"{name}.csv")
    with open(path, "w", newline="\n") as f:
        f.write(
            f"# series={name} seed={SEED} TA-Lib C {version.split(' ')[0]}"
            " - generated by scripts/gen_talib_fixtures.py, do not edit\n"
        )
        f.write(",".join(header) + "\n")
        for i in range(len(rows)):
            line = [str(i * MINUTE_MS)] + [cell(x) for x in (o[i], h[i], lo[i], c[i], v[i])]
            line += [cell(a[i]) for _, a in cols]
            f.write(",".join(line) + "\n")
    return os.path.getsize(path)


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    rng = np.random.default_rng(SEED)
    total = 0
    for name, gen in (
        ("random_walk", random_walk),
        ("gaps", gaps),
        ("flat_runs", flat_runs),
        ("tiny", tiny),
    ):
        size = write(name, gen(rng))
        total += size
        print(f"{name}: {size} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
