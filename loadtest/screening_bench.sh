#!/usr/bin/env bash
# The cost of compliance screening on the submission path: the same build and the
# same wrk load (every transfer naming a debtor and a creditor, PARTIES=1), with the
# screening list empty and holding LIST_SIZE entries, alternating for ROUNDS; prints
# each run, then the means and their ratio.
#   flock /tmp/bench.lock loadtest/screening_bench.sh   (DURATION=15 ROUNDS=4
#   LIST_SIZE=10000 CONNECTIONS=256; DELTRAN_BIN=… to time another build)
# The list is generated (seeded) from syllables the payment names do not use, and
# loaded with the import route. Needs wrk, curl and python3.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_wrk
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-4}
LIST_SIZE=${LIST_SIZE:-10000}
CONNECTIONS=${CONNECTIONS:-256}
ADDR=127.0.0.1:18082
python3 - "$LIST_SIZE" >"$OUT/list.csv" <<'PY'
import random, sys
random.seed(20261204)
heads = ["Ab", "Al", "Am", "Ba", "Da", "Fa", "Ha", "Ja", "Ka", "Ma", "Na", "Ra", "Sa", "Ta", "Ya", "Za",
         "Bo", "Go", "Lu", "Mi", "Ni", "Ro", "Su", "Vi", "Wu", "Xe", "Ze", "Qu", "Po", "To"]
tails = ["rid", "mal", "sim", "nan", "hir", "kar", "lid", "mud", "raf", "sin", "tar", "vid", "zan",
         "bek", "dov", "gul", "jem", "lov", "mir", "nek", "pov", "rin", "sul", "tov", "vek", "zor"]
word = lambda: random.choice(heads) + random.choice(tails)
print("list,name,aliases,countries,reference")
for i in range(int(sys.argv[1])):
    name = " ".join(word() for _ in range(random.choice([2, 2, 3])))
    aliases = ";".join(word() + " " + word() for _ in range(random.choice([0, 0, 1, 2])))
    country = random.choice(["AE", "IN", "IR", "KP", "SY", "RU", "", ""])
    kind = random.choice(["sanctions", "sanctions", "pep"])
    print(f"{kind},{name},{aliases},{country},BENCH-{i}")
PY
# Each run gets a fresh engine and cluster: an engine slows as its tables grow (by
# a third over twelve runs on one engine), which would otherwise weigh on whichever
# side runs later. The order still alternates (empty, full; full, empty; …), for the
# box's own drift.
fresh_engine() {
  stop_engine
  rm -rf "$OUT/engine"
  start_engine "$ADDR"
}
load_list() {
  # The import's answer ({"added":…,"removed":…}) shows the list really is loaded.
  echo "import $(api -X POST -H 'Content-Type: text/csv' --data-binary "@$1" \
    "http://$ADDR/api/v1/screening/entries/import?replace=true")"
}
held=0
# CPU time in clock ticks: the engine process's (user + system), and the whole box's
# (everything but idle and iowait).
engine_ticks() { awk '{ print $14 + $15 }' "/proc/$ENGINE/stat"; }
box_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
# The engine's own timing of screening: "sum count" of its histogram.
screening_timing() {
  curl -fs "http://$ADDR/metrics" | awk '
    /^deltran_screening_duration_seconds_sum/ { s = $2 }
    /^deltran_screening_duration_seconds_count/ { c = $2 }
    END { print s + 0, c + 0 }'
}
load() {
  PARTIES=1 DELTRAN_KEYS_FILE="$OUT/engine/api-keys" RUN_ID="scr$(date +%s%N)" \
    wrk -t2 -c"$CONNECTIONS" -d"$1s" -s loadtest/submit.lua "http://$ADDR" >"$OUT/wrk.txt"
}
run() {
  local label=$1
  # A short warm-up first: a fresh engine's pool, caches and cluster settle.
  load "$WARMUP"
  local engine0 box0 sum0 count0
  engine0=$(engine_ticks) box0=$(box_ticks)
  read -r sum0 count0 < <(screening_timing)
  load "$DURATION"
  local engine1 box1 accepted rate tick_us sum1 count1 screen_us
  engine1=$(engine_ticks) box1=$(box_ticks)
  read -r sum1 count1 < <(screening_timing)
  # Time in screening per screened transfer, as the engine measured it under load.
  screen_us=$(awk -v a="$sum0" -v b="$sum1" -v c="$count0" -v d="$count1" \
    'BEGIN { if (d > c) printf "%.2f", (b - a) * 1e6 / (d - c); else print "-" }')
  accepted=$(sed -n 's/^accepted=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
  rate=$(sed -n 's/^acknowledged_per_second=//p' "$OUT/wrk.txt")
  tick_us=$((1000000 / $(getconf CLK_TCK)))
  # CPU per accepted transfer: steadier than throughput on a shared, noisy box.
  local engine_us box_us
  engine_us=$(((engine1 - engine0) * tick_us / accepted))
  box_us=$(((box1 - box0) * tick_us / accepted))
  echo "$label $(grep -E '^(accepted|acknowledged_per_second|latency_p99_ms)=' "$OUT/wrk.txt" | tr '\n' ' ')engine_cpu_us=$engine_us box_cpu_us=$box_us screening_us=$screen_us"
  echo "$label $rate $engine_us $box_us" >>"$OUT/rates.txt"
  held=$((held + $(api "http://$ADDR/api/v1/transfers?status=held&limit=1000" | python3 -c \
    "import json,sys; print(len(json.load(sys.stdin)['transactions']))")))
}
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="empty full"; else order="full empty"; fi
  for which in $order; do
    fresh_engine
    if [ "$which" = empty ]; then
      run "list=0"
    else
      load_list "$OUT/list.csv"; run "list=$LIST_SIZE"
    fi
  done
done
stop_engine
echo "held by screening in all runs: $held"
awk '$1 == "list=0" { e += $2; ee += $3; eb += $4; ne++ }
  $1 != "list=0" { f += $2; fe += $3; fb += $4; nf++ }
  END {
    printf "mean throughput: empty %.0f/s, full %.0f/s, ratio %.3f\n", e / ne, f / nf, (f / nf) / (e / ne)
    printf "mean CPU per transfer: engine %.1f vs %.1f us, box %.1f vs %.1f us; box ratio %.3f\n",
      ee / ne, fe / nf, eb / ne, fb / nf, (eb / ne) / (fb / nf)
  }' "$OUT/rates.txt"
