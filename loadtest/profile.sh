#!/usr/bin/env bash
# Where a transfer's CPU goes at saturation (issue 14): the engine with its embedded
# Postgres (fsync on) under the submission benchmark's wrk load, and meanwhile
#   - each side's CPU per acknowledged transfer, from /proc (the engine; every
#     Postgres process; wrk), from the load's first second to its last, the
#     profiler's own cost included (the rate is the run's, profiled);
#   - a sampled CPU profile of the engine and of Postgres (perf record, 999 Hz, no
#     call graphs: the release build has no frame pointers), PROFILE_S seconds from
#     the third second of the load, each side's hottest symbols by share of its own
#     samples.
# Usage: loadtest/profile.sh   (DURATION=20 CONNECTIONS=256 THREADS=2 PROFILE_S=10 TOP=25)
# Needs wrk and perf (apt-get install wrk linux-perf; installed when missing). One
# benchmark at a time on a shared machine: it takes /tmp/bench.lock.
[ -n "${PROFILE_LOCKED:-}" ] || exec env PROFILE_LOCKED=1 flock /tmp/bench.lock "$0" "$@"
source "$(dirname "$0")/common.sh"

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
PROFILE_S=${PROFILE_S:-10}
TOP=${TOP:-25}
ADDR=127.0.0.1:18082
need_wrk
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null

field() { sed -n "s/^$1=//p" "$2"; }

start_engine "$ADDR"
engine=$ENGINE
export DELTRAN_KEYS_FILE=$OUT/engine/api-keys
RUN_ID="prof$(date +%s)"

echo "== engine under wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; perf for ${PROFILE_S}s from the third second"
RUN_ID=$RUN_ID wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua "http://$ADDR" >"$OUT/wrk.txt" &
load=$!
started=$(date +%s%N)
sleep 1
read -r -a pg <<<"$(postgres_pids)"
engine_before=$(ticks "$engine"); pg_before=$(ticks "${pg[@]}"); wrk_before=$(ticks "$load")
before_ns=$(date +%s%N)
sleep 2
read -r -a pg_now <<<"$(postgres_pids)"
perf record -q -F 999 -o "$OUT/engine.perf" -p "$engine" -- sleep "$PROFILE_S" >/dev/null 2>&1 &
perf_engine=$!
perf record -q -F 999 -o "$OUT/postgres.perf" -p "$(IFS=,; echo "${pg_now[*]}")" -- sleep "$PROFILE_S" >/dev/null 2>&1 &
perf_pg=$!
wait "$perf_engine" "$perf_pg" || true
# Read again a second before the load ends (wrk exits with its report).
until_ns=$((started + (DURATION - 1) * 1000000000))
now_ns=$(date +%s%N)
[ "$now_ns" -ge "$until_ns" ] || sleep "$(awk -v d=$((until_ns - now_ns)) 'BEGIN { printf "%.3f", d / 1e9 }')"
read -r -a pg_end <<<"$(postgres_pids)"
engine_after=$(ticks "$engine"); pg_after=$(ticks "${pg_end[@]}"); wrk_after=$(ticks "$load")
after_ns=$(date +%s%N)
kill -0 "$load" 2>/dev/null || { echo "FAIL: the load ended before its CPU time was read (raise DURATION)" >&2; exit 1; }
wait "$load"
sleep 1
stored=$(stored_count "$RUN_ID")
acked=$(sed -n 's/^accepted=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
rate=$(field acknowledged_per_second "$OUT/wrk.txt")
[ "$stored" -ge "$acked" ] || { echo "FAIL: acknowledged transfers missing from the database" >&2; exit 1; }
# The ticks were read over the span between the two reads (from the load's first
# second to its last): the transfers acknowledged in it, at the run's mean rate.
span=$(awk -v a="$after_ns" -v b="$before_ns" 'BEGIN { print (a - b) / 1e9 }')
hz=$(getconf CLK_TCK)
per() { awk -v t="$1" -v r="$rate" -v s="$span" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / (r * s) }'; }
echo "acknowledged_per_second=$rate acknowledged=$acked stored=$stored"
echo "cpu_us_per_transfer engine=$(per $((engine_after - engine_before))) postgres=$(per $((pg_after - pg_before))) wrk=$(per $((wrk_after - wrk_before)))"
for side in engine postgres; do
  echo "== $side: hottest symbols (share of its samples)"
  perf report -q -i "$OUT/$side.perf" --no-children --sort dso,sym --percent-limit 0.5 --stdio 2>/dev/null \
    | grep -v '^$' | head -"$TOP"
done
echo "outputs in $OUT"
