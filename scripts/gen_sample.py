#!/usr/bin/env python3
"""Writes data/btcusdt_5m_sample.csv: 3,000 synthetic 5-minute BTCUSDT-like candles.

Deterministic (seeded) random walk with volatility clustering, trends and ranges, so every
strategy fires now and then. The exchanges are unreachable from our machines, so the sample is
synthetic; the format is the headered one `manus` reads. Re-run: python3 scripts/gen_sample.py
"""
import math
import random

random.seed(20240101)
n, t0, step = 3000, 1_704_067_200_000, 300_000  # 2024-01-01T00:00Z, 5m
price, vol, drift = 42_000.0, 0.0015, 0.0
rows = ["open_time,open,high,low,close,volume"]
for i in range(n):
    if i % 250 == 0:
        drift = random.choice([-1, 0, 0, 1]) * 0.0004  # regime: trend down, range, trend up
    vol = max(0.0004, min(0.01, vol * math.exp(random.gauss(0, 0.15)) * 0.98 + 0.00003))
    o = price
    c = o * math.exp(drift + random.gauss(0, vol))
    h = max(o, c) * (1 + abs(random.gauss(0, vol / 2)))
    l = min(o, c) * (1 - abs(random.gauss(0, vol / 2)))
    v = abs(random.gauss(50, 20)) * (1 + 50 * vol)
    rows.append(f"{t0 + i * step},{o:.2f},{h:.2f},{l:.2f},{c:.2f},{v:.4f}")
    price = c
with open("data/btcusdt_5m_sample.csv", "w") as f:
    f.write("\n".join(rows) + "\n")
