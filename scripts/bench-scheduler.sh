#!/usr/bin/env bash
# Scheduler benchmark: N HTTP checks at a fixed interval
# against local payload servers, and Debian's prometheus-blackbox-exporter
# doing the same number of HTTP probes a second through /probe.
#
# Reports, per N: CPU seconds per 1,000 runs (ours: getrusage of the process
# running checks.Runner; blackbox: /proc/PID/stat of the exporter), peak RSS
# (VmHWM) and our p99 lateness (actual minus scheduled start). Targets: at
# 10,000 checks, p99 lateness < 50 ms, RSS < 100 MB, and less CPU per probe
# than blackbox_exporter.
#
# Method (../shared/notes/measured-anchors.md): the measured process (our
# runner, or blackbox_exporter) is pinned to one core; payload servers and
# the blackbox load loop to the other. Only 127.0.0.1 is contacted; every
# process started here is stopped on exit.
#
# Our runner gets an in-process OTel SDK meter provider (a manual reader
# collected every 10 s, no export) with the cardinality limit lifted and
# exemplars off for the probe histograms, and an SDK tracer sampling 1 % with
# no exporter; see bench/schedbench for why (memory).
#
# Knobs (environment):
#   SCHED_SIZES="1000 10000"  check counts     SCHED_INTERVAL=10s
#   SCHED_DURATION=60s         per run          SCHED_SERVERS=8 payload servers
#   SCHED_MEASURED_CPU=0 SCHED_LOAD_CPU=1       SCHED_BLACKBOX=1 (0 skips it)
#   SCHED_EXEMPLARS=off (sdk: the SDK's default reservoirs; one: one slot per series)
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
EXEMPLARS="${SCHED_EXEMPLARS:-off}"

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

for n in $SIZES; do
  settle
  log "bench-scheduler: $n checks every $INTERVAL for $DURATION"
  OURS[$n]="$(taskset -c "$MCPU" "$SB" checks -n "$n" -interval "$INTERVAL" -duration "$DURATION" -targets "$T/urls" -exemplars "$EXEMPLARS")"
  log "  ${OURS[$n]}"
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

echo
echo "Scheduler: HTTP checks every $INTERVAL for $DURATION, fresh connection per run (GET /heartbeat/1)"
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
  o="$(field cpu_s_per_1000 "${OURS[$n]}")"; b="$(field cpu_s_per_1000 "${BB[$n]:-}")"
  [ -n "$b" ] || continue
  awk -v n="$n" -v o="$o" -v b="$b" 'BEGIN { printf "%s checks: heartbeat uses %.2f× the CPU per probe of blackbox_exporter (%s vs %s CPU s per 1,000)\n", n, o / b, o, b }'
done
# Verdict against the targets above, at the largest size measured.
last="${SIZES##* }"
o="${OURS[$last]}"
awk -v p99="$(field lateness_p99_ms "$o")" -v rss="$(field peak_rss_mb "$o")" -v n="$last" \
  'BEGIN { printf "%s checks: p99 lateness %s ms (target < 50): %s; peak RSS %s MB (target < 100): %s\n", n, p99, (p99 < 50 ? "ok" : "MISSED"), rss, (rss < 100 ? "ok" : "MISSED") }'
