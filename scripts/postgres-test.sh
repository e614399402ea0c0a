#!/usr/bin/env bash
# Runs the extracted services' PostgreSQL tests against a real, throwaway PostgreSQL server.
#
# - installs Debian's `postgresql` package if no server binaries are found;
# - creates a cluster in a temp dir, listening only on a Unix socket inside that dir
#   (no TCP port at all, so it can never collide with another server or test run);
# - loads the shared schema + a small generated dataset with `ficus-pg-load`;
# - exports DATABASE_URL and runs the `#[ignore]`d postgres tests of the three services;
# - stops the cluster and removes the temp dir, whatever happened.
#
# Usage: scripts/postgres-test.sh            (from anywhere; cargo args can follow)
# Env:   CARGO_TARGET_DIR (default target), CARGO_BUILD_JOBS honoured by cargo.
set -euo pipefail

cd "$(dirname "$0")/.."
start_time=$(date +%s)

find_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

PGBIN=$(find_bin || true)
if [[ -z "${PGBIN}" || ! -x "${PGBIN}/initdb" ]]; then
  echo "postgres-test: installing postgresql (Debian package)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(find_bin)
fi
echo "postgres-test: using ${PGBIN}" >&2

TMP=$(mktemp -d /tmp/ficus-pg.XXXXXX)
# initdb refuses to run as root: run the server as the `postgres` user when we are root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "${TMP}"
fi

cleanup() {
  as_pg "${PGBIN}/pg_ctl" -D "${TMP}/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "${TMP}"
}
trap cleanup EXIT

as_pg "${PGBIN}/initdb" -D "${TMP}/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
as_pg "${PGBIN}/pg_ctl" -D "${TMP}/data" -l "${TMP}/server.log" -w \
  -o "-c listen_addresses='' -k ${TMP} -c fsync=off -c full_page_writes=off" start >/dev/null

# host = the socket directory, percent-encoded into the url's host part.
export DATABASE_URL="postgresql://postgres@${TMP//\//%2F}/postgres"
echo "postgres-test: server up on socket dir ${TMP}" >&2

cargo run -q -j2 -p service-kit --bin ficus-pg-load -- --schema public --replace --seed 42 --users 200
cargo test -j2 -p subscriptions -p preferences -p content-ranking -p jobs "$@" -- --include-ignored postgres

echo "postgres-test: done in $(( $(date +%s) - start_time ))s" >&2
