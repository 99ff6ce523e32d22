"""Writes the pandas fixtures the Parquet tests read (tests/parquet.rs); rerun to regenerate:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install pandas pyarrow
    /tmp/v/bin/python crates/app/tests/data/make_pandas_fixture.py

pandas_candles.parquet is what a pandas user typically writes: open_time as a tz-aware
datetime (pandas stores TIMESTAMP(NANOS or MICROS, UTC)), every column nullable, the pandas
metadata, an extra column. pandas_candles.csv holds the same candles as `manus fetch --out`
writes them (open_time in ms), written independently of manus, to compare against.
"""

import math
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
N = 600
START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 300_000  # on a 5m boundary

rows = []
price = 100.0
for i in range(N):
    # A deterministic wave with trends, so the strategies produce BUY and SELL decisions.
    drift = 2.0 * math.sin(i / 17.0) + 1.2 * math.sin(i / 5.0)
    open_ = round(price, 2)
    close = round(max(1.0, price + drift), 2)
    high = round(max(open_, close) + 0.5 + (i % 7) * 0.1, 2)
    low = round(min(open_, close) - 0.5 - (i % 5) * 0.1, 2)
    volume = round(10.0 + (i * 37 % 101) / 4.0, 3)
    rows.append((START_MS + i * 300_000, open_, high, low, close, volume))
    price = close

df = pd.DataFrame(rows, columns=["open_time", "open", "high", "low", "close", "volume"])
csv_lines = ["open_time,open,high,low,close,volume"] + [
    f"{t},{o!r},{h!r},{l!r},{c!r},{v!r}" for (t, o, h, l, c, v) in rows
]
(HERE / "pandas_candles.csv").write_text("\n".join(csv_lines) + "\n")

pq = df.copy()
pq["open_time"] = pd.to_datetime(pq["open_time"], unit="ms", utc=True)
pq["symbol"] = "BTCUSDT"  # an extra column, ignored by manus
pq.to_parquet(HERE / "pandas_candles.parquet", engine="pyarrow", compression="snappy")
print(pd.read_parquet(HERE / "pandas_candles.parquet").dtypes)

# corrupt_offsets.parquet: pandas_candles.parquet with a few bytes flipped at random, one of
# the mutations on which the parquet crate (60.1) asserts instead of returning an error; the
# app must still exit 2 with a message (tests/parquet.rs). Kept as found, not regenerated.
