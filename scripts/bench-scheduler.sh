#!/usr/bin/env bash
# Scheduler benchmark: N HTTP checks at a fixed interval
# against local payload servers, and Debian's prometheus-blackbox-exporter
# doing the same number of HTTP probes a second through /probe.
#
# Reports, per N: CPU seconds per 1,000 runs (ours: getrusage of the process
# running checks.Runner; blackbox: /proc/PID/stat of the exporter), peak RSS
# (VmHWM) and our p99 lateness (actual minus scheduled start). Goals: at
# 10,000 checks p99 lateness <= 5 ms and peak RSS <= 60 MB (no GOMEMLIMIT);
# at every size CPU per 1,000 runs <= 0.40 x blackbox_exporter's.
#
# Method (../shared/notes/measured-anchors.md): the measured process (our
# runner, or blackbox_exporter) is pinned to one core; payload servers and
# the blackbox load loop to the other. Only 127.0.0.1 is contacted; every
# process started here is stopped on exit.
#
# Our runner gets the production telemetry: telemetry.Setup from the OTEL_*
# environment, so every run is traced and spans, metrics and logs go over
# OTLP/gRPC to a live sink (bench/otlpsink) on the load core, metrics every
# SCHED_METRIC_INTERVAL_MS (production's default is 60 s; a shorter interval
# puts several collections of every series inside each run).
#
# Knobs (environment):
#   SCHED_SIZES="1000 10000"  check counts     SCHED_INTERVAL=10s
#   SCHED_DURATION=60s         per run          SCHED_SERVERS=8 payload servers
#   SCHED_MEASURED_CPU=0 SCHED_LOAD_CPU=1       SCHED_BLACKBOX=1 (0 skips it)
#   SCHED_METRIC_INTERVAL_MS=10000
# Smoke run: SCHED_SIZES=1000 SCHED_DURATION=10s scripts/bench-scheduler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

SIZES="${SCHED_SIZES:-1000 10000}"
INTERVAL="${SCHED_INTERVAL:-10s}"
DURATION="${SCHED_DURATION:-60s}"
SERVERS="${SCHED_SERVERS:-8}"
MCPU="${SCHED_MEASURED_CPU:-0}"
LCPU="${SCHED_LOAD_CPU:-1}"
BLACKBOX="${SCHED_BLACKBOX:-1}"
METRIC_INTERVAL_MS="${SCHED_METRIC_INTERVAL_MS:-10000}"

log() { printf '%s\n' "$*" >&2; }
die() { log "bench-scheduler: $*"; exit 1; }
secs="${INTERVAL%s}"
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || die "SCHED_INTERVAL must be whole seconds like 10s, not $INTERVAL"

need_apt util-linux curl iproute2
[ "$BLACKBOX" = 1 ] && need_apt prometheus-blackbox-exporter
if [ "$(nproc --all)" -lt 2 ]; then
  log "bench-scheduler: WARNING: one CPU; measured and load processes share it"
  LCPU="$MCPU"
fi

T="$(mktemp -d "${TMPDIR:-/tmp}/heartbeat-schedbench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Enough descriptors for thousands of sockets in flight and in TIME_WAIT.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

log "bench-scheduler: building the driver"
go build -o "$T/schedbench" ./bench/schedbench
go build -o "$T/otlpsink" ./bench/otlpsink
SB="$T/schedbench"

taskset -c "$LCPU" "$SB" serve -n "$SERVERS" -urls "$T/urls" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/urls" ] && break; sleep 0.1; done
[ -s "$T/urls" ] || die "payload servers did not start"

# settle waits (up to 75 s) for the TIME_WAIT sockets of the previous phase
# to expire: every run opens a fresh connection, and with the port space
# crowded, connect() slows down and the next phase would measure the kernel.
settle() {
  local n i
  for i in $(seq 75); do
    n="$(ss -tan state time-wait 2>/dev/null | wc -l)"
    [ "$n" -lt 3000 ] && return 0
    [ "$i" = 1 ] && log "bench-scheduler: waiting for $n TIME_WAIT sockets to expire"
    sleep 1
  done
  log "bench-scheduler: WARNING: still $n sockets in TIME_WAIT; figures may be slowed by the kernel"
}

declare -A OURS BB
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

declare -A SINK
for n in $SIZES; do
  settle
  port="$("$SB" freeport)"
  taskset -c "$LCPU" "$T/otlpsink" -listen "127.0.0.1:$port" -timeout 1h >"$T/sink-$n.out" 2>&1 &
  sink=$!
  PIDS+=("$sink")
  for _ in $(seq 100); do grep -q '^listening on' "$T/sink-$n.out" && break; sleep 0.05; done
  grep -q '^listening on' "$T/sink-$n.out" || { cat "$T/sink-$n.out" >&2; die "OTLP sink did not start"; }
  log "bench-scheduler: $n checks every $INTERVAL for $DURATION, telemetry to the sink at 127.0.0.1:$port"
  OURS[$n]="$(env -i PATH="$PATH" HOME="$T" OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$port" OTEL_EXPORTER_OTLP_INSECURE=true \
    OTEL_METRIC_EXPORT_INTERVAL="$METRIC_INTERVAL_MS" \
    taskset -c "$MCPU" "$SB" checks -n "$n" -interval "$INTERVAL" -duration "$DURATION" -targets "$T/urls")"
  kill -TERM "$sink" 2>/dev/null || true
  wait "$sink" 2>/dev/null || true
  SINK[$n]="$(grep '^otlpsink:' "$T/sink-$n.out" || echo 'otlpsink: no counts')"
  log "  ${OURS[$n]}"
  log "  ${SINK[$n]}"
done

if [ "$BLACKBOX" = 1 ]; then
  BBBIN="$(command -v prometheus-blackbox-exporter || echo /usr/bin/prometheus-blackbox-exporter)"
  cat >"$T/blackbox.yml" <<'EOF'
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
EOF
  port="$("$SB" freeport)"
  taskset -c "$MCPU" "$BBBIN" --config.file="$T/blackbox.yml" --web.listen-address="127.0.0.1:$port" \
    --log.level=warn >"$T/blackbox.log" 2>&1 &
  BBPID=$!
  PIDS+=("$BBPID")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/-/healthy" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "http://127.0.0.1:$port/-/healthy" >/dev/null || { cat "$T/blackbox.log" >&2; die "blackbox_exporter did not start"; }
  for n in $SIZES; do
    rate=$(( n / secs ))
    settle
    log "bench-scheduler: blackbox_exporter at $rate probes/s for $DURATION"
    BB[$n]="$(taskset -c "$LCPU" "$SB" blackbox -bb "http://127.0.0.1:$port" -pid "$BBPID" -rate "$rate" -duration "$DURATION" -targets "$T/urls")"
    log "  ${BB[$n]}"
  done
fi

pass() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { if (v == "" || v == "nan") print "—"; else if ((op == "le" && v + 0 <= t + 0)) print "PASS"; else print "MISS" }'; }
echo
echo "Scheduler: HTTP checks every $INTERVAL for $DURATION, fresh connection per run (GET /heartbeat/1); production telemetry (every run traced; spans, metrics every $((METRIC_INTERVAL_MS / 1000)) s and logs over OTLP/gRPC to a live sink on CPU $LCPU); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| figure | heartbeat | peer (blackbox_exporter) | ratio | goal | |"
echo "|---|---|---|---:|---|---|"
for n in $SIZES; do
  o="$(field cpu_s_per_1000 "${OURS[$n]}")" b="$(field cpu_s_per_1000 "${BB[$n]:-}")"
  r="$(awk -v o="$o" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", o / b; else print "nan" }')"
  printf '| CPU s per 1,000 runs, %s checks | %s | %s | %s | ≤ 0.40 | %s |\n' "$n" "$o" "${b:-—}" "$r" "$(pass "$r" le 0.40)"
done
last="${SIZES##* }"
o="${OURS[$last]}"
printf '| p99 lateness, %s checks | %s ms | — | — | ≤ 5 ms | %s |\n' "$last" "$(field lateness_p99_ms "$o")" "$(pass "$(field lateness_p99_ms "$o")" le 5)"
printf '| peak RSS, %s checks (no GOMEMLIMIT) | %s MB | %s MB | — | ≤ 60 MB | %s |\n' "$last" "$(field peak_rss_mb "$o")" "$(field peak_rss_mb "${BB[$last]:-}")" "$(pass "$(field peak_rss_mb "$o")" le 60)"
echo
printf '| %-7s | %-7s | %-8s | %-7s | %-10s | %-10s | %-12s | %-11s | %-10s | %-13s | %-10s | %-9s |\n' \
  checks runs failures skipped "lat p50 ms" "lat p99 ms" "probe p99 ms" "peak RSS MB" "CPU s/1000" "bb CPU s/1000" "bb probes/s" "bb RSS MB"
printf '|%s|\n' "---------|---------|----------|---------|------------|------------|--------------|-------------|------------|---------------|------------|-----------"
for n in $SIZES; do
  o="${OURS[$n]}"; b="${BB[$n]:-}"
  printf '| %-7s | %-7s | %-8s | %-7s | %-10s | %-10s | %-12s | %-11s | %-10s | %-13s | %-10s | %-9s |\n' \
    "$n" "$(field runs "$o")" "$(field failures "$o")" "$(field skipped "$o")" \
    "$(field lateness_p50_ms "$o")" "$(field lateness_p99_ms "$o")" "$(field probe_p99_ms "$o")" "$(field peak_rss_mb "$o")" \
    "$(field cpu_s_per_1000 "$o")" "$(field cpu_s_per_1000 "$b")" "$(field achieved_rate "$b")" "$(field peak_rss_mb "$b")"
done
echo
for n in $SIZES; do
  echo "- $n checks, what reached the sink: \`${SINK[$n]#otlpsink: }\`"
  b="${BB[$n]:-}"
  [ -n "$b" ] || continue
  # A saturated exporter spends less CPU per probe than one at the asked rate.
  awk -v got="$(field achieved_rate "$b")" -v want="$(field rate "$b")" -v n="$n" 'BEGIN { if (got + 0 < 0.95 * want) printf "- %s checks: blackbox_exporter reached only %s of %s probes/s, so its CPU per probe is not at the same rate as ours\n", n, got, want }'
done
