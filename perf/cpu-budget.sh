#!/usr/bin/env bash
# perf/cpu-budget.sh — where the whole machine's CPU goes per message, edgemta against smtp-sink.
#
# race.sh compares rates and the server's own CPU. On a small machine the client shares the cores, so a
# rate is a budget: every message costs server + client + interrupts + idle time, all out of the same
# two cores. This script runs one smtp-source cell against dist/edgemta (--sync always) and against
# smtp-sink, alternating, and splits the machine's time per message (microseconds, all cores summed):
#
#   server   the server process (utime+stime from /proc/PID/stat)
#   client   smtp-source (its reaped CPU, cutime+cstime of the shell that waited for it)
#   tasks    every task together, user + system from /proc/stat: server, client, the kernel's own
#            threads (writeback, jbd2, kworkers) and anything else running
#   irq      hard and soft interrupt time from /proc/stat (block completions, loopback TCP receive)
#   idle     idle + iowait: cores with nothing runnable, e.g. every session waiting for a flush
#   total    wall time x cores / messages: tasks + irq + idle
# The per-process and the machine-wide counters are sampled differently, so server + client can come
# out a few percent above tasks.
#
# Bounded: each run is capped by its message count and `timeout 300`; loopback only; both servers are
# stopped by their pids on exit. Needs smtp-source and smtp-sink (apt-get install postfix) and python3.
#
# Usage: perf/cpu-budget.sh [--rounds N] [--sessions S] [--messages M] [--size BYTES] [--per-message]
#   defaults: 3 rounds, 10 sessions, 20000 messages of 1024 bytes, connections reused (smtp-source -d)
set -uo pipefail

rounds=3 sessions=10 messages=20000 size=1024 reuse=-d
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --messages) messages=$2; shift ;;
    --size) size=$2; shift ;;
    --per-message) reuse="" ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "cpu-budget.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin"
for tool in smtp-source smtp-sink python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cpu-budget.sh: $tool missing (apt-get install postfix python3)" >&2; exit 1; }
done
[ -x "$root/dist/edgemta" ] || { echo "cpu-budget.sh: no dist/edgemta; run: dotnet publish src/EdgeMta -c Release -o dist" >&2; exit 1; }

# On a real disk, not tmpfs: a flush must cost what it costs.
work=$(mktemp -d /var/tmp/edgemta-budget.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cores=$(nproc)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# utime+stime of one process, in clock ticks.
proc_ticks() { local s; s=$(cat "/proc/$1/stat") || return 1; s=${s##*) }; local -a f; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal, in clock ticks.
machine_ticks() { local -a f; read -r -a f < /proc/stat; echo "${f[@]:1:8}"; }

start_server() {  # $1 = edgemta | smtp-sink; sets server_pid and port
  port=$(free_port)
  if [ "$1" = edgemta ]; then
    rm -rf "$work/spool"
    "$root/dist/edgemta" --listen "127.0.0.1:$port" --spool "$work/spool" >"$work/edgemta.log" 2>&1 &
  else
    smtp-sink -u nobody -c "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
  fi
  server_pid=$!
  for _ in $(seq 50); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cpu-budget.sh: $1 did not start listening" >&2; exit 1
}

# One run: prints "target msg/s server client tasks irq idle total" (µs per message).
run() {
  local target=$1
  start_server "$target"
  local s0 m0 t0 client s1 m1 t1
  s0=$(proc_ticks "$server_pid"); m0=$(machine_ticks); t0=$(date +%s%N)
  # The shell waits for smtp-source, so its cutime+cstime afterwards is the client's CPU.
  client=$(bash -c 'timeout 300 smtp-source "$@" >/dev/null 2>&1; s=$(cat /proc/$$/stat); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[13] + f[14]))' _ \
    $reuse -s "$sessions" -m "$messages" -l "$size" -f budget@example.com -t sink@example.com "127.0.0.1:$port")
  t1=$(date +%s%N); m1=$(machine_ticks); s1=$(proc_ticks "$server_pid")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
  python3 - "$target" "$messages" "$cores" "$(getconf CLK_TCK)" "$t0" "$t1" "$s0" "$s1" "$client" "$m0" "$m1" <<'PY'
import sys
target, n, cores, hz, t0, t1, s0, s1, client = sys.argv[1], *map(int, sys.argv[2:10])
m0, m1 = (list(map(int, a.split())) for a in sys.argv[10:12])
d = [b - a for a, b in zip(m0, m1)]                       # user nice system idle iowait irq softirq steal
us = lambda ticks: ticks * 1e6 / hz / n
server, client = us(s1 - s0), us(client)
irq, idle = us(d[5] + d[6]), us(d[3] + d[4])
busy = us(d[0] + d[1] + d[2] + d[7])
total = (t1 - t0) / 1e3 * cores / n
print(f"{target} {n * 1e9 / (t1 - t0):.0f} {server:.1f} {client:.1f} {busy:.1f} {irq:.1f} {idle:.1f} {total:.1f}")
PY
}

echo "cell: smtp-source ${reuse:+-d }-s $sessions -m $messages -l $size; $cores cores; $rounds rounds, alternating" >&2
results=$work/results
for r in $(seq "$rounds"); do
  for target in edgemta smtp-sink; do
    line=$(run "$target"); echo "round $r: $line" >&2; echo "$line" >>"$results"
  done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split(); rows.setdefault(f[0], []).append(list(map(float, f[1:])))
cols = ["msg/s", "server", "client", "tasks", "irq", "idle", "total"]
print("| target | " + " | ".join(cols) + " |")
print("|---|" + "---:|" * len(cols))
for target, runs in rows.items():
    med = [statistics.median(c) for c in zip(*runs)]
    print(f"| {target} | {med[0]:,.0f} | " + " | ".join(f"{v:.1f}" for v in med[1:]) + " |")
print("\nmedians; every column but msg/s is microseconds per message, all cores summed")
PY
