#!/usr/bin/env bash
# perf/commit-latency.sh: how long the final dot waits for its 250 at one session, beside the cost of a
# bare device round trip measured in the same run, and the two goals of the commit path that are ratios
# to it (docs/PERF-NOTES.md; the disk here is noisy, so only figures from one run are compared):
#   p99 dot→250 of edgemta at 1 session  ≤ 2 × p50 of a bare fdatasync
#   edgemta msg/s at 1 session           ≥ 1 / (smtp-sink's time per message + p50 of a bare fdatasync)
#
# Targets, alternating round by round (3 rounds by default) so drift hits them alike:
#   fsync-probe    perf/fsync-probe.c (compiled here with gcc): 4 KiB pwrite + fdatasync into a 64 MiB
#                  allocated, written file; and the O_DIRECT|O_DSYNC variant, one in flight.
#   edgemta (and edgemta-b)  BIN serve --sync always on a spool in the same directory, driven by
#                  edgemta-load --sessions 1 --size 1024 (connection reused): "end of data" p50/p99
#                  (dot written → 250 read) and msg/s from its steps.csv and summary.csv.
#   smtp-sink      smtp-source -s 1 -d -l 1024 (one connection reused, as edgemta-load does): its time per
#                  message is the client's and the loopback's share of a message, nothing stored. Also
#                  driven by edgemta-load, for its dot→250 (what the client and loopback cost alone).
# Not measured: CPU, several sessions (perf/race.sh does those), or a stalled disk.
#
# Usage: perf/commit-latency.sh [--bin PATH] [--bin-b "PATH [FLAGS...]"] [--dir DIR] [--rounds N]
#                               [--messages N] [--syncs N] [--warmup N] [--out DIR]
#   --bin      edgemta binary (default dist/edgemta); --bin-b a second one (e.g. the previous build)
#   --dir      where the spools and the probe file live (default /var/tmp: it must be the spool's disk;
#              tmpfs makes every sync free and the probe refuses O_DIRECT there)
#   --messages per edgemta/smtp-sink run (default 3000); --syncs per probe run (default 2000)
#   --warmup   N messages sent to each fresh edgemta and not measured, then a 1 s pause (default 0). A fresh
#              spool writes its first segments' 64 MiB of zeros while the first commits run, so a short
#              cold run weighs that start in its p99 far more than a long run meets it (once per segment)
#   --out      keeps the raw outputs (default: a temp dir, removed)
# Needs gcc, smtp-source and smtp-sink (Debian: postfix), python3, dotnet; builds edgemta-load when missing.
# Bounded: every run under `timeout`; loopback only; every process started is stopped by its pid (trap).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/dist/edgemta" bin_b="" dir=/var/tmp rounds=3 messages=3000 syncs=2000 out="" warmup=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift ;;
    --bin-b) bin_b=$2; shift ;;
    --dir) dir=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --messages) messages=$2; shift ;;
    --syncs) syncs=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "commit-latency.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case $warmup in ''|*[!0-9]*) echo "commit-latency.sh: --warmup wants a whole number" >&2; exit 2 ;; esac
for v in "$rounds" "$messages" "$syncs"; do
  case $v in ''|*[!0-9]*|0) echo "commit-latency.sh: --rounds, --messages and --syncs want whole numbers >= 1" >&2; exit 2 ;; esac
done
[ -x /usr/sbin/smtp-source ] && export PATH="$PATH:/usr/sbin"
for tool in gcc smtp-source smtp-sink python3 dotnet; do
  command -v "$tool" >/dev/null 2>&1 || { echo "commit-latency.sh: $tool is needed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "commit-latency.sh: $bin missing (dotnet publish src/EdgeMta -c Release -o dist, or --bin)" >&2; exit 1; }

work=$(mktemp -d "$dir/edgemta-commit-latency.XXXXXX") || exit 1
chmod 755 "$work"
keep=1; [ -z "$out" ] && { out="$work/out"; keep=0; }
mkdir -p "$out"; out=$(cd "$out" && pwd)
results="$out/results.tsv"
printf 'round\ttarget\tp50_us\tp99_us\tmsg_per_s\tsink_us_per_msg\tstatus\n' >"$results"

declare -A server_pid=()
sink_pid=""
cleanup() {
  set +e
  for p in "${server_pid[@]}" "$sink_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$work"   # spools, the probe file and the probe; the outputs too unless --out put them elsewhere
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -Wall -o "$work/fsync-probe" "$root/perf/fsync-probe.c" 2>"$out/gcc.log" || { echo "fsync-probe: gcc failed (see $out/gcc.log)" >&2; exit 1; }
load_dll="$root/loadtests/EdgeMta.LoadTests/bin/Release/net10.0/edgemta-load.dll"
if [ ! -f "$load_dll" ]; then
  echo "building edgemta-load" >&2
  dotnet build "$root/loadtests/EdgeMta.LoadTests/EdgeMta.LoadTests.csproj" -c Release -nologo -clp:ErrorsOnly >"$out/build.log" 2>&1 \
    || { echo "edgemta-load: build failed (see $out/build.log)" >&2; exit 1; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# The targets and how each edgemta runs.
declare -A target_bin=([edgemta]="$bin") target_flags=([edgemta]="")
targets=(fsync-probe edgemta smtp-sink)
if [ -n "$bin_b" ]; then
  read -r -a words <<<"$bin_b"
  target_bin[edgemta-b]=${words[0]}; target_flags[edgemta-b]="${words[*]:1}"
  [ -x "${words[0]}" ] || { echo "commit-latency.sh: ${words[0]} missing" >&2; exit 1; }
  targets+=(edgemta-b)
fi

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }

# edgemta-load at 1 session against 127.0.0.1:$2; records "end of data" p50/p99 and msg/s.
load_run() {   # round label port
  local r=$1 t=$2 p=$3 rep="$out/load-$1-$2"
  timeout 120 dotnet "$load_dll" --target "127.0.0.1:$p" --sessions 1 --messages "$messages" --size 1024 \
    --timeout 20s --scenario commit-latency -q --report-dir "$rep" >"$rep.out" 2>&1
  local rc=$? failed eod rate
  failed=$(awk -F, 'NR == 2 { print $(NF-7) }' "$rep/summary.csv" 2>/dev/null)
  if [ $rc = 124 ]; then record "$r" "$t" "" "" "" "" timeout; return; fi
  if [ "${failed:-x}" != 0 ]; then record "$r" "$t" "" "" "" "" "fail:rc=$rc,failed=${failed:-?}"; return; fi
  # steps.csv: step,count,mean_us,p50_us,p75_us,p95_us,p99_us,max_us; summary.csv: msg_per_s is 6th from the end.
  eod=$(awk -F, '$1 == "end of data" || $1 == "\"end of data\"" { print $4 "\t" $7 }' "$rep/steps.csv")
  rate=$(awk -F, 'NR == 2 { print $(NF-5) }' "$rep/summary.csv")
  record "$r" "$t" "${eod%%$'\t'*}" "${eod##*$'\t'}" "$rate" "" ok
}

run_edgemta() {   # round target
  local r=$1 t=$2 spool="$work/spool-$2" line="" p=""
  rm -rf "$spool"; mkdir -p "$spool"
  local -a flags=(); read -r -a flags <<<"${target_flags[$t]}"
  local -a sync=(--sync always)   # unless the flags choose (--sync none: what the client and loopback cost)
  [[ " ${flags[*]} " == *" --sync "* ]] && sync=()
  "${target_bin[$t]}" serve --listen 127.0.0.1:0 --spool "$spool" "${sync[@]}" "${flags[@]}" \
    </dev/null >"$out/$t-$r.out" 2>"$out/$t-$r.err" &
  server_pid[$t]=$!
  for _ in $(seq 100); do
    line=$(head -n1 "$out/$t-$r.out" 2>/dev/null)
    if [[ "$line" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]]; then p=${BASH_REMATCH[1]}; break; fi
    kill -0 "${server_pid[$t]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$p" ] && [ "$warmup" -gt 0 ]; then
    timeout 120 dotnet "$load_dll" --target "127.0.0.1:$p" --sessions 1 --messages "$warmup" --size 1024 \
      --timeout 20s --scenario warmup -q >"$out/warmup-$r-$t.out" 2>&1
    sleep 1
  fi
  if [ -n "$p" ]; then load_run "$r" "$t" "$p"; else record "$r" "$t" "" "" "" "" "did-not-start"; fi
  kill "${server_pid[$t]}" 2>/dev/null; wait "${server_pid[$t]}" 2>/dev/null; server_pid[$t]=""
  rm -rf "$spool"
}

run_sink() {   # round
  local r=$1 p t0 t1 rc; p=$(free_port)
  local -a user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" "127.0.0.1:$p" 1024 </dev/null >>"$out/smtp-sink.log" 2>&1 &
  sink_pid=$!
  local up=0
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then up=1; break; fi
    kill -0 "$sink_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$up" = 1 ]; then
    t0=$(date +%s.%N)
    timeout 120 smtp-source -s 1 -d -m "$messages" -l 1024 "127.0.0.1:$p" >"$out/smtp-source-$r.out" 2>&1
    rc=$?; t1=$(date +%s.%N)
    if [ $rc = 0 ]; then
      record "$r" smtp-sink "" "" "$(awk -v n="$messages" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')" \
        "$(awk -v n="$messages" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')" ok
    else record "$r" smtp-sink "" "" "" "" "fail:rc=$rc"; fi
    load_run "$r" smtp-sink-load "$p"
  else
    record "$r" smtp-sink "" "" "" "" did-not-start
  fi
  kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null; sink_pid=""
}

run_probe() {   # round
  local r=$1 mode line
  for mode in fdatasync dsync-direct; do
    line=$(timeout 120 "$work/fsync-probe" "$work/probe.dat" "$syncs" "$mode" 2>>"$out/probe.err")
    if [[ "$line" =~ p50_us=([0-9.]+)\ p99_us=([0-9.]+).*ops_per_s=([0-9.]+) ]]; then
      record "$r" "$mode" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "" ok
    else
      record "$r" "$mode" "" "" "" "" "fail:$(tail -n1 "$out/probe.err" | tr '\t' ' ')"
    fi
  done
}

started=$(date +%s)
for r in $(seq "$rounds"); do
  k=$(( (r - 1) % ${#targets[@]} ))
  order=("${targets[@]:k}" "${targets[@]:0:k}")   # rotate the order round by round
  for t in "${order[@]}"; do
    case $t in
      fsync-probe) run_probe "$r" ;;
      smtp-sink) run_sink "$r" ;;
      *) run_edgemta "$r" "$t" ;;
    esac
    echo "round $r: $t done" >&2
  done
done
elapsed=$(( $(date +%s) - started ))

python3 - "$results" "$rounds" "$messages" "$syncs" "$elapsed" "$dir" "$warmup" <<'PY' | tee "$out/table.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
rounds, messages, syncs, elapsed, where, warmup = sys.argv[2:8]
def vals(t, col):
    return [float(r[col]) for r in rows if r['target'] == t and r['status'] == 'ok' and r[col]]
def med(t, col):
    v = vals(t, col); return statistics.median(v) if v else None
def spread(t, col):
    v = vals(t, col); return f"{min(v):,.0f}–{max(v):,.0f}" if v else '-'
def f(x, fmt='{:,.0f}'): return fmt.format(x) if x is not None else '-'
print(f"commit latency at 1 session, {rounds} round(s) alternating, {messages} messages of 1 KiB per run (after {warmup} unmeasured), "
      f"{syncs} syncs per probe run, spool and probe on {where}, {elapsed}s; medians over rounds (min–max)")
print()
print('| target | p50 dot→250 µs | p99 dot→250 µs | msg/s | sink µs/msg |')
print('|---|---:|---:|---:|---:|')
names = {'edgemta': 'edgemta (--bin)', 'edgemta-b': 'edgemta-b (--bin-b)', 'smtp-sink': 'smtp-sink (smtp-source -d)',
         'smtp-sink-load': 'smtp-sink (edgemta-load)'}
for t in ['edgemta', 'edgemta-b', 'smtp-sink-load', 'smtp-sink']:
    if not any(r['target'] == t for r in rows): continue
    print(f"| {names[t]} | {f(med(t, 'p50_us'))} ({spread(t, 'p50_us')}) | {f(med(t, 'p99_us'))} ({spread(t, 'p99_us')}) | "
          f"{f(med(t, 'msg_per_s'))} ({spread(t, 'msg_per_s')}) | {f(med(t, 'sink_us_per_msg'), '{:,.1f}')} |")
print()
print('| bare sync (4 KiB, one in flight) | p50 µs | p99 µs | ops/s |')
print('|---|---:|---:|---:|')
for t, name in [('fdatasync', 'pwrite + fdatasync (fdatasync timed)'), ('dsync-direct', 'pwrite O_DIRECT|O_DSYNC')]:
    print(f"| {name} | {f(med(t, 'p50_us'), '{:,.1f}')} ({spread(t, 'p50_us')}) | {f(med(t, 'p99_us'), '{:,.1f}')} ({spread(t, 'p99_us')}) | {f(med(t, 'msg_per_s'))} |")
print()
fs50, sink = med('fdatasync', 'p50_us'), med('smtp-sink', 'sink_us_per_msg')
print('| goal | target | measured | bound | met |')
print('|---|---|---:|---:|---|')
for t in ['edgemta', 'edgemta-b']:
    if not any(r['target'] == t for r in rows): continue
    p99, rate = med(t, 'p99_us'), med(t, 'msg_per_s')
    if p99 is not None and fs50:
        print(f"| p99 dot→250 ≤ 2 × fdatasync p50 | {t} | {p99:,.0f} µs | {2 * fs50:,.0f} µs | {'yes' if p99 <= 2 * fs50 else 'no'} |")
    if rate is not None and fs50 and sink:
        bound = 1e6 / (sink + fs50)
        print(f"| msg/s ≥ 1 / (sink µs/msg + fdatasync p50) | {t} | {rate:,.0f} msg/s | {bound:,.0f} msg/s | {'yes' if rate >= bound else 'no'} |")
bad = [r for r in rows if r['status'] != 'ok']
if bad:
    print()
    print(f"{len(bad)} run(s) did not complete cleanly: " + '; '.join(f"round {r['round']} {r['target']}: {r['status']}" for r in bad))
PY
[ "$keep" = 1 ] && echo "raw outputs: $out (results.tsv, table.md, edgemta-load reports)" >&2
exit 0
