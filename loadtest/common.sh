# Shared by the load-test scripts: build, start an engine with its own embedded
# cluster in a fresh directory, wait for it, and stop it on exit.
#   source loadtest/common.sh; start_engine ADDR [deltran serve flags…]
# Sets OUT (the run's directory) and ENGINE (the engine's pid).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=$(mktemp -d /tmp/deltran-load-XXXXXX)
chmod 755 "$OUT"   # the embedded cluster runs as `postgres` when we are root
ENGINE=""
stop_engine() {
  if [ -n "$ENGINE" ]; then kill -TERM "$ENGINE" 2>/dev/null || true; wait "$ENGINE" 2>/dev/null || true; fi
  ENGINE=""
}
trap 'stop_engine; jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null || true' EXIT
cargo build --release --locked --bins >/dev/null 2>&1

wait_up() {
  for _ in $(seq 1 300); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "not up: $1" >&2; exit 1
}

start_engine() {
  local addr=$1; shift
  target/release/deltran serve --listen "$addr" --data-dir "$OUT/engine" --log-format json "$@" \
    >>"$OUT/engine.log" 2>&1 &
  ENGINE=$!
  wait_up "http://$addr/health"
}
