#!/usr/bin/env bash
# Overload keeps its goodput (issue 9): one engine, one run, two closed-loop wrk loads
# of new transfers (loadtest/submit.lua, each with its sender bank's key):
#   1. wrk -t2 -c256  -d${DURATION}s: the engine's peak;
#   2. wrk -t2 -c4000 -d${DURATION}s: far more connections than the engine needs, each
#      sending its next transfer as soon as the last is answered.
# Both with a wrk timeout of ${TIMEOUT} (a request unanswered by then counts as a
# timeout) and the latency distribution. Printed per phase: acknowledged/s, answers
# by status (202, 503, other), socket errors and timeouts, p99 and max latency, and
# the engine's own count of submissions it answered 503 by reason, of those it took
# more than 0.25, 0.5 and 1 s over (its latency histogram: the time it can see, from
# the request's decoding on; the rest of wrk's latency was spent in socket buffers and
# wrk itself) and its group commits (count, mean size); then the ratio of the two
# rates and the engine's peak RSS (VmHWM).
# Usage: loadtest/overload.sh   (DURATION=15 HIGH=4000 LOW=256 TIMEOUT=2s;
#        DELTRAN_BIN=path runs another engine binary; extra `deltran serve` flags
#        after the script name, e.g. --submit-delay-target-ms 500)
# Run it alone: on a shared machine under `flock /tmp/bench.lock loadtest/overload.sh`.
# Needs wrk and curl.
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-15}
LOW=${LOW:-256}
HIGH=${HIGH:-4000}
TIMEOUT=${TIMEOUT:-2s}
ADDR=127.0.0.1:18096
# Every connection is a file descriptor in wrk, and one in the engine (which inherits
# this limit).
ulimit -n $(( HIGH + 4096 ))

start_engine "$ADDR" "$@"
export DELTRAN_KEYS_FILE=$OUT/engine/api-keys

# The engine's metrics at one moment, kept in a file: every figure of a phase is the
# difference of two such snapshots (reading the counters one by one while late answers
# still arrive would mix moments).
snapshot() { curl -fs "http://$ADDR/metrics" >"$OUT/$1.prom"; }
# A counter's value in a snapshot (0 if absent): counter FILE NAME LABEL-FRAGMENT…
counter() {
  local file=$1 name=$2; shift 2
  awk -v name="$name" -v want="$*" '
    index($1, name) == 1 {
      n = split(want, parts, " "); ok = 1
      for (i = 1; i <= n; i++) if (index($1, parts[i]) == 0) ok = 0
      if (ok) sum += $2
    }
    END { printf "%d\n", sum }' "$file"
}
# The change of a counter over a phase: delta LABEL NAME LABEL-FRAGMENT…
delta() {
  local label=$1; shift
  echo $(( $(counter "$OUT/$label-after.prom" "$@") - $(counter "$OUT/$label-before.prom" "$@") ))
}
post='route="/api/v1/transfers" method="POST"'

phase() {
  local label=$1 connections=$2
  snapshot "$label-before"
  echo "== $label: wrk -t2 -c$connections -d${DURATION}s --timeout $TIMEOUT --latency"
  RUN_ID="$label$(date +%s)" wrk -t2 -c"$connections" -d"${DURATION}s" --timeout "$TIMEOUT" \
    --latency -s loadtest/submit.lua "http://$ADDR" >"$OUT/$label.txt"
  # What was in flight when wrk stopped is answered within the wait limits.
  sleep 2
  snapshot "$label-after"
  awk -v label="$label" '
    /^accepted=/ { split($0, f, /[ =]/); a = f[2]; r = f[4]; u = f[6]; o = f[8] }
    /^acknowledged_per_second=/ { split($0, f, "="); rate = f[2] }
    /^latency_p99_ms=/ { split($0, f, "="); p99 = f[2] }
    /^latency_max_ms=/ { split($0, f, "="); max = f[2] }
    /^socket_errors / { errors = substr($0, 15) }
    END {
      printf "[%s] acknowledged_per_second=%s answers: 202=%d 503=%d other=%d (422=%d)\n",
             label, rate, a, u, r + o, r
      printf "[%s] latency_p99_ms=%s latency_max_ms=%s socket_errors: %s\n",
             label, p99, max, errors
    }' "$OUT/$label.txt"
  # Submissions the engine saw, and of those the ones it took longer than 0.25, 0.5
  # and 1 s over (buckets of its latency histogram).
  local seen over=""
  seen=$(delta "$label" deltran_http_request_duration_seconds_count $post)
  for le in 0.25 0.5 1; do
    over="$over ${le}s=$(( seen - $(delta "$label" deltran_http_request_duration_seconds_bucket $post "le=\"$le\"}") ))"
  done
  local refusals=""
  for reason in overloaded delay unavailable timeout; do
    refusals="$refusals $reason=$(delta "$label" deltran_submissions_refused_total "reason=\"$reason\"")"
  done
  local batches
  batches=$(delta "$label" deltran_store_batch_size_count)
  echo "[$label] engine: refused$refusals submissions_seen=$seen taking_it_over:$over" \
       "batches=$batches mean_batch=$(( $(delta "$label" deltran_store_batch_size_sum) / (batches > 0 ? batches : 1) ))"
}

phase low "$LOW"
sleep 2
phase high "$HIGH"

rate() { sed -n 's/^acknowledged_per_second=//p' "$OUT/$1.txt"; }
echo "== summary"
awk -v lo="$(rate low)" -v hi="$(rate high)" -v l="$LOW" -v h="$HIGH" \
  'BEGIN { printf "c%s=%s/s c%s=%s/s ratio=%.3f\n", l, lo, h, hi, hi / lo }'
echo "engine_peak_rss_mib=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$ENGINE/status")"
echo "outputs in $OUT (wrk: low.txt, high.txt; engine.log)"
