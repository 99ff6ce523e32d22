#!/usr/bin/env bash
# Live latency at 20, 30 and 100 ms per candle, several binaries run alternately so machine load
# hits them alike (issue 17). Prints one line per run (cadence, binary, run, the run's summary)
# and the medians of p50 and p99 per binary.
#   scripts/bench/live_ab.sh [--sep] RUNS BINARY [BINARY...]
# By default `manus demo` (one stream, default strategies, its simulated exchange in-process;
# 600 candles, 300 at 100 ms). With --sep the exchange runs in a process of its own
# (`manus exchange-sim`, served by the first binary) and each binary connects to it with
# `manus live` over loopback (300 candles).
# A base commit can be built with `git worktree add /tmp/base <commit>` and its own target dir.
set -euo pipefail
SEP=0; [ "${1:-}" = --sep ] && { SEP=1; shift; }
RUNS=$1; shift
SIM=$1
out=$(mktemp)
summary() { grep -o "latency p50 [0-9]* µs, p99 [0-9]* µs, max [0-9]* µs" || true; }
one() { # binary cadence
  if [ "$SEP" = 0 ]; then
    local n=600; [ "$2" = 100 ] && n=300
    "$1" demo --headless --symbols 1 --max-candles "$n" --candle-ms "$2" --drop-every 0 \
      2>&1 >/dev/null | summary
    return
  fi
  local port=$((19000 + RANDOM % 1000))
  "$SIM" exchange-sim --port "$port" --candle-ms "$2" --history 600 >/dev/null 2>&1 &
  local sim=$!
  sleep 1
  timeout 120 "$1" live --symbol BTCUSDT --interval 1m --ws-url "ws://127.0.0.1:$port/ws" \
    --rest-url "http://127.0.0.1:$port" --headless --max-candles 300 2>&1 >/dev/null | summary
  kill "$sim"; wait "$sim" 2>/dev/null || true
}
for r in $(seq "$RUNS"); do
  for cm in 20 30 100; do
    for b in "$@"; do
      echo "$cm $b $r $(one "$b" "$cm") (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$out"
    done
  done
done
python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for l in open(sys.argv[1]):
    m = re.match(r"(\d+) (\S+) \d+ latency p50 (\d+) µs, p99 (\d+) µs", l)
    if m:
        runs.setdefault((int(m[1]), m[2]), []).append((int(m[3]), int(m[4])))
for (cm, b), v in sorted(runs.items()):
    p50 = statistics.median(a for a, _ in v)
    p99 = statistics.median(b for _, b in v)
    print(f"{cm:>3} ms  {b}: median p50 {p50} µs, p99 {p99} µs over {len(v)} runs")
PY
rm -f "$out"
