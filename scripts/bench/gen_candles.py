#!/usr/bin/env python3
"""Writes N seeded random-walk 5-minute candles (headered CSV) for the whole-process benchmarks.

    python3 scripts/bench/gen_candles.py 1000000 /tmp/1m.csv
"""
import math
import random
import sys

n, path = int(sys.argv[1]), sys.argv[2]
random.seed(17)
t0, step = 1_500_000_000_000 // 300_000 * 300_000, 300_000
price, vol, drift = 30_000.0, 0.0015, 0.0
with open(path, "w") as f:
    f.write("open_time,open,high,low,close,volume\n")
    for i in range(n):
        if i % 500 == 0:
            drift = random.choice([-1, 0, 0, 1]) * 0.0002
        vol = max(0.0004, min(0.01, vol * math.exp(random.gauss(0, 0.1)) * 0.99 + 0.000015))
        o = price
        c = o * math.exp(drift + random.gauss(0, vol) - 0.0001 * math.log(o / 30_000.0))
        hi = max(o, c) * (1 + abs(random.gauss(0, vol / 2)))
        lo = min(o, c) * (1 - abs(random.gauss(0, vol / 2)))
        v = abs(random.gauss(50, 20)) * (1 + 50 * vol)
        f.write(f"{t0 + i * step},{o:.2f},{hi:.2f},{lo:.2f},{c:.2f},{v:.4f}\n")
        price = c
