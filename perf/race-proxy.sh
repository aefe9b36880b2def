#!/usr/bin/env bash
# perf/race-proxy.sh — the race's 1 KiB cells through a PROXY listener next to the plain one.
#
# One edgemta (--sync always, as perf/race.sh runs it) with both `--listen 127.0.0.1:P1` and
# `--listen-proxy 127.0.0.1:P2 --proxy-trusted 127.0.0.1/32`: same process, same spool, so the only
# difference between the two targets is the listener. edgemta-load (loadtests/, connections reused, no
# pipelining) sends 1 KiB messages at 10 and then 100 sessions, to P1 plainly and to P2 with `--proxy v2`
# (or v1: `--proxy v1`), which puts a PROXY header first on every connection (HAProxy's
# doc/proxy-protocol.txt; docs/SCREENING.md) naming a client in 203.0.113.1-254 that changes per
# connection, as a balancer in front of many clients would. smtp-source cannot send that header.
#
# Runs alternate plain/proxy inside each pair and the order flips from pair to pair, so drift (page cache,
# the spool growing, the other tenants of this machine) hits both alike. Printed: msg/s and server CPU
# µs/msg per run, the median per cell and the ratio proxy/plain (the target: within 5 %, >= 0.95).
#
# Bounded: every run is capped by its message count and by `timeout`; loopback only; edgemta is stopped by
# its pid on exit (trap). Counts as perf/race.sh's full race (2000 and 4000 messages x its default scale 5).
#
# Usage: perf/race-proxy.sh [--pairs N] [--proxy v1|v2] [--bin PATH] [--out DIR] [--no-build]
#                           [--messages "N10 N100"]
set -uo pipefail

pairs=3 proxy=v2 bin="" out="" build=1 counts="10000 20000"
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift ;;
    --proxy) proxy=$2; shift ;;
    --bin) bin=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    --messages) counts=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "race-proxy.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case $pairs in ''|*[!0-9]*|0) echo "race-proxy.sh: --pairs wants a whole number >= 1" >&2; exit 2 ;; esac
case $proxy in v1|v2) ;; *) echo "race-proxy.sh: --proxy v1 or v2" >&2; exit 2 ;; esac
read -r n10 n100 <<<"$counts"

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${bin:-$root/dist/edgemta}
# The spool must be on a real disk (not tmpfs), or fsync costs nothing: /var/tmp, as perf/race.sh.
work=$(mktemp -d /var/tmp/edgemta-race-proxy.XXXXXX)
out=${out:-$work}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log="$out/race-proxy.log"
results="$out/results.tsv"
: >"$log"
printf 'pair\tlistener\tsessions\tmessages\tmsg_per_s\tcpu_us_per_msg\tstatus\n' >"$results"
say() { echo "$*" | tee -a "$log" >&2; }

server_pid=""
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work/spool" "$work/load"
  [ "$out" != "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v python3 >/dev/null 2>&1 || { say "python3 is needed for the ports and the table"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {   # utime+stime of the server (it has no children)
  local stat rest; local -a f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}

# ---------------------------------------------------------------- binaries
if [ ! -x "$bin" ]; then
  [ "$build" = 1 ] || { say "edgemta: $bin missing and --no-build given"; exit 1; }
  say "edgemta: $bin missing, publishing dist/edgemta"
  (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >>"$log" 2>&1
  bin=$root/dist/edgemta
  [ -x "$bin" ] || { say "edgemta: publish failed (see $log)"; exit 1; }
fi
load_dll="$root/loadtests/EdgeMta.LoadTests/bin/Release/net10.0/edgemta-load.dll"
if [ ! -f "$load_dll" ] || [ "$build" = 1 ]; then
  say "building edgemta-load"
  dotnet build "$root/loadtests/EdgeMta.LoadTests/EdgeMta.LoadTests.csproj" -c Release -nologo -clp:ErrorsOnly >>"$log" 2>&1 \
    || { say "edgemta-load: build failed (see $log)"; exit 1; }
fi
# A private copy, so a rebuild of the tree during the run cannot change the client under it.
cp -r "$(dirname "$load_dll")" "$work/load" && load_dll="$work/load/edgemta-load.dll"

# ---------------------------------------------------------------- the server: both listeners, one process
plain_port=$(free_port) proxy_port=$(free_port)
mkdir -p "$work/spool"
"$bin" serve --listen "127.0.0.1:$plain_port" --listen-proxy "127.0.0.1:$proxy_port" --proxy-trusted 127.0.0.1/32 \
  --spool "$work/spool" --sync always </dev/null >"$out/edgemta.out" 2>>"$out/edgemta.err" &
server_pid=$!
up=0
for _ in $(seq 100); do
  if grep -q "listening on 127.0.0.1:$plain_port" "$out/edgemta.out" 2>/dev/null \
     && grep -q "listening on 127.0.0.1:$proxy_port" "$out/edgemta.out" 2>/dev/null; then up=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$up" = 1 ] || { say "edgemta did not print both 'listening on' lines (see $out/edgemta.err)"; exit 1; }
say "edgemta $bin (pid $server_pid): plain 127.0.0.1:$plain_port, PROXY 127.0.0.1:$proxy_port; client edgemta-load --proxy $proxy"

run_one() {   # pair listener sessions count
  local pair=$1 l=$2 s=$3 n=$4 p rate="" st=ok before after rc row failed cpu
  local -a extra=()
  if [ "$l" = proxy ]; then p=$proxy_port; extra=(--proxy "$proxy"); else p=$plain_port; fi
  before=$(cpu_ticks "$server_pid")
  timeout 180 dotnet "$load_dll" --target "127.0.0.1:$p" --sessions "$s" --messages "$n" --size 1024 \
    "${extra[@]}" --timeout 20s --csv-summary --scenario race-proxy >"$out/client.out" 2>&1
  rc=$?
  after=$(cpu_ticks "$server_pid")
  if [ $rc = 124 ]; then st=timeout
  else
    # summary.csv: count from the end (the quoted description fields may hold commas), as perf/race.sh.
    row=$(tail -n1 "$out/client.out")
    failed=$(awk -F, '{ print (NF >= 17 ? $(NF-7) : "x") }' <<<"$row")
    if [ "$failed" = 0 ]; then rate=$(awk -F, '{ print $(NF-5) }' <<<"$row"); else st="fail:${failed}-failed"; fi
  fi
  cpu=$(awk -v a="$before" -v b="$after" -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
  kill -0 "$server_pid" 2>/dev/null || { st=died; say "edgemta (pid $server_pid) is gone"; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pair" "$l" "$s" "$n" "${rate:-}" "$cpu" "$st" >>"$results"
  say "$(printf 'pair %s  %-5s %4s sess %6s msgs  %9s msg/s  %7s µs CPU/msg  %s' "$pair" "$l" "$s" "$n" "${rate:--}" "$cpu" "$st")"
  [ "$st" != died ]
}

started=$(date +%s)
for cell in "10 $n10" "100 $n100"; do
  read -r s n <<<"$cell"
  for pair in $(seq "$pairs"); do
    if [ $((pair % 2)) = 1 ]; then order=(plain proxy); else order=(proxy plain); fi
    for l in "${order[@]}"; do run_one "$pair" "$l" "$s" "$n" || break 3; done
  done
done
elapsed=$(( $(date +%s) - started ))

{
  echo "edgemta plain vs PROXY $proxy listener, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $pairs pair(s) per cell, ${elapsed}s of runs"
  echo "edgemta-load, 1 KiB, connections reused, no pipelining; edgemta --sync always, one process for both listeners"
  python3 - "$results" <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
print()
print('| sessions | messages/run | plain msg/s (runs) | proxy msg/s (runs) | plain median | proxy median | proxy / plain | CPU µs/msg plain | proxy |')
print('|---:|---:|---|---|---:|---:|---:|---:|---:|')
for s in sorted({int(r['sessions']) for r in rows}):
    cell = [r for r in rows if int(r['sessions']) == s]
    def runs(l): return [r for r in cell if r['listener'] == l]
    def rates(l): return [float(r['msg_per_s']) for r in runs(l) if r['status'] == 'ok' and r['msg_per_s']]
    def cpus(l): return [float(r['cpu_us_per_msg']) for r in runs(l) if r['status'] == 'ok']
    def listed(l): return ', '.join(f"{float(r['msg_per_s']):,.0f}" if r['status'] == 'ok' and r['msg_per_s'] else r['status'] for r in runs(l))
    a, b = rates('plain'), rates('proxy')
    ma = statistics.median(a) if a else None
    mb = statistics.median(b) if b else None
    ca, cb = cpus('plain'), cpus('proxy')
    print(f"| {s} | {cell[0]['messages']} | {listed('plain')} | {listed('proxy')} | "
          f"{f'{ma:,.0f}' if ma else '-'} | {f'{mb:,.0f}' if mb else '-'} | {f'{mb / ma:.3f}' if ma and mb else '-'} | "
          f"{f'{statistics.median(ca):,.0f}' if ca else '-'} | {f'{statistics.median(cb):,.0f}' if cb else '-'} |")
bad = [r for r in rows if r['status'] != 'ok']
if bad: print(f'\n{len(bad)} run(s) did not complete cleanly: see results.tsv')
PY
} | tee "$out/race-proxy.md"
echo "results: $results   table: $out/race-proxy.md   log: $log" >&2
