#!/usr/bin/env bash
# A/B: the same wrk load against two engine binaries, alternating, to compare builds
# without the client's work differing. Every request carries its sender bank's key
# (loadtest/submit.lua with DELTRAN_KEYS_FILE); an engine without authentication
# ignores the header, and gets a keys file of the same shape.
# Usage: A=path/to/deltran B=path/to/other/deltran loadtest/ab.sh
#        (DURATION=15 ROUNDS=2 CONNECTIONS=256)
# Needs wrk and curl. Each engine runs with its own embedded cluster in a fresh
# directory, on 127.0.0.1:18081.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A:?A=path of the first deltran binary}" "${B:?B=path of the second}"
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-256}
ADDR=127.0.0.1:18081
fake=$(mktemp)
zeros() { printf "%0${1}d" 0; }
for bank in ICICI HDFC AXIS ENBD ADCB; do
  echo "bank $bank dtk_$(zeros 32)_$(zeros 64)" >>"$fake"
done
engine=""
dir=""
cleanup() {
  if [ -n "$engine" ]; then kill -TERM "$engine" 2>/dev/null || true; wait "$engine" 2>/dev/null || true; fi
  [ -n "$dir" ] && rm -rf "$dir"
  rm -f "$fake"
}
trap cleanup EXIT

run() {
  local label=$1 bin=$2
  dir=$(mktemp -d /tmp/deltran-ab-XXXXXX)
  chmod 755 "$dir"   # the embedded cluster runs as `postgres` when we are root
  "$bin" serve --listen "$ADDR" --data-dir "$dir/engine" --log-format json >"$dir/engine.log" 2>&1 &
  engine=$!
  for _ in $(seq 1 600); do curl -fs "http://$ADDR/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local keys=$fake
  [ -f "$dir/engine/api-keys" ] && keys=$dir/engine/api-keys
  DELTRAN_KEYS_FILE=$keys RUN_ID="ab$(date +%s)" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" \
    -s loadtest/submit.lua "http://$ADDR" >"$dir/wrk.txt"
  echo "$label $(grep -E '^(accepted|acknowledged_per_second|latency_p99_ms)=' "$dir/wrk.txt" | tr '\n' ' ')"
  kill -TERM "$engine"; wait "$engine" 2>/dev/null || true
  engine=""
  rm -rf "$dir"
  dir=""
}

for _ in $(seq 1 "$ROUNDS"); do
  run A "$A"
  run B "$B"
done
