#!/usr/bin/env bash
# Live latency of `manus demo` (one stream, default strategies) at 20, 30 and 100 ms per candle,
# several binaries run alternately so machine load hits them alike (issue 17). Prints one line
# per run (cadence, binary, run, the run's summary) and the medians of p50 and p99 per binary.
#   scripts/bench/live_ab.sh RUNS BINARY [BINARY...]
# e.g. a base commit built with `git worktree add /tmp/base <commit>` and its own target dir.
set -euo pipefail
RUNS=$1; shift
out=$(mktemp)
for r in $(seq "$RUNS"); do
  for cm in 20 30 100; do
    n=600; [ "$cm" = 100 ] && n=300
    for b in "$@"; do
      line=$("$b" demo --headless --symbols 1 --max-candles "$n" --candle-ms "$cm" --drop-every 0 \
        2>&1 >/dev/null | grep -o "latency p50 [0-9]* µs, p99 [0-9]* µs, max [0-9]* µs")
      echo "$cm $b $r $line (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$out"
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
