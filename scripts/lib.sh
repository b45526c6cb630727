# shellcheck shell=bash
# Shared helpers for the Makefile's scripts: idempotent, quiet installs of the
# tools the tests need, so a fresh machine with only Go can run `make test`.
set -euo pipefail

export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="${GOFLAGS:--mod=mod}"
CACHE_DIR="${HEARTBEAT_CACHE:-$HOME/.cache/heartbeat}"
mkdir -p "$CACHE_DIR"

# need_apt PKG... installs the Debian packages that are not installed yet.
need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}" >&2
  # Other installs may hold the dpkg lock: wait for it rather than fail.
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Update at most once per hour: apt lists go stale, but updating every run is slow.
  local stamp="$CACHE_DIR/apt-updated"
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60)" ]; then
    $sudo apt-get -o DPkg::Lock::Timeout=900 update -qq >/dev/null && touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_go_tool BIN PKG@VERSION installs a Go tool into $(go env GOPATH)/bin unless present.
need_go_tool() {
  local bin="$1" pkg="$2" gobin
  gobin="$(go env GOPATH)/bin"
  [ -x "$gobin/$bin" ] && return 0
  echo "installing $pkg" >&2
  GOFLAGS= go install "$pkg"
}
