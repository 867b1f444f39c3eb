#!/usr/bin/env bash
# Overload keeps its goodput (issue 9): one engine, one run, two closed-loop wrk loads
# of new transfers (loadtest/submit.lua, each with its sender bank's key):
#   1. wrk -t2 -c256  -d${DURATION}s: the engine's peak;
#   2. wrk -t2 -c4000 -d${DURATION}s: far more connections than the engine needs, each
#      sending its next transfer as soon as the last is answered.
# Both with a wrk timeout of ${TIMEOUT} (a request unanswered by then counts as a
# timeout) and the latency distribution. Printed per phase: acknowledged/s, answers
# by status (202, 503, other), socket errors and timeouts, p99 and max latency, and
# the engine's own count of submissions it answered 503 by reason and of those it took
# more than 0.25, 0.5 and 1 s over (its latency histogram: the time it can see, from
# the request's decoding on; the rest of wrk's latency was spent in socket buffers and
# wrk itself); then the ratio of the two rates and the engine's peak RSS (VmHWM).
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

metrics() { curl -fs "http://$ADDR/metrics"; }
# A counter's value (0 if absent): counter NAME LABEL-FRAGMENT…
counter() {
  local name=$1; shift
  metrics | awk -v name="$name" -v want="$*" '
    index($1, name) == 1 {
      n = split(want, parts, " "); ok = 1
      for (i = 1; i <= n; i++) if (index($1, parts[i]) == 0) ok = 0
      if (ok) sum += $2
    }
    END { printf "%d\n", sum }'
}
post_route='route="/api/v1/transfers"'
# Submissions the engine saw, and of those the ones it answered within $1 s (a bucket
# of its latency histogram).
handled() { counter deltran_http_request_duration_seconds_count "$post_route" 'method="POST"'; }
within() { counter deltran_http_request_duration_seconds_bucket "$post_route" 'method="POST"' "le=\"$1\"}"; }
refused() { counter deltran_submissions_refused_total "reason=\"$1\""; }

phase() {
  local label=$1 connections=$2
  local seen0 q0 h0 s0 over0 delay0 unav0 tout0
  seen0=$(handled); q0=$(within 0.25); h0=$(within 0.5); s0=$(within 1)
  over0=$(refused overloaded); delay0=$(refused delay); unav0=$(refused unavailable); tout0=$(refused timeout)
  echo "== $label: wrk -t2 -c$connections -d${DURATION}s --timeout $TIMEOUT --latency"
  RUN_ID="$label$(date +%s)" wrk -t2 -c"$connections" -d"${DURATION}s" --timeout "$TIMEOUT" \
    --latency -s loadtest/submit.lua "http://$ADDR" >"$OUT/$label.txt"
  local seen over_q over_h over_s
  seen=$(( $(handled) - seen0 ))
  over_q=$(( seen - $(within 0.25) + q0 )); over_h=$(( seen - $(within 0.5) + h0 ))
  over_s=$(( seen - $(within 1) + s0 ))
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
  echo "[$label] engine: refused overloaded=$(( $(refused overloaded) - over0 ))" \
       "delay=$(( $(refused delay) - delay0 ))" \
       "unavailable=$(( $(refused unavailable) - unav0 )) timeout=$(( $(refused timeout) - tout0 ))" \
       "submissions_seen=$seen taking_it_over: 0.25s=$over_q 0.5s=$over_h 1s=$over_s"
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
