#!/usr/bin/env bash
# The submission benchmark, all on this machine:
#   1. the bare-route baseline (loadtest/bare_route.rs) under wrk;
#   2. the engine with its embedded Postgres (fsync on) under the same wrk load,
#      then a count in the database of every transfer wrk saw acknowledged;
#   3. latency, open loop at a constant arrival rate with loadtest/loadgen.rs (k6
#      cannot drive these rates on 2 cores and leave room for the engine;
#      loadtest/rate.js is the k6 scenario for lower rates): at 10,000/s (half of
#      the 20,000/s the engine must sustain) and at half the rate it just sustained.
# Usage: loadtest/bench.sh    (DURATION=20 CONNECTIONS=256 THREADS=2 HALF_RATE=…)
# wrk sends each transfer with its sender bank's own key (KEYS=bank, the default, from
# the engine's api-keys file: one key per sending bank, as banks would) or the
# operator's (KEYS=operator); loadgen sends the operator's.
# Needs wrk (apt-get install wrk) and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
BARE_ADDR=127.0.0.1:18080
ENGINE_ADDR=127.0.0.1:18081
OUT=$(mktemp -d /tmp/deltran-bench-XXXXXX)
chmod 755 "$OUT"
pids=()
# The engine's Postgres data goes at the end (gigabytes per run; KEEP_DATA=1 keeps
# it); the outputs stay.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ -n "${KEEP_DATA:-}" ] || rm -rf "$OUT/engine/pg"
}
trap cleanup EXIT

cargo build --release --locked --bins >/dev/null 2>&1

wait_up() { for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }
field() { sed -n "s/^$1=//p" "$2"; }

echo "== baseline: bare actix-web route parsing the same JSON (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)"
target/release/bare-route "$BARE_ADDR" 2 & pids+=($!)
sleep 0.5
curl -fs -X POST "http://$BARE_ADDR/api/v1/transfers" -d '{"sender_bank":"A","receiver_bank":"B","amount":1,"from_currency":"INR","to_currency":"AED"}' >/dev/null
# The same request bytes as the engine gets: a bearer key of the same shape (the bare
# route ignores it).
BARE_KEY="dtk_$(printf '0%.0s' $(seq 32))_$(printf '0%.0s' $(seq 64))"
DELTRAN_KEY=$BARE_KEY RUN_ID=bare wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua "http://$BARE_ADDR" | tee "$OUT/bare.txt"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

echo "== engine with embedded Postgres (same wrk load)"
target/release/deltran serve --listen "$ENGINE_ADDR" --data-dir "$OUT/engine" --log-format json \
  >"$OUT/engine.log" 2>&1 & pids+=($!)
wait_up "http://$ENGINE_ADDR/health"
# The operator key the engine wrote at its first start: wrk and loadgen send it.
DELTRAN_KEY=$(awk '$1 == "operator" { print $3; exit }' "$OUT/engine/api-keys")
[ -n "$DELTRAN_KEY" ] || { echo "no operator key in $OUT/engine/api-keys" >&2; exit 1; }
export DELTRAN_KEY
if [ "${KEYS:-bank}" = bank ]; then export DELTRAN_KEYS_FILE=$OUT/engine/api-keys; fi
RUN_ID="wrk$(date +%s)"
RUN_ID=$RUN_ID wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua "http://$ENGINE_ADDR" | tee "$OUT/engine.txt"
sleep 1
socket_dir=$(sed -n 5p "$OUT/engine/pg/postmaster.pid")
stored=$(psql -h "$socket_dir" -U deltran -d deltran -tAc \
  "SELECT count(*) FROM transfers WHERE idempotency_key LIKE '$RUN_ID-%' AND status = 'accepted'")
acked=$(sed -n 's/^accepted=\([0-9]*\).*/\1/p' "$OUT/engine.txt")
echo "acknowledged_by_wrk=$acked stored_in_postgres=$stored"
if [ "$stored" -lt "$acked" ]; then echo "FAIL: acknowledged transfers missing from the database" >&2; exit 1; fi

bare_rate=$(field acknowledged_per_second "$OUT/bare.txt")
engine_rate=$(field acknowledged_per_second "$OUT/engine.txt")
half=${HALF_RATE:-$((engine_rate / 2))}
echo "== latency at 10000/s (half the required 20,000/s): open loop for ${DURATION}s (loadgen)"
target/release/loadgen --url "http://$ENGINE_ADDR" --rate 10000 --duration-s "$DURATION" \
  --connections 128 --run-id "lgr$(date +%s)" | tee "$OUT/required.txt"
echo "== latency at half the engine's measured rate: open loop, $half/s for ${DURATION}s (loadgen)"
target/release/loadgen --url "http://$ENGINE_ADDR" --rate "$half" --duration-s "$DURATION" \
  --connections 128 --run-id "lgh$(date +%s)" | tee "$OUT/half.txt"

echo "== summary"
echo "bare_route_requests_per_second=$bare_rate"
echo "engine_acknowledged_per_second=$engine_rate"
awk -v e="$engine_rate" -v b="$bare_rate" 'BEGIN { printf "engine_to_bare_ratio=%.3f\n", e / b }'
echo "engine_to_naive_ratio=$(awk -v e="$engine_rate" 'BEGIN { printf "%.1f", e / 3300 }') (naive design: ~3300/s, measured before the code existed)"
echo "rate_10000_latency_p99_ms=$(field latency_p99_ms "$OUT/required.txt")"
echo "half_rate=$half half_rate_latency_p99_ms=$(field latency_p99_ms "$OUT/half.txt")"
echo "outputs in $OUT"
