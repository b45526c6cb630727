#!/usr/bin/env bash
# Builds the heartbeat OpenTelemetry Collector distribution from
# collector/builder-config.yaml with the official builder (ocb) and links it to
# bin/otelcol-heartbeat. The build is cached in $HOME/.cache/heartbeat under a
# hash of the manifest, the builder version and the Go version, so it only
# rebuilds when one of those changes. Quiet unless it builds or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

BUILDER_VERSION=v0.158.0
MANIFEST=collector/builder-config.yaml
# The contrib syslog exporter's module is not in the checksum database.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/open-telemetry/opentelemetry-collector-contrib/exporter/syslogexporter"

need_go_tool builder "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
builder="$(go env GOPATH)/bin/builder"
# An older builder may already sit in GOPATH/bin: insist on ours.
if ! "$builder" version 2>/dev/null | grep -q "$BUILDER_VERSION"; then
  GOFLAGS= go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION"
fi

hash="$( { cat "$MANIFEST"; echo "$BUILDER_VERSION"; go env GOVERSION; } | sha256sum | cut -c1-16)"
out="$CACHE_DIR/otelcol-$hash"
bin="$out/otelcol-heartbeat"

if [ ! -x "$bin" ]; then
  echo "building otelcol-heartbeat ($out); a cold build takes several minutes" >&2
  start=$(date +%s)
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  sed "s#^\(  output_path:\).*#\1 $out.tmp#" "$MANIFEST" >"$out.tmp/manifest.yaml"
  if ! "$builder" --config "$out.tmp/manifest.yaml" >"$out.tmp/build.log" 2>&1; then
    tail -n 40 "$out.tmp/build.log" >&2
    echo "collector build failed; full log: $out.tmp/build.log" >&2
    exit 1
  fi
  # The builder writes its sources next to the binary; the output path is
  # baked into nothing, so renaming the finished directory is safe.
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built otelcol-heartbeat in $(( $(date +%s) - start ))s" >&2
fi

mkdir -p bin
ln -sfn "$bin" bin/otelcol-heartbeat
