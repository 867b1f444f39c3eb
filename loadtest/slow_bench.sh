#!/usr/bin/env bash
# Does a WebSocket client that never reads slow submissions down? loadgen submits
# RATE/s for DURATION s, first alone, then while loadtest/slow_client.py holds a
# `transactions` subscription it never reads; the engine must cut it off as lagging.
# Usage: loadtest/slow_bench.sh   (RATE=5000 DURATION=15)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-5000}
DURATION=${DURATION:-15}
ADDR=127.0.0.1:18093
OUT=$(mktemp -d /tmp/deltran-slow-XXXXXX)
chmod 755 "$OUT"
engine=""
cleanup() { [ -n "$engine" ] && kill "$engine" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
cargo build --release --locked --bins >/dev/null 2>&1
target/release/deltran serve --listen "$ADDR" --data-dir "$OUT/engine" --log-format json >"$OUT/engine.log" 2>&1 &
engine=$!
for _ in $(seq 1 300); do curl -fs "http://$ADDR/health" >/dev/null 2>&1 && break; sleep 0.1; done
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
