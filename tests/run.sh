#!/usr/bin/env bash
# Runs every test EdgeMta has, on a fresh machine: installs the real SMTP peers the end-to-end tests talk
# to (swaks, Postfix's smtp-source/smtp-sink, aiosmtpd) and promtool (Debian's prometheus), publishes the
# Native AOT binary those tests drive, runs each test project, and ends with one line `N passed, N failed`
# that sums them all.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need=()
command -v swaks >/dev/null 2>&1 || need+=(swaks)
perl -MNet::SSLeay -e1 >/dev/null 2>&1 || need+=(libnet-ssleay-perl)
command -v smtp-source >/dev/null 2>&1 || [ -x /usr/sbin/smtp-source ] || need+=(postfix)
# Dovecot's LMTP server, the final hop of the relay tests (Harness/NextHops/DovecotLmtpHop.cs).
[ -x /usr/sbin/dovecot ] || need+=(dovecot-core)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
[ -d /usr/lib/python3/dist-packages/aiosmtpd ] || need+=(python3-aiosmtpd)  # Debian's python3, not a pyenv one
# systemd-socket-activate and systemd-analyze (verify, security --offline); neither needs systemd running.
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)  # promtool check metrics: the exposition's real parser
# faultfs (tests/faultfs/faultfs.py), the FUSE passthrough StorageFaultTests puts the spool on: fusepy for
# Debian's python3 (it drives libfuse 2.9), and fusermount3 to unmount it.
[ -f /usr/lib/python3/dist-packages/fusepy.py ] || need+=(python3-fusepy)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)  # a fake DNS blocklist zone on loopback (DnsblTests, UdpDnsResolverTests)
command -v curl >/dev/null 2>&1 || need+=(curl)  # RspamdServer's GET /ping inside rspamd's namespace
# HAProxy in front of edgemta's PROXY listeners (HaproxyTests, ScaleOutTests) and ip netns for the scale-out run.
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
[ -x /usr/sbin/ip ] || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  { apt-get update -qq && apt-get install -y -qq "${need[@]}"; } >/tmp/edgemta-apt.log 2>&1 \
    || { echo "apt-get failed:"; tail -20 /tmp/edgemta-apt.log; }
fi
# rspamd, the content scanner RspamdTests runs (inside unshare -n), without its recommends (redis and more).
if [ ! -x /usr/bin/rspamd ]; then
  echo "installing rspamd"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rspamd; } >>/tmp/edgemta-apt.log 2>&1 \
    || { echo "apt-get failed:"; tail -20 /tmp/edgemta-apt.log; }
fi

# The format gate first, as CI's first job in the projects we learn from: whitespace, layout, import order
# and naming as .editorconfig says, and the analyzers' warnings (`dotnet format EdgeMta.sln --severity
# warn` fixes most of it). About 30 s. It counts as one check in the closing line.
echo "checking the format"
checks_failed=0 checks_passed=0
if timeout 600 dotnet format EdgeMta.sln --verify-no-changes --severity warn -v q >/tmp/edgemta-format.log 2>&1; then
  checks_passed=1
else
  grep -m 20 ' error ' /tmp/edgemta-format.log || tail -20 /tmp/edgemta-format.log
  echo "format: not as .editorconfig says (dotnet format EdgeMta.sln --severity warn fixes most of it)"
  checks_failed=1
fi

# One build of the whole solution, then every test project runs from it (--no-build): five `dotnet test`
# builds used to take most of the suite's wall time. The AOT publish is a build of its own (another
# runtime identifier), made once.
echo "building the solution"
if ! timeout 900 dotnet build EdgeMta.sln -c Release -nologo -clp:ErrorsOnly >/tmp/edgemta-build.log 2>&1; then
  cat /tmp/edgemta-build.log
  echo "$checks_passed passed, $((checks_failed + 1)) failed"
  exit 1
fi
echo "publishing the AOT binary"
if ! timeout 900 dotnet publish src/EdgeMta -c Release -o dist -nologo -clp:ErrorsOnly >/tmp/edgemta-publish.log 2>&1; then
  cat /tmp/edgemta-publish.log
  echo "$checks_passed passed, $((checks_failed + 1)) failed"
  exit 1
fi
export EDGEMTA_BINARY="$root/dist/edgemta"

results="$root/TestResults"
rm -rf "$results"
status=0
for proj in tests/*.Tests/*.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== $name"
  # A hung test fails the run instead of eating CI's hour: no project takes a minute today.
  timeout 900 dotnet test "$proj" -c Release --no-build -nologo --logger "trx;LogFileName=$name.trx" \
    --results-directory "$results" || status=1
  [ -f "$results/$name.trx" ] || { echo "$name: no results (build or runner failure)"; missing=$((${missing:-0} + 1)); status=1; }
done

[ "$checks_failed" = 0 ] || status=1
python3 - "$results" "${missing:-0}" "$checks_passed" "$checks_failed" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = '{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}'
passed = failed = skipped = 0
for path in glob.glob(sys.argv[1] + '/*.trx'):
    c = ET.parse(path).getroot().find(f'{ns}ResultSummary/{ns}Counters')
    passed += int(c.get('passed', 0))
    failed += int(c.get('failed', 0)) + int(c.get('error', 0)) + int(c.get('timeout', 0)) + int(c.get('aborted', 0))
    skipped += int(c.get('total', 0)) - int(c.get('executed', 0))
failed += int(sys.argv[2])  # a project that left no results counts as one failure
passed += int(sys.argv[3])  # the format gate
failed += int(sys.argv[4])
print(f'{passed} passed, {failed} failed, {skipped} skipped')
PY
exit $status
