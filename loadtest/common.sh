# Shared by the load-test scripts: build, start an engine with its own embedded
# cluster in a fresh directory, wait for it, and stop it on exit.
#   source loadtest/common.sh; start_engine ADDR [deltran serve flags…]
# Sets OUT (the run's directory) and ENGINE (the engine's pid), and exports
# DELTRAN_KEY, the operator key the engine wrote to $OUT/engine/api-keys at its first
# start: submit.lua, loadgen, wsbench and slow_client.py read it from there, and
# `api` (below) is curl with it. DELTRAN_BIN runs another engine binary (to compare
# builds with the same script); target/release/deltran by default.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=$(mktemp -d /tmp/deltran-load-XXXXXX)
chmod 755 "$OUT"   # the embedded cluster runs as `postgres` when we are root
ENGINE=""
stop_engine() {
  if [ -n "$ENGINE" ]; then kill -TERM "$ENGINE" 2>/dev/null || true; wait "$ENGINE" 2>/dev/null || true; fi
  ENGINE=""
}
# On exit the engine stops and its Postgres data directory goes (a load run leaves
# gigabytes there: a session's runs once filled this box's disk); the logs and the
# outputs stay in $OUT. KEEP_DATA=1 keeps the data directory too.
drop_data() { [ -n "${KEEP_DATA:-}" ] || rm -rf "$OUT/engine/pg"; }
trap 'stop_engine; jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null || true; drop_data' EXIT
cargo build --release --locked --bins >/dev/null 2>&1

wait_up() {
  for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "not up: $1" >&2; exit 1
}

# The operator key in an engine's first-start keys file (line `operator - <key>`).
operator_key() {
  local key
  key=$(awk '$1 == "operator" { print $3; exit }' "$1" 2>/dev/null || true)
  [ -n "$key" ] || { echo "no operator key in $1" >&2; exit 1; }
  echo "$key"
}

# wrk from Debian when it is missing: the scripts that load with it call this first.
need_wrk() {
  command -v wrk >/dev/null && return 0
  apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } \
    || { echo "wrk is missing and could not be installed (apt-get install wrk)" >&2; exit 1; }
}

# CPU time in clock ticks (user + system) of the processes given, threads included.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }

# Every process of the engine's embedded Postgres: the postmaster and its children.
postgres_pids() {
  local pm
  pm=$(head -1 "$OUT/engine/pg/postmaster.pid")
  echo "$pm $(pgrep -P "$pm" | tr '\n' ' ')"
}

# How many of a run's transfers the engine's store holds accepted: stored_count RUN_ID
# (the run's idempotency keys start with `RUN_ID-`).
stored_count() {
  psql -h "$(sed -n 5p "$OUT/engine/pg/postmaster.pid")" -U deltran -d deltran -tAc \
    "SELECT count(*) FROM transfers WHERE idempotency_key LIKE '$1-%' AND status = 'accepted'"
}

# curl with the operator key: api URL [curl flags…]
api() { curl -fs -H "Authorization: Bearer $DELTRAN_KEY" "$@"; }

start_engine() {
  local addr=$1; shift
  "${DELTRAN_BIN:-target/release/deltran}" serve --listen "$addr" --data-dir "$OUT/engine" --log-format json "$@" \
    >>"$OUT/engine.log" 2>&1 &
  ENGINE=$!
  wait_up "http://$addr/health"
  # Written at the first start only; a restart on the same directory keeps the keys.
  DELTRAN_KEY=$(operator_key "$OUT/engine/api-keys")
  export DELTRAN_KEY
}
