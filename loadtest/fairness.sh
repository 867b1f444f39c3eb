#!/usr/bin/env bash
# Fairness under skew and the tail at speed, in one run of one engine with its
# embedded Postgres (fsync on):
#   1. the engine's maximum: wrk -t2 -c256 -d${DURATION}s with loadtest/submit.lua,
#      each transfer with its sender bank's key, as in bench.sh (MAX_RATE=… skips it);
#   2. at half that rate, open loop for ${DURATION}s each (loadtest/loadgen.rs,
#      ${CONNECTIONS} connections, the operator's key):
#      a. uniform: the five sender banks of loadtest/pairs.rs take turns. Its p99 is
#         the tail at speed (target: 10 ms or less);
#      b. skewed: one bank (ICICI) sends ${HOT_SHARE} of the transfers and the four
#         others (HDFC, AXIS, ENBD, ADCB) share the rest (loadgen --hot-share). The
#         four small senders' p99, pooled, against theirs in the uniform runs (target:
#         within 2× of the lower of the two), and the hot bank's own p99;
#      c. uniform again, so that the order does not favour the skewed run;
#   3. every transfer either loadgen run saw acknowledged (202) counted in the
#      database by its run's idempotency-key prefix.
# Latency counts every answer, 202 or not (loadgen counts the others as `other`; the
# reference banks' caps are far above what a run sends, so expect none).
# Usage: loadtest/fairness.sh   (DURATION=20 CONNECTIONS=128 HOT_SHARE=0.7 MAX_RATE=…;
#        DELTRAN_BIN=path runs another engine binary; extra `deltran serve` flags after
#        the script name)
# Needs wrk (installed when missing) and psql. One benchmark at a time on a shared
# machine: it takes /tmp/bench.lock.
[ -n "${FAIRNESS_LOCKED:-}" ] || exec env FAIRNESS_LOCKED=1 flock /tmp/bench.lock bash "$0" "$@"
source "$(dirname "$0")/common.sh"

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-128}
HOT_SHARE=${HOT_SHARE:-0.7}
ADDR=127.0.0.1:18097

# A value from loadgen's or wrk's output: the first `KEY=value` word of the file.
field() {
  awk -v key="$1=" '{ for (i = 1; i <= NF; i++) if (index($i, key) == 1) { print substr($i, length(key) + 1); exit } }' "$2"
}
# A sender's figure from loadgen's per-sender lines: sender_field BANK KEY FILE.
sender_field() {
  awk -v bank="sender=$1" -v key="$2=" '$1 == bank { for (i = 2; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1) }' "$3"
}

start_engine "$ADDR" "$@"

if [ -n "${MAX_RATE:-}" ]; then
  max=$MAX_RATE
  echo "== engine maximum: MAX_RATE=$max (not measured)"
else
  need_wrk
  echo "== engine maximum: wrk -t2 -c256 -d${DURATION}s (loadtest/submit.lua, bank keys)"
  RUN_ID="fwrk$(date +%s)" DELTRAN_KEYS_FILE=$OUT/engine/api-keys \
    wrk -t2 -c256 -d"${DURATION}s" -s loadtest/submit.lua "http://$ADDR" | tee "$OUT/max.txt"
  max=$(field acknowledged_per_second "$OUT/max.txt")
  # Let the engine finish what the saturating load left in flight before the
  # latency runs start.
  sleep 2
fi
half=$((max / 2))
[ "$half" -gt 0 ] || { echo "FAIL: no rate to run at (engine maximum $max/s)" >&2; exit 1; }

stamp=$(date +%s)
uniform_id="funi$stamp"
skewed_id="fskw$stamp"
again_id="funa$stamp"
uniform() { # uniform RUN_ID OUTPUT
  echo "== uniform: open loop, $half/s for ${DURATION}s, $CONNECTIONS connections (loadgen)"
  target/release/loadgen --url "http://$ADDR" --rate "$half" --duration-s "$DURATION" \
    --connections "$CONNECTIONS" --run-id "$1" | tee "$2"
  sleep 1
}
# Uniform before and after the skewed run, so that neither the order nor the table's
# growth favours the skewed one: it is compared with the better of the two.
uniform "$uniform_id" "$OUT/uniform.txt"
echo "== skewed: open loop, $half/s for ${DURATION}s, ICICI sends $HOT_SHARE (loadgen --hot-share $HOT_SHARE)"
target/release/loadgen --url "http://$ADDR" --rate "$half" --duration-s "$DURATION" \
  --connections "$CONNECTIONS" --run-id "$skewed_id" --hot-share "$HOT_SHARE" | tee "$OUT/skewed.txt"
sleep 1
uniform "$again_id" "$OUT/again.txt"

echo "== durability: every acknowledged transfer of the three runs in the database"
for run in uniform skewed again; do
  id_var=${run}_id
  stored=$(stored_count "${!id_var}")
  acked=$(field accepted "$OUT/$run.txt")
  echo "$run acknowledged=$acked stored_in_postgres=$stored"
  if [ "$stored" -lt "$acked" ]; then echo "FAIL: $run: acknowledged transfers missing from the database" >&2; exit 1; fi
done

uniform_p99=$(field latency_p99_ms "$OUT/uniform.txt")
again_p99=$(field latency_p99_ms "$OUT/again.txt")
# The stricter baseline: the lower of the two uniform runs' small senders' p99.
uniform_small=$(awk -v a="$(field others_p99_ms "$OUT/uniform.txt")" -v b="$(field others_p99_ms "$OUT/again.txt")" \
  'BEGIN { print (a < b) ? a : b }')
skewed_small=$(field others_p99_ms "$OUT/skewed.txt")
hot_p99=$(field hot_p99_ms "$OUT/skewed.txt")
# The share ICICI actually sent in the skewed run, from the per-sender lines.
hot_measured=$(awk '$1 ~ /^sender=/ { split($2, r, "="); all += r[2]; if ($1 == "sender=ICICI") hot = r[2] }
  END { printf "%.3f", all ? hot / all : 0 }' "$OUT/skewed.txt")
yes_if() { awk "BEGIN { print ($1) ? \"yes\" : \"no\" }"; }

echo "== summary"
echo "engine_max_per_second=$max"
echo "half_rate=$half"
for run in uniform skewed again; do
  echo "${run}_acknowledged_per_second=$(field acknowledged_per_second "$OUT/$run.txt") ${run}_accepted=$(field accepted "$OUT/$run.txt") ${run}_other=$(field other "$OUT/$run.txt") ${run}_connection_errors=$(field connection_errors "$OUT/$run.txt")"
done
echo "uniform_p99_ms=$uniform_p99 again_p99_ms=$again_p99"
echo "uniform_small_p99_ms=$uniform_small (the lower of the two uniform runs: $(field others_p99_ms "$OUT/uniform.txt") and $(field others_p99_ms "$OUT/again.txt"))"
echo "skewed_p99_ms=$(field latency_p99_ms "$OUT/skewed.txt")"
echo "skewed_small_p99_ms=$skewed_small"
echo "small_senders_ratio=$(awk -v s="$skewed_small" -v u="$uniform_small" 'BEGIN { printf "%.2f", s / u }')"
echo "hot_p99_ms=$hot_p99 hot_requests=$(sender_field ICICI requests "$OUT/skewed.txt") hot_share_sent=$hot_measured"
echo "tail_target_met=$(yes_if "$uniform_p99 <= 10 && $again_p99 <= 10") (both uniform runs)"
echo "fairness_target_met=$(yes_if "$skewed_small <= 2 * $uniform_small")"
echo "outputs in $OUT"
