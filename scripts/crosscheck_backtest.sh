#!/usr/bin/env bash
# Manual cross-check of `manus backtest` (ema_crossover) against backtesting.py; see
# docs/BACKTESTING.md. Not part of `cargo test`: it needs PyPI once to fill the venv.
# Usage: scripts/crosscheck_backtest.sh [CSV] [FAST] [SLOW] [FEE_BPS]
set -euo pipefail
cd "$(dirname "$0")/.."
CSV=${1:-data/btcusdt_5m_sample.csv}
FAST=${2:-9}
SLOW=${3:-21}
FEE=${4:-10}
VENV=target/crosscheck-venv
OUT=target/crosscheck
mkdir -p "$OUT"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import backtesting' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'backtesting==0.6.6'
fi
MANUS=${MANUS:-}
if [ -z "$MANUS" ]; then
  cargo build -q --release -p market-manus
  MANUS="${CARGO_TARGET_DIR:-target}/release/manus"
fi
"$MANUS" backtest --csv "$CSV" --strategies ema_crossover --confluence all --param ema_crossover.hold=1 \
  --param ema_crossover.fast="$FAST" --param ema_crossover.slow="$SLOW" \
  --fee-bps "$FEE" --mode long-only --json \
  --trades-out "$OUT/trades.csv" --signals-out "$OUT/signals.jsonl" > "$OUT/summary.json"
"$VENV/bin/python" scripts/crosscheck_backtest.py "$CSV" "$FAST" "$SLOW" "$FEE" \
  "$OUT/summary.json" "$OUT/trades.csv" "$OUT/signals.jsonl"
