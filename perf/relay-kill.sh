#!/usr/bin/env bash
# perf/relay-kill.sh — kill -9 while relaying: does anything acknowledged get lost, and where do duplicates
# come from? (docs/DELIVERY.md "Guarantees": nothing acknowledged is lost; duplicates only where a reply was
# lost after the final dot, RFC 1047, logged `possible-duplicate`, or where the process died between the next
# hop's 250 and the durable record of it.)
#
#   --victim a     sender → edgemta A (--relay) → sink. A is killed with SIGKILL every ~INTERVAL s (random
#                  point, ±50%) and restarted on the same spool and port, KILLS times.
#   --victim b     sender → A → edgemta B (--relay) → sink: the NEXT HOP is killed and restarted instead.
#   --victim both  (default) the two runs, one after the other.
#
# The sender (perf/relay-kill.py send) runs SESSIONS threads until COUNT 250s, at most RATE msg/s (so the
# sending outlasts the kills: 3000 at 150/s is 20 s, 10 kills at ~2 s), each attempt with a fresh
# Message-ID, and records every 250. The sink (aiosmtpd, relay-kill.py sink) records each message's
# Message-ID and the queue ids from A's and B's Received: headers, fsync'd before its 250. After the last
# kill the script waits (at most --cap s) until every acknowledged Message-ID reached the sink, stops every
# edgemta with SIGTERM, and tallies: acknowledged, delivered, lost (must be 0), duplicated, and per
# duplicate its window: `possible-duplicate` logged by A or B (its queue id in the line), or "killed between
# the hop's 250 and the journal record" (no line; a kill fell between the two copies' arrivals).
# Exit 1 when anything acknowledged was lost or a duplicate has no explanation.
#
# Bounded: every wait has a cap, the sender has --cap, every process is stopped by its pid (trap). Loopback.
#
# Usage: perf/relay-kill.sh [--count N] [--sessions N] [--rate MSG/S] [--kills K] [--interval S] [--victim a|b|both]
#                           [--cap S] [--out DIR] [--no-build]
set -uo pipefail

count=3000 sessions=4 rate=150 kills=10 interval=2 victim=both cap=240 out="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --rate) rate=$2; shift ;;
    --kills) kills=$2; shift ;;
    --interval) interval=$2; shift ;;
    --victim) victim=$2; shift ;;
    --cap) cap=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "relay-kill.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in "$count" "$sessions" "$rate" "$kills" "$interval" "$cap"; do
  case $v in ''|*[!0-9]*) echo "relay-kill.sh: counts, --interval and --cap want whole numbers" >&2; exit 2 ;; esac
done
case $victim in a|b|both) ;; *) echo "relay-kill.sh: --victim a, b or both" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3   # Debian's: python3-aiosmtpd lives in its dist-packages
helper="$root/perf/relay-kill.py"
"$py" -c 'import aiosmtpd' 2>/dev/null || { echo "relay-kill.sh: $py lacks aiosmtpd (Debian package python3-aiosmtpd)" >&2; exit 1; }
bin="$root/dist/edgemta"
if [ ! -x "$bin" ] && [ "$build" = 1 ]; then
  (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >&2
fi
[ -x "$bin" ] || { echo "relay-kill.sh: $bin missing (dotnet publish src/EdgeMta -c Release -o dist)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/edgemta-relay-kill.XXXXXX)
out=${out:-$work}
mkdir -p "$out"; out=$(cd "$out" && pwd)

# shellcheck source=perf/lib-pids.sh
. "$root/perf/lib-pids.sh"
cleanup() { set +e; for n in "${!pids[@]}"; do stop_pid "$n" TERM; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

start_edgemta() {   # name port spool hostname relay-port: (re)starts it on the same spool and port
  local name=$1 port=$2 spool=$3 host=$4 relay=$5
  mkdir -p "$spool"
  for _ in $(seq 50); do   # a restart may find the port briefly still held; bounded retries
    "$bin" serve --listen "127.0.0.1:$port" --spool "$spool" --hostname "$host" \
      --relay "smtp://127.0.0.1:$relay" --relay-tls none --retry-min 1s --retry-max 5s \
      </dev/null >>"$run/$name.log" 2>&1 &
    pids[$name]=$!
    if wait_port "$port" && kill -0 "${pids[$name]}" 2>/dev/null; then return 0; fi
    stop_pid "$name" KILL
    sleep 0.2
  done
  echo "relay-kill.sh: $name did not start (see $run/$name.log)" >&2
  return 1
}

acked_all_at_sink() {   # every acknowledged Message-ID at the sink?
  "$py" - "$run/sent.txt" "$run/sink.txt" <<'PY'
import sys
a = {l.split()[1] for l in open(sys.argv[1]) if len(l.split()) == 3}
s = {l.split()[1] for l in open(sys.argv[2]) if len(l.split()) == 4}
sys.exit(0 if a <= s else 1)
PY
}

one_run() {   # victim
  local v=$1 status=0
  run="$out/victim-$v"; rm -rf "$run"; mkdir -p "$run"
  : >"$run/sent.txt"; : >"$run/sink.txt"; : >"$run/kills.txt"
  local sink_port a_port b_port
  sink_port=$(free_port); a_port=$(free_port); b_port=$(free_port)
  "$py" "$helper" sink "$sink_port" "$run/sink.txt" >"$run/sink.out" 2>&1 &
  pids[sink]=$!
  wait_port "$sink_port" || { echo "relay-kill.sh: the sink did not start" >&2; return 1; }
  local a_relay=$sink_port
  if [ "$v" = b ]; then
    start_edgemta b "$b_port" "$work/spool-b-$v" edge-b.test "$sink_port" || return 1
    a_relay=$b_port
  fi
  start_edgemta a "$a_port" "$work/spool-a-$v" edge-a.test "$a_relay" || return 1

  local t0; t0=$(date +%s.%N)
  "$py" "$helper" send "$a_port" "$count" "$sessions" "$run/sent.txt" "$cap" "$rate" >"$run/sender.out" 2>&1 &
  pids[sender]=$!
  local k=0 target=$v port=$a_port
  [ "$v" = b ] && port=$b_port
  while [ "$k" -lt "$kills" ]; do   # all K, even once the sender is done: a kill mid-drain counts too
    # A random point: INTERVAL ±50%, in milliseconds.
    sleep "$(awk -v i="$interval" -v r="$RANDOM" 'BEGIN { printf "%.3f", i * (0.5 + r / 32768) }')"
    echo "$(date +%s.%N) $target" >>"$run/kills.txt"
    stop_pid "$target" KILL
    k=$((k + 1))
    if [ "$target" = a ]; then start_edgemta a "$a_port" "$work/spool-a-$v" edge-a.test "$a_relay" || return 1
    else start_edgemta b "$b_port" "$work/spool-b-$v" edge-b.test "$sink_port" || return 1; fi
  done
  for _ in $(seq $((cap * 10))); do kill -0 "${pids[sender]}" 2>/dev/null || break; sleep 0.1; done
  stop_pid sender TERM
  local t_sent; t_sent=$(date +%s.%N)
  local drained=no
  for _ in $(seq $((cap * 2))); do
    if acked_all_at_sink; then drained=yes; break; fi
    sleep 0.5
  done
  local t_end; t_end=$(date +%s.%N)
  stop_pid a TERM; stop_pid b TERM; stop_pid sink TERM
  {
    echo "victim $v: $count messages, $sessions sessions, $k kills of ${target^^} every ~${interval}s"
    cat "$run/sender.out"
    awk -v a="$t0" -v b="$t_sent" -v c="$t_end" -v d="$drained" \
      'BEGIN { printf "sending took %.1f s; drained (every acknowledged Message-ID at the sink): %s, %.1f s after\n", b - a, d, c - b }'
  } | tee "$run/summary.txt"
  local logs=("a=$run/a.log"); [ "$v" = b ] && logs+=("b=$run/b.log")
  "$py" "$helper" tally "$run" "$run/sent.txt" "$run/sink.txt" "$run/kills.txt" "${logs[@]}" | tee -a "$run/summary.txt"
  status=${PIPESTATUS[0]}
  grep -q UNEXPLAINED "$run/tally.txt" && status=1
  [ "$drained" = yes ] || status=1
  return "$status"
}

rc=0
for v in a b; do
  [ "$victim" = both ] || [ "$victim" = "$v" ] || continue
  one_run "$v" || rc=1
  echo
done
echo "results in $out (victim-*/tally.txt, summary.txt, logs)"
[ "$out" = "$work" ] || rm -rf "$work"
exit "$rc"
