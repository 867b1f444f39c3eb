#!/usr/bin/env bash
# The dashboard in a real browser: starts an engine with a fresh data directory, puts
# light load on it (LOAD_RATE transfers/s, 5 by default), drives headless Chromium to
# /dashboard signed in with the operator's key and then a bank's, saves a screenshot
# taken under load to docs/dashboard.png, and checks that every figure the page shows
# matches what the API answers the same key at a quiet moment (the load paused).
# Exits non-zero on any mismatch. The browser half is loadtest/dashboard_check.mjs.
# Usage: loadtest/dashboard.sh    (SCREENSHOT=docs/dashboard.png LOAD_RATE=5)
# Needs Debian's chromium and Node.js (installed with apt-get if missing). Timing
# matters (the countdown, the load): on a shared machine run it under
# `flock /tmp/bench.lock loadtest/dashboard.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

install_missing() {
  local command=$1 package=$2
  command -v "$command" >/dev/null 2>&1 && return 0
  echo "== installing $package"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y "$package" >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y "$package" >/dev/null; }
}
install_missing chromium chromium
install_missing node nodejs

SCREENSHOT=${SCREENSHOT:-docs/dashboard.png}
ADDR=127.0.0.1:18093
source loadtest/common.sh
# A long window: the timer does not cut one off during the comparison; the check
# closes windows itself.
start_engine "$ADDR" --window-duration-ms 300000
echo "== engine on $ADDR, data in $OUT/engine"
node loadtest/dashboard_check.mjs --base "http://$ADDR" --keys "$OUT/engine/api-keys" \
  --screenshot "$SCREENSHOT"
