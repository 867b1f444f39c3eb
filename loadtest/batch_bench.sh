#!/usr/bin/env bash
# The batch submission benchmark (issue 14), all on this machine:
#   1. the bare-route baseline (loadtest/bare_route.rs, `POST /api/v1/transfers/batch`:
#      it reads the same batch bodies as the engine does, the list and then each
#      transfer, and answers a result per transfer) under wrk;
#   2. the engine with its embedded Postgres (fsync on) under the same wrk load
#      (loadtest/submit_batch.lua: BATCH transfers per request, each batch from one
#      sender bank with its own key, every transfer with its own idempotency key,
#      the brief answer unless ANSWER=full),
#      with the engine's and Postgres' CPU per acknowledged transfer read from /proc
#      over the load, then a count in the database of every transfer the answers
#      said succeeded.
# Usage: loadtest/batch_bench.sh [deltran serve flags…]   (DURATION=20 CONNECTIONS=8
#        THREADS=2 BATCH=1000 ANSWER=brief)
# The bare route answers about 80 bytes per transfer whatever is asked; the engine's
# brief answer is about 150, its full one about 420 (which wrk, on the same two cores,
# then spends more time reading).
# Needs wrk (installed when missing) and psql. One benchmark at a time on a shared
# machine: it takes /tmp/bench.lock.
[ -n "${BENCH_LOCKED:-}" ] || exec env BENCH_LOCKED=1 flock /tmp/bench.lock bash "$0" "$@"
source "$(dirname "$0")/common.sh"

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
export BATCH=${BATCH:-1000}
export ANSWER=${ANSWER:-brief}
BARE_ADDR=127.0.0.1:18083
ADDR=127.0.0.1:18084
need_wrk
# An earlier run's writes still in the page cache would be flushed while this one
# runs, on the same two cores and disk (a run right after another measured 10–15 %
# less): they are flushed first.
sync

field() { sed -n "s/^$1=//p" "$2"; }
load() { # load URL OUTPUT: wrk with the batch script
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s -s loadtest/submit_batch.lua "$1" >"$2"
}

echo "== baseline: bare actix-web route reading the same batches (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $BATCH per batch)"
target/release/bare-route "$BARE_ADDR" 2 &
bare=$!
wait_up_post() { for _ in $(seq 1 100); do curl -fs -X POST "$1" -d '{"transfers":[]}' >/dev/null 2>&1 && return 0; sleep 0.1; done; exit 1; }
wait_up_post "http://$BARE_ADDR/api/v1/transfers/batch"
BARE_KEY="dtk_$(printf '0%.0s' $(seq 32))_$(printf '0%.0s' $(seq 64))"
DELTRAN_KEY=$BARE_KEY RUN_ID=bare load "http://$BARE_ADDR" "$OUT/bare.txt"
cat "$OUT/bare.txt"
kill "$bare"; wait "$bare" 2>/dev/null || true

echo "== engine with embedded Postgres (same wrk load, each batch with its sender bank's key)"
start_engine "$ADDR" "$@"
export DELTRAN_KEYS_FILE=$OUT/engine/api-keys
RUN_ID="batch$(date +%s)"
RUN_ID=$RUN_ID load "http://$ADDR" "$OUT/engine.txt" &
wrk_pid=$!
started=$(date +%s%N)
sleep 1
read -r -a pg <<<"$(postgres_pids)"
engine_before=$(ticks "$ENGINE"); pg_before=$(ticks "${pg[@]}")
before_ns=$(date +%s%N)
sleep $((DURATION - 2))
read -r -a pg_end <<<"$(postgres_pids)"
engine_after=$(ticks "$ENGINE"); pg_after=$(ticks "${pg_end[@]}")
after_ns=$(date +%s%N)
wait "$wrk_pid"
cat "$OUT/engine.txt"
sleep 1
stored=$(stored_count "$RUN_ID")
acked=$(sed -n 's/.*transfers_succeeded=\([0-9]*\).*/\1/p' "$OUT/engine.txt")
echo "acknowledged_by_wrk=$acked stored_in_postgres=$stored"
[ "$stored" -ge "$acked" ] || { echo "FAIL: acknowledged transfers missing from the database" >&2; exit 1; }

bare_rate=$(field acknowledged_per_second "$OUT/bare.txt")
engine_rate=$(field acknowledged_per_second "$OUT/engine.txt")
span=$(awk -v a="$after_ns" -v b="$before_ns" 'BEGIN { print (a - b) / 1e9 }')
hz=$(getconf CLK_TCK)
per() { awk -v t="$1" -v r="$engine_rate" -v s="$span" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / (r * s) }'; }
echo "== summary"
echo "batch_size=$BATCH connections=$CONNECTIONS answer=$ANSWER"
echo "bare_route_transfers_per_second=$bare_rate"
echo "engine_acknowledged_per_second=$engine_rate"
awk -v e="$engine_rate" -v b="$bare_rate" 'BEGIN { printf "engine_to_bare_ratio=%.3f\n", e / b }'
echo "engine_batch_latency_p50_ms=$(field batch_latency_p50_ms "$OUT/engine.txt") p99_ms=$(field batch_latency_p99_ms "$OUT/engine.txt")"
echo "cpu_us_per_transfer engine=$(per $((engine_after - engine_before))) postgres=$(per $((pg_after - pg_before)))"
echo "outputs in $OUT"
