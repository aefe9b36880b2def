# Sourced by the perf scripts that race a real Postfix (race.sh, race-relay.sh, rspamd.sh): one private
# Postfix instance under a directory of the caller's, so every script measures the same configuration.
#
#   postfix_start DIR PORT NEXT [EXTRA]   write DIR/etc/{main,master}.cf and start Postfix listening on
#                                         127.0.0.1:PORT; NEXT is `discard` (every message is dropped once
#                                         queued) or `relay:PORT` (relayhost [127.0.0.1]:PORT, e.g. a smtp-sink);
#                                         EXTRA, lines appended to main.cf (e.g. smtpd_milters). Sets
#                                         postfix_master (the master's pid); returns 1 when it does not answer
#                                         within 10 s (its log: DIR/maillog).
#   postfix_stop DIR                      `postfix stop`, then the master by pid after 5 s (never by name).
#   postfix_queue_count DIR               messages still in incoming, active or maildrop.
#
# The queue is Postfix's own, fsync'd as shipped: the incumbent as an operator runs it. Loopback only, no
# DNS (smtpd_peername_lookup = no), no inflow throttling (in_flow_delay 0: Postfix takes mail as fast as its
# smtpd and cleanup can), no per-client limits. Postfix refuses a log file in a world-writable directory
# such as /tmp, so DIR must not be one, and DIR's parents must be searchable by the postfix user (the master
# opens DIR/data/master.lock as postfix).
postfix_master=""

postfix_start() {
  local d=$1 p=$2 next=$3 extra=${4:-} transport
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  chown postfix "$d/data" 2>/dev/null
  case $next in
    discard) transport="default_transport = discard
relay_transport = discard" ;;
    relay:*) transport="relayhost = [127.0.0.1]:${next#relay:}
default_transport = smtp
relay_transport = relay
smtp_tls_security_level = none" ;;
    *) echo "postfix_start: NEXT is discard or relay:PORT, not $next" >&2; return 1 ;;
  esac
  cat >"$d/etc/main.cf" <<EOF
# A private Postfix for edgemta's perf scripts (perf/lib-postfix.sh): loopback only, any recipient.
compatibility_level = 3.6
config_directory = $d/etc
queue_directory = $d/queue
data_directory = $d/data
command_directory = $(dirname "$(command -v postfix)")
daemon_directory = $(postconf -dh daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)
meta_directory = $(postconf -dh meta_directory 2>/dev/null || echo /etc/postfix)
shlib_directory = $(postconf -dh shlib_directory 2>/dev/null || echo /usr/lib/postfix)
mail_owner = postfix
setgid_group = postdrop
myhostname = race.localdomain
mydomain = localdomain
myorigin = \$myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
local_recipient_maps =
relay_domains = static:all
relay_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
$transport
local_transport = discard
smtpd_peername_lookup = no
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
default_process_limit = 300
in_flow_delay = 0
maillog_file = $d/maillog
biff = no
$extra
EOF
  cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$p inet n - n - 300 smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
  postfix -c "$d/etc" start </dev/null >>"$d/start.log" 2>&1 || return 1
  for _ in $(seq 50); do
    postfix_master=$(tr -d ' ' <"$d/queue/pid/master.pid" 2>/dev/null)
    if [ -n "$postfix_master" ] && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

postfix_stop() {
  local d=$1
  postfix -c "$d/etc" stop >>"$d/start.log" 2>&1
  if [ -n "$postfix_master" ]; then
    for _ in $(seq 10); do kill -0 "$postfix_master" 2>/dev/null || break; sleep 0.5; done
    kill "$postfix_master" 2>/dev/null
  fi
  postfix_master=""
}

postfix_queue_count() {
  find "$1/queue/incoming" "$1/queue/active" "$1/queue/maildrop" -type f 2>/dev/null | wc -l
}
