#!/usr/bin/env bash
# The cost of compliance screening on the submission path: the same engine and the
# same wrk load (every transfer naming a debtor and a creditor, PARTIES=1), with the
# screening list empty and then holding LIST_SIZE entries, alternating for ROUNDS.
#   flock /tmp/bench.lock loadtest/screening_bench.sh   (DURATION=15 ROUNDS=3
#   LIST_SIZE=10000 CONNECTIONS=256)
# The list is generated (seeded) from syllables the payment names do not use, and
# loaded with the import route (replace=true); an empty import empties it again.
# Needs wrk, curl and python3.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DURATION=${DURATION:-15}
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
echo "list,name,aliases,countries,reference" >"$OUT/empty.csv"
start_engine "$ADDR"
load_list() {
  api -X POST -H 'Content-Type: text/csv' --data-binary "@$1" \
    "http://$ADDR/api/v1/screening/entries/import?replace=true" >/dev/null
}
run() {
  local label=$1
  PARTIES=1 DELTRAN_KEYS_FILE="$OUT/engine/api-keys" RUN_ID="scr$(date +%s%N)" \
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua "http://$ADDR" >"$OUT/wrk.txt"
  echo "$label $(grep -E '^(accepted|acknowledged_per_second|latency_p99_ms)=' "$OUT/wrk.txt" | tr '\n' ' ')"
}
# The engine slows as its tables grow through the runs, so the order alternates
# (empty, full; full, empty; …): neither side always runs second.
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then order="empty full"; else order="full empty"; fi
  for which in $order; do
    if [ "$which" = empty ]; then
      load_list "$OUT/empty.csv"; run "list=0"
    else
      load_list "$OUT/list.csv"; run "list=$LIST_SIZE"
    fi
  done
done
echo "held or rejected by screening in the whole run:"
api "http://$ADDR/api/v1/transfers?status=held&limit=1000" | python3 -c \
  "import json,sys; print(' held', len(json.load(sys.stdin)['transactions']))"
