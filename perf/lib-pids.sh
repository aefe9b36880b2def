# Sourced by the perf scripts that start several processes (relay-kill.sh, relay-outage.sh): a table of the
# pids they started, by name, and one way to stop each: the signal asked for, a bounded wait (10 s), then
# SIGKILL, always by pid (never by name). The caller sets its own EXIT trap around stop_pid.
declare -A pids=()
stop_pid() {   # name signal: stop one process we started, wait for it (bounded), then forget it
  local p=${pids[$1]:-}
  [ -n "$p" ] || return 0
  kill "-$2" "$p" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  unset "pids[$1]"
}
