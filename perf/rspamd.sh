#!/usr/bin/env bash
# perf/rspamd.sh — messages/s through edgemta with --rspamd against edgemta without it, and rspamd's own rate on
# the same message (docs/SCREENING.md "Content check by rspamd"): how much of the cost is rspamd's, and what edgemta
# adds on top; and the incumbent's figure, Postfix with the same rspamd as its milter (rspamd's proxy worker in
# milter mode, self-scanning as rspamd's quick start sets it up), with and without the milter. Everything runs inside `unshare -n` with only loopback up (rspamd reaches for the internet at start,
# and every DNS lookup of its modules then fails at once, so the figure is rspamd's CPU, not the network's).
# rspamd: Debian's, /etc/rspamd/rspamd.conf with a private LOCAL_CONFDIR/RUNDIR/DBDIR/LOGDIR, one normal worker.
# Load: Postfix's smtp-source, SESSIONS parallel sessions, MESSAGES messages of 1 KiB, first to an edgemta without
# --rspamd, then to one with it, then to Postfix (perf/lib-postfix.sh: fsync'd queue, discard) with the milter and
# without it. rspamd's cost is read from its processes' CPU time (/proc/PID/stat) over the
# checked run, and each edgemta's over its whole life (start included): the rspamd-bound rate is 1 / rspamd's CPU
# per message (one worker).
#
# Usage: perf/rspamd.sh [--messages N] [--sessions N]     (default 2000 and 10; needs root, dist/edgemta, rspamd)
set -uo pipefail
messages=2000
sessions=10
while [ $# -gt 0 ]; do
  case $1 in
    --messages) messages=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/dist/edgemta
[ -x "$bin" ] || { echo "no $bin: dotnet publish src/EdgeMta -c Release -o dist" >&2; exit 2; }
[ -x /usr/bin/rspamd ] || { echo "no rspamd: apt-get install --no-install-recommends rspamd" >&2; exit 2; }
source=$(command -v smtp-source || echo /usr/sbin/smtp-source)
if [ -z "${EDGEMTA_RSPAMD_NETNS:-}" ]; then
  EDGEMTA_RSPAMD_NETNS=1 exec unshare -n "$0" --messages "$messages" --sessions "$sessions"
fi
ip link set lo up

work=$(mktemp -d /var/tmp/edgemta-rspamd.XXXXXX)
chmod 755 "$work"   # Postfix's master, as user postfix, opens its lock file under it
pids=()
source "$root/perf/lib-postfix.sh"
pf_dir=""
trap '[ -n "$pf_dir" ] && postfix_stop "$pf_dir"; for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; sleep 1; rm -rf "$work"' EXIT
mkdir -p "$work"/{local.d,run,db,log}
printf 'bind_socket = "127.0.0.1:11333";\ncount = 1;\n' >"$work/local.d/worker-normal.inc"
printf 'bind_socket = "127.0.0.1:11334";\ncount = 1;\n' >"$work/local.d/worker-controller.inc"
printf 'bind_socket = "127.0.0.1:11332";\ncount = 1;\nmilter = yes;\nupstream "local" {\n  default = yes;\n  self_scan = yes;\n}\n' \
  >"$work/local.d/worker-proxy.inc"
printf 'type = "file";\nfilename = "%s/log/rspamd.log";\nlevel = "warning";\n' "$work" >"$work/local.d/logging.inc"
/usr/bin/rspamd -f -i -u root -g root -c /etc/rspamd/rspamd.conf --var LOCAL_CONFDIR="$work" --var RUNDIR="$work/run" \
  --var DBDIR="$work/db" --var LOGDIR="$work/log" >"$work/rspamd.out" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 180); do   # at most about 3 minutes (over a minute on a loaded 2-core machine)
  curl -s -m 2 http://127.0.0.1:11333/ping 2>/dev/null | grep -q pong && { ready=1; break; }
  sleep 1
done
[ $ready = 1 ] || { echo "rspamd did not answer /ping" >&2; tail "$work/log/rspamd.log" >&2; exit 1; }

# CPU seconds (user + system) a process and its children have used so far, from /proc/PID/stat.
cpu() {
  python3 - "$@" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    pids = [pid] + open(f"/proc/{pid}/task/{pid}/children").read().split()
    for p in pids:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in f[11:15])   # utime, stime and the reaped children's (Postfix's smtpd)
print(total / hz)
PY
}
rspamd_pid=${pids[0]}
# Messages rspamd has scanned so far (its controller's /stat): shows each path's checks really reached it (a
# milter that cannot connect is skipped under milter_default_action = accept, and the rate would mean nothing).
scanned() { curl -s -m 5 http://127.0.0.1:11334/stat | python3 -c 'import json, sys; print(json.load(sys.stdin)["scanned"])'; }

rate=0
run_edgemta() { # $1 port, $2.. flags; sets rate (messages/s through smtp-source) and leaves the server in pids
  local port=$1; shift
  "$bin" --listen "127.0.0.1:$port" --spool "$work/spool-$port" --hostname mx.example.org "$@" </dev/null >"$work/edgemta-$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^listening on' "$work/edgemta-$port.log" 2>/dev/null && break; sleep 0.1; done
  local t0 t1
  t0=$(date +%s%N)
  timeout 600 "$source" -s "$sessions" -m "$messages" -l 1024 -f alice@example.org -t bob@example.com "127.0.0.1:$port"
  t1=$(date +%s%N)
  rate=$(python3 -c "print(f'{$messages / (($t1 - $t0) / 1e9):.0f}')")
}
run_edgemta 2601
plain=$rate
e0=$(cpu "${pids[-1]}")
r0=$(cpu "$rspamd_pid")
s0=$(scanned)
run_edgemta 2600 --rspamd http://127.0.0.1:11333
checked=$rate
r1=$(cpu "$rspamd_pid")
e1=$(cpu "${pids[-1]}")
s1=$(scanned)
verdicts=$(grep -c ' 100 rspamd ' "$work/edgemta-2600.log")
failures=$(grep -c ' 101 rspamd-failed ' "$work/edgemta-2600.log")
ms=$(grep -o ' 100 rspamd .* ms=[0-9]*' "$work/edgemta-2600.log" | sed 's/.*ms=//' | sort -n)
p50=$(echo "$ms" | awk '{a[NR]=$1} END {print a[int(NR*0.5)+1]}')
p99=$(echo "$ms" | awk '{a[NR]=$1} END {print a[int(NR*0.99)+1]}')

# Postfix, the same load: with rspamd as its milter, then without. Its CPU is its master's and every child's (the
# smtpd, cleanup and qmgr processes), sampled once its queue has drained to discard (bounded: 60 s).
pf_rate=0 pf_cpu=0
run_postfix() { # $1 port, $2 name, $3 extra main.cf lines; sets pf_rate and pf_cpu
  local d="$work/postfix-$2" t0 t1 c0
  pf_dir=$d
  postfix_start "$d" "$1" discard "$3" || { echo "Postfix did not start:" >&2; tail -n 5 "$d/start.log" "$d/maillog" >&2; exit 1; }
  c0=$(cpu "$postfix_master")
  t0=$(date +%s%N)
  timeout 600 "$source" -s "$sessions" -m "$messages" -l 1024 -f alice@example.org -t bob@example.com "127.0.0.1:$1"
  t1=$(date +%s%N)
  for _ in $(seq 300); do [ "$(postfix_queue_count "$d")" = 0 ] && break; sleep 0.2; done
  pf_cpu=$(python3 -c "print($(cpu "$postfix_master") - $c0)")
  pf_rate=$(python3 -c "print(f'{$messages / (($t1 - $t0) / 1e9):.0f}')")
  postfix_stop "$d"
  pf_dir=""
}
r2=$(cpu "$rspamd_pid")
s2=$(scanned)
run_postfix 2602 milter "smtpd_milters = inet:127.0.0.1:11332
milter_protocol = 6
milter_default_action = accept"
pf_checked=$pf_rate pf_checked_cpu=$pf_cpu
r3=$(cpu "$rspamd_pid")
s3=$(scanned)
run_postfix 2603 plain ""
pf_plain=$pf_rate pf_plain_cpu=$pf_cpu
python3 - <<PY
m, plain, checked = $messages, $plain, $checked
rspamd_cpu, edgemta_plain, edgemta_checked = $r1 - $r0, $e0, $e1
milter_rspamd_cpu = $r3 - $r2
pf_plain, pf_checked = $pf_plain, $pf_checked
print("| path | messages/s | CPU per message | |")
print("|---|---|---|---|")
print(f"| edgemta alone | {plain} | {edgemta_plain / m * 1e3:.2f} ms (edgemta) | {m} messages of 1 KiB, $sessions smtp-source sessions |")
print(f"| edgemta + rspamd | {checked} | {edgemta_checked / m * 1e3:.2f} ms (edgemta), {rspamd_cpu / m * 1e3:.2f} ms (rspamd) | verdicts $verdicts, failures $failures, scanned by rspamd {$s1 - $s0}; check p50 ${p50} ms, p99 ${p99} ms |")
print(f"| Postfix alone | {pf_plain} | {$pf_plain_cpu / m * 1e3:.2f} ms (Postfix) | fsync'd queue, discard |")
print(f"| Postfix + rspamd milter | {pf_checked} | {$pf_checked_cpu / m * 1e3:.2f} ms (Postfix), {milter_rspamd_cpu / m * 1e3:.2f} ms (rspamd) | scanned by rspamd {$s3 - $s2} |")
print(f"edgemta + rspamd / Postfix + rspamd: {checked / pf_checked:.2f}x; edgemta / Postfix alone: {plain / pf_plain:.2f}x")
print(f"rspamd-bound rate (1 / its CPU per message, one worker): {m / rspamd_cpu:.0f} messages/s; "
      f"edgemta's share of the CPU with rspamd: {edgemta_checked / (edgemta_checked + rspamd_cpu) * 100:.0f}%")
PY
