#!/usr/bin/env bash
# CI: the README's run command, exactly as written there, in this checkout: it must
# build and start the engine, answer GET /health, accept a transfer (202), stop on
# SIGTERM with exit code 0, and leave no postgres process of its cluster behind.
# Removes ./deltran-data (and, as root under a private directory, the cluster the
# engine kept under /var/lib/deltran) afterwards, so it refuses to run if
# ./deltran-data already exists.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/readme-commands.sh

URL=http://127.0.0.1:8080
HEALTH_WAIT_MAX_S=600   # a first release build takes minutes
STOP_WAIT_MAX_S=60      # HTTP grace (10 s) + the cluster's fast shutdown

RUN_COMMAND=$(readme_command 1)
echo "ci: the README's run command: $RUN_COMMAND"
if [ -e deltran-data ]; then
  echo "ci: ./deltran-data exists; this check needs a checkout without it (it removes it)" >&2
  exit 1
fi
if curl -fs --max-time 2 -o /dev/null "$URL/health"; then
  echo "ci: something already answers on $URL; stop it first" >&2
  exit 1
fi

LOG=$(mktemp /tmp/deltran-run-command-XXXXXX.log)
ENGINE=""
cleanup() {
  if [ -n "$ENGINE" ] && kill -0 "$ENGINE" 2>/dev/null; then
    kill -TERM "$ENGINE" 2>/dev/null || true
    for _ in $(seq 1 $((STOP_WAIT_MAX_S * 10))); do
      kill -0 "$ENGINE" 2>/dev/null || break
      sleep 0.1
    done
    # The cluster dies with the engine (parent-death signal), so this stops it too.
    kill -KILL "$ENGINE" 2>/dev/null || true
    wait "$ENGINE" 2>/dev/null || true
    sleep 1
  fi
  if [ -f deltran-data/cluster-location ]; then
    local home
    home=$(cat deltran-data/cluster-location)
    case "$home" in
      /var/lib/deltran/?*) rm -rf -- "$home" ;;
      *) echo "ci: not removing the unexpected cluster location '$home'" >&2 ;;
    esac
  fi
  rm -rf deltran-data
  rm -f "$LOG"
}
trap cleanup EXIT

fail() {
  echo "ci: FAILED: $*" >&2
  echo "ci: the engine's output (last 80 lines of $LOG):" >&2
  tail -n 80 "$LOG" >&2 || true
  exit 1
}

# `exec` so that the pid is the command's own: `cargo run` then execs the engine on
# Unix, so the SIGTERM below reaches `deltran` itself (checked below).
bash -c "exec $RUN_COMMAND" </dev/null >"$LOG" 2>&1 &
ENGINE=$!
started=$SECONDS
until curl -fs --max-time 2 -o /dev/null "$URL/health"; do
  if ! kill -0 "$ENGINE" 2>/dev/null; then
    rc=0
    wait "$ENGINE" || rc=$?
    ENGINE=""
    fail "the run command exited with code $rc before answering GET /health"
  fi
  if [ $((SECONDS - started)) -ge "$HEALTH_WAIT_MAX_S" ]; then
    fail "no answer on GET $URL/health after ${HEALTH_WAIT_MAX_S} s"
  fi
  sleep 1
done
echo "ci: GET /health answered after $((SECONDS - started)) s"

exe=$(readlink "/proc/$ENGINE/exe" || true)
[ "$(basename "$exe")" = deltran ] ||
  fail "pid $ENGINE runs '$exe', not deltran: SIGTERM would not reach the engine"
echo "ci: pid $ENGINE is $exe"

# Where the engine keeps its cluster: ./deltran-data/pg, or the place it names in
# ./deltran-data/cluster-location when the postgres user cannot reach ./deltran-data.
home=$(pwd -P)/deltran-data
[ -f deltran-data/cluster-location ] && home=$(cat deltran-data/cluster-location)
pg_dir=$home/pg
[ -f "$pg_dir/postmaster.pid" ] || fail "no $pg_dir/postmaster.pid while the engine runs"
postmaster=$(head -n 1 "$pg_dir/postmaster.pid")
echo "ci: embedded cluster in $pg_dir, postmaster pid $postmaster"
grep -m 1 'cluster' "$LOG" | sed 's/^/ci: engine log: /' || true

# The first start wrote its keys to ./deltran-data/api-keys (owner-only); the README
# shows this same line to read the operator's key.
[ -f deltran-data/api-keys ] || fail "the first start wrote no ./deltran-data/api-keys"
KEY=$(awk '$1 == "operator" { print $3; exit }' deltran-data/api-keys)
[ -n "$KEY" ] || fail "no operator key in ./deltran-data/api-keys"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$URL/api/v1/transfers") || true
[ "$code" = 401 ] || fail "a submission without a key answered $code, not 401"
echo "ci: a submission without a key is refused (401)"

body=$(mktemp)
code=$(curl -sS --max-time 30 -o "$body" -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  --data '{"sender_bank":"ICICI","receiver_bank":"ENBD","amount":"1000.00","from_currency":"INR","to_currency":"AED"}' \
  "$URL/api/v1/transfers") || code="none"
answer=$(cat "$body"); rm -f "$body"
[ "$code" = 202 ] || fail "POST /api/v1/transfers answered $code: $answer"
echo "ci: POST /api/v1/transfers answered 202: $answer"

kill -TERM "$ENGINE"
for _ in $(seq 1 $((STOP_WAIT_MAX_S * 10))); do
  kill -0 "$ENGINE" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$ENGINE" 2>/dev/null && fail "the engine still runs ${STOP_WAIT_MAX_S} s after SIGTERM"
rc=0
wait "$ENGINE" || rc=$?
ENGINE=""
[ "$rc" -eq 0 ] || fail "the engine exited with code $rc after SIGTERM, not 0"
echo "ci: the engine exited with code 0 after SIGTERM"

[ ! -e "$pg_dir/postmaster.pid" ] || fail "$pg_dir/postmaster.pid is still there"
if kill -0 "$postmaster" 2>/dev/null; then fail "the postmaster (pid $postmaster) still runs"; fi
if pgrep -f -- "postgres -D $pg_dir( |\$)" >/dev/null; then
  fail "a postgres on $pg_dir still runs: $(pgrep -af -- "postgres -D $pg_dir")"
fi
echo "ci: no postgres of $pg_dir is left"
echo "ci: the README's run command works"
