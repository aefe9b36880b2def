#!/usr/bin/env bash
# perf/metrics-cost.sh — what the metrics cost on the hot path: dist/edgemta with and without
# --metrics-listen, the metrics port scraped every second by curl (as Prometheus would) during the run.
#
# Cells: smtp-source 1 KiB messages over reused connections (-d), 10 and 100 sessions, the race's cells.
# The two targets alternate inside each cell and round so drift hits them alike. Printed per cell: the
# median msg/s and server CPU per message (utime+stime from /proc/PID/stat) of each target, and the ratio
# metrics/plain. The counters are Interlocked increments where the work happens (one per command, one
# per reply, two per message, one per flush batch): the expected ratio is 1 within the machine's noise.
# The number of scrapes answered 200 during the metrics runs is printed too, so a run where curl did not
# get through cannot pass for a cheap one.
# Both targets keep the counters (they are always on); what they cost against a build without them is
# what `--baseline BINARY` adds: a third target, that binary (e.g. one published from an older commit)
# without the flag, and the ratio plain/baseline.
#
# Bounded: each run is capped by its message count and `timeout 300`; the scrape loop ends with its
# server and after at most 600 scrapes; loopback only; the server is stopped by its pid on exit (trap).
# Needs smtp-source (apt-get install postfix), curl and python3.
#
# Usage: perf/metrics-cost.sh [--rounds N] [--messages M] [--sessions "10 100"] [--baseline BINARY]
#   defaults: 3 rounds, 20000 messages of 1024 bytes per run
set -uo pipefail

rounds=3 messages=20000 sessions_list="10 100" size=1024 baseline="" targets="plain metrics"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --messages) messages=$2; shift ;;
    --sessions) sessions_list=$2; shift ;;
    --baseline) baseline=$2; targets="baseline plain metrics"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "metrics-cost.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin"
for tool in smtp-source curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "metrics-cost.sh: $tool missing (apt-get install postfix curl python3)" >&2; exit 1; }
done
[ -x "$root/dist/edgemta" ] || { echo "metrics-cost.sh: no dist/edgemta; run: dotnet publish src/EdgeMta -c Release -o dist" >&2; exit 1; }
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "metrics-cost.sh: --baseline $baseline is not an executable" >&2; exit 1; }

# On a real disk, not tmpfs: a flush must cost what it costs.
work=$(mktemp -d /var/tmp/edgemta-metrics-cost.XXXXXX)
server_pid="" scraper_pid=""
cleanup() {
  [ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null && wait "$scraper_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
proc_ticks() { local s; s=$(cat "/proc/$1/stat") || return 1; s=${s##*) }; local -a f; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
wait_port() {
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),0.2).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "metrics-cost.sh: nothing listening on $1" >&2; exit 1
}

# One run: prints "target sessions msg/s server_us_per_msg scrapes".
run() {
  local target=$1 sessions=$2 port mport="" t0 t1 s0 s1 scrapes=0
  port=$(free_port)
  rm -rf "$work/spool"
  if [ "$target" = metrics ]; then
    mport=$(free_port)
    "$root/dist/edgemta" --listen "127.0.0.1:$port" --spool "$work/spool" --metrics-listen "127.0.0.1:$mport" >"$work/edgemta.log" 2>&1 &
  elif [ "$target" = baseline ]; then
    "$baseline" --listen "127.0.0.1:$port" --spool "$work/spool" >"$work/edgemta.log" 2>&1 &
  else
    "$root/dist/edgemta" --listen "127.0.0.1:$port" --spool "$work/spool" >"$work/edgemta.log" 2>&1 &
  fi
  server_pid=$!
  wait_port "$port"
  : >"$work/scrapes"
  if [ -n "$mport" ]; then
    # Prometheus' way: one GET a second, the body read in full. Ends with the server or after 600 scrapes.
    ( for _ in $(seq 600); do
        kill -0 "$server_pid" 2>/dev/null || break
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "http://127.0.0.1:$mport/metrics" >>"$work/scrapes"
        sleep 1
      done ) &
    scraper_pid=$!
  fi
  s0=$(proc_ticks "$server_pid"); t0=$(date +%s%N)
  timeout 300 smtp-source -d -s "$sessions" -m "$messages" -l "$size" -f cost@example.com -t sink@example.com "127.0.0.1:$port" >/dev/null 2>&1
  t1=$(date +%s%N); s1=$(proc_ticks "$server_pid")
  if [ -n "$scraper_pid" ]; then kill "$scraper_pid" 2>/dev/null; wait "$scraper_pid" 2>/dev/null; scraper_pid=""; fi
  scrapes=$(grep -c '^200$' "$work/scrapes")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
  python3 -c "import sys; n=$messages; print('$target', $sessions, f'{n*1e9/($t1-$t0):.0f}', f'{($s1-$s0)*1e6/$(getconf CLK_TCK)/n:.1f}', $scrapes)"
}

echo "cells: smtp-source -d -m $messages -l $size, sessions: $sessions_list; $(nproc) cores; $rounds rounds, alternating" >&2
results=$work/results
for r in $(seq "$rounds"); do
  for sessions in $sessions_list; do
    for target in $targets; do
      line=$(run "$target" "$sessions"); echo "round $r: $line" >&2; echo "$line" >>"$results"
    done
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    target, sessions, rate, cpu, scrapes = line.split()
    rows.setdefault((int(sessions), target), []).append((float(rate), float(cpu), int(scrapes)))
targets = [t for t in ("baseline", "plain", "metrics") if any(k[1] == t for k in rows)]
print("| sessions | target | msg/s (median) | msg/s (all rounds) | CPU us/msg (median) | CPU us/msg (all rounds) | scrapes answered |")
print("|---:|---|---:|---|---:|---|---:|")
med = {}
for sessions in sorted({s for s, _ in rows}):
    for t in targets:
        runs = rows[(sessions, t)]
        rate, cpu = statistics.median(r for r, _, _ in runs), statistics.median(c for _, c, _ in runs)
        med[(sessions, t)] = (rate, cpu)
        print(f"| {sessions} | {t} | {rate:,.0f} | {' '.join(f'{r:.0f}' for r, _, _ in runs)} | {cpu:.1f} | "
              f"{' '.join(f'{c:.1f}' for _, c, _ in runs)} | {sum(s for _, _, s in runs) if t == 'metrics' else '-'} |")
print()
for sessions in sorted({s for s, _ in rows}):
    (pr, pc), (mr, mc) = med[(sessions, "plain")], med[(sessions, "metrics")]
    line = f"{sessions} sessions: metrics/plain msg/s {mr/pr:.3f}, CPU {mc/pc:.3f}"
    if "baseline" in targets:
        br, bc = med[(sessions, "baseline")]
        line += f"; plain/baseline msg/s {pr/br:.3f}, CPU {pc/bc:.3f}"
    print(line)
print("medians of the rounds; metrics = --metrics-listen scraped every second; plain = same binary without it")
PY
