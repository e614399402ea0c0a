#!/usr/bin/env bash
# `ficus audit` against the demo stack, twice (issue #5):
#  1. straight at the legacy monolith: it must fail, and report each of the known holes
#     (proof that the checks can fail);
#  2. through Ficus with the repository's routes.toml: every check must pass.
# Everything runs on loopback, on ephemeral ports, and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -j2 -p ficus -p ficus-demo
bin="${CARGO_TARGET_DIR:-target}/debug"
dir="$(mktemp -d)"
demo=""
cleanup() {
    if [ -n "$demo" ]; then kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
"$bin/ficus-demo" --ephemeral --data-dir "$dir" --users 300 >"$dir/demo.log" 2>&1 &
demo=$!
# Bounded wait for the proxy to listen (the demo prints it once everything is up).
for _ in $(seq 1 1200); do
    grep -q "ficus listening" "$dir/demo.log" && break
    kill -0 "$demo" 2>/dev/null || { cat "$dir/demo.log"; echo "demo exited" >&2; exit 1; }
    sleep 0.1
done
grep -q "ficus listening" "$dir/demo.log" || { cat "$dir/demo.log"; echo "demo did not start" >&2; exit 1; }
routes="$dir/routes.ephemeral.toml"
read -r proxy legacy < <(python3 - "$routes" <<'PY'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
print("http://" + t["listen"]["proxy"], t["upstreams"]["legacy"]["url"])
PY
)

echo "== audit of the legacy monolith, directly ($legacy): its holes must show"
set +e
"$bin/ficus" audit --config "$routes" --target "$legacy" --token-for 7 --token-for 8 --format json >"$dir/legacy.json"
status=$?
set -e
[ "$status" -eq 1 ] || { echo "expected exit 1 from the audit of legacy, got $status" >&2; exit 1; }
python3 - "$dir/legacy.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
failed = {(r["route"], r["check"]) for r in report["rows"] if not r["pass"]}
holes = {
    "hole 1, no authentication": ("user-profile", "no-token"),
    "hole 2, any credentials accepted": ("subscription", "garbage-token"),
    "hole 3, insecure direct object reference": ("user-data", "other-user"),
    "hole 4, cross-site request forgery": ("user-data", "cross-site-cookie-write"),
    "hole 5, reflected XSS": ("catalogue", "script-in-query"),
}
missing = [name for name, key in holes.items() if key not in failed]
for name, key in holes.items():
    print(f"  {'found' if key in failed else 'MISSED'}: {name} {key}")
print(f"  {report['failed']} failing checks in all")
if missing:
    sys.exit(f"the audit missed: {missing}")
PY

echo "== audit through Ficus ($proxy): nothing may fail"
"$bin/ficus" audit --config "$routes" --target "$proxy" --token-for 7 --token-for 8 | tail -n 3
echo "audit-test: ok"
