#!/usr/bin/env bash
# Builds Jaeger v2 (cmd/jaeger) from its Go module through the wrapper module in
# collector/jaeger and links it to bin/jaeger. Cached in $HOME/.cache/heartbeat
# under a hash of the wrapper's go.mod/go.sum and the Go version: rebuilds only
# when those change. Quiet unless it builds or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

hash="$(cat collector/jaeger/go.mod collector/jaeger/go.sum <(go env GOVERSION) | sha256sum | cut -c1-16)"
out="$CACHE_DIR/jaeger-$hash"
bin="$out/jaeger"

if [ ! -x "$bin" ]; then
  echo "building jaeger ($out); a cold build takes several minutes" >&2
  start=$(date +%s)
  mkdir -p "$out"
  # -mod=readonly: the wrapper's go.mod and go.sum are complete; never rewrite them.
  if ! (cd collector/jaeger && GOFLAGS=-mod=readonly go build -trimpath -ldflags='-s -w' \
        -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger) >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log" >&2
    echo "jaeger build failed; full log: $out/build.log" >&2
    exit 1
  fi
  mv "$bin.tmp" "$bin"
  echo "built jaeger in $(( $(date +%s) - start ))s" >&2
fi

mkdir -p bin
ln -sfn "$bin" bin/jaeger
