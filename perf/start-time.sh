#!/usr/bin/env bash
# perf/start-time.sh — how long each edgemta binary takes from exec to its `listening on` line (spool
# recovered, sockets bound), and to a clean exit after SIGTERM; the binaries alternate run by run so
# drift hits them alike. Prints the median and p90 of each, and the ratios to the first binary.
#
# Usage: perf/start-time.sh [--runs N] BIN [BIN...]        (default 21 runs each; loopback, port 0)
set -uo pipefail
runs=21
[ "${1:-}" = --runs ] && { runs=$2; shift 2; }
[ $# -ge 1 ] || { sed -n '2,7p' "$0"; exit 2; }
work=$(mktemp -d /var/tmp/edgemta-start.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
declare -A starts stops
for _ in $(seq "$runs"); do
  for bin in "$@"; do
    rm -rf "$work/spool" "$work/out"
    t0=$(date +%s%N)
    "$bin" serve --listen 127.0.0.1:0 --spool "$work/spool" </dev/null >"$work/out" 2>/dev/null &
    pid=$!
    ok=0
    for _ in $(seq 2000); do   # at most about 10 s
      grep -q '^listening on' "$work/out" 2>/dev/null && { ok=1; break; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.005
    done
    t1=$(date +%s%N)
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; t2=$(date +%s%N); pid=""
    [ $ok = 1 ] || { echo "$bin did not print 'listening on'" >&2; exit 1; }
    starts[$bin]+="$(( (t1 - t0) / 1000 )) "
    stops[$bin]+="$(( (t2 - t1) / 1000 )) "
  done
done
python3 - "$@" <<PY
import statistics, sys
starts = {$(for b in "$@"; do printf "'%s': [%s], " "$b" "$(echo ${starts[$b]} | tr ' ' ',')"; done)}
stops = {$(for b in "$@"; do printf "'%s': [%s], " "$b" "$(echo ${stops[$b]} | tr ' ' ',')"; done)}
first = sys.argv[1]
def p90(v): return sorted(v)[int(0.9 * (len(v) - 1))]
print("| binary | size | start median | start p90 | stop median | start / first |")
print("|---|---:|---:|---:|---:|---:|")
import os
for b in sys.argv[1:]:
    s, t = starts[b], stops[b]
    print(f"| {b} | {os.path.getsize(b):,} B | {statistics.median(s)/1000:.1f} ms | {p90(s)/1000:.1f} ms | {statistics.median(t)/1000:.1f} ms | {statistics.median(s)/statistics.median(starts[first]):.2f} |")
PY
