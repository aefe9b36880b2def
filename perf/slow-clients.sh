#!/usr/bin/env bash
# perf/slow-clients.sh — the slow-client attack's figure (docs/SCREENING.md "Slow clients").
#
# N slow clients (edgemta-load --slow-clients: each reads the greeting, then sends one byte of a command line
# every --interval and never its end, spread over source addresses 127.0.0.2 and up) take their slots first;
# then real clients send mail, one connection per message at a steady rate, while the slow ones keep
# trickling. Printed per server: the real clients' p99 time to the greeting (connect → 220) and to 250 (MAIL
# written → 250 after the dot), their delivered and failed counts, what became of the slow clients, and the
# server's stress lines. The real clients start as soon as the slow ones are in (--settle: later); one that
# connects while the slow ones fill every slot hears 421 4.7.0 and is counted failed. Two builds: "before"
# (main's HEAD, built into a temp dir from the repository at --main, or --before BIN) and "after"
# (dist/edgemta of this tree, published when missing).
#
# Bounded: the real clients run for --duration, the slow clients' connects for at most 5 minutes, every wait
# in a loop with a count; loopback only; every process started here is stopped by its pid (trap). Raises
# `ulimit -n` (20,000 sockets on each side).
#
# Usage: perf/slow-clients.sh [--slow N] [--max N] [--interval 20s] [--sessions N] [--rate MSG/S]
#                             [--duration 60s] [--settle 0s] [--main DIR] [--before BIN] [--after BIN] [--only before|after]
#                             [--out DIR]
set -uo pipefail

chunk=9000
slow=20000 max=20000 interval=20s sessions=10 rate=20 duration=60s settle=0s main=/work/main before="" after="" only="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --slow) slow=$2; shift ;;
    --max) max=$2; shift ;;
    --interval) interval=$2; shift ;;
    --sessions) sessions=$2; shift ;;
    --rate) rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --settle) settle=$2; shift ;;
    --main) main=$2; shift ;;
    --before) before=$2; shift ;;
    --after) after=$2; shift ;;
    --only) only=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "slow-clients.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /var/tmp/edgemta-slow.XXXXXX)
out=${out:-$work}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log="$out/slow-clients.log"
: >"$log"
say() { echo "$*" | tee -a "$log" >&2; }

server_pid=""
holders=()
stop_holders() {
  for h in "${holders[@]}"; do kill "$h" 2>/dev/null; wait "$h" 2>/dev/null; done
  holders=()
}
cleanup() {
  stop_holders
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work/spool" "$work/src"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each end holds one descriptor per connection (the server its table, edgemta-load the slow sockets): raise the
# limit as far as this machine lets. A server whose limit is short lowers --max-connections to fit (README).
need=$(( (slow > max ? slow : max) + 4096 ))
ulimit -Hn "$need" 2>/dev/null
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
say "open files: $(ulimit -n) (wanted $need)"

load_dll="$root/loadtests/EdgeMta.LoadTests/bin/Release/net10.0/edgemta-load.dll"
if [ ! -f "$load_dll" ] || [ "$root/loadtests/EdgeMta.LoadTests/SlowClientSwarm.cs" -nt "$load_dll" ] \
   || [ "$root/loadtests/EdgeMta.LoadTests/Program.cs" -nt "$load_dll" ]; then
  say "building edgemta-load"
  timeout 900 dotnet build "$root/loadtests/EdgeMta.LoadTests/EdgeMta.LoadTests.csproj" -c Release -nologo -clp:ErrorsOnly >>"$log" 2>&1 \
    || { say "edgemta-load did not build (see $log)"; exit 1; }
fi

after=${after:-$root/dist/edgemta}
if [ -z "$only" ] || [ "$only" = after ]; then
  if [ ! -x "$after" ]; then
    say "publishing this tree's edgemta into dist/"
    (cd "$root" && timeout 1800 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >>"$log" 2>&1 \
      || { say "publish failed (see $log)"; exit 1; }
  fi
fi
if [ -z "$only" ] || [ "$only" = before ]; then
  if [ -z "$before" ]; then
    # main's HEAD, exported and published apart from any working tree.
    head=$(git -C "$main" rev-parse --short HEAD) || { say "--main $main is not a git repository"; exit 1; }
    say "publishing main's HEAD ($head) into $work/main-dist"
    mkdir -p "$work/src"
    git -C "$main" archive HEAD | tar -x -C "$work/src"
    (cd "$work/src" && timeout 1800 dotnet publish src/EdgeMta -c Release -o "$work/main-dist" -nologo -clp:ErrorsOnly) >>"$log" 2>&1 \
      || { say "publishing main failed (see $log)"; exit 1; }
    before="$work/main-dist/edgemta"
  fi
fi

# One server, the attack and the real clients; prints one result line.
run() {
  local name=$1 bin=$2
  rm -rf "$work/spool"; mkdir -p "$work/spool"
  "$bin" serve --listen 127.0.0.1:0 --spool "$work/spool" --max-connections "$max" --sync always \
    </dev/null >"$out/$name.out" 2>"$out/$name.err" &
  server_pid=$!
  local port="" line=""
  for _ in $(seq 100); do
    line=$(head -n1 "$out/$name.out" 2>/dev/null)
    if [[ "$line" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]]; then port=${BASH_REMATCH[1]}; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] || { say "$name: no 'listening on' line (see $out/$name.err)"; return; }
  say "$name: $bin on port $port, --max-connections $max; $slow slow clients, then real clients for $duration"
  # One process holds at most $chunk slow sockets (its own descriptor limit); the holders keep theirs until
  # the last process, which also runs the real clients, is done.
  local left=$slow held=0 i=0
  while [ "$left" -gt "$chunk" ]; do
    i=$((i + 1))
    timeout 1200 dotnet "$load_dll" --target "127.0.0.1:$port" --slow-clients "$chunk" --slow-interval "$interval" \
      --slow-sources 16 --slow-settle 900s --sessions 1 --messages 1 -q >"$out/$name.holder$i" 2>&1 &
    holders+=($!)
    left=$((left - chunk)); held=$((held + chunk))
    local want=$(( held < max - 200 ? held : max - 200 ))
    for _ in $(seq 900); do   # up to 90 s for this holder's clients to be in
      [ "$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)" -ge "$want" ] && break
      sleep 0.1
    done
    say "$name: holder $i in, the server holds $(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l) descriptors"
  done
  timeout 900 dotnet "$load_dll" --target "127.0.0.1:$port" --slow-clients "$left" --slow-interval "$interval" \
    --slow-settle "$settle" --sessions "$sessions" --rate "$rate" --duration "$duration" --per-message-connections --timeout 30s \
    --report-dir "$out/$name" -q >"$out/$name.load" 2>"$out/$name.load.err"
  stop_holders
  kill "$server_pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""

  local steps="$out/$name/steps.csv" summary="$out/$name/summary.csv"
  local greet p99 delivered failed
  greet=$(awk -F, '$1=="greeting" {printf "%.1f", $7/1000}' "$steps" 2>/dev/null)
  p99=$(awk -F, '$1=="message" {printf "%.1f", $7/1000}' "$steps" 2>/dev/null)
  delivered=$(grep -o 'delivered [0-9]*' "$out/$name.load" | head -1 | awk '{print $2}')
  failed=$(grep -o 'failed [0-9]*' "$out/$name.load" | head -1 | awk '{print $2}')
  printf '%-7s greeting p99 %8s ms   250 p99 %8s ms   delivered %6s   failed %6s\n' "$name" "${greet:--}" "${p99:--}" "${delivered:--}" "${failed:--}" | tee -a "$log"
  grep -h 'slow clients:' "$out/$name.load.err" | tail -1 | sed "s/^/        last process: /" | tee -a "$log"
  grep -h 'slow clients:' "$out/$name".holder* 2>/dev/null | sed "s/^/        holder: /" | tee -a "$log"
  grep -hE ' (stress-on|stress-off) ' "$out/$name.out" | head -4 | sed "s/^/        server: /" | tee -a "$log"
  echo "        timeouts logged: $(grep -c ' request-timeout ' "$out/$name.out")" | tee -a "$log"
  [ -s "$summary" ] || true
}

[ -z "$only" ] || [ "$only" = before ] && run before "$before"
[ -z "$only" ] || [ "$only" = after ] && run after "$after"
say "reports and logs in $out"
