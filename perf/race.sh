#!/usr/bin/env bash
# perf/race.sh — the race: edgemta against its two peers on this machine, same clients, same matrix.
#
#   smtp-sink   Postfix's test sink: speaks SMTP, stores nothing. The ceiling of "how fast can an SMTP
#               server answer here"; edgemta / smtp-sink says how close a durable server gets to it.
#   postfix     a real Postfix with its fsync'd queue, on its own config and queue under a temp dir,
#               relaying everything to the discard transport. The incumbent.
#   edgemta     dist/edgemta --sync always (built with `dotnet publish src/EdgeMta` when missing).
#
# Clients: smtp-source (C, no pipelining) and our own edgemta-load (loadtests/), which checks every reply
# and counts a message only on 250 after the dot; edgemta-load with --pipelining where connections are
# reused. Matrix: 1 KiB and 64 KiB; 1, 10 and 100 sessions; connections reused and one per message;
# three rounds, the targets alternating inside each cell so drift hits them alike. Printed: one table of
# medians, the ratios edgemta/smtp-sink and edgemta/postfix, and server CPU per message from
# /proc/PID/stat (utime+stime of the server and its children, plus the reaped children's cutime+cstime:
# Postfix's smtpd, cleanup, qmgr, trivial-rewrite and discard are all children of its master). For
# Postfix the CPU sample is taken after its queue has drained, so its figure includes moving each
# message through the queue to discard.
#
# Bounded: every run is capped by its message count and by `timeout`; loopback only; every process the
# script starts is stopped by its pid on exit (trap). `--quick`: one round, a reduced matrix, small
# counts: about two minutes once the binaries exist.
# Counts: edgemta and smtp-sink send --scale times the cell's count (default 5 in the full race, 1 with
# --quick), so a run lasts seconds, not a fraction of one spent mostly on connection set-up; Postfix,
# some 20x slower, sends the cell's count. Rates (msg/s) are what is compared, so the counts may differ.
#
# A second edgemta: `--edgemta-b "BIN [FLAGS...]"` adds the target edgemta-b (BIN run as edgemta is,
# plus FLAGS), raced in the same cells, and a column edgemta-b / edgemta: two builds (net9 against net10)
# or two flag sets (with and without --metrics-listen) compared in one run. With `--scrape-b`, GET
# /metrics of edgemta-b is fetched every second while the race runs (FLAGS must hold --metrics-listen).
#
# Store and forward: `perf/race.sh --relay [OPTIONS]` runs perf/race-relay.sh instead (edgemta --relay and
# Postfix with a relayhost, each in front of its own smtp-sink: delivered msg/s and accept-to-delivered
# latency; its options in `perf/race-relay.sh --help`).
#
# Usage: perf/race.sh [--quick] [--rounds N] [--scale K] [--targets edgemta,smtp-sink,postfix]
#                     [--clients LIST] [--out DIR] [--no-install] [--no-build]
#                     [--edgemta-b "BIN [FLAGS...]" [--scrape-b]] [--cells "SIZE:SESSIONS:CONN:COUNT ..."]
set -uo pipefail

for a in "$@"; do [ "$a" = --relay ] && exec "$(dirname "$0")/race-relay.sh" "$@"; done

quick=0 rounds=3 scale="" install=1 build=1 out="" targets_arg="edgemta,smtp-sink,postfix" edgemta_b="" scrape_b=0 cells_arg=""
clients_arg="smtp-source,edgemta-load,edgemta-load-pipe"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; rounds=1 ;;
    --rounds) rounds=$2; shift ;;
    --scale) scale=$2; shift ;;
    --targets) targets_arg=$2; shift ;;
    --clients) clients_arg=$2; shift ;;
    --out) out=$2; shift ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --edgemta-b) edgemta_b=$2; shift ;;
    --scrape-b) scrape_b=1 ;;
    --cells) cells_arg=$2; shift ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "race.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

[ -n "$edgemta_b" ] && [[ ",$targets_arg," != *",edgemta-b,"* ]] && targets_arg="$targets_arg,edgemta-b"
scale=${scale:-$([ "$quick" = 1 ] && echo 1 || echo 5)}
case $scale in ''|*[!0-9]*|0) echo "race.sh: --scale wants a whole number >= 1" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
# The work directory holds the spools and Postfix's queue: it must be on a real disk (not tmpfs), or
# fsync costs nothing and the race measures nothing. /var/tmp is disk-backed on Debian.
work=$(mktemp -d /var/tmp/edgemta-race.XXXXXX)
chmod 755 "$work"
out=${out:-$work}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Bulk (spool, Postfix queue) lives in $work and is removed on exit; logs and results live in $out.
log="$out/race.log"
results="$out/results.tsv"
: >"$log"
printf 'round\ttarget\tclient\tsize\tsessions\tconnections\tmessages\tmsg_per_s\tcpu_us_per_msg\tstatus\n' >"$results"
say() { echo "$*" | tee -a "$log" >&2; }

# ---------------------------------------------------------------- cleanup: every pid we started
source "$(dirname "$0")/lib-postfix.sh"
sink_pid="" postfix_dir="" scraper_pid=""
declare -A edgemta_pid=()
cleanup() {
  set +e
  [ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null && wait "$scraper_pid" 2>/dev/null
  for e in "${edgemta_pid[@]}"; do [ -n "$e" ] && kill "$e" 2>/dev/null && wait "$e" 2>/dev/null; done
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid" 2>/dev/null
  [ -n "$postfix_dir" ] && postfix_stop "$postfix_dir"
  if [ "$out" = "$work" ]; then
    rm -rf "$work"/spool* "$work/postfix/queue"      # keep logs and results, drop the bulk
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
[ -x /usr/sbin/smtp-source ] && export PATH="$PATH:/usr/sbin"
if ! command -v smtp-source >/dev/null 2>&1 || ! command -v postfix >/dev/null 2>&1; then
  if [ "$install" = 1 ]; then
    say "installing postfix (for smtp-source, smtp-sink and the Postfix target)"
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>>"$log"
    { apt-get update -qq && apt-get install -y -qq postfix; } >>"$log" 2>&1 || { say "apt-get install postfix failed: see $log"; exit 1; }
    export PATH="$PATH:/usr/sbin"
  else
    say "smtp-source/postfix missing and --no-install given"; exit 1
  fi
fi
command -v python3 >/dev/null 2>&1 || { say "python3 is needed for the summary table"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
clk_tck=$(getconf CLK_TCK)

# CPU ticks (utime+stime+cutime+cstime) of a process and its direct children.
cpu_ticks() {
  local pid=$1 total=0 p stat rest
  local -a f
  for p in "$pid" $(pgrep -P "$pid" 2>/dev/null); do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    total=$((total + f[11] + f[12] + f[13] + f[14]))
  done
  echo "$total"
}

# ---------------------------------------------------------------- the load generator
load_dll="$root/loadtests/EdgeMta.LoadTests/bin/Release/net10.0/edgemta-load.dll"
if [[ ",$clients_arg," == *",edgemta-load"* ]]; then
  if [ ! -f "$load_dll" ] || [ "$build" = 1 ]; then
    say "building edgemta-load"
    dotnet build "$root/loadtests/EdgeMta.LoadTests/EdgeMta.LoadTests.csproj" -c Release -nologo -clp:ErrorsOnly >>"$log" 2>&1 \
      || { say "edgemta-load: build failed (see $log); dropping it from the clients"; clients_arg=smtp-source; }
  fi
  # Run a private copy, so a rebuild of the tree during the race cannot change the client under it.
  if [ -f "$load_dll" ]; then
    cp -r "$(dirname "$load_dll")" "$work/load" && load_dll="$work/load/edgemta-load.dll"
  fi
fi

# ---------------------------------------------------------------- targets
declare -A port pid status
for t in ${targets_arg//,/ }; do status[$t]="not started"; done

start_sink() {
  local p; p=$(free_port)
  local -a user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" "127.0.0.1:$p" 1024 </dev/null >>"$out/smtp-sink.log" 2>&1 &
  sink_pid=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port[smtp-sink]=$p; pid[smtp-sink]=$sink_pid; status[smtp-sink]=ok; return; fi
    kill -0 "$sink_pid" 2>/dev/null || break
    sleep 0.1
  done
  status[smtp-sink]="did not start (see $out/smtp-sink.log)"
}

start_postfix() {   # perf/lib-postfix.sh's private Postfix, delivering to discard
  local p; p=$(free_port); postfix_dir="$work/postfix"
  if postfix_start "$postfix_dir" "$p" discard; then
    port[postfix]=$p; pid[postfix]=$postfix_master; status[postfix]=ok
  else
    status[postfix]="did not start or answer on 127.0.0.1:$p (see $postfix_dir/maillog)"
  fi
}

# edgemta and edgemta-b: the binary and the flags each runs with (edgemta-b only with --edgemta-b).
declare -A edgemta_bin=([edgemta]="$root/dist/edgemta") edgemta_flags=([edgemta]="")
if [ -n "$edgemta_b" ]; then
  read -r -a b_words <<<"$edgemta_b"
  edgemta_bin[edgemta-b]=$(realpath -m "${b_words[0]}")
  edgemta_flags[edgemta-b]="${b_words[*]:1}"
fi
start_edgemta() {   # target: edgemta or edgemta-b
  local t=$1 bin=${edgemta_bin[$1]}
  if [ "$t" = edgemta ] && [ ! -x "$bin" ]; then
    if [ "$build" = 1 ] && [ -d "$root/src/EdgeMta" ]; then
      say "edgemta: dist/edgemta missing, publishing it (dotnet publish src/EdgeMta -c Release -o dist)"
      (cd "$root" && timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly) >"$out/publish.log" 2>&1
    fi
  fi
  [ -x "$bin" ] || { status[$t]="not built ($bin missing)"; return; }
  rm -rf "$work/spool-$t"
  mkdir -p "$work/spool-$t"
  local -a flags=(); read -r -a flags <<<"${edgemta_flags[$t]}"
  local -a sync=(--sync always)   # unless the flags choose (edgemta-b with --sync none: the durability tax)
  [[ " ${flags[*]} " == *" --sync "* ]] && sync=()
  "$bin" serve --listen 127.0.0.1:0 --spool "$work/spool-$t" "${sync[@]}" "${flags[@]}" </dev/null >"$out/$t.out" 2>>"$out/$t.err" &
  edgemta_pid[$t]=$!
  local line="" p=""
  for _ in $(seq 100); do
    line=$(head -n1 "$out/$t.out" 2>/dev/null)
    if [[ "$line" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]]; then p=${BASH_REMATCH[1]}; break; fi
    kill -0 "${edgemta_pid[$t]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$p" ]; then
    kill "${edgemta_pid[$t]}" 2>/dev/null; wait "${edgemta_pid[$t]}" 2>/dev/null; edgemta_pid[$t]=""
    status[$t]="not built: $bin did not print 'listening on 127.0.0.1:PORT' (see $out/$t.err)"
    return
  fi
  port[$t]=$p; pid[$t]=${edgemta_pid[$t]}; status[$t]=ok
}

# The spool only grows during the race; start afresh past 2 GiB so the disk is not the story.
maybe_restart_edgemta() {
  local t=$1 mb; mb=$(du -sm "$work/spool-$t" 2>/dev/null | cut -f1)
  if [ "${mb:-0}" -gt 2048 ]; then
    kill "${edgemta_pid[$t]}" 2>/dev/null; wait "${edgemta_pid[$t]}" 2>/dev/null; edgemta_pid[$t]=""
    start_edgemta "$t"
  fi
}

restart_target() {
  case $1 in
    smtp-sink) wait "$sink_pid" 2>/dev/null; start_sink ;;
    postfix) postfix_stop "$postfix_dir"; sleep 1; start_postfix ;;
    edgemta|edgemta-b) wait "${edgemta_pid[$1]}" 2>/dev/null; edgemta_pid[$1]=""; start_edgemta "$1" ;;
  esac
  say "target $1: ${status[$1]}${port[$1]:+ on 127.0.0.1:${port[$1]} (pid ${pid[$1]})}"
}

for t in ${targets_arg//,/ }; do
  case $t in
    smtp-sink) start_sink ;;
    postfix) start_postfix ;;
    edgemta|edgemta-b) start_edgemta "$t" ;;
    *) say "unknown target $t"; exit 2 ;;
  esac
  say "target $t: ${status[$t]}${port[$t]:+ on 127.0.0.1:${port[$t]} (pid ${pid[$t]})}"
done

# A scraper for edgemta-b's metrics: one GET a second, as Prometheus would, for the whole race (bounded by
# the race's own end: it is stopped by its pid on exit).
if [ "$scrape_b" = 1 ] && [ "${status[edgemta-b]:-}" = ok ]; then
  mport=""
  for _ in $(seq 50); do
    mport=$(sed -n 's/^metrics on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out/edgemta-b.out" | head -n1)
    [ -n "$mport" ] && break; sleep 0.1
  done
  if [ -n "$mport" ]; then
    ( for _ in $(seq 86400); do curl -s -o /dev/null "http://127.0.0.1:$mport/metrics"; sleep 1; done ) &
    scraper_pid=$!
    say "scraping edgemta-b's metrics on 127.0.0.1:$mport every second"
  else
    say "--scrape-b: edgemta-b printed no 'metrics on 127.0.0.1:PORT' line; not scraping"
  fi
fi

# ---------------------------------------------------------------- the matrix
# cell = size sessions connections count
cells=()
if [ -n "$cells_arg" ]; then
  cap=180
  for c in $cells_arg; do cells+=("${c//:/ }"); done
elif [ "$quick" = 1 ]; then
  cap=60
  cells=("1024 1 reused 300" "1024 10 reused 600" "1024 100 reused 1000" "1024 10 per-message 400" "65536 10 reused 300")
else
  cap=180
  for size in 1024 65536; do
    for s in 1 10 100; do
      for c in reused per-message; do
        n=$(( s == 1 ? 1000 : (s == 10 ? 2000 : 4000) ))
        [ "$size" = 65536 ] && n=$((n / 2))
        cells+=("$size $s $c $n")
      done
    done
  done
fi

run_one() {   # round target client size sessions connections count
  local round=$1 t=$2 client=$3 size=$4 s=$5 conn=$6 n=$7
  local p=${port[$t]} spid=${pid[$t]} rate="" st=ok before after t0 t1 rc
  before=$(cpu_ticks "$spid")
  t0=$(date +%s.%N)
  case $client in
    smtp-source)
      local -a reuse=(); [ "$conn" = reused ] && reuse=(-d)
      timeout "$cap" smtp-source -s "$s" -m "$n" -l "$size" "${reuse[@]}" "127.0.0.1:$p" >"$out/client.out" 2>&1
      rc=$?
      t1=$(date +%s.%N)
      if [ $rc = 0 ]; then rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }'); elif [ $rc = 124 ]; then st=timeout; else st="fail:$(tail -c 80 "$out/client.out" | tr '\t\n' '  ')"; fi
      ;;
    edgemta-load|edgemta-load-pipe)
      local -a extra=()
      [ "$conn" = per-message ] && extra+=(--per-message-connections)
      [ "$client" = edgemta-load-pipe ] && extra+=(--pipelining)
      timeout "$cap" dotnet "$load_dll" --target "127.0.0.1:$p" --sessions "$s" --messages "$n" --size "$size" \
        "${extra[@]}" --timeout 20s --csv-summary --scenario race >"$out/client.out" 2>&1
      rc=$?
      if [ $rc = 124 ]; then st=timeout
      else
        # summary.csv columns: ... attempted(8) delivered(9) failed(10) elapsed_s(11) msg_per_s(12)
        # The row ends ...,attempted,delivered,failed,elapsed_s,msg_per_s,mb_per_s,connections,p50,p99,max:
        # count fields from the end, since the quoted description fields before them may hold commas.
        local row failed
        row=$(tail -n1 "$out/client.out")
        failed=$(awk -F, '{ print (NF >= 17 ? $(NF-7) : "x") }' <<<"$row")
        if [ "$failed" = 0 ]; then rate=$(awk -F, '{ print $(NF-5) }' <<<"$row")
        else st="fail:${failed}-failed"; fi
      fi
      ;;
  esac
  if [ "$t" = postfix ]; then     # let the queue drain to discard before sampling its CPU (bounded)
    for _ in $(seq 300); do [ "$(postfix_queue_count "$postfix_dir")" = 0 ] && break; sleep 0.2; done
  fi
  after=$(cpu_ticks "$spid")
  local cpu; cpu=$(awk -v a="$before" -v b="$after" -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
  if ! kill -0 "$spid" 2>/dev/null; then
    # The server died during the run (or something outside killed it): the run does not count, and
    # the target is started again so one death does not void the rest of the race.
    st="died" rate="" cpu=""
    say "target $t (pid $spid) is gone; restarting it"
    restart_target "$t"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$client" "$size" "$s" "$conn" "$n" "${rate:-}" "$cpu" "$st" >>"$results"
  say "$(printf 'round %s  %-9s %-17s %6s B %4s sess %-11s %6s msgs  %9s msg/s  %8s µs CPU/msg  %s' "$round" "$t" "$client" "$size" "$s" "$conn" "$n" "${rate:--}" "$cpu" "$st")"
  case $t in edgemta|edgemta-b) maybe_restart_edgemta "$t" ;; esac
}

started=$(date +%s)
live=()
turn=0
for t in ${targets_arg//,/ }; do [ "${status[$t]}" = ok ] && live+=("$t"); done
for round in $(seq "$rounds"); do
  for cell in "${cells[@]}"; do
    read -r size s conn n <<<"$cell"
    for client in ${clients_arg//,/ }; do
      [ "$client" = edgemta-load-pipe ] && [ "$conn" != reused ] && continue
      [ "$client" = edgemta-load-pipe ] && [ "$quick" = 1 ] && [ "$cell" != "1024 10 reused 600" ] && continue
      # Alternate the order of targets from round to round (and cell to cell) against drift.
      order=("${live[@]}")
      k=$(( turn++ % (${#live[@]} > 0 ? ${#live[@]} : 1) ))
      order=("${order[@]:k}" "${order[@]:0:k}")
      for t in "${order[@]}"; do
        [ "${status[$t]}" = ok ] || { say "target $t: ${status[$t]}; skipping"; continue; }
        run_one "$round" "$t" "$client" "$size" "$s" "$conn" "$([ "$t" = postfix ] && echo "$n" || echo $((n * scale)))"
      done
    done
  done
done
elapsed=$(( $(date +%s) - started ))

# ---------------------------------------------------------------- the table
{
  echo "edgemta race, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $rounds round(s), counts x$scale for edgemta and smtp-sink, ${elapsed}s of runs; medians over rounds"
  for t in edgemta edgemta-b smtp-sink postfix; do
    [[ ",$targets_arg," == *",$t,"* ]] && echo "  $t: ${status[$t]}"
  done
} | tee "$out/race.md" >&2
python3 - "$results" "${status[edgemta]:-not in --targets}" >>"$out/race.md" <<'PY'
import csv, sys, statistics
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
edgemta_status = sys.argv[2]
cells, data = [], {}
for r in rows:
    key = (r['client'], int(r['size']), int(r['sessions']), r['connections'])
    if key not in cells: cells.append(key)
    d = data.setdefault((key, r['target']), {'rate': [], 'cpu': [], 'bad': []})
    if r['status'] == 'ok' and r['msg_per_s']:
        d['rate'].append(float(r['msg_per_s'])); d['cpu'].append(float(r['cpu_us_per_msg']))
    else:
        d['bad'].append(r['status'])
def med(key, t, what):
    d = data.get((key, t))
    if d is None: return None
    return statistics.median(d[what]) if d[what] else None
def show(key, t, what, fmt):
    d = data.get((key, t))
    if d is None: return 'n/b' if t == 'edgemta' and edgemta_status != 'ok' else '-'
    v = med(key, t, what)
    if v is None: return d['bad'][0].split(':')[0] if d['bad'] else '-'
    return fmt.format(v)
def ratio(a, b):
    return f'{a / b:.2f}' if a and b else '-'
has_b = any(r['target'] == 'edgemta-b' for r in rows)
print()
print('| client | size | sessions | connections | edgemta msg/s | smtp-sink msg/s | postfix msg/s | edgemta / smtp-sink | edgemta / postfix | CPU µs/msg edgemta | smtp-sink | postfix |'
      + (' edgemta-b msg/s | edgemta-b / edgemta | CPU µs/msg edgemta-b |' if has_b else ''))
print('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|' + ('---:|---:|---:|' if has_b else ''))
for key in cells:
    client, size, s, conn = key
    e, k, p = med(key, 'edgemta', 'rate'), med(key, 'smtp-sink', 'rate'), med(key, 'postfix', 'rate')
    print(f"| {client} | {'64 KiB' if size == 65536 else '1 KiB' if size == 1024 else size} | {s} | {conn} | "
          f"{show(key, 'edgemta', 'rate', '{:,.0f}')} | {show(key, 'smtp-sink', 'rate', '{:,.0f}')} | {show(key, 'postfix', 'rate', '{:,.0f}')} | "
          f"{ratio(e, k)} | {ratio(e, p)} | {show(key, 'edgemta', 'cpu', '{:,.0f}')} | {show(key, 'smtp-sink', 'cpu', '{:,.0f}')} | {show(key, 'postfix', 'cpu', '{:,.0f}')} |"
          + (f" {show(key, 'edgemta-b', 'rate', '{:,.0f}')} | {ratio(med(key, 'edgemta-b', 'rate'), e)} | {show(key, 'edgemta-b', 'cpu', '{:,.0f}')} |" if has_b else ''))
if edgemta_status != 'ok':
    print(f'| edgemta: not built | | | | {edgemta_status} | | | | | | | |')
bad = [r for r in rows if r['status'] != 'ok']
if bad:
    print()
    print(f'{len(bad)} run(s) did not complete cleanly (timeout, a client saw a failure, or the server died): see results.tsv')
PY
sed -n '/^$/,$p' "$out/race.md"
echo >&2
echo "results: $results   table: $out/race.md   log: $log" >&2
