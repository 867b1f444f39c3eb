#!/usr/bin/env bash
# Where a single submission's CPU goes, thread by thread (issue 14): the engine with its
# embedded Postgres (fsync on) under the submission benchmark's wrk load, and the CPU
# each engine thread (the HTTP workers, the engine's own thread with the actors and the
# writer) and all of Postgres took per acknowledged transfer, read from /proc over ten
# seconds from the load's third; with each thread's context switches per transfer
# (voluntary: it waited; involuntary: it was preempted) and the writer's mean group
# commit. Extra arguments go to `deltran serve` (e.g. --batches-in-flight-max 1).
# Usage: loadtest/thread_cpu.sh [serve flags…]   (CONNECTIONS=256; DELTRAN_BIN=… for another build)
# Needs wrk (installed when missing). One benchmark at a time: it takes /tmp/bench.lock.
[ -n "${THREAD_CPU_LOCKED:-}" ] || exec env THREAD_CPU_LOCKED=1 flock /tmp/bench.lock "$0" "$@"
source "$(dirname "$0")/common.sh"

CONNECTIONS=${CONNECTIONS:-256}
ADDR=127.0.0.1:18087
need_wrk
start_engine "$ADDR" "$@"
export DELTRAN_KEYS_FILE=$OUT/engine/api-keys

# One line per thread: "<tid>:<name> <ticks> <voluntary switches> <involuntary switches>".
snapshot() {
  local t
  for t in /proc/"$ENGINE"/task/*; do
    echo "$(basename "$t"):$(tr ' ' _ <"$t/comm") $(awk '{ print $14 + $15 }' "$t/stat")" \
      "$(awk '/^voluntary_ctxt/ { v = $2 } /^nonvoluntary/ { n = $2 } END { print v, n }' "$t/status")"
  done
}
metric() { curl -fs "http://$ADDR/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

RUN_ID="thr$(date +%s)" wrk -t2 -c"$CONNECTIONS" -d15s -s loadtest/submit.lua "http://$ADDR" >"$OUT/wrk.txt" &
load=$!
sleep 3
snapshot >"$OUT/before"; pg_before=$(ticks $(postgres_pids))
rows_before=$(metric deltran_store_batch_size_sum); commits_before=$(metric deltran_store_batch_size_count)
sleep 10
snapshot >"$OUT/after"; pg_after=$(ticks $(postgres_pids))
rows_after=$(metric deltran_store_batch_size_sum); commits_after=$(metric deltran_store_batch_size_count)
wait "$load"
rate=$(sed -n 's/^acknowledged_per_second=//p' "$OUT/wrk.txt")
hz=$(getconf CLK_TCK)
echo "acknowledged_per_second=$rate (the whole 15 s run)"
# The threads that did anything, busiest first; CPU per transfer at the run's rate.
join <(sort "$OUT/before") <(sort "$OUT/after") | awk -v r="$rate" -v hz="$hz" '
  { cpu = ($5 - $2) / hz * 1e6 / (r * 10); if (cpu >= 0.1)
      printf "thread=%s cpu_us_per_transfer=%.1f voluntary_switches_per_transfer=%.2f involuntary_switches_per_transfer=%.2f\n",
        $1, cpu, ($6 - $3) / (r * 10), ($7 - $4) / (r * 10) }' | sort -t= -k3 -rn
awk -v t=$((pg_after - pg_before)) -v r="$rate" -v hz="$hz" 'BEGIN { printf "postgres cpu_us_per_transfer=%.1f\n", t / hz * 1e6 / (r * 10) }'
awk -v n=$((rows_after - rows_before)) -v c=$((commits_after - commits_before)) \
  'BEGIN { printf "group_commits=%d mean_rows_per_commit=%.1f\n", c, (c > 0 ? n / c : 0) }'
