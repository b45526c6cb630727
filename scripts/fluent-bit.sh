#!/usr/bin/env bash
# Finds the real Fluent Bit for make e2e and make stack and links it to
# bin/fluent-bit. In order: $FLUENT_BIT, fluent-bit on PATH, else built from
# ../shared/vendor/fluent-bit/ (its release source and build script), cached
# in $HOME/.cache/heartbeat under the tarball's sha256 so it builds once.
# With none of the three it removes bin/fluent-bit and says so: the e2e then
# fails under CI=true and skips its Fluent Bit assertions elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VENDOR="${HEARTBEAT_SHARED:-../shared}/vendor/fluent-bit"
mkdir -p bin

link() {
  ln -sfn "$1" bin/fluent-bit
  # Quiet when nothing changed; say which one when it did.
  local stamp="bin/.fluent-bit-source"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$1" ]; then
    echo "fluent-bit: $1 ($("$1" --version | head -n 1))" >&2
    echo "$1" >"$stamp"
  fi
}

if [ -n "${FLUENT_BIT:-}" ]; then
  if [ ! -x "$FLUENT_BIT" ]; then
    echo "FLUENT_BIT=$FLUENT_BIT is not an executable file" >&2
    exit 1
  fi
  link "$(readlink -f "$FLUENT_BIT")"
  exit 0
fi
if found="$(command -v fluent-bit)"; then
  link "$(readlink -f "$found")"
  exit 0
fi
tarball="$(ls "$VENDOR"/fluent-bit-*.tar.gz 2>/dev/null | head -n 1 || true)"
if [ -z "$tarball" ] || [ ! -f "$VENDOR/build.sh" ]; then
  rm -f bin/fluent-bit bin/.fluent-bit-source
  echo "fluent-bit: none (\$FLUENT_BIT unset, not on PATH, no $VENDOR): the e2e's Fluent Bit assertions fail under CI=true and are skipped otherwise" >&2
  exit 0
fi

hash="$(sha256sum "$tarball" | cut -c1-16)"
out="$CACHE_DIR/fluent-bit-$hash"
bin="$out/fluent-bit"
if [ ! -x "$bin" ]; then
  need_apt cmake flex bison libyaml-dev libssl-dev pkg-config build-essential libsqlite3-dev
  # One build at a time: a second caller waits for the first one's result.
  exec 9>"$out.lock"
  flock 9
  if [ ! -x "$bin" ]; then
    echo "building fluent-bit from $tarball ($out); about 3 minutes on 2 cores" >&2
    start=$(date +%s)
    rm -rf "$out.tmp"
    if ! nice bash "$VENDOR/build.sh" "$out.tmp" >"$out.build.log" 2>&1; then
      tail -n 40 "$out.build.log" >&2
      echo "fluent-bit build failed; full log: $out.build.log" >&2
      exit 1
    fi
    rm -rf "$out" && mv "$out.tmp" "$out"
    echo "built fluent-bit in $(( $(date +%s) - start ))s" >&2
  fi
  exec 9>&-
fi
link "$bin"
