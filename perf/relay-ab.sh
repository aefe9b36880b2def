#!/usr/bin/env bash
# perf/relay-ab.sh — the accept rate with --relay against the rate without, and two builds against each other,
# in one run (docs/DELIVERY.md: with --relay, accepting should keep at least 0.8 of the rate). perf/race-relay.sh
# races one build against Postfix; this one answers "did the change help", where the machine is too noisy for
# two separate runs to compare: the targets alternate inside each round, order rotating, and the table gives the
# per-round ratios to the plain target (their median and spread) rather than a ratio of two runs.
#
#   plain     BIN serve --sync always, no --relay
#   relay     BIN with --relay smtp://127.0.0.1:SINK --relay-tls none (one smtp-sink behind every relay target)
#   relayB    BIN_B (--bin-b) with the same flags: the build being compared
#
# Per run and target, scraped from --metrics-listen before and after: accepted msg/s (count / time until
# smtp-source exits), server CPU µs per message (utime+stime from /proc, sampled once the agent's queue is
# empty, so the relay's own work is in it), spool flushes per message and their mean time
# (edgemta_spool_flush_seconds: what every 250 waits on), journal writes per message and records per write.
#
# Bounded: smtp-source under `timeout 120`; the wait for the queue to empty at most 10 s; every process
# started is stopped by its pid on exit. Loopback only; spools under /var/tmp (a real disk, not tmpfs).
#
# Usage: perf/relay-ab.sh [--bin PATH] [--bin-b PATH] [--rounds N] [--sessions N] [--count N] [--out DIR]
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/dist/edgemta" bin_b="" rounds=8 sessions=10 count=4000 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift ;;
    --bin-b) bin_b=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --count) count=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "relay-ab.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in "$rounds" "$sessions" "$count"; do
  case $v in ''|*[!0-9]*|0) echo "relay-ab.sh: rounds, sessions and count want whole numbers >= 1" >&2; exit 2 ;; esac
done
export PATH="$PATH:/usr/sbin"
for tool in smtp-source smtp-sink curl python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "relay-ab.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "relay-ab.sh: $bin is not built (dotnet publish src/EdgeMta -c Release -o dist)" >&2; exit 1; }
targets="plain relay"
if [ -n "$bin_b" ]; then [ -x "$bin_b" ] || { echo "relay-ab.sh: $bin_b is missing" >&2; exit 1; }; targets="plain relay relayB"; fi

work=$(mktemp -d /var/tmp/edgemta-relay-ab.XXXXXX)
out=${out:-$work/out}; mkdir -p "$out"; out=$(cd "$out" && pwd)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"/spool-* "$work"/sink.count; }
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

sink_port=$(free_port)
user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
smtp-sink "${user[@]}" -c -h sink.localdomain "127.0.0.1:$sink_port" 1024 </dev/null >"$work/sink.count" 2>/dev/null &
pids+=($!)

declare -A port mport spid
start() {   # target binary [flags...]
  local t=$1 b=$2; shift 2
  mkdir -p "$work/spool-$t"; mport[$t]=$(free_port)
  "$b" serve --listen 127.0.0.1:0 --spool "$work/spool-$t" --sync always --hostname edgemta.localdomain \
    --metrics-listen "127.0.0.1:${mport[$t]}" "$@" </dev/null >"$out/$t.out" 2>"$out/$t.err" &
  spid[$t]=$!; pids+=($!)
  for _ in $(seq 100); do
    [[ "$(head -n1 "$out/$t.out" 2>/dev/null)" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]] && { port[$t]=${BASH_REMATCH[1]}; return 0; }
    sleep 0.1
  done
  echo "relay-ab.sh: $t did not start (see $out/$t.err)" >&2; exit 1
}
relay_flags=(--relay "smtp://127.0.0.1:$sink_port" --relay-tls none)
start plain "$bin"
start relay "$bin" "${relay_flags[@]}"
[ -n "$bin_b" ] && start relayB "$bin_b" "${relay_flags[@]}"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$sink_port") 2>/dev/null && break; sleep 0.1; done

hz=$(getconf CLK_TCK)
cpu() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; local -a f; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
scrape() { curl -s --max-time 5 "http://127.0.0.1:${mport[$1]}/metrics"; }
counters() {   # flushes journal-writes journal-records flush-seconds
  scrape "$1" | awk '/^edgemta_spool_flush_seconds_count /{f=$2} /^edgemta_spool_flush_seconds_sum /{s=$2}
    /^edgemta_journal_writes_total /{w=$2} /^edgemta_journal_records_total /{r=$2} END { printf "%d %d %d %.6f\n", f, w, r, s }'
}
queued() { scrape "$1" | awk '/^edgemta_queue_messages /{print $2}'; }

printf 'round\ttarget\taccept_msg_per_s\tcpu_us_per_msg\tflushes_per_msg\tflush_ms\tjournal_writes_per_msg\trecords_per_write\n' >"$out/ab.tsv"
set -- $targets; n_targets=$#
for r in $(seq "$rounds"); do
  set -- $targets; k=$(( (r - 1) % n_targets )); order="${*:k+1} ${*:1:k}"
  for t in $order; do
    read -r f0 w0 r0 s0 < <(counters "$t"); c0=$(cpu "${spid[$t]}")
    t0=$(date +%s.%N)
    timeout 120 smtp-source -s "$sessions" -m "$count" -l 1024 -d "127.0.0.1:${port[$t]}" >/dev/null 2>&1
    t1=$(date +%s.%N)
    if [ "$t" != plain ]; then
      for _ in $(seq 200); do [ "$(queued "$t")" = 0 ] && break; sleep 0.05; done
    fi
    c1=$(cpu "${spid[$t]}"); read -r f1 w1 r1 s1 < <(counters "$t")
    awk -v r="$r" -v t="$t" -v n="$count" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
        -v f0="$f0" -v f1="$f1" -v w0="$w0" -v w1="$w1" -v r0="$r0" -v r1="$r1" -v s0="$s0" -v s1="$s1" 'BEGIN {
      df = f1 - f0; dw = w1 - w0
      printf "%s\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.1f\n", r, t, n / (b - a), (c1 - c0) * 1e6 / hz / n,
        df / n, df ? (s1 - s0) * 1000 / df : 0, dw / n, dw ? (r1 - r0) / dw : 0 }' | tee -a "$out/ab.tsv" >&2
  done
done

python3 - "$out/ab.tsv" "$sessions" <<'PY'
import csv, sys, statistics as st
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
col = lambda t, k: [float(r[k]) for r in rows if r['target'] == t]
plain = col('plain', 'accept_msg_per_s')
print(f"{sys.argv[2]} sessions, {len(plain)} rounds (medians; ratio = per-round relay / plain accept rate)")
print('| target | accept msg/s | ratio median | ratio min-max | CPU µs/msg | flushes/msg | flush ms | journal writes/msg | records/write |')
print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
for t in [t for t in ('plain', 'relay', 'relayB') if col(t, 'accept_msg_per_s')]:
    ratio = [b / a for a, b in zip(plain, col(t, 'accept_msg_per_s'))]
    m = lambda k: st.median(col(t, k))
    print(f"| {t} | {m('accept_msg_per_s'):,.0f} | {st.median(ratio):.2f} | {min(ratio):.2f}-{max(ratio):.2f} | {m('cpu_us_per_msg'):.0f} "
          f"| {m('flushes_per_msg'):.3f} | {m('flush_ms'):.3f} | {m('journal_writes_per_msg'):.3f} | {m('records_per_write'):.1f} |")
PY
echo "per run: $out/ab.tsv" >&2
