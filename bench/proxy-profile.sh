#!/usr/bin/env bash
# Where a proxied request's CPU time goes: kernel, the proxy binary, libc and other
# libraries, for the nginx proxy and ficus under the same load. A companion to
# bench/proxy.sh (how much CPU) and bench/proxy-instructions.sh (user-space instructions).
#
# Uses software-clock sampling (`perf record -e cpu-clock`), which works on machines
# without hardware counters, where /proc's per-thread user/system split may be wrong.
# Starts the nginx origin and, one at a time, the nginx proxy and ficus (one worker each,
# the bench/lib.sh setup), samples each for SAMPLE seconds while `wrk -t1 -c32` runs,
# prints the share of each object (kernel, binary, libraries) and the top symbols.
#
# Knobs: FICUS_BIN (default target/perf/ficus, built if missing), BODY (small|large,
# default small), SAMPLE (4), TOP (15), KEEP (a directory to keep the perf.data files in).
# Loopback only; everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

BODY=${BODY:-small}
SAMPLE=${SAMPLE:-4}
TOP=${TOP:-15}
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_tools wrk nginx
if ! command -v perf >/dev/null 2>&1; then
  echo "installing linux-perf from Debian..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FICUS=${FICUS_BIN:-target/perf/ficus}
[ -x "$FICUS" ] || cargo build -j2 --profile perf -p ficus >&2

start_work ficus-profile
read -r ORIGIN_PORT NGINX_PORT FICUS_PORT FICUS_ADMIN < <(free_ports 4)
origin_conf "$WORK" "$ORIGIN_PORT" > "$WORK/origin.conf"
proxy_conf "$WORK" "$NGINX_PORT" "$ORIGIN_PORT" on > "$WORK/proxy.conf"
ficus_routes "$FICUS_PORT" "$FICUS_ADMIN" "$ORIGIN_PORT" > "$WORK/routes.toml"
"$NGINX" -c "$WORK/origin.conf" -p "$WORK" & PIDS+=($!)
"$NGINX" -c "$WORK/proxy.conf" -p "$WORK" & PIDS+=($!)
"$FICUS" run --config "$WORK/routes.toml" --threads 1 --access-log true \
  > "$WORK/logs/ficus.log" 2>&1 & FICUS_PID=$!; PIDS+=($FICUS_PID)
for p in "$ORIGIN_PORT" "$NGINX_PORT" "$FICUS_PORT"; do wait_port "$p"; done
NGINX_WORKER=$(pgrep -P "$(cat "$WORK/proxy.pid")" | head -1)

# profile NAME PORT PID: samples PID while wrk loads PORT, prints the shares.
profile() {
  local name=$1 port=$2 pid=$3 data="$WORK/perf.$1.data" reqs
  wrk -t1 -c32 -d1s "http://127.0.0.1:$port/$BODY" >/dev/null
  perf record -q -e cpu-clock -F 4999 -p "$pid" -o "$data" -- sleep "$SAMPLE" >/dev/null 2>&1 &
  local rec=$!
  reqs=$(wrk -t1 -c32 -d"$((SAMPLE + 1))s" "http://127.0.0.1:$port/$BODY" | awk '/requests in/ {print $1}')
  wait "$rec" || true
  echo "== $name ($BODY body, $reqs requests under wrk -t1 -c32)"
  echo "-- share of samples by object"
  # awk reads to the end (no SIGPIPE for perf under pipefail).
  perf report -i "$data" --no-children --sort dso -g none 2>/dev/null | awk '/^ +[0-9]/ && n++ < 8'
  echo "-- top $TOP symbols"
  perf report -i "$data" --no-children --sort dso,sym -g none 2>/dev/null \
    | awk -v top="$TOP" '/^ +[0-9]/ && n++ < top'
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$data" "$KEEP/"; fi
  echo
}
profile nginx "$NGINX_PORT" "$NGINX_WORKER"
profile ficus "$FICUS_PORT" "$FICUS_PID"
