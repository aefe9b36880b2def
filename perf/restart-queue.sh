#!/usr/bin/env bash
# perf/restart-queue.sh — restart with a deep queue: how long edgemta takes to come back with 100,000 deferred
# messages in its spool, and what holding them costs in memory (docs/DELIVERY.md "Guarantees": after a
# restart, delivery resumes where it stopped; so recovery reads the spool and folds the journal first).
#
# Steps, every edgemta dist/edgemta --sync always --relay smtp://127.0.0.1:DEAD (a port nothing listens on:
# the next hop is dead, so every message stays deferred) --retry-min 1h --retry-max 2h (no retries while measured):
#   1. idle: an empty spool; time to `listening on`, then VmRSS after --settle seconds. SIGTERM.
#   2. fill: a second spool; smtp-source -d -s --sessions pushes --messages of --size bytes. SIGTERM, and the
#      time until the process is gone.
#   3. restart after SIGTERM: time from exec to `listening on` (EdgeMtaServer.Start recovers the spool and the
#      delivery journal before it listens, so this is the whole recovery), the `delivery-start queued=` count,
#      VmRSS after --settle seconds and VmHWM (the peak, recovery included). Then SIGKILL.
#   4. restart after SIGKILL: the same figures.
# Goals: restart ≤ 2 s, RSS ≤ 64 MiB above the idle figure.
#
# Bounded: the fill by `timeout --cap`, every wait for a line or an exit by --cap seconds; every process the
# script starts is stopped by its pid on exit (trap). The spools live under /var/tmp (a real disk).
#
# Usage: perf/restart-queue.sh [--messages N] [--sessions N] [--size BYTES] [--settle SECONDS] [--cap SECONDS]
#                              [--out DIR] [--no-build]
set -uo pipefail

messages=100000 sessions=20 size=512 settle=3 cap=600 out="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) messages=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --size) size=$2; shift ;;
    --settle) settle=$2; shift ;;
    --cap) cap=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "restart-queue.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in "$messages" "$sessions" "$size" "$settle" "$cap"; do
  case $v in ''|*[!0-9]*|0) echo "restart-queue.sh: options want whole numbers >= 1" >&2; exit 2 ;; esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /var/tmp/edgemta-restart.XXXXXX)
out=${out:-$work}
mkdir -p "$out"; out=$(cd "$out" && pwd)
log="$out/restart-queue.log"; : >"$log"
say() { echo "$*" | tee -a "$log" >&2; }
export PATH="$PATH:/usr/sbin"
for tool in smtp-source python3; do
  command -v "$tool" >/dev/null 2>&1 || { say "restart-queue.sh: $tool is missing (apt-get install postfix python3)"; exit 1; }
done

bin="$root/dist/edgemta"
if [ ! -x "$bin" ] && [ "$build" = 1 ]; then
  say "publishing edgemta (dotnet publish src/EdgeMta -c Release -o dist)"
  (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >"$out/publish.log" 2>&1
fi
[ -x "$bin" ] || { say "restart-queue.sh: $bin missing"; exit 1; }

server_pid=""
cleanup() {
  set +e
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ "$out" = "$work" ]; then rm -rf "$work"/spool-*; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

# Waits (bounded) until FILE holds a line matching the bash regex RE; sets found (the line) and at
# ($EPOCHREALTIME then), or says why not in found ("died": process PID is gone first; "timeout"). Builtins only
# (read, kill -0, $EPOCHREALTIME, read -t as the pause), so no process start-up is ever part of a measured
# time: a pyenv shim's python takes a second to start on a busy host.
exec {pause_fd}<> <(:)
wait_line() {   # file regex cap pid
  local line i
  found="timeout" at=""
  for ((i = 0; i < $3 * 500; i++)); do
    if [ -s "$1" ]; then
      while IFS= read -r line; do
        if [[ $line =~ $2 ]]; then found=$line at=$EPOCHREALTIME; return; fi
      done <"$1"
    fi
    kill -0 "$4" 2>/dev/null || { found="died"; return; }
    read -r -t 0.002 -u "$pause_fd"
  done
}
kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null; }
gone_within() {   # pid seconds: waits (bounded) until the process has exited; prints the seconds it took
  local t0; t0=$(date +%s.%N)
  for _ in $(seq $(( $2 * 100 ))); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
  wait "$1" 2>/dev/null
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
}

# Starts edgemta on SPOOL; sets port, start_s (exec to `listening on`), queued, rss_kib, hwm_kib.
start() {   # spool label
  local spool=$1 label=$2 t0 r line
  : >"$out/$label.out"
  t0=$EPOCHREALTIME
  "$bin" serve --listen 127.0.0.1:0 --spool "$spool" --sync always --hostname edgemta.localdomain \
    --relay "smtp://127.0.0.1:$dead" --relay-tls none --retry-min 1h --retry-max 2h </dev/null >"$out/$label.out" 2>>"$out/$label.err" &
  server_pid=$!
  wait_line "$out/$label.out" 'listening on 127\.0\.0\.1:([0-9]+)' "$cap" "$server_pid"
  case $found in
    timeout|died) say "$label: no 'listening on' ($found; see $out/$label.err: $(head -c 200 "$out/$label.err"))"; exit 1 ;;
  esac
  start_s=$(awk -v a="$t0" -v b="$at" 'BEGIN { printf "%.3f", b - a }')
  port=${found##*:}
  wait_line "$out/$label.out" ' delivery-start ' 10 "$server_pid"
  queued=$(sed -n 's/.* queued=\([0-9]*\).*/\1/p' <<<"$found")
  sleep "$settle"
  rss_kib=$(kib "$server_pid" VmRSS); hwm_kib=$(kib "$server_pid" VmHWM)
  say "$(printf '%-16s listening after %6s s  queued=%-7s VmRSS %6s KiB after %ss  VmHWM %6s KiB' \
    "$label" "$start_s" "${queued:-?}" "$rss_kib" "$settle" "$hwm_kib")"
}

# 1. idle, empty spool
mkdir -p "$work/spool-idle" "$work/spool-full"
start "$work/spool-idle" idle
idle_start=$start_s idle_rss=$rss_kib
kill -TERM "$server_pid"; gone_within "$server_pid" "$cap" >/dev/null; server_pid=""

# 2. fill
start "$work/spool-full" fill
say "fill: smtp-source -d -s $sessions -m $messages -l $size"
t0=$(date +%s.%N)
timeout "$cap" smtp-source -d -s "$sessions" -m "$messages" -l "$size" "127.0.0.1:$port" >"$out/fill-client.out" 2>&1
rc=$?
fill_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ $rc = 0 ] || { say "fill: smtp-source exit $rc after ${fill_s}s: $(tail -c 200 "$out/fill-client.out")"; exit 1; }
accepted=$(grep -c ' message-accepted ' "$out/fill.out")
fill_rss=$(kib "$server_pid" VmRSS)
say "fill: $messages sent in ${fill_s}s ($(awk -v n="$messages" -v s="$fill_s" 'BEGIN { printf "%.0f", n / s }') msg/s), $accepted message-accepted lines, VmRSS $fill_rss KiB, spool $(du -sm "$work/spool-full" | cut -f1) MiB"
kill -TERM "$server_pid"; stop_s=$(gone_within "$server_pid" "$cap"); server_pid=""
say "fill: SIGTERM to exit ${stop_s}s"

# 3. restart after SIGTERM, then SIGKILL; 4. restart after SIGKILL
start "$work/spool-full" after-sigterm
term_start=$start_s term_queued=$queued term_rss=$rss_kib term_hwm=$hwm_kib
kill -KILL "$server_pid"; gone_within "$server_pid" 10 >/dev/null; server_pid=""
start "$work/spool-full" after-sigkill
kill_start=$start_s kill_queued=$queued kill_rss=$rss_kib kill_hwm=$hwm_kib
kill -TERM "$server_pid"; gone_within "$server_pid" "$cap" >/dev/null; server_pid=""

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
above() { awk -v k="$1" -v i="$idle_rss" 'BEGIN { printf "%+.1f", (k - i) / 1024 }'; }
{
  echo "edgemta restart with a deep queue, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs: $messages messages of $size B deferred (next hop dead)"
  echo
  echo '| start | spool | listening after (s, goal ≤ 2) | queued | VmRSS MiB after '"${settle}"'s | above idle (goal ≤ 64) | VmHWM MiB |'
  echo '|---|---|---:|---:|---:|---:|---:|'
  echo "| first | empty | $idle_start | 0 | $(mib "$idle_rss") | 0 | - |"
  echo "| after SIGTERM | $messages deferred | $term_start | ${term_queued:-?} | $(mib "$term_rss") | $(above "$term_rss") | $(mib "$term_hwm") |"
  echo "| after SIGKILL | $messages deferred | $kill_start | ${kill_queued:-?} | $(mib "$kill_rss") | $(above "$kill_rss") | $(mib "$kill_hwm") |"
  echo
  echo "fill: ${fill_s}s for $messages messages over $sessions sessions; SIGTERM with the queue full: exit after ${stop_s}s."
} | tee "$out/restart-queue.md"
echo "table: $out/restart-queue.md   log: $log" >&2
