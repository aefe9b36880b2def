#!/usr/bin/env bash
# perf/relay-outage.sh — the next hop down for a long time (docs/DELIVERY.md "The next hop as a whole"): while
# it is dead, edgemta probes it once per min(60 s, --retry-min), never once per waiting message; when a probe
# succeeds, everything waiting is due at once. Goal: the backlog flows within one probe interval of the
# hop's return.
#
#   1. A dead hop (perf/relay-kill.py down: accepts, answers 421, closes, logs each connection's time) and
#      edgemta --relay to it with --retry-min RETRY (probe interval = min(60, RETRY) s).
#   2. smtp-source queues COUNT messages (1 KiB, 10 sessions); edgemta's first attempts find the hop dead.
#   3. DOWN seconds pass. Counted: connections while queueing, and connections in the DOWN window
#      (expected ≈ DOWN / interval, not ≈ COUNT).
#   4. The dead hop is stopped and a real sink (aiosmtpd, relay-kill.py sink) takes its port. Measured: time
#      from the sink's start to the first message and to the last of COUNT (bounded by --cap).
#
# Bounded: each wait has a cap; every process started is stopped by its pid (trap); loopback only. A run
# takes DOWN + a few seconds + the drain (defaults: about 2.5 minutes).
#
# Usage: perf/relay-outage.sh [--count N] [--retry-min S] [--down S] [--cap S] [--out DIR] [--no-build]
set -uo pipefail

count=1000 retry=10 down=120 cap=90 out="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --retry-min) retry=$2; shift ;;
    --down) down=$2; shift ;;
    --cap) cap=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "relay-outage.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in "$count" "$retry" "$down" "$cap"; do
  case $v in ''|*[!0-9]*|0) echo "relay-outage.sh: every value wants a whole number >= 1" >&2; exit 2 ;; esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3   # Debian's: python3-aiosmtpd lives in its dist-packages
helper="$root/perf/relay-kill.py"
export PATH="$PATH:/usr/sbin"
"$py" -c 'import aiosmtpd' 2>/dev/null || { echo "relay-outage.sh: $py lacks aiosmtpd (Debian package python3-aiosmtpd)" >&2; exit 1; }
command -v smtp-source >/dev/null || { echo "relay-outage.sh: smtp-source missing (Debian package postfix)" >&2; exit 1; }
bin="$root/dist/edgemta"
if [ ! -x "$bin" ] && [ "$build" = 1 ]; then
  (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >&2
fi
[ -x "$bin" ] || { echo "relay-outage.sh: $bin missing (dotnet publish src/EdgeMta -c Release -o dist)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/edgemta-relay-outage.XXXXXX)
out=${out:-$work}
mkdir -p "$out"; out=$(cd "$out" && pwd)

# shellcheck source=perf/lib-pids.sh
. "$root/perf/lib-pids.sh"
cleanup() { set +e; for n in "${!pids[@]}"; do stop_pid "$n" TERM; done; [ "$out" = "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
now() { date +%s.%N; }
lines() { wc -l <"$1" | tr -d ' '; }

hop=$(free_port) port=$(free_port)
: >"$out/connections.txt"; : >"$out/sink.txt"
"$py" "$helper" down "$hop" "$out/connections.txt" >"$out/down.out" 2>&1 &
pids[down]=$!
wait_port "$hop" || { echo "relay-outage.sh: the dead hop did not start" >&2; exit 1; }
: >"$out/connections.txt"   # wait_port's own probe is not edgemta's

"$bin" serve --listen "127.0.0.1:$port" --spool "$work/spool" --hostname edge-a.test \
  --relay "smtp://127.0.0.1:$hop" --relay-tls none --retry-min "${retry}s" </dev/null >"$out/edgemta.log" 2>&1 &
pids[edgemta]=$!
wait_port "$port" || { echo "relay-outage.sh: edgemta did not start (see $out/edgemta.log)" >&2; exit 1; }

t_queue=$(now)
timeout "$cap" smtp-source -m "$count" -s 10 -l 1024 -f sender@example.org -t rcpt@example.test \
  "127.0.0.1:$port" >"$out/smtp-source.out" 2>&1
accepted=$(grep -c 'message-accepted' "$out/edgemta.log")
t_queued=$(now)
c_queued=$(lines "$out/connections.txt")
echo "queued: $accepted messages accepted in $(awk -v a="$t_queue" -v b="$t_queued" 'BEGIN{printf "%.1f", b-a}') s; $c_queued connection(s) to the dead hop meanwhile"

sleep "$down"
t_up=$(now)
c_down=$(( $(lines "$out/connections.txt") - c_queued ))
interval=$(( retry < 60 ? retry : 60 ))
echo "down for $down s: $c_down connection(s) (probe interval ${interval} s: about $((down / interval)) expected; $count messages waiting)"

stop_pid down KILL
"$py" "$helper" sink "$hop" "$out/sink.txt" >"$out/sink.out" 2>&1 &
pids[sink]=$!
t_sink=$(now)
wait_port "$hop" || { echo "relay-outage.sh: the sink did not start" >&2; exit 1; }
t_first="" t_last="" got=0
for _ in $(seq $((cap * 10))); do
  got=$(lines "$out/sink.txt")
  [ -z "$t_first" ] && [ "$got" -gt 0 ] && t_first=$(head -n1 "$out/sink.txt" | cut -d' ' -f1)
  if [ "$got" -ge "$accepted" ]; then t_last=$(sed -n "${accepted}p" "$out/sink.txt" | cut -d' ' -f1); break; fi
  sleep 0.1
done
stop_pid edgemta TERM
stop_pid sink TERM
alive=$(grep -c 'relay-alive' "$out/edgemta.log")
dead=$(grep -c 'relay-dead' "$out/edgemta.log")
{
  printf '%-60s %s\n' "messages queued (accepted)" "$accepted"
  printf '%-60s %s\n' "probe interval min(60 s, --retry-min) (s)" "$interval"
  printf '%-60s %s\n' "connections while queueing" "$c_queued"
  printf '%-60s %s\n' "connections in the ${down} s outage after queueing" "$c_down"
  printf '%-60s %s\n' "relay-dead / relay-alive lines" "$dead / $alive"
  if [ -n "$t_first" ]; then
    printf '%-60s %s\n' "hop back -> first message delivered (s)" "$(awk -v a="$t_sink" -v b="$t_first" 'BEGIN{printf "%.1f", b-a}')"
  else
    printf '%-60s %s\n' "hop back -> first message delivered (s)" "none within $cap s"
  fi
  if [ -n "$t_last" ]; then
    printf '%-60s %s\n' "hop back -> whole backlog delivered (s)" "$(awk -v a="$t_sink" -v b="$t_last" 'BEGIN{printf "%.1f", b-a}')"
  else
    printf '%-60s %s\n' "hop back -> whole backlog delivered (s)" "not within $cap s ($got of $accepted)"
  fi
} | tee "$out/outage.txt"
echo "results in $out"
[ -n "$t_last" ]
