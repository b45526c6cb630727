#!/usr/bin/env bash
# Tests `make install` (scripts/install.sh) into temporary DESTDIRs, and the
# systemd unit with systemd-analyze: `verify` must print nothing (it only
# warns about unknown keys or bad values, so any output fails), and the
# offline security review must stay at or below exposure 2.0. A deliberately
# broken unit must fail the same checks, so they are known to bite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v systemd-analyze >/dev/null 2>&1 || need_apt systemd
make --no-print-directory build >/dev/null

pass=0 failed=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*" >&2; failed=$((failed + 1)); }
expect() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unit_checks UNIT BINARY: verify + security review of UNIT with ExecStart
# pointed at BINARY (verify needs the binary to exist on this host).
unit_checks() {
  local unit="$1" binary="$2" copy out
  copy="$work/verify/$(basename "$unit")"
  mkdir -p "$work/verify"
  sed -E "s#^ExecStart=[^ ]+#ExecStart=$binary#" "$unit" > "$copy"
  out=$(systemd-analyze verify "$copy" 2>&1) || { echo "$out" >&2; return 1; }
  [ -z "$out" ] || { echo "$out" >&2; return 1; }
  out=$(systemd-analyze security --offline=true --threshold=20 "$copy" 2>&1) || { echo "$out" | tail -3 >&2; return 1; }
  echo "     $(echo "$out" | tail -1)"
}

# 1. Default PREFIX into a DESTDIR.
d="$work/root"
PREFIX=/usr/local DESTDIR="$d" scripts/install.sh > "$work/install.log"
expect "binary installed 0755" test "$(stat -c %a "$d/usr/local/bin/heartbeat")" = 755
expect "installed binary prints its version" bash -c '"$1" version >/dev/null' _ "$d/usr/local/bin/heartbeat"
unit="$d/usr/local/lib/systemd/system/heartbeat.service"
expect "unit installed 0644 under PREFIX/lib/systemd/system" test "$(stat -c %a "$unit")" = 644
expect "unit ExecStart is PREFIX/bin/heartbeat" grep -qx 'ExecStart=/usr/local/bin/heartbeat serve' "$unit"
expect "example /etc/heartbeat.config installed" cmp -s deploy/heartbeat.config "$d/etc/heartbeat.config"
expect "example /etc/default/heartbeat installed" cmp -s deploy/heartbeat.env "$d/etc/default/heartbeat"
if "$d/usr/local/bin/heartbeat" help 2>&1 | grep -qw validate; then
  expect "installed example config validates" "$d/usr/local/bin/heartbeat" validate --config "$d/etc/heartbeat.config"
else
  echo "skip heartbeat validate (not in this build yet)"
fi

# 2. A second install keeps the operator's configuration.
echo '// edited by the operator' >> "$d/etc/heartbeat.config"
echo 'HEARTBEAT_LOG=true' >> "$d/etc/default/heartbeat"
PREFIX=/usr/local DESTDIR="$d" scripts/install.sh > "$work/install2.log"
expect "reinstall keeps an edited heartbeat.config" grep -q 'edited by the operator' "$d/etc/heartbeat.config"
expect "reinstall keeps an edited /etc/default/heartbeat" grep -q '^HEARTBEAT_LOG=true' "$d/etc/default/heartbeat"
expect "reinstall says it kept the config" grep -q "kept existing $d/etc/heartbeat.config" "$work/install2.log"

# 3. Another PREFIX and SYSCONFDIR.
d2="$work/root2"
PREFIX=/opt/heartbeat SYSCONFDIR=/etc/opt/heartbeat DESTDIR="$d2" scripts/install.sh > /dev/null
unit2="$d2/etc/systemd/system/heartbeat.service"
expect "PREFIX=/opt/heartbeat: unit in /etc/systemd/system" test -f "$unit2"
expect "PREFIX=/opt/heartbeat: ExecStart and --config follow" grep -qx 'ExecStart=/opt/heartbeat/bin/heartbeat serve --config /etc/opt/heartbeat/heartbeat.config' "$unit2"
expect "SYSCONFDIR: EnvironmentFile follows" grep -qx 'EnvironmentFile=-/etc/opt/heartbeat/default/heartbeat' "$unit2"

# 4. The unit passes systemd-analyze; a broken one does not.
expect "installed unit: systemd-analyze verify + security <= 2.0" unit_checks "$unit" "$d/usr/local/bin/heartbeat"
sed -e 's/^ProtectSystem=strict/ProtectSystem=stricter/' -e 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$unit" > "$work/broken.service"
if unit_checks "$work/broken.service" "$d/usr/local/bin/heartbeat" 2>"$work/broken.err"; then
  bad "a broken unit was accepted"
else
  ok "a broken unit is rejected: $(head -1 "$work/broken.err")"
fi
sed -e '/^DynamicUser=/d' -e '/^CapabilityBoundingSet=/d' -e '/^SystemCallFilter=/d' -e '/^Protect/d' -e '/^Private/d' -e '/^Restrict/d' "$unit" > "$work/unhardened.service"
if unit_checks "$work/unhardened.service" "$d/usr/local/bin/heartbeat" 2>/dev/null; then
  bad "an unhardened unit passed the security threshold"
else
  ok "an unhardened unit fails the security threshold"
fi

echo "install-test: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
