#!/usr/bin/env bash
# Does one client's unstorable transfer fail anyone else's? wrk -t1 -c$CONNECTIONS
# submits ordinary transfers for DURATION s, first alone, then beside a poisoning
# client (loadtest/poison_client.py, 127.0.0.1 only) that sends a transfer the store
# cannot hold every INTERVAL_MS ms, at most DURATION*1000/INTERVAL_MS of them.
#   POISON=nul       its reference holds a NUL (`\u0000`): refused at parsing, 422
#                    text_invalid, it never reaches a batch (the default);
#   POISON=overflow  1e14 AED to INR, whose converted amount does not fit its column:
#                    it passes parsing and reaches the writer, which splits its batch
#                    so that it alone fails (422 transfer_unstorable). The corridor
#                    maximum and ENBD's cap are raised for both runs to let it through.
# Printed for both runs: ordinary requests, non-2xx among them, acknowledged per
# second; and the poisoner's answers by status.
# Usage: loadtest/poison_bench.sh   (DURATION=10 CONNECTIONS=64 POISON=nul INTERVAL_MS=5)
# Needs wrk (apt-get install wrk) and python3.
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
POISON=${POISON:-nul}
INTERVAL_MS=${INTERVAL_MS:-5}
PORT=18094
ADDR=127.0.0.1:$PORT
case "$POISON" in nul|overflow) ;; *) echo "POISON is nul or overflow" >&2; exit 2 ;; esac

start_engine "$ADDR"
if [ "$POISON" = overflow ]; then
  top=999999999999999.99
  api -X PATCH -H 'Content-Type: application/json' -d "{\"amount_max\":\"$top\"}" \
    "http://$ADDR/api/v1/corridors/AED-INR" >/dev/null
  api -X PATCH -H 'Content-Type: application/json' -d "{\"net_debit_caps\":{\"AED\":\"$top\"}}" \
    "http://$ADDR/api/v1/banks/ENBD" >/dev/null
fi

metric() { curl -fs "http://$ADDR/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# One wrk run; prints its summary line for the ordinary transfers.
ordinary() {
  local label=$1
  RUN_ID="$label$(date +%s)" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua \
    "http://$ADDR" >"$OUT/$label.txt"
  awk -v label="$label" -F'[ =]' '
    /^accepted=/ { a = $2; r = $4; u = $6; o = $8 }
    /^acknowledged_per_second=/ { rate = $2 }
    END { printf "[%s] ordinary_requests=%d non_2xx=%d (422=%d 503=%d other=%d) acknowledged_per_second=%s\n",
                 label, a + r + u + o, r + u + o, r, u, o, rate }' "$OUT/$label.txt"
}

echo "== ordinary transfers alone: wrk -t1 -c$CONNECTIONS -d${DURATION}s"
ordinary alone

count=$(( DURATION * 1000 / INTERVAL_MS ))
echo "== the same beside a poisoner ($POISON, every ${INTERVAL_MS} ms, at most $count)"
python3 loadtest/poison_client.py "$PORT" "$DURATION" "$count" "$POISON" "$INTERVAL_MS" \
  >"$OUT/poisoner.txt" &
poisoner=$!
ordinary poisoned
wait "$poisoner"
sed 's/^/[poisoned] /' "$OUT/poisoner.txt"
for m in deltran_store_unstorable_transfers_total deltran_store_isolating_statements_total \
         deltran_store_flush_failures_total; do
  echo "[engine] $m=$(metric "$m")"
done
echo "outputs in $OUT"
