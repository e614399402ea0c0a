#!/usr/bin/env bash
# The migration dashboard in a real browser (issue #6): starts the demo stack with traffic
# on ephemeral loopback ports, opens the dashboard in Debian's headless chromium (driven by
# playwright-core from npm) at laptop (1366x768) and wall-display (2560x1440) sizes, checks
# the routes, the match rates, the autopilot's canary step, next gate and event, a rendered
# diff and that nothing overflows (tests/browser/dashboard.mjs), and saves screenshots to
# target/artifacts/dashboard.png and dashboard-wall.png, pass or fail. Installs chromium and
# the npm package when missing; bounded in time; stops the demo on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
cargo build -q -j2 -p ficus-demo
bin="${CARGO_TARGET_DIR:-target}/debug"
artifacts="${CARGO_TARGET_DIR:-target}/artifacts"
mkdir -p "$artifacts"
dir="$(mktemp -d)"
demo=""
cleanup() {
    if [ -n "$demo" ]; then kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
FICUS_DASHBOARD_EVERY_MS=1000 "$bin/ficus-demo" --ephemeral --data-dir "$dir" --users 300 --traffic 60 >"$dir/demo.log" 2>&1 &
demo=$!
for _ in $(seq 1 1200); do
    grep -q "ficus listening" "$dir/demo.log" && break
    kill -0 "$demo" 2>/dev/null || { cat "$dir/demo.log"; exit 1; }
    sleep 0.1
done
routes="$dir/routes.ephemeral.toml"
admin="http://$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb"))["listen"]["admin"])' "$routes")"
# A noise rule "forgotten": without it, the timestamp differs on every comparison, so the
# dashboard has real mismatches to show. The proxy reloads the edited file.
python3 - "$routes" <<'PY'
import sys
p = sys.argv[1]
text = open(p).read()
assert 'ignore = ["/generated_at"]' in text, "the demo route table changed: update this test"
open(p, "w").write(text.replace('ignore = ["/generated_at"]', 'ignore = []'))
PY
for _ in $(seq 1 600); do
    curl -sf "$admin/admin/shadow/top-content/diffs?limit=1" | grep -q '"pointer"' && break
    sleep 0.1
done
# The demo's autopilot walks `subscription` from shadow to canary after its first 30 s
# window; the browser test waits for that (bounded by its own deadline, and by `timeout`).
DASHBOARD_DEADLINE_MS=240000 timeout -k 10 270 node tests/browser/dashboard.mjs "$admin" "$artifacts"
echo "browser-test: ok (screenshots: $artifacts/dashboard.png, $artifacts/dashboard-wall.png)"
