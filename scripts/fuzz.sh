#!/usr/bin/env bash
# Fuzzes the edge's parsers for a bounded time (docs/security.md, "Fuzzing"):
#   path_normalise  proxy/src/auth/path.rs  (panics, canonical output, fixed point)
#   jwt_precheck    proxy/src/auth/jwt.rs   (panics, size limit, algorithm allow-list)
#   wire_response   proxy/src/upstream/wire.rs (panics, framing: body lengths, TE vs CL)
# FUZZ_SECONDS per target (default 30). Installs cargo-fuzz from crates.io when missing;
# RUSTC_BOOTSTRAP lets the installed stable toolchain take the sanitizer flags.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked -j2 cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
for target in path_normalise jwt_precheck wire_response; do
    mkdir -p "corpus/$target"
    echo "== fuzzing $target for ${seconds}s"
    cargo fuzz run -j2 "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 \
        | grep -E "^(Done|stat::number_of_executed_units|==|INFO: Seed)|panicked|Failing input" || true
    if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
        echo "fuzz: $target crashed; inputs in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzz: ok"
