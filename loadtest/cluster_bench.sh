#!/usr/bin/env bash
# What cluster mode costs on this machine (docs/SCALE-OUT.md, "The engine in cluster
# mode"), all on loopback with a three-server NATS JetStream cluster (replicas 3):
#
#   1. one partition in cluster mode (every bank on it: no forwarding, no credit legs)
#      against the engine alone, the same wrk load (loadtest/submit.lua, each sender
#      bank's own key), ROUNDS rounds in alternating order; acknowledged/s, and the
#      engine's CPU per acknowledged transfer (from /proc);
#   2. cross-partition credit legs: two partitions (ICICI, HDFC, AXIS on 0; ENBD, ADCB
#      on 1, so every flow of the load crosses), open-loop load on node 0 at
#      LEG_RATE/s (loadgen: ENBD's and ADCB's transfers are forwarded to node 1);
#      each leg's latency from its transfer's acceptance on the sender's partition to
#      its application on the receiver's (both stores' clocks: one machine), p50/p99,
#      read from the two stores after the load;
#   3. 1, 2 and 3 partitions sharing this machine at saturation (wrk on node 0; with
#      2 and 3 every flow crosses partitions): acknowledged/s, the machine's CPU per
#      acknowledged transfer (every process but wrk, from /proc/stat), and the
#      cut-off: the coordinator's time from its status requests to the result
#      published, per window (from its log: `duration_ms`); then loadtest/usl_fit.py's
#      projection to 10 and 100 machines from those points (labelled a projection).
#
# Usage: loadtest/cluster_bench.sh   (DURATION=15 ROUNDS=2 CONNECTIONS=64
#        LEG_RATE=2000 WINDOW_MS=1000 PHASES="1 2 3")
# Needs wrk, psql, jq (installed when missing, as root).
[ -n "${CHAOS_LOCKED:-}" ] || exec env CHAOS_LOCKED=1 flock /tmp/bench.lock "$0" "$@"
source "$(dirname "$0")/common.sh"

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-64}
LEG_RATE=${LEG_RATE:-2000}
WINDOW_MS=${WINDOW_MS:-1000}
fail() { echo "cluster-bench: FAILED: $*"; exit 1; }
need_wrk
command -v psql >/dev/null || fail "psql is missing (apt-get install postgresql-client)"
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096
source loadtest/nats.sh
NODE_PIDS=()
stop_nodes() {
  local p
  for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
  NODE_PIDS=()
}
trap 'stop_nodes; stop_engine; for p in "${NATS_PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null || true' EXIT
start_nats 3
echo "cluster-bench: NATS $NATS_URLS; output in $OUT"
read -r -a PORTS <<<"$(free_ports 4)"

# The engine's CPU time so far, in clock ticks (user + system).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
field() { sed -n "s/^$1=//p" "$2"; }

# A node: start_node NAME NODE_ID PORT ASSIGNMENT [more serve flags]
start_node() {
  local name=$1 id=$2 port=$3 assignment=$4; shift 4
  target/release/deltran serve --listen "127.0.0.1:$port" --data-dir "$OUT/$name" --log-format json \
    --demo --settlement-delay-ms 200 --window-duration-ms "$WINDOW_MS" \
    --cluster-nats "$NATS_URLS" --node-id "$id" --partitions "$assignment" "$@" \
    >>"$OUT/$name.log" 2>&1 &
  NODE_PIDS+=($!)
  wait_up "http://127.0.0.1:$port/health"
}

# wrk against the engine at ADDR, the keys of DIR; prints acknowledged/s and CPU µs
# per acknowledged transfer of process PID.
measure() {
  local label=$1 addr=$2 dir=$3 pid=$4 before after rate acked
  before=$(cpu_ticks "$pid")
  DELTRAN_KEYS_FILE="$dir/api-keys" RUN_ID="$label$(date +%s%N)" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" \
    -s loadtest/submit.lua "http://$addr" >"$OUT/$label.txt"
  after=$(cpu_ticks "$pid")
  rate=$(field acknowledged_per_second "$OUT/$label.txt")
  acked=$(field accepted "$OUT/$label.txt" | cut -d' ' -f1)
  echo "$label acknowledged_per_second=$rate cpu_us_per_transfer=$(awk -v t=$((after - before)) -v a="${acked:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", a ? t / hz * 1e6 / a : 0 }')" \
    | tee -a "$OUT/throughput.txt"
}

# The coordinator's cut-off durations in a node's log: "p50 p99 max count".
cut_figures() {
  jq -r 'select(.fields.message == "the cluster'"'"'s window is cut and its result published") | .fields.duration_ms' \
    "$@" 2>/dev/null | sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "none"; exit }
      printf "p50=%d p99=%d max=%d windows=%d", v[int((NR - 1) * 0.5) + 1], v[int((NR - 1) * 0.99) + 1], v[NR], NR }'
}

ALL_ON_0=ICICI=0,HDFC=0,AXIS=0,ENBD=0,ADCB=0
TWO=ICICI=0,HDFC=0,AXIS=0,ENBD=1,ADCB=1
# PHASES (default "1 2 3") chooses the parts to run.
phase() { [[ " ${PHASES:-1 2 3} " == *" $1 "* ]]; }
: >"$OUT/throughput.txt"; : >"$OUT/legs.txt"; : >"$OUT/scale.txt"
if phase 1; then
echo "== 1. one partition in cluster mode vs the engine alone (wrk -t2 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds)"
for round in $(seq 1 "$ROUNDS"); do
  order="alone cluster"
  [ $((round % 2)) = 0 ] && order="cluster alone"
  for kind in $order; do
    if [ "$kind" = alone ]; then
      # The same windows and demo rail as the nodes: only cluster mode differs.
      target/release/deltran serve --listen "127.0.0.1:${PORTS[0]}" --data-dir "$OUT/alone$round" \
        --log-format json --demo --settlement-delay-ms 200 --window-duration-ms "$WINDOW_MS" \
        >>"$OUT/alone$round.log" 2>&1 &
      ENGINE=$!
      wait_up "http://127.0.0.1:${PORTS[0]}/health"
      measure "alone$round" "127.0.0.1:${PORTS[0]}" "$OUT/alone$round" "$ENGINE"
      stop_engine
    else
      start_node "one$round" 0 "${PORTS[0]}" "$ALL_ON_0"
      measure "cluster$round" "127.0.0.1:${PORTS[0]}" "$OUT/one$round" "${NODE_PIDS[0]}"
      stop_nodes
    fi
  done
done

fi

if phase 2; then
echo "== 2. credit legs between two partitions (loadgen $LEG_RATE/s for ${DURATION}s on node 0)"
# The cluster keeps its assignment: another one needs a new NATS cluster.
stop_nats; start_nats 3
start_node legs0 0 "${PORTS[0]}" "$TWO"
start_node legs1 1 "${PORTS[1]}" "$TWO"
DELTRAN_KEY=$(operator_key "$OUT/legs0/api-keys") target/release/loadgen --url "http://127.0.0.1:${PORTS[0]}" \
  --rate "$LEG_RATE" --duration-s "$DURATION" --connections 64 --run-id "legs$(date +%s)" | tee "$OUT/legs.txt"
sleep 3
sql() {
  local home socket
  home=$(cat "$1/cluster-location" 2>/dev/null || echo "$1")
  socket=$(sed -n 5p "$home/pg/postmaster.pid")
  psql -h "$socket" -U deltran -d deltran -tAF, -c "$2"
}
for i in 0 1; do
  sql "$OUT/legs$i" "COPY (SELECT id, extract(epoch FROM created_at) FROM transfers WHERE status = 'accepted') TO STDOUT WITH CSV" >"$OUT/sent.$i.csv"
  sql "$OUT/legs$i" "COPY (SELECT transfer_id, extract(epoch FROM applied_at) FROM applied_credits WHERE NOT reversal) TO STDOUT WITH CSV" >"$OUT/applied.$i.csv"
  echo "partition $i: owed legs left $(sql "$OUT/legs$i" "SELECT count(*) FROM credit_outbox")"
done
python3 - "$OUT" <<'PY' | tee -a "$OUT/legs.txt"
import csv, sys
out = sys.argv[1]
sent = {}
for i in (0, 1):
    for tid, at in csv.reader(open(f"{out}/sent.{i}.csv")):
        sent[tid] = float(at)
lat = []
for i in (0, 1):
    for tid, at in csv.reader(open(f"{out}/applied.{i}.csv")):
        if tid in sent:
            lat.append((float(at) - sent[tid]) * 1000)
lat.sort()
cross = sum(1 for t in sent)  # every accepted transfer crosses with this assignment
pick = lambda q: lat[min(len(lat) - 1, int(q * (len(lat) - 1)))] if lat else float("nan")
print(f"credit_legs applied={len(lat)} accepted_transfers={cross} "
      f"latency_p50_ms={pick(0.5):.1f} latency_p99_ms={pick(0.99):.1f} latency_max_ms={pick(1.0):.1f}")
PY
stop_nodes
fi

if phase 3; then
echo "== 3. 1, 2 and 3 partitions at saturation (wrk -t2 -c$CONNECTIONS -d${DURATION}s on node 0, windows of ${WINDOW_MS} ms)"
# The machine's busy CPU time so far, in clock ticks (every process: the nodes, their
# Postgres, the NATS servers, and wrk, whose own share is taken off). At saturation the
# machine's background (the NATS servers' heartbeats, the relays' polls) is a small
# part of it.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null 2>&1 || fail "GNU time is missing (apt-get install time)"
for n in 1 2 3; do
  case $n in
    1) assignment=$ALL_ON_0 ;;
    2) assignment=$TWO ;;
    3) assignment=ICICI=0,ENBD=1,HDFC=1,ADCB=2,AXIS=2 ;;
  esac
  stop_nats; start_nats 3
  for i in $(seq 0 $((n - 1))); do start_node "scale$n.$i" "$i" "${PORTS[$i]}" "$assignment"; done
  sleep 2
  before=$(busy_ticks)
  DELTRAN_KEY=$(operator_key "$OUT/scale$n.0/api-keys") RUN_ID="scale$n$(date +%s)" \
    /usr/bin/time -f "client_cpu_s=%U %S" -o "$OUT/scale$n.time" \
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s loadtest/submit.lua "http://127.0.0.1:${PORTS[0]}" >"$OUT/scale$n.txt"
  after=$(busy_ticks)
  client_s=$(sed -n 's/^client_cpu_s=//p' "$OUT/scale$n.time" | awk '{ print $1 + $2 }')
  acked=$(field accepted "$OUT/scale$n.txt" | cut -d' ' -f1)
  echo "partitions=$n acknowledged_per_second=$(field acknowledged_per_second "$OUT/scale$n.txt") cpu_us_per_transfer=$(awk -v t=$((after - before)) -v l="$client_s" -v a="$acked" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (t / hz - l) * 1e6 / a }') cut_off_ms $(cut_figures "$OUT"/scale$n.*.log)" \
    | tee -a "$OUT/scale.txt"
  stop_nodes
done
python3 loadtest/usl_fit.py "$OUT/scale.txt" | tee "$OUT/projection.txt"
fi

echo "== summary"
cat "$OUT/throughput.txt"
awk '/^alone/ { split($2, a, "="); s += a[2]; n++ } /^cluster/ { split($2, c, "="); t += c[2]; m++ }
     END { if (n && m) printf "mean alone=%.0f cluster=%.0f ratio=%.3f\n", s / n, t / m, (t / m) / (s / n) }' "$OUT/throughput.txt"
grep credit_legs "$OUT/legs.txt" || true
if phase 2; then
  echo "loadgen on node 0 (2 partitions): p50=$(field latency_p50_ms "$OUT/legs.txt") ms p99=$(field latency_p99_ms "$OUT/legs.txt") ms, $(field acknowledged_per_second "$OUT/legs.txt")/s"
fi
cat "$OUT/scale.txt" "$OUT/projection.txt" 2>/dev/null || true
echo "outputs in $OUT"
