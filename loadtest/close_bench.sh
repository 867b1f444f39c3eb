#!/usr/bin/env bash
# Closing a stored window of 1,000,000 transfers end to end: cut-off, netting, storing
# the results, instructions ready. The transfers are written straight into the open
# window with SQL (that part is setup, not measured); then the window is closed over
# HTTP while loadgen keeps submitting into the next window, and the script reports the
# time from the close request to the window reading `netted`, the engine's own
# deltran_window_close_duration_seconds, and the submissions' latency meanwhile.
# Usage: loadtest/close_bench.sh   (TRANSFERS=1000000 RATE=2000)
set -euo pipefail
cd "$(dirname "$0")/.."
TRANSFERS=${TRANSFERS:-1000000}
RATE=${RATE:-2000}
ADDR=127.0.0.1:18090
OUT=$(mktemp -d /tmp/deltran-close-XXXXXX)
chmod 755 "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cargo build --release --locked --bins >/dev/null 2>&1
target/release/deltran serve --listen "$ADDR" --data-dir "$OUT/engine" --window-duration-ms 3600000 \
  --log-format json >"$OUT/engine.log" 2>&1 & pids+=($!)
for _ in $(seq 1 300); do curl -fs "http://$ADDR/health" >/dev/null 2>&1 && break; sleep 0.1; done
window=$(curl -fs "http://$ADDR/api/v1/windows/current" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
socket_dir=$(sed -n 5p "$OUT/engine/pg/postmaster.pid")
psql_() { psql -h "$socket_dir" -U deltran -d deltran -v ON_ERROR_STOP=1 -qtA "$@"; }

echo "== loading $TRANSFERS transfers into window $window (setup)"
time psql_ -c "
  INSERT INTO transfers (id, sender_bank, receiver_bank, amount, from_currency, converted_amount,
                         to_currency, fx_rate, status, window_id, created_at)
  SELECT gen_random_uuid(), s.bank, r.bank, a.amount, s.cur,
         round(a.amount * c.fx_rate, 2), r.cur, c.fx_rate, 'accepted', $window, now()
    FROM generate_series(1, $TRANSFERS) g(i)
    CROSS JOIN LATERAL (SELECT (ARRAY['ICICI','HDFC','AXIS','ENBD','ADCB'])[1 + i % 5] AS bank,
                               CASE WHEN i % 5 < 3 THEN 'INR' ELSE 'AED' END AS cur) s
    CROSS JOIN LATERAL (SELECT (ARRAY['ENBD','ADCB','ICICI','HDFC','AXIS'])[1 + (i / 5) % 5] AS bank0) r0
    CROSS JOIN LATERAL (SELECT CASE WHEN r0.bank0 = s.bank THEN 'AXIS' ELSE r0.bank0 END AS bank) r1
    CROSS JOIN LATERAL (SELECT r1.bank, CASE WHEN r1.bank IN ('ICICI','HDFC','AXIS') THEN 'INR' ELSE 'AED' END AS cur) r
    CROSS JOIN LATERAL (SELECT round((1000 + (i::bigint * 7919) % 999000)::numeric, 2) AS amount) a
    LEFT JOIN corridors c ON c.from_currency = s.cur AND c.to_currency = r.cur
   WHERE s.bank <> r.bank AND c.fx_rate IS NOT NULL"
psql_ -c "VACUUM ANALYZE transfers"
stored=$(psql_ -c "SELECT count(*) FROM transfers WHERE window_id = $window")
echo "stored_in_window=$stored"

echo "== closing window $window while submitting $RATE/s into the next one"
target/release/loadgen --url "http://$ADDR" --rate "$RATE" --duration-s 6 --connections 32 \
  --run-id close >"$OUT/during.txt" & load=$!
sleep 1
start=$(date +%s%N)
curl -fs -X POST "http://$ADDR/api/v1/windows/current/close" >/dev/null
until curl -fs "http://$ADDR/api/v1/windows/$window" | grep -q '"state":"netted"'; do sleep 0.01; done
end=$(date +%s%N)
wait "$load"
instructions=$(psql_ -c "SELECT count(*) FROM settlement_instructions WHERE window_id = $window")
echo "close_to_netted_ms=$(( (end - start) / 1000000 )) instructions=$instructions"
curl -fs "http://$ADDR/metrics" | grep -E '^deltran_window_close_duration_seconds_(sum|count)'
echo "-- submissions into the next window during the close:"
cat "$OUT/during.txt"
target/release/deltran audit --data-dir "$OUT/engine" | tail -1
echo "outputs in $OUT"
