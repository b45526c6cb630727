#!/usr/bin/env bash
# `make bench`: payload-server throughput, server CPU per request, latency,
# memory and size against nginx, and the telemetry overhead against the same
# binary with OTEL_SDK_DISABLED=true. Every goal is printed first, in one
# table, beside the peer it is measured against in the same run.
#
# Method (see ../shared/notes/measured-anchors.md): every server pinned to one
# core, wrk -t1 -c32 pinned to the other, BENCH_RUNS runs per point with the
# servers alternating, medians reported. Only 127.0.0.1 is ever contacted;
# every process started here is stopped on exit.
#
# Knobs (environment):
#   BENCH_SECONDS=10   wrk duration per run       BENCH_RUNS=3   runs per point
#   BENCH_CONNECTIONS=32                           BENCH_TELEMETRY=1 (0 skips the telemetry section)
#   BENCH_SERVER_CPU=0 BENCH_CLIENT_CPU=1          BENCH_METRIC_INTERVAL_MS=5000
#   BENCH_BIN=bin/heartbeat                        BENCH_GOTEST_BENCHTIME=1s
#   BENCH_KEEP=1 keeps the temp dir (configs, raw wrk output, logs)
# Smoke run: BENCH_SECONDS=2 BENCH_RUNS=1 scripts/bench.sh  (about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

SECS="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-3}"
CONNS="${BENCH_CONNECTIONS:-32}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
METRIC_INTERVAL_MS="${BENCH_METRIC_INTERVAL_MS:-5000}"
TELEMETRY="${BENCH_TELEMETRY:-1}"
BIN="${BENCH_BIN:-bin/heartbeat}"
GIB=1073741824
SIZES=(1 1024 65536 1048576)
TEL_SIZES=(1024 1048576)
# A sampled W3C trace context, as our own probes send: every request it rides
# on must produce (and export) a server span.
TRACEPARENT='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# ---------------------------------------------------------------- tools, build
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt nginx-light 2>/dev/null || need_apt nginx
need_apt wrk curl util-linux
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ "$(nproc --all)" -lt 2 ]; then
  log "bench: WARNING: fewer than 2 CPUs; server and wrk share a core, ratios are meaningless"
  CLIENT_CPU="$SERVER_CPU"
fi

T="$(mktemp -d "${TMPDIR:-/tmp}/heartbeat-bench.XXXXXX")"
chmod 755 "$T" # nginx workers may run as another user
PIDS=()

# stop_pid PID: SIGTERM, wait up to 20 s (graceful drain + telemetry flush), then SIGKILL.
stop_pid() {
  local pid="$1" i state
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 400; i++)); do
    state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)"
    [ -z "$state" ] || [ "$state" = Z ] && break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "bench: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `make bench` already ran `make build`; run directly, the script builds itself.
if [ -z "${MAKELEVEL:-}" ] && [ -z "${BENCH_BIN:-}" ]; then
  if grep -q '^build:' Makefile 2>/dev/null; then
    make --no-print-directory build >&2
  else
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" .
  fi
fi
[ -x "$BIN" ] || die "$BIN not found; run make build"
go build -o "$T/otlpsink" ./bench/otlpsink

# ---------------------------------------------------------------- helpers
USED_PORTS=" "
# free_port sets PORT to a 127.0.0.1 TCP port nothing uses, below the usual
# ephemeral range so wrk's own client ports cannot collide with it.
free_port() {
  local p i
  for ((i = 0; i < 500; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
      USED_PORTS+="$p "
      PORT="$p"
      return 0
    fi
  done
  die "no free port found"
}

# wait_http URL PID LOG: poll URL until it answers 200 (deadline 20 s) while PID lives.
wait_http() {
  local url="$1" pid="$2" logf="$3" i
  for ((i = 0; i < 400; i++)); do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]; then
      log "bench: process $pid exited before $url answered; its output:"
      cat "$logf" >&2 || true
      exit 1
    fi
    curl -fso /dev/null --max-time 1 "$url" && return 0
    sleep 0.05
  done
  log "bench: $url did not answer within 20 s; output of $pid:"
  cat "$logf" >&2 || true
  exit 1
}

# start_heartbeat NAME [VAR=VALUE...]: start the binary pinned to the server
# core with a clean environment plus the given variables; sets HB_PID, HB_PORT.
start_heartbeat() {
  local name="$1"
  shift
  free_port
  HB_PORT="$PORT"
  env -i PATH="$PATH" HOME="$T" POD_NAME="bench-$name" "$@" \
    taskset -c "$SERVER_CPU" "$BIN" serve --listen "127.0.0.1:$HB_PORT" --max-size "$GIB" \
    >"$T/heartbeat-$name.log" 2>&1 &
  HB_PID=$!
  PIDS+=("$HB_PID")
  wait_http "http://127.0.0.1:$HB_PORT/heartbeat/1" "$HB_PID" "$T/heartbeat-$name.log"
}

# start_sink NAME: start the OTLP sink pinned to the client core; sets SINK_PID, SINK_ADDR.
start_sink() {
  local name="$1" out="$T/sink-$1.out" i
  free_port
  : >"$out"
  taskset -c "$CLIENT_CPU" "$T/otlpsink" -listen "127.0.0.1:$PORT" -timeout 1h >"$out" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  for ((i = 0; i < 200; i++)); do
    SINK_ADDR="$(sed -n 's/^listening on //p' "$out" || true)"
    [ -n "$SINK_ADDR" ] && return 0
    kill -0 "$SINK_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$out" >&2
  die "OTLP sink $name did not start"
}

# status_kb PID FIELD: VmRSS / VmHWM in KiB.
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
# rss_split PID: "anon X, file Y MB": file pages are the mapped binary, anon the heap and stacks.
rss_split() { echo "anon $(mb "$(status_kb "$1" RssAnon)"), file $(mb "$(status_kb "$1" RssFile)")"; }
# mb KIB: decimal megabytes, as the targets are written.
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k * 1024 / 1e6}'; }
# cpu_ticks PID: user+system clock ticks so far.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
CLK_TCK="$(getconf CLK_TCK)"

median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1}
    END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

declare -A RES  # "metric|label|size" -> space-separated values, one per run
declare -A ERRS # "label|size" -> wrk error lines seen
add() { RES["$1"]="${RES["$1"]:-} $2"; }
med() { # shellcheck disable=SC2086
  median ${RES["$1"]:-}
}

# to_us VALUE: wrk latency ("812.00us", "1.23ms", "2.01s", "1.00m") in µs.
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    m = (u == "us") ? 1 : (u == "ms") ? 1e3 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1
    if (m < 0) print "nan"; else printf "%.1f", n * m }'
}

# load LABEL SIZE URL CPU_PID [wrk args...]: one wrk run, recorded under LABEL.
RUN_NO=0
load() {
  local label="$1" size="$2" url="$3" cpu_pid="$4"
  shift 4
  RUN_NO=$((RUN_NO + 1))
  local out="$T/wrk-$RUN_NO-$label-$size.txt" c0 c1 reqs rps p50 p99 errs
  c0="$(cpu_ticks "$cpu_pid")"
  if ! timeout $((SECS + 60)) taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$@" "$url" >"$out" 2>&1; then
    ERRS["$label|$size"]+="wrk failed; "
  fi
  c1="$(cpu_ticks "$cpu_pid")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")"
  reqs="$(awk '/ requests in / {print $1}' "$out")"
  p50="$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")"
  p99="$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")"
  errs="$(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ' | paste -sd';' || true)"
  [ -n "$errs" ] && ERRS["$label|$size"]+="$errs; "
  add "rps|$label|$size" "${rps:-0}"
  add "p50|$label|$size" "${p50:-nan}"
  add "p99|$label|$size" "${p99:-nan}"
  if [ -n "$reqs" ] && [ "$reqs" -gt 0 ]; then
    add "cpu|$label|$size" "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
  fi
  printf '  %-12s %8s  %10s req/s  p50 %8s µs  p99 %8s µs  %s\n' "$label" "$(human "$size")" "${rps:-0}" "$p50" "$p99" "${errs:+ERRORS: $errs}" >&2
}

human() {
  case "$1" in
    1) echo "1 B" ;; 1024) echo "1 KiB" ;; 65536) echo "64 KiB" ;; 1048576) echo "1 MiB" ;; "$GIB") echo "1 GiB" ;; *) echo "$1 B" ;;
  esac
}
ms() { awk -v u="$1" 'BEGIN {if (u == "nan") print "?"; else printf "%.2f", u / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "nan"}'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {if (a + 0 < b + 0) print "PASS"; else print "MISS"}'; }

# ---------------------------------------------------------------- content
mkdir -p "$T/www" "$T/nginx/tmp"
printf '%s' 0123456789ABCDEF >"$T/www/pattern"
for _ in $(seq 16); do cat "$T/www/pattern" "$T/www/pattern" >"$T/www/p2" && mv "$T/www/p2" "$T/www/pattern"; done
mv "$T/www/pattern" "$T/www/1048576" # 16 B << 16 = 1 MiB
for s in 1 1024 65536; do head -c "$s" "$T/www/1048576" >"$T/www/$s"; done
cp "$T/www/1048576" "$T/www/big"
for _ in $(seq 10); do cat "$T/www/big" "$T/www/big" >"$T/www/b2" && mv "$T/www/b2" "$T/www/big"; done
mv "$T/www/big" "$T/www/$GIB" # 1 MiB << 10
chmod 644 "$T/www/"*
[ "$(stat -c %s "$T/www/$GIB")" = "$GIB" ] || die "could not write the 1 GiB file in $T"

# ---------------------------------------------------------------- nginx
free_port
NGINX_PORT="$PORT"
temp_paths="client_body_temp_path $T/nginx/tmp/body;"
for m in proxy fastcgi uwsgi scgi; do
  "$NGINX" -V 2>&1 | grep -q -- "--without-http_${m}_module" || temp_paths+=" ${m}_temp_path $T/nginx/tmp/$m;"
done
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
cat >"$T/nginx/nginx.conf" <<EOF
# Baseline for make bench: one worker, sendfile, no access log. keepalive_requests
# is raised so nginx never closes wrk's connections: the strongest baseline.
$user_line
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
  default_type text/plain;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  $temp_paths
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $T/www;
    location / { }
  }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$T/nginx/" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" -g 'daemon off;' \
  >"$T/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/1" "$NGINX_PID" "$T/nginx/error.log"
NGINX_WORKER="$(pgrep -P "$NGINX_PID" | head -1)"
[ -n "$NGINX_WORKER" ] || die "nginx worker not found"

# ---------------------------------------------------------------- heartbeat
# Against nginx the binary runs with telemetry off, as the goal is stated.
start_heartbeat main OTEL_SDK_DISABLED=true
OURS_PID="$HB_PID" OURS_PORT="$HB_PORT"
curl -fso /dev/null "http://127.0.0.1:$OURS_PORT/heartbeat/1024"
IDLE_KB="$(status_kb "$OURS_PID" VmRSS)"
IDLE_SPLIT="$(rss_split "$OURS_PID")"

# The two servers must serve the same bytes, or the comparison means nothing.
for s in "${SIZES[@]}"; do
  curl -fs "http://127.0.0.1:$OURS_PORT/heartbeat/$s" -o "$T/ours-$s"
  cmp -s "$T/ours-$s" "$T/www/$s" || die "heartbeat's /heartbeat/$s differs from the nginx file of the same size"
done
rm -f "$T"/ours-*

BIN_BYTES="$(stat -c %s "$BIN")"
NGINX_IDLE_KB="$(status_kb "$NGINX_WORKER" VmRSS)"

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
log ""
log "== payload: heartbeat vs nginx, wrk -t1 -c$CONNS -d${SECS}s --latency, $RUNS run(s) each, server CPU $SERVER_CPU, wrk CPU $CLIENT_CPU"
log "   (load average now: $LOAD_START; a busy machine makes every figure noisy)"
for s in "${SIZES[@]}"; do
  for ((r = 0; r < RUNS; r++)); do
    load heartbeat "$s" "http://127.0.0.1:$OURS_PORT/heartbeat/$s" "$OURS_PID"
    load nginx "$s" "http://127.0.0.1:$NGINX_PORT/$s" "$NGINX_WORKER"
  done
done
PEAK_KB="$(status_kb "$OURS_PID" VmHWM)"
NGINX_PEAK_KB="$(status_kb "$NGINX_WORKER" VmHWM)"

log ""
log "== 1 GiB with curl to /dev/null (curl on CPU $CLIENT_CPU), $RUNS run(s) each"
declare -a GIB_OURS=() GIB_NGINX=()
fetch_gib() {
  local url="$1" out code size secs
  out="$(timeout 120 taskset -c "$CLIENT_CPU" curl -s -o /dev/null --max-time 100 \
    -w '%{http_code} %{size_download} %{time_total}' "$url" || true)"
  read -r code size secs <<<"$out"
  if [ "${code:-}" != 200 ] || [ "${size:-}" != "$GIB" ]; then
    log "  $url: status ${code:-none}, ${size:-0} bytes: FAILED"
    echo 999
    return
  fi
  log "  $url: ${secs} s"
  echo "$secs"
}
for ((r = 0; r < RUNS; r++)); do
  GIB_OURS+=("$(fetch_gib "http://127.0.0.1:$OURS_PORT/heartbeat/$GIB")")
  GIB_NGINX+=("$(fetch_gib "http://127.0.0.1:$NGINX_PORT/$GIB")")
done
GIB_OURS_MED="$(median "${GIB_OURS[@]}")"
GIB_NGINX_MED="$(median "${GIB_NGINX[@]}")"
PEAK_GIB_KB="$(status_kb "$OURS_PID" VmHWM)"

# ---------------------------------------------------------------- telemetry
if [ "$TELEMETRY" = 1 ]; then
  log ""
  log "== telemetry overhead: same binary, OTEL_SDK_DISABLED=true vs telemetry on, exporting to a live OTLP sink"
  start_sink on
  SINK_ON_PID="$SINK_PID" SINK_ON_ADDR="$SINK_ADDR"
  start_sink tp
  SINK_TP_PID="$SINK_PID" SINK_TP_ADDR="$SINK_ADDR"

  start_heartbeat off OTEL_SDK_DISABLED=true
  OFF_PID="$HB_PID" OFF_PORT="$HB_PORT"
  otel_env=(OTEL_EXPORTER_OTLP_INSECURE=true OTEL_METRIC_EXPORT_INTERVAL="$METRIC_INTERVAL_MS")
  start_heartbeat on OTEL_EXPORTER_OTLP_ENDPOINT="http://$SINK_ON_ADDR" "${otel_env[@]}"
  ON_PID="$HB_PID" ON_PORT="$HB_PORT"
  start_heartbeat tp OTEL_EXPORTER_OTLP_ENDPOINT="http://$SINK_TP_ADDR" "${otel_env[@]}"
  TP_PID="$HB_PID" TP_PORT="$HB_PORT"
  curl -fso /dev/null "http://127.0.0.1:$OFF_PORT/heartbeat/1024"
  curl -fso /dev/null "http://127.0.0.1:$ON_PORT/heartbeat/1024"
  curl -fso /dev/null -H "traceparent: $TRACEPARENT" "http://127.0.0.1:$TP_PORT/heartbeat/1024"
  OFF_IDLE_KB="$(status_kb "$OFF_PID" VmRSS)"
  OFF_IDLE_SPLIT="$(rss_split "$OFF_PID")"
  ON_IDLE_KB="$(status_kb "$ON_PID" VmRSS)"
  ON_IDLE_SPLIT="$(rss_split "$ON_PID")"
  TP_IDLE_KB="$(status_kb "$TP_PID" VmRSS)"

  TP_REQS=0
  for s in "${TEL_SIZES[@]}"; do
    for ((r = 0; r < RUNS; r++)); do
      load sdk-off "$s" "http://127.0.0.1:$OFF_PORT/heartbeat/$s" "$OFF_PID"
      load otel-on "$s" "http://127.0.0.1:$ON_PORT/heartbeat/$s" "$ON_PID"
      load otel-tp "$s" "http://127.0.0.1:$TP_PORT/heartbeat/$s" "$TP_PID" -H "traceparent: $TRACEPARENT"
      TP_REQS=$((TP_REQS + $(awk '/ requests in / {print $1}' "$T/wrk-$RUN_NO-otel-tp-$s.txt" || echo 0)))
    done
  done
  OFF_PEAK_KB="$(status_kb "$OFF_PID" VmHWM)"
  ON_PEAK_KB="$(status_kb "$ON_PID" VmHWM)"
  TP_PEAK_KB="$(status_kb "$TP_PID" VmHWM)"
  # SIGTERM flushes the providers into the sinks; then the sinks print their counts.
  for pid in "$ON_PID" "$TP_PID" "$SINK_ON_PID" "$SINK_TP_PID"; do stop_pid "$pid"; done
  SINK_ON_COUNTS="$(grep '^otlpsink:' "$T/sink-on.out" || echo 'otlpsink: no counts')"
  SINK_TP_COUNTS="$(grep '^otlpsink:' "$T/sink-tp.out" || echo 'otlpsink: no counts')"
  log "  sink (default sampler):           $SINK_ON_COUNTS"
  log "  sink (sampled traceparent):       $SINK_TP_COUNTS   (wrk sent $TP_REQS requests + 1)"
fi

# ---------------------------------------------------------------- go test -bench
log ""
log "== go test -run '^\$' -bench . -benchmem ./payload/  (pinned to CPU $SERVER_CPU)"
GOBENCH_OUT="$T/gobench.txt"
: >"$GOBENCH_OUT"
if go test -c -o "$T/payload.test" ./payload/ >"$GOBENCH_OUT" 2>&1; then
  if [ -x "$T/payload.test" ]; then
    (cd payload && timeout 600 taskset -c "$SERVER_CPU" "$T/payload.test" -test.run '^$' -test.bench . \
      -test.benchmem -test.benchtime "${BENCH_GOTEST_BENCHTIME:-1s}" -test.count 1) >"$GOBENCH_OUT" 2>&1 ||
      echo "(benchmarks failed)" >>"$GOBENCH_OUT"
  else
    echo "(payload/ has no test files)" >"$GOBENCH_OUT"
  fi
else
  echo "(go test -c ./payload/ failed)" >>"$GOBENCH_OUT"
fi
cat "$GOBENCH_OUT" >&2
grep -q '^Benchmark' "$GOBENCH_OUT" || echo "(no benchmarks in payload/)" >>"$GOBENCH_OUT"

# ---------------------------------------------------------------- report
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
err_note() { # err_note SIZE LABEL... prints " (errors!)" when wrk saw any
  local s="$1" l
  shift
  for l in "$@"; do [ -n "${ERRS["$l|$s"]:-}" ] && { echo " (wrk errors: ${ERRS["$l|$s"]})"; return; }; done
  true
}
# ge/le RATIO GOAL: PASS or MISS.
ge() { awk -v r="$1" -v t="$2" 'BEGIN {if (r != "nan" && r + 0 >= t + 0) print "PASS"; else print "MISS"}'; }
le() { awk -v r="$1" -v t="$2" 'BEGIN {if (r != "nan" && r + 0 <= t + 0) print "PASS"; else print "MISS"}'; }
# goal_ratio FIGURE OURS PEER RATIO GOAL: one row of the goals table, higher ratio is better.
goal_row() { printf '| %s | %s | %s | %s | ≥ %s | %s |\n' "$1" "$2" "$3" "$4" "$5" "$(ge "$4" "$5")"; }
# goal_max FIGURE OURS PEER VALUE LIMIT: a row whose own value must stay under a limit.
goal_max() { printf '| %s | %s | %s | — | ≤ %s | %s |\n' "$1" "$2" "$3" "$5" "$(le "$4" "$5")"; }
# rps_cpu LABEL SIZE: "R req/s, C µs" for the goals table.
rps_cpu() { printf '%.0f req/s, %s µs' "$(med "rps|$1|$2")" "$(med "cpu|$1|$2")"; }
BIN_MB="$(awk -v b="$BIN_BYTES" 'BEGIN {printf "%.1f", b / 1e6}')"

{
  echo
  echo "### Performance"
  echo
  echo "\`make bench\`, $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc --all) CPUs, Linux $(uname -r), $(go version | cut -d' ' -f3), $("$NGINX" -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)."
  echo "Each server pinned to CPU $SERVER_CPU, \`wrk -t1 -c$CONNS -d${SECS}s --latency\` pinned to CPU $CLIENT_CPU; median of $RUNS run(s), servers alternating. nginx: 1 worker, sendfile on, access_log off. Server CPU is user + system time of the serving process (nginx: its worker) over the run, per request. Load average before/after: $LOAD_START / $LOAD_END; on a busy machine absolute figures drift, the ratios much less."
  echo
  echo "Goals, each beside its peer from this run (ratios > 1 favour heartbeat):"
  echo
  echo "| figure | heartbeat | peer | ratio | goal | |"
  echo "|---|---|---|---:|---|---|"
  if [ "$TELEMETRY" = 1 ]; then
    for s in "${TEL_SIZES[@]}"; do
      t=0.95
      [ "$s" = 1048576 ] && t=0.98
      goal_row "telemetry on ÷ \`OTEL_SDK_DISABLED=true\`, $(human "$s"), req/s" "$(rps_cpu otel-on "$s")" "$(rps_cpu sdk-off "$s")" \
        "$(ratio "$(med "rps|otel-on|$s")" "$(med "rps|sdk-off|$s")")" "$t"
      goal_row "same, $(human "$s"), server CPU per request (disabled ÷ on)" "$(med "cpu|otel-on|$s") µs" "$(med "cpu|sdk-off|$s") µs" \
        "$(ratio "$(med "cpu|sdk-off|$s")" "$(med "cpu|otel-on|$s")")" "$t"
    done
    goal_row "sampled \`traceparent\` on every request ÷ disabled, 1 KiB, req/s" "$(rps_cpu otel-tp 1024)" "$(rps_cpu sdk-off 1024)" \
      "$(ratio "$(med "rps|otel-tp|1024")" "$(med "rps|sdk-off|1024")")" 0.70
    goal_row "same, server CPU per request (disabled ÷ sampled)" "$(med "cpu|otel-tp|1024") µs" "$(med "cpu|sdk-off|1024") µs" \
      "$(ratio "$(med "cpu|sdk-off|1024")" "$(med "cpu|otel-tp|1024")")" 0.70
  fi
  for s in 1 1024 65536; do
    goal_row "ours (telemetry off) ÷ nginx, $(human "$s"), req/s" "$(printf '%.0f' "$(med "rps|heartbeat|$s")")" "$(printf '%.0f' "$(med "rps|nginx|$s")")" \
      "$(ratio "$(med "rps|heartbeat|$s")" "$(med "rps|nginx|$s")")" 1.0
    goal_row "same, $(human "$s"), server CPU µs per request (nginx ÷ ours)" "$(med "cpu|heartbeat|$s")" "$(med "cpu|nginx|$s")" \
      "$(ratio "$(med "cpu|nginx|$s")" "$(med "cpu|heartbeat|$s")")" 1.0
  done
  if [ "$TELEMETRY" = 1 ]; then
    goal_max "idle RSS, telemetry on (peer: SDK disabled; nginx worker)" "$(mb "$ON_IDLE_KB") MB ($ON_IDLE_SPLIT)" \
      "$(mb "$OFF_IDLE_KB") MB; nginx $(mb "$NGINX_IDLE_KB") MB" "$(mb "$ON_IDLE_KB")" 14
    goal_max "peak RSS at $CONNS connections, telemetry on (peer: SDK disabled; nginx worker)" "$(mb "$ON_PEAK_KB") MB" \
      "$(mb "$OFF_PEAK_KB") MB; nginx $(mb "$NGINX_PEAK_KB") MB" "$(mb "$ON_PEAK_KB")" 24
  fi
  goal_max "stripped static binary" "$BIN_MB MB" "—" "$BIN_MB" 20
  echo
  echo "| size | heartbeat req/s | nginx req/s | ours/nginx | heartbeat p50 / p99 ms | nginx p50 / p99 ms | server CPU µs/req ours / nginx | CPU ratio nginx/ours |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for s in "${SIZES[@]}"; do
    o="$(med "rps|heartbeat|$s")" n="$(med "rps|nginx|$s")" r="$(ratio "$(med "rps|heartbeat|$s")" "$(med "rps|nginx|$s")")"
    printf '| %s | %.0f | %.0f | %s | %s / %s | %s / %s | %s / %s | %s |%s\n' "$(human "$s")" "$o" "$n" "$r" \
      "$(ms "$(med "p50|heartbeat|$s")")" "$(ms "$(med "p99|heartbeat|$s")")" \
      "$(ms "$(med "p50|nginx|$s")")" "$(ms "$(med "p99|nginx|$s")")" \
      "$(med "cpu|heartbeat|$s")" "$(med "cpu|nginx|$s")" "$(ratio "$(med "cpu|nginx|$s")" "$(med "cpu|heartbeat|$s")")" "$(err_note "$s" heartbeat nginx)"
  done
  echo
  echo "- 1 GiB with \`curl -s -o /dev/null\` (median of $RUNS): heartbeat **${GIB_OURS_MED} s** (target < 1 s: $(lt "$GIB_OURS_MED" 1)), nginx ${GIB_NGINX_MED} s."
  echo "- heartbeat RSS with telemetry off: idle $(mb "$IDLE_KB") MB ($IDLE_SPLIT) after start + 1 request; peak $(mb "$PEAK_KB") MB after the wrk runs, $(mb "$PEAK_GIB_KB") MB after the 1 GiB fetches; nginx worker idle $(mb "$NGINX_IDLE_KB") / peak $(mb "$NGINX_PEAK_KB") MB. File-backed RSS is the binary's pages in the page cache, mapped by the kernel in 64 KiB (or larger folio) blocks around each page touched."
  echo "- stripped static binary: $(awk -v b="$BIN_BYTES" 'BEGIN {printf "%.1f MB (%.1f MiB)", b / 1e6, b / 1048576}')."
  if [ "$TELEMETRY" = 1 ]; then
    echo
    echo "Telemetry overhead (same binary; \`OTEL_SDK_DISABLED=true\` vs telemetry on with the default sampler exporting over OTLP/gRPC to a live sink on CPU $CLIENT_CPU, metric export every ${METRIC_INTERVAL_MS} ms; \"sampled\" adds \`traceparent: …-01\` to every request):"
    echo
    echo "| size | SDK disabled req/s | telemetry on req/s | on/disabled | sampled traceparent req/s | sampled/disabled | p99 ms disabled / on / sampled | server CPU µs/req disabled / on / sampled | CPU ratio disabled/on |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in "${TEL_SIZES[@]}"; do
      off="$(med "rps|sdk-off|$s")" on="$(med "rps|otel-on|$s")" tp="$(med "rps|otel-tp|$s")"
      printf '| %s | %.0f | %.0f | %s | %.0f | %s | %s / %s / %s | %s / %s / %s | %s |%s\n' "$(human "$s")" "$off" "$on" "$(ratio "$on" "$off")" \
        "$tp" "$(ratio "$tp" "$off")" \
        "$(ms "$(med "p99|sdk-off|$s")")" "$(ms "$(med "p99|otel-on|$s")")" "$(ms "$(med "p99|otel-tp|$s")")" \
        "$(med "cpu|sdk-off|$s")" "$(med "cpu|otel-on|$s")" "$(med "cpu|otel-tp|$s")" "$(ratio "$(med "cpu|sdk-off|$s")" "$(med "cpu|otel-on|$s")")" \
        "$(err_note "$s" sdk-off otel-on otel-tp)"
    done
    echo
    echo "- RSS with telemetry on: idle $(mb "$ON_IDLE_KB") MB ($ON_IDLE_SPLIT), peak at $CONNS connections $(mb "$ON_PEAK_KB") MB; sampled: idle $(mb "$TP_IDLE_KB") / peak $(mb "$TP_PEAK_KB") MB; SDK disabled: idle $(mb "$OFF_IDLE_KB") ($OFF_IDLE_SPLIT) / peak $(mb "$OFF_PEAK_KB") MB."
    echo "- What reached the sinks: default sampler \`${SINK_ON_COUNTS#otlpsink: }\`; sampled \`${SINK_TP_COUNTS#otlpsink: }\` for $((TP_REQS + 1)) sampled requests (spans/sampled requests: $(ratio "$(sed -n "s/.* spans=\([0-9]*\).*/\1/p" <<<"$SINK_TP_COUNTS")" "$((TP_REQS + 1))"))."
    case "$SINK_ON_COUNTS" in
      *metric_points=0*) echo "- **WARNING: no metric points were exported: is telemetry wired into this binary?**" ;;
    esac
  fi
  echo
  echo "Handler benchmarks (\`go test -run '^\$' -bench . -benchmem ./payload/\`, CPU $SERVER_CPU):"
  echo
  echo '```'
  grep -E '^(Benchmark|\(|goos|goarch|cpu)' "$GOBENCH_OUT" || true
  echo '```'
}
