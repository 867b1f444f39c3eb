#!/usr/bin/env bash
# WebSocket fan-out under load: 1,000 subscribers to `windows` and `notifications`
# while loadgen submits 5,000 transfers/s; windows are closed every 2 s and each
# subscriber times its `window_netted`. The same submission load runs first with no
# subscriber, for comparison.
# Usage: loadtest/ws_bench.sh   (SUBSCRIBERS=1000 RATE=5000 CLOSES=10)
# loadgen and wsbench send the engine's operator key (DELTRAN_KEY, from start_engine).
source "$(dirname "$0")/common.sh"
SUBSCRIBERS=${SUBSCRIBERS:-1000}
RATE=${RATE:-5000}
CLOSES=${CLOSES:-10}
DURATION=$(( CLOSES * 2 + 6 ))
ADDR=127.0.0.1:18092
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096   # 1,000 sockets on each side
start_engine "$ADDR" --window-duration-ms 3600000

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
