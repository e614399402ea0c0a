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
need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if ! need wrk || ! need nginx || ! need valgrind; then
  echo "installing wrk, nginx and valgrind from Debian..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light valgrind >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx valgrind >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FICUS=${FICUS_BIN:-target/perf/ficus}
[ -x "$FICUS" ] || cargo build -j2 --profile perf -p ficus >&2

WORK=$(mktemp -d /tmp/ficus-instr.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/www" "$WORK/logs"
chmod 755 "$WORK" "$WORK/www"
python3 - "$WORK/www" <<'PY'
import json, sys
root = sys.argv[1]
small = json.dumps({"id": 42, "title": "HIIT 20", "category": "cardio", "intensity": "high",
                    "duration_min": 20, "instructor": {"id": 7, "name": "Ana"}, "tags": ["hiit", "short"],
                    "favorites": 1234, "pad": ""})
small = small.replace('"pad": ""', '"pad": "' + "x" * (300 - len(small)) + '"')
open(f"{root}/small", "w").write(small)
items, i = [], 0
while len(json.dumps({"items": items})) < 16384 - 64:
    items.append({"id": i, "title": f"Workout {i}", "score": 0.5}); i += 1
big = json.dumps({"items": items, "pad": ""})
big = big.replace('"pad": ""', '"pad": "' + "x" * (16384 - len(big)) + '"')
open(f"{root}/large", "w").write(big)
PY
free_ports() { python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))' "$1"; }
wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }

read -r ORIGIN_PORT < <(free_ports 1)
cat > "$WORK/origin.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/logs/origin-error.log warn;
events { worker_connections 4096; }
http { access_log off; default_type application/json; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN_PORT; root $WORK/www; location / { } } }
NGX
"$NGINX" -c "$WORK/origin.conf" -p "$WORK" & PIDS+=($!)
wait_port "$ORIGIN_PORT"

# measure NAME PORT PID: instructions per request while wrk runs against PORT.
measure() {
  local name=$1 port=$2 pid=$3 body reqs ir
  wait_port "$port"
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
cat > "$WORK/proxy.conf" <<NGX
master_process off; worker_processes 1; daemon off; pid $WORK/proxy.pid; error_log $WORK/logs/proxy-error.log warn;
events { worker_connections 4096; }
http { access_log $WORK/logs/nginx-access.log combined buffer=64k flush=1s; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 128; }
  server { listen 127.0.0.1:$PORT;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Request-Id \$request_id;
      proxy_hide_header X-Powered-By; server_tokens off;
      add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
      add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always;
      add_header Referrer-Policy no-referrer always; } } }
NGX
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
  "$NGINX" -c "$WORK/proxy.conf" -p "$WORK" 2>"$WORK/logs/vg-nginx.log" & PIDS+=($!)
measure nginx "$PORT" $!

run_ficus() {
  local name=$1 bin=$2 port admin
  read -r port admin < <(free_ports 2)
  cat > "$WORK/$name.toml" <<TOML
legacy = "legacy"
[listen]
proxy = "127.0.0.1:$port"
admin = "127.0.0.1:$admin"
[upstreams.legacy]
url = "http://127.0.0.1:$ORIGIN_PORT"
[upstreams.ranking]
url = "http://127.0.0.1:$ORIGIN_PORT"
[[routes]]
name = "large"
path = "/large"
methods = ["GET"]
mode = "extracted"
extracted = "ranking"
[[routes]]
name = "users"
path = "/api/users/{id}"
TOML
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
    "$bin" run --config "$WORK/$name.toml" --threads 1 --access-log true \
    > "$WORK/logs/$name.log" 2>"$WORK/logs/vg-$name.log" & PIDS+=($!)
  measure "$name" "$port" $!
}
run_ficus ficus "$FICUS"
[ -n "${FICUS_BASE:-}" ] && run_ficus base "$FICUS_BASE"
exit 0
