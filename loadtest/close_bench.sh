#!/usr/bin/env bash
# Closing a stored window of ~1,000,000 transfers end to end: cut-off, netting, storing
# the results, instructions ready.
#   1. wrk submits transfers through the API into one open window until it holds
#      TRANSFERS of them (setup, not measured);
#   2. the window is closed over HTTP while loadgen keeps submitting RATE/s into the
#      next one: reported are the time from the close request until the window reads
#      `netted`, the engine's deltran_window_close_duration_seconds, and the latency
#      of the submissions meanwhile;
#   3. the same again after an engine restart, when the writer's sums are gone and the
#      window's transfers are summed in the store (the recovery path).
# Usage: loadtest/close_bench.sh   (TRANSFERS=1000000 RATE=2000)
source "$(dirname "$0")/common.sh"
need_wrk
TRANSFERS=${TRANSFERS:-1000000}
RATE=${RATE:-2000}
ADDR=127.0.0.1:18090
current() { api "http://$ADDR/api/v1/windows/current" | sed -n 's/.*"id":\([0-9]*\).*/\1/p'; }
count() { api "http://$ADDR/api/v1/windows/current" | sed -n 's/.*"transfer_count":\([0-9]*\).*/\1/p'; }

fill() {
  local window; window=$(current)
  echo "== filling window $window with $TRANSFERS transfers through the API (setup)"
  while [ "$(count)" -lt "$TRANSFERS" ]; do
    RUN_ID="fill$(date +%s%N)" wrk -t2 -c256 -d5s -s loadtest/submit.lua "http://$ADDR" >/dev/null
  done
  echo "transfers_in_window=$(count)"
}

close_and_time() {
  local label=$1 window; window=$(current)
  target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s 6 --connections 32 \
    --run-id "during$label" >"$OUT/during-$label.txt" &
  local load=$!
  sleep 1
  local start end
  start=$(date +%s%N)
  api -X POST "http://$ADDR/api/v1/windows/current/close" >/dev/null
  until api "http://$ADDR/api/v1/windows/$window" | grep -q '"state":"netted"'; do sleep 0.005; done
  end=$(date +%s%N)
  wait "$load"
  echo "[$label] window=$window close_to_netted_ms=$(( (end - start) / 1000000 ))"
  curl -fs "http://$ADDR/metrics" | grep -E '^deltran_window_close_duration_seconds_(sum|count)' | sed "s/^/[$label] /"
  echo "[$label] submissions into the next window meanwhile:"
  sed "s/^/[$label]   /" "$OUT/during-$label.txt"
}

start_engine "$ADDR" --window-duration-ms 3600000
fill
close_and_time from-writer-sums

fill
echo "== restarting the engine (the writer's sums are lost)"
stop_engine
start_engine "$ADDR" --window-duration-ms 3600000
close_and_time from-store

stop_engine
target/release/deltran audit --data-dir "$OUT/engine" | tail -1
echo "outputs in $OUT"
