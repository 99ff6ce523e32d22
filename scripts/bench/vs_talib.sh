#!/usr/bin/env bash
# Whole-process comparison for issue 17, interleaved in one run so machine load hits both alike:
# `manus backtest` and `manus signals` (all strategies) against the pandas + TA-Lib batch.
# Prints each run and the medians and ratios. Needs: pip install ta-lib pandas.
#   scripts/bench/vs_talib.sh [RUNS=5] [CANDLES=1000000]
# With BASE=path/to/an/older/manus, that binary runs in the same loop too (before/after).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}; N=${2:-1000000}
CSV=target/bench-${N}.csv
[ -f "$CSV" ] || python3 scripts/bench/gen_candles.py "$N" "$CSV"
cargo build --release --locked -q -p market-manus
M=target/release/manus
t() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -n 1; }
declare -a B S P OB OS
for i in $(seq "$RUNS"); do
  B+=("$(t $M backtest --csv "$CSV" --strategies all)")
  S+=("$(t $M signals --csv "$CSV" --strategies all)")
  P+=("$(t python3 scripts/bench/talib_batch.py "$CSV")")
  line="run $i: backtest ${B[-1]} s, signals ${S[-1]} s, pandas+talib ${P[-1]} s"
  if [ -n "${BASE:-}" ]; then
    OB+=("$(t "$BASE" backtest --csv "$CSV" --strategies all)")
    OS+=("$(t "$BASE" signals --csv "$CSV" --strategies all)")
    line="$line; base: backtest ${OB[-1]} s, signals ${OS[-1]} s"
  fi
  echo "$line"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb=$(median "${B[@]}"); ms=$(median "${S[@]}"); mp=$(median "${P[@]}")
echo "median of $RUNS: backtest $mb s, signals $ms s, pandas+talib $mp s"
if [ -n "${BASE:-}" ]; then
  echo "base median: backtest $(median "${OB[@]}") s, signals $(median "${OS[@]}") s"
fi
python3 -c "import sys; b, s, p = map(float, sys.argv[1:]); print(f'ratios: backtest/reference {b / p:.2f}, signals/reference {s / p:.2f}')" "$mb" "$ms" "$mp"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
