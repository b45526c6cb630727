#!/usr/bin/env bash
# Unpacks the built Jaeger UI from ../shared/vendor/jaeger-ui/ once into
# $HOME/.cache/heartbeat (keyed by the tarball's sha256) and links the folder
# holding index.html to bin/jaeger-ui, which make stack and make e2e hand to
# Jaeger's jaeger_query extension (ui.assets_path). Jaeger built from its Go
# module has only a placeholder page; without ../shared, bin/jaeger-ui is
# removed and the stack offers the query API alone.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

VENDOR="${HEARTBEAT_SHARED:-../shared}/vendor/jaeger-ui"
mkdir -p bin
tarball="$(ls "$VENDOR"/jaeger-ui-*-build.tar.gz 2>/dev/null | head -n 1 || true)"
if [ -z "$tarball" ]; then
  rm -f bin/jaeger-ui
  echo "jaeger-ui: no $VENDOR: Jaeger serves its query API alone (no UI); the e2e's browser test fails under CI=true and is skipped otherwise" >&2
  exit 0
fi

hash="$(sha256sum "$tarball" | cut -c1-16)"
out="$CACHE_DIR/jaeger-ui-$hash"
if [ ! -f "$out/index.html" ]; then
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  tar -xzf "$tarball" -C "$out.tmp" --strip-components=1
  if [ ! -f "$out.tmp/index.html" ]; then
    echo "jaeger-ui: $tarball has no build/index.html" >&2
    exit 1
  fi
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "jaeger-ui: unpacked $(basename "$tarball") into $out" >&2
fi
ln -sfn "$out" bin/jaeger-ui
