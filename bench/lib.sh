# Shared by bench/proxy.sh and bench/proxy-instructions.sh (source it): the same bodies,
# nginx origin, nginx reverse proxy and ficus routes, so both scripts measure one setup.
# Loopback only.

# need_tools TOOL...: installs from Debian what is missing (nginx as nginx-light if it can).
need_tools() {
  local missing=() t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} from Debian..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]/#nginx/nginx-light}" >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# free_ports N: N free loopback ports chosen by the kernel. nginx cannot take an inherited
# socket, so each port is released and bound again a moment later: two runs at once do not
# collide on fixed numbers, though another process could still take a port in between.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' "$1"
}

# wait_port PORT [SECONDS]: until something accepts on PORT (default 10 s), else exit 1.
wait_port() {
  local tries=$(( ${2:-10} * 20 ))
  for _ in $(seq 1 "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  exit 1
}

# start_work NAME: a work directory $WORK (/tmp/NAME.XXXXXX) with the two bodies in
# $WORK/www and a $WORK/logs directory; on exit every process in $PIDS is stopped and
# $WORK removed.
start_work() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap cleanup EXIT
  mkdir -p "$WORK/www" "$WORK/logs"
  chmod 755 "$WORK" "$WORK/www"  # nginx workers run as an unprivileged user
  write_bodies "$WORK/www"
}

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

# write_bodies DIR: the 300 B ("small") and 16 KiB ("large") JSON bodies the origin serves.
write_bodies() {
  python3 - "$1" <<'PY'
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
}

# origin_conf WORK PORT: nginx serving WORK/www on PORT, one worker, no log.
origin_conf() {
  cat <<NGX
worker_processes 1; daemon off; pid $1/origin.pid; error_log $1/logs/origin-error.log warn;
events { worker_connections 4096; }
http { access_log off; default_type application/json; keepalive_requests 1000000;
  server { listen 127.0.0.1:$2; root $1/www; location / { } } }
NGX
}

# proxy_conf WORK PORT ORIGIN_PORT ACCESS_LOG(on|off) [MAIN...]: the nginx reverse proxy,
# one worker, upstream keep-alive, and for parity the header work ficus does by default:
# the client's Host kept, X-Forwarded-For/-Proto/-Host, Forwarded, Via both ways, a request id sent
# upstream and returned to the client, and the response hardening (docs/security.md).
# MAIN adds main-context directives.
proxy_conf() {
  local log="access_log off;"
  [ "$4" = on ] && log="access_log $1/logs/nginx-access.log combined buffer=64k flush=1s;"
  cat <<NGX
${5:-} worker_processes 1; daemon off; pid $1/proxy.pid; error_log $1/logs/proxy-error.log warn;
events { worker_connections 4096; }
http { $log keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$3; keepalive 128; }
  server { listen 127.0.0.1:$2;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$http_host; proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\\"\$http_host\\"";
      proxy_set_header Via "1.1 nginx"; proxy_set_header X-Request-Id \$request_id;
      add_header X-Request-Id \$request_id always; add_header Via "1.1 nginx" always;
      proxy_hide_header X-Powered-By; server_tokens off;
      add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
      add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always;
      add_header Referrer-Policy no-referrer always; } } }
NGX
}

# ficus_routes PORT ADMIN ORIGIN_PORT: routes.toml in front of the origin (a route table
# with a param route, /large through an extracted upstream, the rest to legacy).
ficus_routes() {
  cat <<TOML
legacy = "legacy"
[listen]
proxy = "127.0.0.1:$1"
admin = "127.0.0.1:$2"
[upstreams.legacy]
url = "http://127.0.0.1:$3"
[upstreams.ranking]
url = "http://127.0.0.1:$3"
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
}
