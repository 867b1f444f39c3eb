#!/usr/bin/env bash
# Does a WebSocket client that never reads slow submissions down? loadgen submits
# RATE/s for DURATION s, first alone, then while loadtest/slow_client.py holds a
# `transactions` subscription it never reads; the engine must cut it off as lagging.
# Usage: loadtest/slow_bench.sh   (RATE=5000 DURATION=15)
# loadgen and slow_client.py send the engine's operator key (DELTRAN_KEY, from
# start_engine).
source "$(dirname "$0")/common.sh"
RATE=${RATE:-5000}
DURATION=${DURATION:-15}
ADDR=127.0.0.1:18093
start_engine "$ADDR"
echo "== alone"
target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s "$DURATION" --run-id alone \
  | grep -E "accepted|per_second|p99_ms"
echo "== with a client that never reads"
python3 loadtest/slow_client.py "$ADDR" $(( DURATION + 3 )) & slow=$!
sleep 1
target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s "$DURATION" --run-id slow \
  | grep -E "accepted|per_second|p99_ms"
wait "$slow" || true
curl -fs "http://$ADDR/metrics" | grep -E '^deltran_ws_(lagged|messages)'
