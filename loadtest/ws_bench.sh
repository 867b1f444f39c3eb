#!/usr/bin/env bash
# WebSocket fan-out under load: 1,000 subscribers to `windows` and `notifications`
# while loadgen submits 5,000 transfers/s; windows are closed every 2 s and each
# subscriber times its `window_netted`. The same submission load runs first with no
# subscriber, for comparison.
# Usage: loadtest/ws_bench.sh   (SUBSCRIBERS=1000 RATE=5000 CLOSES=10)
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS=${SUBSCRIBERS:-1000}
RATE=${RATE:-5000}
CLOSES=${CLOSES:-10}
DURATION=$(( CLOSES * 2 + 6 ))
ADDR=127.0.0.1:18092
OUT=$(mktemp -d /tmp/deltran-ws-XXXXXX)
chmod 755 "$OUT"
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096   # 1,000 sockets on each side
engine=""
cleanup() { [ -n "$engine" ] && kill "$engine" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
cargo build --release --locked --bins >/dev/null 2>&1
target/release/deltran serve --listen "$ADDR" --data-dir "$OUT/engine" --window-duration-ms 3600000 \
  --log-format json >"$OUT/engine.log" 2>&1 &
engine=$!
for _ in $(seq 1 300); do curl -fs "http://$ADDR/health" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== $RATE/s for ${DURATION}s with no subscriber"
target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s "$DURATION" --connections 64 \
  --run-id alone | tee "$OUT/alone.txt"

echo "== $RATE/s for ${DURATION}s with $SUBSCRIBERS subscribers; a close every 2 s"
target/release/wsbench --addr "$ADDR" --subscribers "$SUBSCRIBERS" --closes "$CLOSES" \
  --close-every-ms 2000 >"$OUT/ws.txt" &
ws=$!
sleep 2
target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s "$DURATION" --connections 64 \
  --run-id with | tee "$OUT/with.txt"
wait "$ws"
cat "$OUT/ws.txt"
curl -fs "http://$ADDR/metrics" | grep -E '^deltran_ws_(sessions|lagged)|^deltran_ws_messages_(sent|dropped)_total'
echo "outputs in $OUT"
