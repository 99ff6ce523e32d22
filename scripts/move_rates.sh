#!/usr/bin/env bash
# Measures how often the default selection and each preset decide (moves per 100 candles,
# median confidence, fewest strategies behind a move) on real market data and on the sample:
# the table in docs/STRATEGIES.md. Real data: GOOG daily (2004-2013) and EURUSD hourly
# (2017-2018), the OHLCV files that ship inside PyPI's backtesting 0.6.6 wheel (needs PyPI once).
# Usage: scripts/move_rates.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=target/move-rates
mkdir -p "$DATA"
if [ ! -f "$DATA/GOOG.csv" ] || [ ! -f "$DATA/EURUSD.csv" ]; then
  python3 -m pip download -q --no-deps -d "$DATA" 'backtesting==0.6.6'
  python3 - "$DATA" <<'PY'
import sys, zipfile, glob
d = sys.argv[1]
wheel = glob.glob(f"{d}/backtesting-0.6.6-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("GOOG", "EURUSD"):
        rows = z.read(f"backtesting/test/{name}.csv").decode().splitlines()
        # The files' first header cell is empty: name it so `manus` finds the time column.
        rows[0] = "date" + rows[0]
        open(f"{d}/{name}.csv", "w").write("\n".join(rows) + "\n")
PY
fi
cargo build -q --release -p manus-core --example move_rates
BIN="${CARGO_TARGET_DIR:-target}/release/examples/move_rates"
echo "| strategies | confluence | data | candles | moves | per 100 | median confidence | fewest agreeing |"
echo "|---|---|---|---|---|---|---|---|"
for sel_mode in "trend majority" "reversal majority" "reversal any" "smc majority" "all majority" "all weighted"; do
  # shellcheck disable=SC2086
  "$BIN" $sel_mode "$DATA/GOOG.csv" "$DATA/EURUSD.csv" data/btcusdt_5m_sample.csv
done
