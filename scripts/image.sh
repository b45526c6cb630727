#!/usr/bin/env bash
# make image: builds the heartbeat container image offline and tests it.
#
#   1. bin/heartbeat from `make build` (static, stripped) and the host's Debian
#      CA bundle are staged in bin/;
#   2. buildah builds the Dockerfile's "prebuilt" target (FROM scratch + those
#      two files: nothing is pulled; --pull=never makes sure of it);
#   3. podman runs it the way Kubernetes will (runc, --network host, read-only
#      root, all capabilities dropped, no-new-privileges, explicit ulimits) on a
#      free port, with telemetry on and exporting to a closed port;
#   4. checks /heartbeat/17, /version, /healthz, UID 65532, no shell, a clean
#      exit on SIGTERM, and the sizes: under 20 MB as podman reports it and
#      under 8 MB as a gzipped OCI archive (what a node pulls).
#
# Usage: scripts/image.sh [--no-test]     IMAGE=localhost/heartbeat:TAG to rename.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

MAX_IMAGE_BYTES=${MAX_IMAGE_BYTES:-20000000}     # 20 MB, podman's SI units
MAX_PULL_BYTES=${MAX_PULL_BYTES:-8000000}        # 8 MB gzipped OCI archive

need_apt buildah podman runc ca-certificates
make --no-print-directory build
version=$(bin/heartbeat version)
IMAGE=${IMAGE:-localhost/heartbeat:$version}
install -m 0444 /etc/ssl/certs/ca-certificates.crt bin/ca-certificates.crt

echo "== buildah bud --target prebuilt -t $IMAGE"
buildah bud --quiet --pull=never --target prebuilt \
  --label "org.opencontainers.image.version=$version" -t "$IMAGE" . >/dev/null
[ "${1:-}" = "--no-test" ] && exit 0

pass=0 failed=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*" >&2; failed=$((failed + 1)); }

# A port nothing listens on, below the kernel's ephemeral range (so no
# outgoing connection on this busy machine can hold it): the container's
# --listen, and a dead OTLP endpoint.
read -r eph_low _ < /proc/sys/net/ipv4/ip_local_port_range
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (eph_low - 10000)))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
port=$(free_port)
otlp=$(free_port)
# The GoHeartbeat-format example at its default path: its checks probe only
# this container's own payload server and 127.0.0.1:22, and rewriting its port
# keeps the self-check pointed at the port under test.
config=bin/image-test.config
sed "s#127.0.0.1:8080#127.0.0.1:$port#" deploy/heartbeat.config > "$config"
name="heartbeat-image-test-$$"
work=$(mktemp -d)
cleanup() { podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; rm -rf "$work" "$config"; }
trap cleanup EXIT

echo "== podman run $IMAGE on 127.0.0.1:$port"
podman run -d --name "$name" --network host \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$PWD/$config:/etc/heartbeat.config:ro" \
  -e HEARTBEAT_LISTEN="127.0.0.1:$port" \
  -e HEARTBEAT_LOG=true -e HEARTBEAT_SYSLOG_ADDR=none \
  -e OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp" \
  -e OTEL_SERVICE_NAME=heartbeat-image-test \
  "$IMAGE" >/dev/null

# Poll until it answers (or exits), with a deadline.
deadline=$((SECONDS + 30))
until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
  if [ "$(podman inspect -f '{{.State.Running}}' "$name")" != true ] || [ $SECONDS -ge $deadline ]; then
    podman logs "$name" >&2 || true
    bad "container did not answer on 127.0.0.1:$port within 30s"
    echo "image-test: $pass passed, $failed failed"
    exit 1
  fi
  sleep 0.2
done
ok "answers /healthz on 127.0.0.1:$port"

body=$(curl -fsS "http://127.0.0.1:$port/heartbeat/17")
[ "$body" = "0123456789ABCDEF0" ] && ok "/heartbeat/17 = $body" || bad "/heartbeat/17 = '$body'"
v=$(curl -fsS "http://127.0.0.1:$port/version")
[ "$v" = "$version" ] && ok "/version = $v" || bad "/version = '$v', want '$version'"

# The config at the default path was loaded: /status lists its checks.
status=$(curl -fsS "http://127.0.0.1:$port/status")
if grep -q "127.0.0.1:$port/heartbeat/17" <<<"$status"; then ok "/status lists the checks of /etc/heartbeat.config"; else bad "/status does not list the config's checks: ${status:0:300}"; fi
# --log: the tab-delimited access-log lines Fluent Bit's parser expects (7 fields).
# The log is buffered: poll for the line, with a deadline.
deadline=$((SECONDS + 15)) line=""
while [ -z "$line" ] && [ $SECONDS -lt $deadline ]; do
  line=$(podman logs "$name" 2>/dev/null | grep -m1 $'\t/heartbeat/17\t' || true)
  [ -n "$line" ] || sleep 0.2
done
fields=$(awk -F'\t' '{print NF}' <<<"$line")
[ "$fields" = 7 ] && ok "access log line has 7 tab-separated fields" || bad "access log line '$line' has ${fields:-0} fields"

pid=$(podman inspect -f '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
gid=$(awk '/^Gid:/ {print $2}' "/proc/$pid/status")
[ "$uid:$gid" = "65532:65532" ] && ok "process runs as $uid:$gid" || bad "process runs as $uid:$gid"
cfg_user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
[ "$cfg_user" = "65532:65532" ] && ok "image config User = $cfg_user" || bad "image config User = '$cfg_user'"
if podman exec "$name" /bin/sh -c true >/dev/null 2>&1; then bad "the image has a shell"; else ok "no /bin/sh in the image"; fi
files=$(podman image mount "$IMAGE" 2>/dev/null | xargs -r -I{} find {} -type f -printf '/%P\n' | sort | tr '\n' ' ' || true)
podman image unmount "$IMAGE" >/dev/null 2>&1 || true
[ -n "$files" ] && echo "     files: $files"

# Idle RSS with telemetry on (exporters retrying a closed port): what the
# k8s resource requests are sized from.
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
echo "     idle RSS: $((rss_kb / 1024)) MiB ($rss_kb kB)"

podman stop -t 15 "$name" >/dev/null
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] && ok "exits 0 on SIGTERM" || { podman logs "$name" 2>&1 | tail -5 >&2; bad "exit code $code on SIGTERM"; }

size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
podman save --quiet --format oci-archive -o "$work/image.tar" "$IMAGE"
pull=$(gzip -9 -c "$work/image.tar" | wc -c)
echo "     podman images: $(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE")"
[ "$size" -lt "$MAX_IMAGE_BYTES" ] && ok "image size $size bytes < $MAX_IMAGE_BYTES" || bad "image size $size bytes >= $MAX_IMAGE_BYTES"
[ "$pull" -lt "$MAX_PULL_BYTES" ] && ok "gzipped OCI archive $pull bytes < $MAX_PULL_BYTES" || bad "gzipped OCI archive $pull bytes >= $MAX_PULL_BYTES"

echo "image-test: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
