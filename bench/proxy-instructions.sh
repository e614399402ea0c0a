#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind: a deterministic
# companion to bench/proxy.sh for machines too noisy to resolve a few percent of CPU time.
#
# Starts an nginx origin (the same 300 B and 16 KiB bodies as bench/proxy.sh), then, one at
# a time, the nginx reverse proxy and ficus (and FICUS_BASE if set) under
# `valgrind --tool=callgrind`, warms each up, counts instructions while wrk sends requests
# for DURATION, and divides by the requests wrk completed. Kernel work (syscalls, TCP) is
# not counted: compare syscalls separately (strace -c). glibc's memcpy may use `rep movsb`,
# which callgrind counts per byte, so copies weigh more here than on the CPU.
#
# Knobs: FICUS_BIN (default target/perf/ficus, built if missing), FICUS_BASE, DURATION (10s),
# CONNS (8), BODIES ("small large"). Loopback only; everything stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-8}
BODIES=${BODIES:-small large}
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_tools wrk nginx valgrind
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FICUS=${FICUS_BIN:-target/perf/ficus}
[ -x "$FICUS" ] || cargo build -j2 --profile perf -p ficus >&2

start_work ficus-instr
read -r ORIGIN_PORT < <(free_ports 1)
origin_conf "$WORK" "$ORIGIN_PORT" > "$WORK/origin.conf"
"$NGINX" -c "$WORK/origin.conf" -p "$WORK" & PIDS+=($!)
wait_port "$ORIGIN_PORT"

# measure NAME PORT PID: instructions per request while wrk runs against PORT.
measure() {
  local name=$1 port=$2 pid=$3 body reqs ir
  wait_port "$port" 60  # valgrind starts slowly
  for body in $BODIES; do
    wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$port/$body" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    reqs=$(wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$port/$body" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$pid" >/dev/null 2>&1
    rm -f "$WORK"/cg.out*
    callgrind_control -d "$pid" >/dev/null 2>&1
    ir=$(cat "$WORK"/cg.out.* | awk '/^totals:/ {print $2; exit}')
    printf "%-7s %-6s %9d requests %14d instructions %8d per request\n" "$name" "$body" "$reqs" "$ir" $((ir / reqs))
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

read -r PORT < <(free_ports 1)
# No master process: the worker itself runs under callgrind.
proxy_conf "$WORK" "$PORT" "$ORIGIN_PORT" on "master_process off;" > "$WORK/proxy.conf"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
  "$NGINX" -c "$WORK/proxy.conf" -p "$WORK" 2>"$WORK/logs/vg-nginx.log" & PIDS+=($!)
measure nginx "$PORT" $!

run_ficus() {
  local name=$1 bin=$2 port admin
  read -r port admin < <(free_ports 2)
  ficus_routes "$port" "$admin" "$ORIGIN_PORT" > "$WORK/$name.toml"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
    "$bin" run --config "$WORK/$name.toml" --threads 1 --access-log true \
    > "$WORK/logs/$name.log" 2>"$WORK/logs/vg-$name.log" & PIDS+=($!)
  measure "$name" "$port" $!
}
run_ficus ficus "$FICUS"
[ -n "${FICUS_BASE:-}" ] && run_ficus base "$FICUS_BASE"
exit 0
