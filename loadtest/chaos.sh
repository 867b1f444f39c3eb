#!/usr/bin/env bash
# The chaos suite: steady load at about a quarter of the engine's measured maximum
# while faults are injected, then checks from the store, the API and `deltran audit`.
#
#   loadtest/chaos.sh short          a quick look: every fault, few trials (~6 min)
#   loadtest/chaos.sh full           the published figures (docs/RELIABILITY.md)
#   loadtest/chaos.sh PHASE…         chosen phases, in the short sizes
#                                    (kill9 panics dbstop dbkill diskfull graceful soak)
#
# Sizes may be set: RATE (offered transfers/s, default 7500), TRIALS (kill -9 trials),
# PANICS (injected panics), SOAK_MINUTES, SOAK_RATE, SUBSCRIBERS.
# Each phase prints one JSON line per check; all of them go to $OUT/results.jsonl, and
# the script exits 1 if any check failed. Faults are injected from outside the engine:
# kill -9, SIGSTOP/SIGCONT and kill -9 of its embedded Postgres, a filesystem that
# fills, SIGTERM; and panics through the operator-only POST /api/v1/faults/panic, which
# exists only because this script starts the engine with --fault-injection.
# One benchmark at a time on a shared machine: wait for any other holding the lock.
[ -n "${CHAOS_LOCKED:-}" ] || exec env CHAOS_LOCKED=1 flock /tmp/bench.lock "$0" "$@"
source "$(dirname "$0")/common.sh"

MODE=${1:-short}
case "$MODE" in
  full) PHASES="kill9 panics dbstop dbkill diskfull graceful soak"
        TRIALS=${TRIALS:-20}; PANICS=${PANICS:-100}; SOAK_MINUTES=${SOAK_MINUTES:-30}
        TRIAL_SECONDS=20 ;;
  short) PHASES="kill9 panics dbstop dbkill diskfull graceful soak"
        TRIALS=${TRIALS:-3}; PANICS=${PANICS:-20}; SOAK_MINUTES=${SOAK_MINUTES:-1}
        TRIAL_SECONDS=10 ;;
  *) PHASES="$*"; TRIALS=${TRIALS:-3}; PANICS=${PANICS:-20}; SOAK_MINUTES=${SOAK_MINUTES:-5}
     TRIAL_SECONDS=10 ;;
esac
RATE=${RATE:-7500}
SOAK_RATE=${SOAK_RATE:-2000}
SUBSCRIBERS=${SUBSCRIBERS:-100}
ADDR=127.0.0.1:18095
URL="http://$ADDR"
DATA="$OUT/engine"
ACKS="$OUT/acks.tsv"
RESULTS="$OUT/results.jsonl"
FAILED=0
: >"$ACKS"
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096
need_wrk
echo "chaos: mode $MODE, phases: $PHASES; output in $OUT"

# Windows close every 2 s and settle on the demo rail half a second later, so every
# fault meets cut-offs, nettings and settlements in progress.
ENGINE_FLAGS=(--fault-injection --demo --settlement-delay-ms 500 --window-duration-ms 2000)

# The engine, in its own process group (its Postgres has another).
start() {
  local data=${1:-$DATA}
  setsid target/release/deltran serve --listen "$ADDR" --data-dir "$data" --log-format json \
    "${ENGINE_FLAGS[@]}" >>"$OUT/engine.log" 2>&1 &
  ENGINE=$!
  local began; began=$(date +%s.%N)
  for _ in $(seq 1 600); do
    curl -fs "$URL/health" >/dev/null 2>&1 && break
    kill -0 "$ENGINE" 2>/dev/null || { echo "the engine exited; see $OUT/engine.log" >&2; exit 1; }
    sleep 0.05
  done
  curl -fs "$URL/health" >/dev/null || { echo "the engine did not come up" >&2; exit 1; }
  STARTED_IN=$(echo "$(date +%s.%N) - $began" | bc)
  DELTRAN_KEY=$(operator_key "$data/api-keys"); export DELTRAN_KEY
}

# The postmaster of the engine's embedded cluster (its pid is its process group).
postmaster() {
  local data=${1:-$DATA} home
  home=$(cat "$data/cluster-location" 2>/dev/null || echo "$data")
  head -1 "$home/pg/postmaster.pid"
}

# Signals the postmaster and every backend (each backend is its own process group
# leader, so a signal to the postmaster's group would miss them).
signal_postgres() {
  local signal=$1 pg=$2
  kill "-$signal" "$pg" $(ps -o pid= --ppid "$pg") 2>/dev/null || true
}

rss_kb() { ps -o rss= -p "$ENGINE" 2>/dev/null | tr -d ' ' || echo 0; }

# Samples the engine's RSS every 200 ms into $OUT/rss.$1 until stopped.
sample_rss() {
  ( while kill -0 "$ENGINE" 2>/dev/null; do rss_kb; sleep 0.2; done ) >"$OUT/rss.$1" 2>/dev/null &
  SAMPLER=$!
}
peak_rss_mb() { sort -n "$OUT/rss.$1" | tail -1 | awk '{ printf "%.0f", $1 / 1024 }'; }

# chaos load in the background: load RUN_ID SECONDS [RATE] [CONNECTIONS]
load() {
  target/release/chaos load --url "$URL" --acks "$ACKS" --run-id "$1" --duration-s "$2" \
    --rate "${3:-$RATE}" --connections "${4:-256}" >"$OUT/load.$1.json" &
  LOAD=$!
}

# Submits one transfer every 50 ms until one is accepted; prints the seconds it took.
until_accepted() {
  local began n=0; began=$(date +%s.%N)
  while true; do
    n=$((n + 1))
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -H "Authorization: Bearer $DELTRAN_KEY" \
      -H 'Content-Type: application/json' "$URL/api/v1/transfers" \
      -d "{\"sender_bank\":\"ICICI\",\"receiver_bank\":\"ENBD\",\"amount\":\"1.00\",\"from_currency\":\"INR\",\"to_currency\":\"AED\",\"idempotency_key\":\"probe-$began-$n\"}" || true)
    [ "$code" = 202 ] && break
    sleep 0.05
  done
  echo "$(date +%s.%N) - $began" | bc
}

record() { echo "$1" | tee -a "$RESULTS"; }

# The checks after a fault: the store and the books (chaos verify), the audit.
check() {
  local phase=$1 extra=${2:-"{}"} verified audit_ok=true
  verified=$(target/release/chaos verify --url "$URL" --acks "$ACKS" --data-dir "$DATA" 2>&1) || FAILED=1
  target/release/deltran audit --data-dir "$DATA" >"$OUT/audit.$phase.txt" 2>&1 || { audit_ok=false; FAILED=1; }
  record "$(jq -c --arg phase "$phase" --argjson audit "$audit_ok" --argjson extra "$extra" \
    '{phase: $phase} + $extra + . + {audit_clean: $audit} | del(.examples | select(length == 0))' \
    <<<"$verified" 2>/dev/null || echo "{\"phase\":\"$phase\",\"verify\":$(jq -Rs . <<<"$verified"),\"audit_clean\":$audit_ok}")"
}

# The load's answers that must not happen under any fault: 5xx other than 503,
# answers a careful client cannot retry (unexpected), client timeouts.
load_figures() {
  jq -c '{acknowledged, acknowledged_per_second: (.acknowledged_per_second | floor), answers,
          other_5xx, unexpected: (.unexpected | length), timeouts, connection_refused,
          connection_broken, latency_ms, longest_seconds_without_ack}' "$OUT/load.$1.json"
}
load_clean() {
  jq -e '.other_5xx == 0 and (.unexpected | length) == 0 and .timeouts == 0' "$OUT/load.$1.json" >/dev/null \
    || { echo "chaos: load $1 saw answers it must not: $(cat "$OUT/load.$1.json")" >&2; FAILED=1; }
}

command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null 2>&1
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null 2>&1
start

# 1. kill -9 at a random moment under load, the engine alone or with its Postgres;
# restart on the same data; continue.
phase_kill9() {
  for trial in $(seq 1 "$TRIALS"); do
    local how=engine
    [ $((trial % 3)) = 0 ] && how=engine+postgres
    load "kill$trial" "$TRIAL_SECONDS"
    sleep "$(echo "scale=2; 2 + $RANDOM % (($TRIAL_SECONDS - 5) * 100) / 100" | bc)"
    local pg; pg=$(postmaster)
    if [ "$how" = engine+postgres ]; then
      signal_postgres KILL "$pg"; kill -9 "$ENGINE"
    else
      kill -9 "$ENGINE"
    fi
    wait "$ENGINE" 2>/dev/null || true
    start
    local restart=$STARTED_IN accept; accept=$(until_accepted)
    wait "$LOAD"
    load_clean "kill$trial"
    check kill9 "{\"trial\": $trial, \"killed\": \"$how\", \"restart_s\": $restart,
      \"accepting_after_restart_s\": $accept, \"load\": $(load_figures "kill$trial")}"
  done
}

# 2. Panics in every kind of actor, and in the writer's and a netting's continuations.
phase_panics() {
  local seconds=$(( PANICS / 4 + 8 ))
  load panics "$seconds"
  local kinds=(bank corridor clock window writer batch_completion netting) n=0 injected=0
  local banks=(ICICI HDFC AXIS ENBD ADCB) corridors=(INR-AED AED-INR)
  sleep 2
  while [ $n -lt "$PANICS" ]; do
    local kind=${kinds[$((n % ${#kinds[@]}))]} body
    case $kind in
      bank) body="{\"actor\":\"bank\",\"target\":\"${banks[$((n % 5))]}\"}" ;;
      corridor) body="{\"actor\":\"corridor\",\"target\":\"${corridors[$((n % 2))]}\"}" ;;
      window)
        # A window between cut-off and settlement, if one is there right now.
        local w; w=$(api "$URL/api/v1/windows?limit=5" \
          | jq -r '[.windows[] | select(.state == "closing" or .state == "netted")][0].id // empty' 2>/dev/null || true)
        if [ -n "$w" ]; then body="{\"actor\":\"window\",\"target\":\"$w\"}"; else body='{"actor":"clock"}'; fi ;;
      *) body="{\"actor\":\"$kind\"}" ;;
    esac
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DELTRAN_KEY" \
      -H 'Content-Type: application/json' "$URL/api/v1/faults/panic" -d "$body")
    [ "$code" = 202 ] && injected=$((injected + 1))
    n=$((n + 1))
    sleep 0.2
  done
  wait "$LOAD"
  load_clean panics
  local caught
  caught=$(curl -s "$URL/metrics" | awk '/^deltran_actor_panics_total/ { s += $2 } END { print s + 0 }')
  check panics "{\"injected\": $injected, \"panics_caught_total\": $caught, \"load\": $(load_figures panics)}"
}

# 3a. Postgres frozen (SIGSTOP to its whole process group) for 10 s, then continued.
phase_dbstop() {
  load dbstop 25
  sample_rss dbstop
  sleep 5
  local pg; pg=$(postmaster)
  signal_postgres STOP "$pg"
  sleep 10
  signal_postgres CONT "$pg"
  local accept; accept=$(until_accepted)
  wait "$LOAD"; kill "$SAMPLER" 2>/dev/null || true
  load_clean dbstop
  check dbstop "{\"frozen_s\": 10, \"accepting_after_continue_s\": $accept,
    \"peak_rss_mb\": $(peak_rss_mb dbstop), \"load\": $(load_figures dbstop)}"
}

# 3b. Postgres killed (kill -9 of its whole process group); the engine restarts its
# embedded cluster.
phase_dbkill() {
  load dbkill 25
  sample_rss dbkill
  sleep 5
  local pg; pg=$(postmaster)
  local killed; killed=$(date +%s.%N)
  signal_postgres KILL "$pg"
  # Back when a new postmaster accepts connections.
  local back
  for _ in $(seq 1 600); do
    local now; now=$(postmaster 2>/dev/null || true)
    if [ -n "$now" ] && [ "$now" != "$pg" ] && kill -0 "$now" 2>/dev/null; then break; fi
    sleep 0.05
  done
  back=$(echo "$(date +%s.%N) - $killed" | bc)
  local accept; accept=$(until_accepted)
  wait "$LOAD"; kill "$SAMPLER" 2>/dev/null || true
  load_clean dbkill
  check dbkill "{\"postgres_back_after_s\": $back, \"accepting_after_postgres_back_s\": $accept,
    \"peak_rss_mb\": $(peak_rss_mb dbkill), \"load\": $(load_figures dbkill)}"
}

# 4. Disk full: a second engine whose whole cluster lives on a small tmpfs, filled
# to the last few megabytes while it takes load, then given space back.
phase_diskfull() {
  local disk="$OUT/disk"
  mkdir -p "$disk"
  if ! mount -t tmpfs -o size=1200m tmpfs "$disk" 2>/dev/null; then
    record '{"phase":"diskfull","skipped":"this machine does not allow mounting a tmpfs"}'
    return
  fi
  chmod 755 "$disk"
  stop_engine
  local main_data=$DATA main_acks=$ACKS
  DATA="$disk/engine"
  ACKS="$OUT/acks.diskfull.tsv"   # another engine, another store
  start "$DATA"
  load diskfull 30
  sample_rss diskfull
  sleep 3
  # Leave 8 MB: the load fills the rest within seconds.
  local free; free=$(df --output=avail -k "$disk" | tail -1)
  fallocate -l "$(( (free - 8 * 1024) * 1024 ))" "$disk/filler" 2>/dev/null \
    || dd if=/dev/zero of="$disk/filler" bs=1M count=$(( free / 1024 - 8 )) 2>/dev/null
  sleep 10
  local refused; refused=$(curl -s "$URL/metrics" \
    | awk '/^deltran_submissions_refused_total/ { s += $2 } END { print s + 0 }')
  rm -f "$disk/filler"
  local accept; accept=$(until_accepted)
  wait "$LOAD"; kill "$SAMPLER" 2>/dev/null || true
  load_clean diskfull
  check diskfull "{\"filesystem_mb\": 1200, \"refused_while_full\": $refused,
    \"accepting_after_space_returned_s\": $accept, \"peak_rss_mb\": $(peak_rss_mb diskfull),
    \"load\": $(load_figures diskfull)}"
  stop_engine
  umount "$disk" 2>/dev/null || umount -l "$disk"
  DATA=$main_data
  ACKS=$main_acks
  start
}

# 5. SIGTERM at full load: every admitted submission answered, exit 0 within 5 s.
phase_graceful() {
  load graceful 12 40000 256
  sleep 5
  local pg; pg=$(postmaster)
  local began; began=$(date +%s.%N)
  kill -TERM "$ENGINE"
  local code=0; wait "$ENGINE" || code=$?
  local took; took=$(echo "$(date +%s.%N) - $began" | bc)
  local leftover=false; kill -0 "$pg" 2>/dev/null && leftover=true
  # Admitted but unanswered at the stop (the engine's last log line says how many).
  local unanswered
  unanswered=$(grep '"DelTran engine stopped"' "$OUT/engine.log" | tail -1 \
    | jq -r '.fields.submissions_unanswered // "unknown"')
  start
  wait "$LOAD"
  load_clean graceful
  [ "$code" = 0 ] && [ "$(echo "$took <= 5" | bc)" = 1 ] && [ "$leftover" = false ] \
    && [ "$unanswered" = 0 ] || FAILED=1
  check graceful "{\"exit_code\": $code, \"stopped_in_s\": $took, \"postgres_left_running\": $leftover,
    \"admitted_unanswered\": \"$unanswered\",
    \"load\": $(load_figures graceful)}"
}

# 7. Soak: SOAK_RATE transfers/s with windows closing (every 5 s, by the subscribers'
# client) and settling, SUBSCRIBERS WebSocket subscribers; RSS at start, middle, end.
phase_soak() {
  local seconds=$(( SOAK_MINUTES * 60 ))
  target/release/wsbench --addr "$ADDR" --subscribers "$SUBSCRIBERS" \
    --closes $(( seconds / 5 - 1 )) --close-every-ms 5000 >"$OUT/soak.ws.txt" 2>&1 &
  local ws=$!
  load soak "$seconds" "$SOAK_RATE" 64
  local start_rss middle_rss end_rss
  sleep 5; start_rss=$(rss_kb)
  sleep $(( seconds / 2 - 5 )); middle_rss=$(rss_kb)
  wait "$LOAD"; end_rss=$(rss_kb)
  wait "$ws" || FAILED=1
  load_clean soak
  local ws_figures; ws_figures=$(grep -E '^(closes|subscribers_ready)' "$OUT/soak.ws.txt" | tr '\n' ' ')
  check soak "{\"minutes\": $SOAK_MINUTES, \"rate\": $SOAK_RATE, \"subscribers\": $SUBSCRIBERS,
    \"rss_mb\": [$((start_rss / 1024)), $((middle_rss / 1024)), $((end_rss / 1024))],
    \"websocket\": $(jq -Rs . <<<"$ws_figures"),
    \"p99_ms_by_minute\": $(jq -c .p99_ms_by_minute "$OUT/load.soak.json"),
    \"load\": $(load_figures soak)}"
}

for phase in $PHASES; do
  echo "== $phase"
  "phase_$phase"
done
# Every check passed?
jq -e -s 'all(.[]; (.ok // true) and (.audit_clean // true))' "$RESULTS" >/dev/null || FAILED=1
echo "chaos: results in $RESULTS"
[ "$FAILED" = 0 ] && echo "chaos: all checks passed" || { echo "chaos: SOME CHECKS FAILED"; exit 1; }
