#!/usr/bin/env bash
# Installs heartbeat on a plain systemd host, as GoHeartbeat's setup.sh did: the binary, the hardened unit, and example configuration
# that never overwrites an existing file.
#
#   sudo make install                       # PREFIX=/usr/local
#   make install PREFIX=/usr DESTDIR=/tmp/pkgroot
#
# Environment: PREFIX (default /usr/local), DESTDIR (default empty),
# BINDIR (PREFIX/bin), UNITDIR (PREFIX/lib/systemd/system for /usr and
# /usr/local, which systemd searches; /etc/systemd/system otherwise),
# SYSCONFDIR (/etc: heartbeat reads /etc/heartbeat.config by default),
# BIN (the binary to install, default bin/heartbeat).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
BINDIR="${BINDIR:-$PREFIX/bin}"
case "$PREFIX" in
  /usr | /usr/local) UNITDIR="${UNITDIR:-$PREFIX/lib/systemd/system}" ;;
  *) UNITDIR="${UNITDIR:-/etc/systemd/system}" ;;
esac
SYSCONFDIR="${SYSCONFDIR:-/etc}"
BIN="${BIN:-bin/heartbeat}"

[ -x "$BIN" ] || { echo "install: $BIN not found; run 'make build' first" >&2; exit 1; }

install -d -m 0755 "$DESTDIR$BINDIR" "$DESTDIR$UNITDIR" "$DESTDIR$SYSCONFDIR" "$DESTDIR$SYSCONFDIR/default"
install -m 0755 "$BIN" "$DESTDIR$BINDIR/heartbeat"
echo "installed $DESTDIR$BINDIR/heartbeat"

# The unit names the binary by its final path (without DESTDIR).
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
config_flag=""
# heartbeat reads /etc/heartbeat.config by default; elsewhere it must be told.
[ "$SYSCONFDIR" = /etc ] || config_flag=" --config $SYSCONFDIR/heartbeat.config"
sed -e "s#^ExecStart=/usr/local/bin/heartbeat serve\$#ExecStart=$BINDIR/heartbeat serve$config_flag#" \
    -e "s#/etc/default/heartbeat#$SYSCONFDIR/default/heartbeat#g" deploy/heartbeat.service > "$tmp"
grep -q "^ExecStart=$BINDIR/heartbeat serve" "$tmp" || { echo "install: could not set ExecStart in the unit" >&2; exit 1; }
install -m 0644 "$tmp" "$DESTDIR$UNITDIR/heartbeat.service"
echo "installed $DESTDIR$UNITDIR/heartbeat.service"

# Configuration is the operator's: install the examples only where none exists.
install_config() {
  local src="$1" dst="$DESTDIR$2"
  if [ -e "$dst" ]; then
    echo "kept existing $dst"
  else
    install -m 0644 "$src" "$dst"
    echo "installed $dst"
  fi
}
install_config deploy/heartbeat.config "$SYSCONFDIR/heartbeat.config"
install_config deploy/heartbeat.env "$SYSCONFDIR/default/heartbeat"

if [ -z "$DESTDIR" ]; then
  echo "next: systemctl daemon-reload && systemctl enable --now heartbeat"
fi
