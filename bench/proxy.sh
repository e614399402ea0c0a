#!/usr/bin/env bash
# Proxy benchmark: direct origin vs nginx reverse proxy vs ficus, on loopback only.
#
# Installs what it needs (wrk, nginx from Debian), builds ficus with the `perf` profile,
# starts an nginx origin serving a 300 B and a 16 KiB JSON body, an nginx reverse proxy
# (upstream keep-alive) and ficus, each with ONE worker, and runs interleaved rounds.
# Prints req/s, p50/p99 and requests per CPU-second of the proxy process, with ratios
# to nginx measured in the same run: pooled over the rounds, and per round against the
# nginx run next to it (median, range, rounds won). Results are recorded by hand in
# docs/benchmarks.md.
#
# Knobs: ROUNDS (3), DURATION (5s), CONNS (32), FICUS_BIN (skip the build), ORIGIN_PORT, NGINX_PORT,
# FICUS_PORT, FICUS_ADMIN (default: free ports), ACCESS_LOG (on|off, default on: both
# proxies write an access log line per request, nginx buffered, ficus via its writer thread),
# FICUS_BASE (a second ficus binary, e.g. the previous commit's, measured as target "base"
# in the same interleaved rounds: an A/B comparison on equal terms).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ACCESS_LOG=${ACCESS_LOG:-on}
# shellcheck source=bench/lib.sh
. bench/lib.sh
read -r P1 P2 P3 P4 P5 P6 < <(free_ports 6)
ORIGIN_PORT=${ORIGIN_PORT:-$P1}
NGINX_PORT=${NGINX_PORT:-$P2}
FICUS_PORT=${FICUS_PORT:-$P3}
FICUS_ADMIN=${FICUS_ADMIN:-$P4}
BASE_PORT=$P5
BASE_ADMIN=$P6
TARGETS="direct nginx ficus"
[ -n "${FICUS_BASE:-}" ] && TARGETS="$TARGETS base"

need_tools wrk nginx
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${FICUS_BIN:-}" ]; then
  cargo build -j2 --profile perf -p ficus >&2
fi
FICUS=${FICUS_BIN:-target/perf/ficus}

start_work ficus-bench
SMALL_BYTES=$(stat -c %s "$WORK/www/small"); LARGE_BYTES=$(stat -c %s "$WORK/www/large")
origin_conf "$WORK" "$ORIGIN_PORT" > "$WORK/origin.conf"
proxy_conf "$WORK" "$NGINX_PORT" "$ORIGIN_PORT" "$ACCESS_LOG" > "$WORK/proxy.conf"
ficus_routes "$FICUS_PORT" "$FICUS_ADMIN" "$ORIGIN_PORT" > "$WORK/routes.toml"

FICUS_ACCESS_LOG=$([ "$ACCESS_LOG" = on ] && echo true || echo false)
"$NGINX" -c "$WORK/origin.conf" -p "$WORK" & PIDS+=($!)
"$NGINX" -c "$WORK/proxy.conf" -p "$WORK" & PIDS+=($!)
"$FICUS" run --config "$WORK/routes.toml" --threads 1 --access-log "$FICUS_ACCESS_LOG" \
  > "$WORK/logs/ficus.log" 2>&1 & FICUS_PID=$!; PIDS+=($FICUS_PID)
if [ -n "${FICUS_BASE:-}" ]; then
  ficus_routes "$BASE_PORT" "$BASE_ADMIN" "$ORIGIN_PORT" > "$WORK/base.toml"
  "$FICUS_BASE" run --config "$WORK/base.toml" --threads 1 --access-log "$FICUS_ACCESS_LOG" \
    > "$WORK/logs/base.log" 2>&1 & BASE_PID=$!; PIDS+=($BASE_PID)
fi

PORTS="$ORIGIN_PORT $NGINX_PORT $FICUS_PORT"
[ -n "${FICUS_BASE:-}" ] && PORTS="$PORTS $BASE_PORT"
for p in $PORTS; do wait_port "$p"; done
for p in $PORTS; do
  for b in small large; do curl -sf "http://127.0.0.1:$p/$b" -o /dev/null || { echo "warm-up failed on $p/$b" >&2; exit 1; }; done
done

# CPU ticks (user+system) of a process and its children's threads: the nginx proxy's worker is a child.
ticks() { local total=0 pid; for pid in "$@"; do total=$((total + $(awk '{print $14+$15}' "/proc/$pid/stat"))); done; echo $total; }
nginx_proxy_pids() { local master; master=$(cat "$WORK/proxy.pid"); echo "$master $(pgrep -P "$master" | tr '\n' ' ')"; }
origin_pids() { local master; master=$(cat "$WORK/origin.pid"); echo "$master $(pgrep -P "$master" | tr '\n' ' ')"; }
HZ=$(getconf CLK_TCK)

RESULTS="$WORK/results.tsv"
echo -e "round\ttarget\tbody\trps\tp50_ms\tp99_ms\trequests\tcpu_s" > "$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
  for body in small large; do
    for target in $TARGETS; do
      case $target in
        direct) port=$ORIGIN_PORT; pids=$(origin_pids) ;;
        nginx) port=$NGINX_PORT; pids=$(nginx_proxy_pids) ;;
        ficus) port=$FICUS_PORT; pids=$FICUS_PID ;;
        base) port=$BASE_PORT; pids=$BASE_PID ;;
      esac
      # shellcheck disable=SC2086
      t0=$(ticks $pids)
      out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port/$body")
      # shellcheck disable=SC2086
      t1=$(ticks $pids)
      python3 - "$round" "$target" "$body" "$((t1 - t0))" "$HZ" >> "$RESULTS" <<PY
import re, sys
out = """$out"""
r, target, body, ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    if not m:
        sys.exit(f"cannot parse wrk latency {v!r} for {target}/{body}:\n{out}")
    n, unit = m.groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)); p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
reqs = int(re.search(r"(\d+) requests in", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
if errors: print(f"warning: {target}/{body}: {errors.group(0)}", file=sys.stderr)
print(f"{r}\t{target}\t{body}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{reqs}\t{ticks / hz:.2f}")
PY
    done
  done
done

python3 - "$RESULTS" "$SMALL_BYTES" "$LARGE_BYTES" "$ROUNDS" "$DURATION" "$CONNS" "$ACCESS_LOG" <<'PY'
import csv, sys, statistics as st
path, small, large, rounds, duration, conns, access = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
print(f"\nficus proxy benchmark: {rounds} interleaved rounds x {duration}, wrk -t1 -c{conns}, one worker each, access log {access}")
print(f"bodies: small={small} B, large={large} B; 'req/CPU-s' = requests / CPU seconds of the proxy process (origin's for direct)\n")
print(f"{'body':6} {'target':7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/CPU-s':>10} {'vs nginx (req/CPU-s)':>21} {'p99 vs nginx':>13}")
for body in ("small", "large"):
    agg = {}
    for target in ("direct", "nginx", "ficus", "base"):
        rs = [r for r in rows if r["target"] == target and r["body"] == body]
        if not rs:
            continue
        reqs = sum(int(r["requests"]) for r in rs); cpu = sum(float(r["cpu_s"]) for r in rs)
        agg[target] = dict(rps=st.median(float(r["rps"]) for r in rs), p50=st.median(float(r["p50_ms"]) for r in rs),
                           p99=st.median(float(r["p99_ms"]) for r in rs), per_cpu=reqs / cpu if cpu else float("nan"))
    for target, a in agg.items():
        ratio = a["per_cpu"] / agg["nginx"]["per_cpu"]; p99r = a["p99"] / agg["nginx"]["p99"]
        print(f"{body:6} {target:7} {a['rps']:9.0f} {a['p50']:8.3f} {a['p99']:8.3f} {a['per_cpu']:10.0f} {ratio:20.2f}x {p99r:12.2f}x")
# Paired view: each round's ratio to the nginx run next to it, so drift between rounds
# cancels; the spread shows how far one round can be trusted.
print("\nper-round ratios to nginx (median [min-max]; 'won' = rounds where the target was at or better than nginx)")
for body in ("small", "large"):
    for target in ("ficus", "base"):
        cpu, p99 = [], []
        for r in sorted({row["round"] for row in rows}, key=int):
            by = {row["target"]: row for row in rows if row["round"] == r and row["body"] == body}
            if target not in by or "nginx" not in by:
                continue
            n, t = by["nginx"], by[target]
            cpu.append((int(t["requests"]) / float(t["cpu_s"])) / (int(n["requests"]) / float(n["cpu_s"])))
            p99.append(float(t["p99_ms"]) / float(n["p99_ms"]))
        if not cpu:
            continue
        def show(xs, better_high):
            won = sum(1 for x in xs if (x >= 1.0 if better_high else x <= 1.0))
            return f"{st.median(xs):.2f}x [{min(xs):.2f}-{max(xs):.2f}] won {won}/{len(xs)}"
        print(f"{body:6} {target:7} req/CPU-s {show(cpu, True):30} p99 {show(p99, False)}")
print("\nper-round rows:")
print(open(path).read())
PY
