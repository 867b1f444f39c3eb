#!/usr/bin/env bash
# Cluster mode end to end (docs/SCALE-OUT.md): a 3-node NATS JetStream cluster and 3
# engine partitions on this machine, mixed load through every node, one partition
# killed with SIGKILL mid-load and restarted, and the checks at the end.
#
#   loadtest/cluster.sh
#
# 1. Starts three nats-server processes (Debian's, installed by
#    tests/cluster/nats-server.sh when missing) clustered on loopback, each with
#    JetStream, and waits for their JetStream meta leader.
# 2. Starts three engines (`deltran serve --cluster-nats … --node-id I --partitions
#    $ASSIGNMENT`), each in its own session (setsid) with its own data directory, its
#    own embedded Postgres and its own operator key; node I runs partition I. Windows
#    are cut cluster-wide every WINDOW_MS by whichever node holds the coordinator lease.
# 3. Runs `chaos load` against each node at RATE transfers/s for DURATION s, with that
#    node's operator key. Every node gets all five flows of loadtest/pairs.rs, so most
#    of each node's requests are for a sender on another partition (forwarded over
#    NATS), and AXIS → ENBD credits a bank of another partition. The client sends a
#    request that got a 503 or no answer again with the same key and body.
# 4. KILL_AT s into the load, SIGKILLs the engine of partition KILL_PARTITION, waits
#    DOWN_S s and starts it again on the same data directory; the load goes on.
# 5. When the load has stopped, loadtest/cluster_check.py waits until every window that
#    holds an acknowledged transfer is cut on every partition and checks: every
#    acknowledged transfer stored exactly once, on its sender's partition; every
#    cluster window result's conservation per currency and each bank's position equal
#    to the sum of the partitions' own nettings (their stored legs); every credit leg
#    applied exactly once on its receiver's partition; `deltran audit` on every
#    partition. Its last line is the script's:
#      3 partitions, A acknowledged, A stored, audit clean
#    or names what failed (exit 1).
#
# Knobs (env): RATE (per node, default 600), DURATION (s, 40), CONNECTIONS (per node,
# 32), KILL_AT (s into the load, 15), DOWN_S (2), KILL_PARTITION (2), WINDOW_MS (2000),
# LEASE_TTL_MS (3000), ASSIGNMENT (ICICI=0,ENBD=1,HDFC=1,ADCB=2,AXIS=2: every flow of the load crosses partitions), START_S (how
# long a node may take to come up, 180), CHECK_WAIT_S (120), DELTRAN_BIN.
# The run's directory (/tmp/deltran-load-*: engine.I.log, nats.I.log, load.I.json,
# acks.I.tsv, audit.I.txt, the data directories) is kept. About 2.5 minutes at the
# defaults once built (the check reads back ~65,000 acknowledged transfers).
# One benchmark at a time on a shared machine: wait for any other holding the lock.
[ -n "${CHAOS_LOCKED:-}" ] || exec env CHAOS_LOCKED=1 flock /tmp/bench.lock "$0" "$@"
cd "$(dirname "$0")/.."
# common.sh builds too, silently: build first so that a failed build is shown.
echo "cluster: building (cargo build --release --locked --bins)"
BUILD_LOG=$(mktemp /tmp/cluster-build-XXXXXX.log)
cargo build --release --locked --bins >"$BUILD_LOG" 2>&1 \
  || { tail -20 "$BUILD_LOG"; echo "cluster: FAILED: the build (cargo build --release --locked --bins; log $BUILD_LOG)"; exit 1; }
rm -f "$BUILD_LOG"
source loadtest/common.sh

RATE=${RATE:-600}
DURATION=${DURATION:-40}
CONNECTIONS=${CONNECTIONS:-32}
KILL_AT=${KILL_AT:-15}
DOWN_S=${DOWN_S:-2}
KILL_PARTITION=${KILL_PARTITION:-2}
WINDOW_MS=${WINDOW_MS:-2000}
LEASE_TTL_MS=${LEASE_TTL_MS:-3000}
ASSIGNMENT=${ASSIGNMENT:-ICICI=0,ENBD=1,HDFC=1,ADCB=2,AXIS=2}
START_S=${START_S:-180}
CHECK_WAIT_S=${CHECK_WAIT_S:-120}
BIN=${DELTRAN_BIN:-target/release/deltran}
N=3
[ "$KILL_AT" -lt "$DURATION" ] || { echo "cluster: KILL_AT ($KILL_AT) must be less than DURATION ($DURATION)" >&2; exit 1; }
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096

ENGINE_PIDS=()
LOAD_PIDS=()

# The postmaster of a partition's embedded Postgres, if its pid file is there.
postmaster() {
  local home
  home=$(cat "$1/cluster-location" 2>/dev/null || echo "$1")
  head -1 "$home/pg/postmaster.pid" 2>/dev/null || true
}

# Everything this script started, by pid: loads, engines (SIGTERM: each stops its
# embedded Postgres; SIGKILL after 20 s, and then its Postgres), the NATS servers.
cleanup() {
  local rc=$? p i
  trap - EXIT
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in "${!ENGINE_PIDS[@]}"; do
    p=${ENGINE_PIDS[$i]}
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for i in "${!ENGINE_PIDS[@]}"; do
    p=${ENGINE_PIDS[$i]}
    [ -n "$p" ] || continue
    for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "cluster: engine $i did not stop on SIGTERM within 20 s; SIGKILL" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    { wait "$p"; } 2>/dev/null || true
  done
  for i in $(seq 0 $((N - 1))); do
    p=$(postmaster "$OUT/p$i")
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(ps -o comm= -p "$p")" = postgres ]; then
      echo "cluster: partition $i's Postgres ($p) outlived its engine; stopping it" >&2
      kill -TERM "$p" 2>/dev/null || true
    fi
  done
  for p in "${NATS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NATS_PIDS[@]}" "${LOAD_PIDS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
  exit "$rc"
}
trap cleanup EXIT

# The last line names what failed; the logs' tails go before it.
fail() {
  echo "cluster: FAILED: $*"
  exit 1
}

command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null 2>&1 || fail "bc is missing (apt-get install bc)"
source loadtest/nats.sh

read -r -a ENGINE_PORTS <<<"$(free_ports "$N")"
echo "cluster: $($NATS_BIN --version), $N engines, output in $OUT"

# 1. The NATS cluster.
start_nats "$N"
echo "cluster: NATS $NATS_URLS; engines on ports ${ENGINE_PORTS[*]}; assignment $ASSIGNMENT"

# 2. The engines. Node I runs partition I, each on its own data directory.
start_node() {
  local i=$1
  setsid "$BIN" serve --listen "127.0.0.1:${ENGINE_PORTS[$i]}" --data-dir "$OUT/p$i" --log-format json \
    --demo --settlement-delay-ms 500 --window-duration-ms "$WINDOW_MS" \
    --cluster-nats "$NATS_URLS" --node-id "$i" --partitions "$ASSIGNMENT" --lease-ttl-ms "$LEASE_TTL_MS" \
    >>"$OUT/engine.$i.log" 2>&1 &
  ENGINE_PIDS[$i]=$!
}
# Waits for node I's /health (up once it holds its partition's lease); sets TOOK.
wait_node() {
  local i=$1 began; began=$(date +%s.%N)
  until curl -fs "http://127.0.0.1:${ENGINE_PORTS[$i]}/health" >/dev/null 2>&1; do
    if ! kill -0 "${ENGINE_PIDS[$i]}" 2>/dev/null; then
      tail -5 "$OUT/engine.$i.log"
      fail "the engine of partition $i exited before it was up (see $OUT/engine.$i.log)"
    fi
    if [ "$(echo "$(date +%s.%N) - $began >= $START_S" | bc)" = 1 ]; then
      tail -5 "$OUT/engine.$i.log"
      fail "the engine of partition $i was not up within $START_S s (see $OUT/engine.$i.log)"
    fi
    sleep 0.1
  done
  TOOK=$(printf '%.1f' "$(echo "$(date +%s.%N) - $began" | bc)")
}
for i in $(seq 0 $((N - 1))); do start_node "$i"; done
KEYS=()
for i in $(seq 0 $((N - 1))); do
  wait_node "$i"
  KEYS[$i]=$(operator_key "$OUT/p$i/api-keys")
  echo "cluster: partition $i up (pid ${ENGINE_PIDS[$i]}, port ${ENGINE_PORTS[$i]}) after $TOOK s"
done
for i in $(seq 0 $((N - 1))); do
  view=$(curl -fs -H "Authorization: Bearer ${KEYS[$i]}" "http://127.0.0.1:${ENGINE_PORTS[$i]}/api/v1/cluster") \
    || fail "GET /api/v1/cluster on node $i did not answer 200"
  echo "cluster: node $i: $(jq -c '{node, partition, epoch, coordinator, open_window}' <<<"$view")"
done

# 3. The load, one client per node with that node's key.
TS=$(date +%Y%m%d%H%M%S)
ACKS=() LOADS=()
for i in $(seq 0 $((N - 1))); do
  ACKS+=("$OUT/acks.$i.tsv"); LOADS+=("$OUT/load.$i.json")
  : >"$OUT/acks.$i.tsv"
  DELTRAN_KEY=${KEYS[$i]} target/release/chaos load --url "http://127.0.0.1:${ENGINE_PORTS[$i]}" \
    --acks "$OUT/acks.$i.tsv" --run-id "cl$i-$TS" --duration-s "$DURATION" --rate "$RATE" \
    --connections "$CONNECTIONS" >"$OUT/load.$i.json" 2>"$OUT/load.$i.err" &
  LOAD_PIDS+=($!)
done
LOAD_START=$SECONDS
echo "cluster: load: $N clients × $RATE transfers/s for $DURATION s ($CONNECTIONS connections each)"

# 4. Partition KILL_PARTITION killed mid-load and restarted on its data.
sleep "$KILL_AT"
k=$KILL_PARTITION
pg=$(postmaster "$OUT/p$k")
kill -KILL "${ENGINE_PIDS[$k]}"
{ wait "${ENGINE_PIDS[$k]}"; } 2>/dev/null || true
echo "cluster: SIGKILL to the engine of partition $k (pid ${ENGINE_PIDS[$k]}) at $((SECONDS - LOAD_START)) s into the load"
sleep "$DOWN_S"
if [ -z "$pg" ]; then
  echo "cluster: no postmaster.pid for partition $k's Postgres"
elif kill -0 "$pg" 2>/dev/null; then
  echo "cluster: its Postgres (postmaster $pg) is still running ${DOWN_S} s later"
else
  echo "cluster: its Postgres (postmaster $pg) died with it"
fi
start_node "$k"
wait_node "$k"
echo "cluster: partition $k restarted (pid ${ENGINE_PIDS[$k]}), up after $TOOK s"
view=$(curl -fs -H "Authorization: Bearer ${KEYS[$k]}" "http://127.0.0.1:${ENGINE_PORTS[$k]}/api/v1/cluster") \
  && echo "cluster: node $k: $(jq -c '{node, partition, epoch, coordinator, open_window}' <<<"$view")"

# 5. The load's end, then the checks.
for i in "${!LOAD_PIDS[@]}"; do
  wait "${LOAD_PIDS[$i]}" || { tail -5 "$OUT/load.$i.err"; fail "the load against node $i failed (see $OUT/load.$i.err)"; }
done
LOAD_PIDS=()
echo "cluster: load done after $((SECONDS - LOAD_START)) s"
for i in $(seq 0 $((N - 1))); do
  kill -0 "${ENGINE_PIDS[$i]}" 2>/dev/null || { tail -5 "$OUT/engine.$i.log"; fail "the engine of partition $i died (see $OUT/engine.$i.log)"; }
done
NODES=()
for i in $(seq 0 $((N - 1))); do NODES+=(--node "$i" "http://127.0.0.1:${ENGINE_PORTS[$i]}" "$OUT/p$i"); done
set +e
python3 loadtest/cluster_check.py "${NODES[@]}" --assignment "$ASSIGNMENT" --acks "${ACKS[@]}" \
  --loads "${LOADS[@]}" --deltran "$BIN" --out "$OUT" --wait-s "$CHECK_WAIT_S"
rc=$?
set -e
exit "$rc"
