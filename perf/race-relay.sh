#!/usr/bin/env bash
# perf/race-relay.sh — store and forward raced (`perf/race.sh --relay` runs this): what reaches the next hop,
# how fast, edgemta against a real Postfix, same client, same sink, same cells (docs/DELIVERY.md).
#
#   edgemta         dist/edgemta --sync always, no --relay: the accept rate the relay cells are held against
#                   (docs/DELIVERY.md: with --relay, accepting should cost at most a fifth of the rate).
#   edgemta-relay   the same binary with --relay smtp://127.0.0.1:SINK --relay-tls none; smtp-sink behind it.
#   postfix-relay   a private Postfix (own config and fsync'd queue under /var/tmp) with relayhost =
#                   [127.0.0.1]:SINK and its shipped smtp client defaults (20 connections to the relayhost,
#                   as edgemta's --relay-concurrency); its own smtp-sink behind it.
#
# Each run: smtp-source -d (connections reused) sends the count; accepted msg/s = count / time until
# smtp-source exits; then the script waits (bounded by --cap seconds) until the sink's own counter
# (smtp-sink -c: "mesg=N", bumped when the final dot arrives) has grown by the count; delivered msg/s =
# count / time from the first send to that last arrival. CPU µs per message: utime+stime of the server and
# its children (Postfix: master, smtpd, cleanup, qmgr, smtp...) sampled after the last arrival.
# The sinks greet as sink.localdomain, so neither server mistakes them for itself (a loop, docs/DELIVERY.md).
#
# Then the latency phase (unless --no-latency): edgemta-load --rate at half the best delivered rate of
# edgemta-relay, 10 sessions, and p50/p99 of the `delivered ... delay=SECONDS` lines it caused (accept to
# the next hop's 250, per recipient, as the agent measures it).
#
# Bounded: each client run by `timeout --cap`, each wait for the sink by --cap, every process the script
# starts is stopped by its pid on exit (trap). Targets alternate inside each cell, order rotating by round.
#
# Usage: perf/race-relay.sh [--rounds N] [--sessions "10 100"] [--size BYTES] [--count N]
#                           [--postfix-count N] [--targets edgemta,edgemta-relay,postfix-relay]
#                           [--cap SECONDS] [--out DIR] [--no-latency] [--no-build]
set -uo pipefail

rounds=2 sessions_arg="10 100" size=1024 count=4000 pcount=1000 cap=120 out="" latency=1 build=1
targets_arg="edgemta,edgemta-relay,postfix-relay"
while [ $# -gt 0 ]; do
  case "$1" in
    --relay) ;;                                   # passed on by race.sh
    --rounds) rounds=$2; shift ;;
    --sessions) sessions_arg=$2; shift ;;
    --size) size=$2; shift ;;
    --count) count=$2; shift ;;
    --postfix-count) pcount=$2; shift ;;
    --targets) targets_arg=$2; shift ;;
    --cap) cap=$2; shift ;;
    --out) out=$2; shift ;;
    --no-latency) latency=0 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "race-relay.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in "$rounds" "$size" "$count" "$pcount" "$cap" $sessions_arg; do
  case $v in ''|*[!0-9]*|0) echo "race-relay.sh: counts, sizes, sessions and --cap want whole numbers >= 1" >&2; exit 2 ;; esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
# Spools and Postfix's queue on a real disk (not tmpfs), or fsync costs nothing and nothing is measured.
work=$(mktemp -d /var/tmp/edgemta-relay-race.XXXXXX)
chmod 755 "$work"
out=${out:-$work}
mkdir -p "$out"; out=$(cd "$out" && pwd)
log="$out/race-relay.log"; results="$out/relay-results.tsv"
: >"$log"
printf 'round\ttarget\tsessions\tmessages\taccept_msg_per_s\tdelivered_msg_per_s\tcpu_us_per_msg\tsink_connections\tstatus\n' >"$results"
say() { echo "$*" | tee -a "$log" >&2; }

export PATH="$PATH:/usr/sbin"
for tool in smtp-source smtp-sink postfix python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "race-relay.sh: $tool is missing (perf/race.sh installs postfix)"; exit 1; }
done

# ---------------------------------------------------------------- cleanup: every pid we started
declare -A sink_pid=() edgemta_pid=() port=() pid=() status=() sink_port=()
source "$(dirname "$0")/lib-postfix.sh"
postfix_dir=""
cleanup() {
  set +e
  for p in "${edgemta_pid[@]}" "${sink_pid[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "$postfix_dir" ] && postfix_stop "$postfix_dir"
  if [ "$out" = "$work" ]; then rm -rf "$work"/spool-* "$work/postfix/queue"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The interpreter itself, not a version manager's shim: a pyenv shim takes a second to start on a busy host,
# and the sink watcher below times arrivals.
py=$(python3 -c 'import sys; print(sys.executable)')
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {   # utime+stime+cutime+cstime of a process and its direct children
  local total=0 p stat rest; local -a f
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${stat##*) }; read -r -a f <<<"$rest"
    total=$((total + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$total"
}

# ---------------------------------------------------------------- sinks: one per relaying target
start_sink() {   # name
  local p; p=$(free_port)
  local -a user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" -c -h sink.localdomain "127.0.0.1:$p" 1024 </dev/null >"$work/sink-$1.count" 2>>"$log" &
  sink_pid[$1]=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then sink_port[$1]=$p; return 0; fi
    sleep 0.1
  done
  return 1
}
# The sink's counter: its -c output is "sess=N quit=N mesg=N\r" repeated; the last mesg= is the count.
sink_count() { tail -c 96 "$work/sink-$1.count" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n1; }
# Its sessions so far ("sess=N"): how many connections the relaying server opened (reuse, docs/DELIVERY.md).
sink_sessions() { tail -c 96 "$work/sink-$1.count" 2>/dev/null | tr '\r' '\n' | sed -n 's/^sess=\([0-9]*\).*/\1/p' | tail -n1; }

# Waits until the sink's counter reaches WANT (or CAP seconds pass); prints "EPOCH COUNT" of the moment it
# did (a 5 ms poll of the counter file, in one process rather than a fork per poll), or "timeout COUNT".
# Started in the background before the client, so its own start-up is never part of a measured time.
wait_sink() {   # file want cap
  "$py" - "$1" "$2" "$3" <<'PY'
import re, sys, time
path, want, cap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end, last = time.time() + cap, 0
pat = re.compile(rb'mesg=(\d+)')
while True:
    with open(path, 'rb') as f:
        f.seek(0, 2); size = f.tell(); f.seek(max(0, size - 96)); m = pat.findall(f.read())
    last = int(m[-1]) if m else last
    now = time.time()
    if last >= want: print(f'{now:.6f} {last}'); break
    if now > end: print(f'timeout {last}'); break
    time.sleep(0.005)
PY
}

# ---------------------------------------------------------------- targets
bin="$root/dist/edgemta"
if [ ! -x "$bin" ] && [ "$build" = 1 ]; then
  say "publishing edgemta (dotnet publish src/EdgeMta -c Release -o dist)"
  (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >"$out/publish.log" 2>&1
fi

start_edgemta() {   # target [flags...]
  local t=$1; shift
  [ -x "$bin" ] || { status[$t]="not built ($bin missing)"; return; }
  rm -rf "$work/spool-$t"; mkdir -p "$work/spool-$t"
  "$bin" serve --listen 127.0.0.1:0 --spool "$work/spool-$t" --sync always --hostname edgemta.localdomain "$@" \
    </dev/null >"$out/$t.out" 2>>"$out/$t.err" &
  edgemta_pid[$t]=$!
  local p=""
  for _ in $(seq 100); do
    [[ "$(head -n1 "$out/$t.out" 2>/dev/null)" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]] && { p=${BASH_REMATCH[1]}; break; }
    kill -0 "${edgemta_pid[$t]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$p" ]; then status[$t]="did not start (see $out/$t.err)"; return; fi
  port[$t]=$p; pid[$t]=${edgemta_pid[$t]}; status[$t]=ok
}

start_postfix_relay() {   # perf/lib-postfix.sh's private Postfix, relaying to its own sink
  local p; p=$(free_port); postfix_dir="$work/postfix"
  if postfix_start "$postfix_dir" "$p" "relay:${sink_port[postfix-relay]}"; then
    port[postfix-relay]=$p; pid[postfix-relay]=$postfix_master; status[postfix-relay]=ok
  else
    status[postfix-relay]="did not start or answer on 127.0.0.1:$p (see $postfix_dir/maillog)"
  fi
}

for t in ${targets_arg//,/ }; do
  case $t in
    edgemta) start_edgemta edgemta ;;
    edgemta-relay)
      if start_sink "$t"; then start_edgemta "$t" --relay "smtp://127.0.0.1:${sink_port[$t]}" --relay-tls none
      else status[$t]="its smtp-sink did not start"; fi ;;
    postfix-relay)
      if start_sink "$t"; then start_postfix_relay; else status[$t]="its smtp-sink did not start"; fi ;;
    *) say "unknown target $t"; exit 2 ;;
  esac
  say "target $t: ${status[$t]}${port[$t]:+ on 127.0.0.1:${port[$t]} (pid ${pid[$t]})}${sink_port[$t]:+, sink on ${sink_port[$t]}}"
done

# ---------------------------------------------------------------- runs
run_one() {   # round target sessions count
  local round=$1 t=$2 s=$3 n=$4 st=ok acc="" del="" cpu="" before=0 t0 t1 rc r conns="" sess0=0
  local spid=${pid[$t]} c0
  [ "$t" != edgemta ] && { before=$(sink_count "$t"); sess0=$(sink_sessions "$t"); }
  c0=$(cpu_ticks "$spid")
  local watcher=""
  if [ "$t" != edgemta ]; then
    wait_sink "$work/sink-$t.count" $(( ${before:-0} + n )) "$cap" >"$work/watch.out" &
    watcher=$!
  fi
  t0=$(date +%s.%N)
  timeout "$cap" smtp-source -s "$s" -m "$n" -l "$size" -d "127.0.0.1:${port[$t]}" >"$out/client.out" 2>&1
  rc=$?; t1=$(date +%s.%N)
  if [ $rc = 0 ]; then acc=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
  elif [ $rc = 124 ]; then st=timeout
  else st="fail:$(tail -c 80 "$out/client.out" | tr '\t\n' '  ')"; fi
  if [ -n "$watcher" ] && [ $rc != 0 ]; then kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; fi
  if [ -n "$watcher" ] && [ $rc = 0 ]; then
    wait "$watcher"; read -r r got <"$work/watch.out"
    if [ "$r" = timeout ]; then st="undelivered:$(( n - (got - ${before:-0}) ))"
    else del=$(awk -v n="$n" -v a="$t0" -v b="$r" 'BEGIN { printf "%.1f", n / (b - a) }'); fi
  fi
  cpu=$(awk -v a="$c0" -v b="$(cpu_ticks "$spid")" -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
  # Connections the sink saw end during the run (it counts a session when it ends; one still open is not in it).
  [ "$t" != edgemta ] && conns=$(( $(sink_sessions "$t") - ${sess0:-0} ))
  kill -0 "$spid" 2>/dev/null || { st=died; status[$t]="died in round $round"; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$s" "$n" "$acc" "$del" "$cpu" "$conns" "$st" >>"$results"
  say "$(printf 'round %s  %-13s %4s sess %6s msgs  accept %9s msg/s  delivered %9s msg/s  %8s µs CPU/msg  %5s conns  %s' \
    "$round" "$t" "$s" "$n" "${acc:--}" "${del:--}" "$cpu" "${conns:--}" "$st")"
}

live=(); for t in ${targets_arg//,/ }; do [ "${status[$t]}" = ok ] && live+=("$t"); done
started=$(date +%s) turn=0
for round in $(seq "$rounds"); do
  for s in $sessions_arg; do
    k=$(( turn++ % (${#live[@]} > 0 ? ${#live[@]} : 1) ))
    order=("${live[@]:k}" "${live[@]:0:k}")
    for t in "${order[@]}"; do
      [ "${status[$t]}" = ok ] || { say "target $t: ${status[$t]}; skipping"; continue; }
      run_one "$round" "$t" "$s" "$([ "$t" = postfix-relay ] && echo "$pcount" || echo "$count")"
    done
  done
done
elapsed=$(( $(date +%s) - started ))

# ---------------------------------------------------------------- latency at half the peak
latency_line=""
if [ "$latency" = 1 ] && [ "${status[edgemta-relay]:-}" = ok ]; then
  load_dll="$root/loadtests/EdgeMta.LoadTests/bin/Release/net10.0/edgemta-load.dll"
  if [ ! -f "$load_dll" ] && [ "$build" = 1 ]; then
    dotnet build "$root/loadtests/EdgeMta.LoadTests/EdgeMta.LoadTests.csproj" -c Release -nologo -clp:ErrorsOnly >>"$log" 2>&1
  fi
  peak=$(awk -F'\t' '$2 == "edgemta-relay" && $6 != "" && $6 + 0 > m { m = $6 + 0 } END { printf "%d", m }' "$results")
  if [ -f "$load_dll" ] && [ "${peak:-0}" -gt 1 ]; then
    rate=$(( peak / 2 )); n=$(( rate * 10 )); [ "$n" -gt 20000 ] && n=20000
    from_line=$(( $(wc -l <"$out/edgemta-relay.out") + 1 ))
    before=$(sink_count edgemta-relay)
    wait_sink "$work/sink-edgemta-relay.count" $(( ${before:-0} + n )) "$cap" >"$work/watch.out" &
    watcher=$!
    say "latency: edgemta-load --rate $rate --sessions 10 --messages $n into edgemta-relay (peak delivered $peak msg/s)"
    timeout "$cap" dotnet "$load_dll" --target "127.0.0.1:${port[edgemta-relay]}" --sessions 10 --messages "$n" --size "$size" \
      --rate "$rate" --timeout 20s --csv-summary --scenario relay-latency -q >"$out/latency-client.out" 2>&1
    wait "$watcher"; read -r r got <"$work/watch.out"
    sleep 0.2   # the log writer flushes every 50 ms (ServerLog): let the last delivered lines out
    latency_line=$(tail -n +"$from_line" "$out/edgemta-relay.out" | "$py" -c '
import re, sys
d = sorted(float(m.group(1)) for m in (re.search(r" delivered .* delay=([0-9.]+)", l) for l in sys.stdin) if m)
if not d: print("no delivered lines"); sys.exit()
q = lambda p: d[min(len(d) - 1, int(p * len(d)))] * 1000
print(f"{len(d)} delivered: p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {d[-1]*1000:.1f} ms")')
    [ "$r" = timeout ] && latency_line="$latency_line (sink saw only $((got - before)) of $n within ${cap}s)"
    say "latency at $rate msg/s (half of $peak): $latency_line"
  else
    latency_line="not measured (edgemta-load missing or no delivered rate)"
  fi
fi

# ---------------------------------------------------------------- the table
{
  echo "edgemta relay race, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $rounds round(s), $size B, smtp-source -d;" \
       "edgemta sends $count per run, postfix $pcount; ${elapsed}s of runs; medians over rounds"
  for t in ${targets_arg//,/ }; do echo "  $t: ${status[$t]}"; done
  echo
  "$py" - "$results" <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
def med(t, s, col):
    v = [float(r[col]) for r in rows if r['target'] == t and r['sessions'] == s and r['status'] == 'ok' and r[col]]
    return statistics.median(v) if v else None
f = lambda v: f'{v:,.0f}' if v is not None else '-'
ratio = lambda a, b: f'{a / b:.2f}' if a and b else '-'
print('| sessions | accept edgemta | accept edgemta-relay | relay/plain accept (goal ≥ 0.8) | accept postfix-relay '
      '| delivered edgemta-relay | delivered postfix-relay | delivered edgemta/postfix (goal ≥ 10) '
      '| CPU µs/msg edgemta-relay | postfix-relay | connections to the sink: edgemta-relay | postfix-relay |')
print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for s in sorted({r['sessions'] for r in rows}, key=int):
    a, ar, ap = med('edgemta', s, 'accept_msg_per_s'), med('edgemta-relay', s, 'accept_msg_per_s'), med('postfix-relay', s, 'accept_msg_per_s')
    de, dp = med('edgemta-relay', s, 'delivered_msg_per_s'), med('postfix-relay', s, 'delivered_msg_per_s')
    print(f'| {s} | {f(a)} | {f(ar)} | {ratio(ar, a)} | {f(ap)} | {f(de)} | {f(dp)} | {ratio(de, dp)} '
          f'| {f(med("edgemta-relay", s, "cpu_us_per_msg"))} | {f(med("postfix-relay", s, "cpu_us_per_msg"))} '
          f'| {f(med("edgemta-relay", s, "sink_connections"))} | {f(med("postfix-relay", s, "sink_connections"))} |')
bad = [r for r in rows if r['status'] != 'ok']
if bad: print(f'\n{len(bad)} run(s) not clean (timeout, client failure, undelivered within --cap, or a death): see relay-results.tsv')
PY
  [ -n "$latency_line" ] && { echo; echo "accept-to-delivered (delivered ... delay=) at half the peak: $latency_line (goal p99 ≤ 50 ms)"; }
} | tee "$out/race-relay.md"
echo "results: $results   table: $out/race-relay.md   log: $log" >&2
