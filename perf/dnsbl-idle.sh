#!/usr/bin/env bash
# perf/dnsbl-idle.sh — what a connection waiting for a blocklist verdict costs in memory (docs/SCREENING.md:
# "a session waiting for a verdict holds no buffer"; the goal, <= 4 KiB of RSS each at 10,000 connections).
#
# Two runs of dist/edgemta, each: VmRSS once listening and settled, then --connections clients from 127.0.0.1,
# each reading the greeting and sending EHLO, then VmRSS again; the growth divided by the connections is the
# figure per connection.
#   1. plain: no --dnsbl; each session answers EHLO and idles between commands.
#   2. dnsbl: --dnsbl bl.test --dnsbl-action drop --dns-server at a UDP port where a helper reads every question
#      and never answers, --dns-timeout 5m: each session is paused at EHLO with its verdict pending (one
#      question in flight per connection in the resolver), which is the state measured. With --action enforce
#      the sessions answer EHLO and idle with the question still in flight: the resolver's share alone.
# Bounded: every wait by --cap seconds; the server and the helper are stopped by their pids on exit (trap).
#
# Usage: perf/dnsbl-idle.sh [--connections N] [--action drop|enforce] [--settle SECONDS] [--cap SECONDS] [--no-build]
set -uo pipefail

connections=10000 action=drop settle=3 cap=300 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections=$2; shift ;;
    --action) action=$2; shift ;;
    --settle) settle=$2; shift ;;
    --cap) cap=$2; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "dnsbl-idle.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
bin=${EDGEMTA_BINARY:-$PWD/dist/edgemta}
if [ "$build" = 1 ]; then dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly >/dev/null || exit 1; fi
work=$(mktemp -d /var/tmp/edgemta-dnsbl-idle.XXXXXX)
server_pid="" helper_pid=""
cleanup() {
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# The helper: a silent DNS server on a UDP port (printed first), then, on "go PORT" on stdin, the clients;
# prints "held N" once N sessions sent EHLO, and holds them until stdin closes.
cat >"$work/clients.py" <<'PY'
import resource, socket, sys, threading
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.1", 0))
def swallow():
    while True:
        try: dns.recvfrom(512)
        except OSError: return
threading.Thread(target=swallow, daemon=True).start()
print(dns.getsockname()[1], flush=True)
port, n = (int(x) for x in sys.stdin.readline().split()[1:3])
held = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    greeting = s.recv(512)
    if not greeting.startswith(b"220"):
        print("refused", i, greeting[:60], flush=True); sys.exit(1)
    s.sendall(b"EHLO client.example\r\n")
    held.append(s)
print("held", len(held), flush=True)
sys.stdin.read()
PY

measure() {   # label, then edgemta's extra flags
  local label=$1; shift
  local out="$work/$label.out" port="" i
  "$bin" serve --listen 127.0.0.1:0 --spool "$work/spool-$label" --hostname edgemta.localdomain "$@" </dev/null >"$out" 2>&1 &
  server_pid=$!
  for ((i = 0; i < cap * 10; i++)); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$label: edgemta did not listen: $(head -c 300 "$out")"; exit 1; }
  sleep "$settle"
  local before; before=$(kib "$server_pid" VmRSS)
  echo "go $port $connections" >&"${helper[1]}"
  local line=""
  read -r -t "$cap" line <&"${helper[0]}" || true
  case $line in held*) ;; *) echo "$label: clients failed: $line"; exit 1 ;; esac
  sleep "$settle"
  local after; after=$(kib "$server_pid" VmRSS)
  printf '%-6s VmRSS %7s KiB idle, %7s KiB with %s connections: %6.2f KiB per connection\n' \
    "$label" "$before" "$after" "$connections" "$(awk -v a="$before" -v b="$after" -v n="$connections" 'BEGIN { print (b - a) / n }')"
  kill -KILL "$server_pid"; wait "$server_pid" 2>/dev/null; server_pid=""
}

for label in plain dnsbl; do
  coproc helper { python3 "$work/clients.py"; }
  helper_pid=$helper_PID
  read -r -t "$cap" dns_port <&"${helper[0]}" || { echo "helper did not start"; exit 1; }
  if [ "$label" = plain ]; then
    measure plain
  else
    measure dnsbl --dnsbl bl.test --dnsbl-action "$action" --dns-server "127.0.0.1:$dns_port" --dns-timeout 5m
  fi
  kill "$helper_pid" 2>/dev/null; wait "$helper_pid" 2>/dev/null; helper_pid=""
done
