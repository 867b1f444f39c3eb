#!/usr/bin/env bash
# What a replicated NATS JetStream stream costs for the scale-out design, in which
# engine partitions publish "credit legs" (~300-byte JSON messages) to a stream that
# other partitions consume. Starts a 3-node nats-server cluster with JetStream on
# 127.0.0.1 only (client ports 14222-14224, cluster ports 16222-16224, store dirs in
# a fresh mktemp -d /tmp/js-bench-XXXXXX), then loadtest/jetstream_bench.py measures,
# for a stream with 3 replicas (CREDITS, credits.>) and one with 1 (CREDITS1,
# credits1.>), both on file storage:
#   (a) synchronous publish latency (await each ack), p50/p99/max over 5000 messages,
#       each with its own Nats-Msg-Id;
#   (b) pipelined publish throughput, up to 256 publishes in flight, 100,000
#       messages, with the client's and each server's CPU over that phase;
#   (c) publish-to-delivery latency through a durable pull consumer (fetch in
#       batches, ack each) for 5000 messages at a steady 2000/s;
#   (d) dedup: the same Nats-Msg-Id twice gives duplicate=True and no new message.
# The client is one single-threaded asyncio Python process (nats-py) on a 2-core
# machine that also runs the three servers: the throughput figures are bounded by the
# Python client at least as much as by the servers (the CPU line of (b) says which),
# and all three replicas share one disk, so they are a floor, not a ceiling, for a
# compiled client on separate hosts.
#
# Usage: flock /tmp/bench.lock loadtest/jetstream_bench.sh
#   (SYNC_N=5000 ASYNC_N=100000 INFLIGHT=256 E2E_N=5000 E2E_RATE=2000)
# Needs: nats-server (installed with apt-get install nats-server if missing), python3
# with nats-py (installed with pip if missing), the ports above free. Takes about
# 30 s. The client connects to n1 only, so a stream whose leader is elsewhere pays one
# more hop (the `leader` lines say where each stream's leader is). Stops its servers
# on exit; their dir is removed unless the run failed (then the logs' tails are
# printed and the dir is kept).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
START=$SECONDS

if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (apt-get)"
  apt-get install -y -qq nats-server >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nats-server >/dev/null 2>&1; } \
    || { echo "nats-server is missing and could not be installed (apt-get install nats-server)" >&2; exit 1; }
fi
if ! python3 -c 'import nats.js' 2>/dev/null; then
  echo "installing nats-py (pip)"
  python3 -m pip install -q nats-py >/dev/null 2>&1 \
    || python3 -m pip install -q --break-system-packages nats-py >/dev/null 2>&1 \
    || { echo "nats-py is missing and could not be installed (pip install nats-py)" >&2; exit 1; }
fi
echo "$(nats-server --version), nats-py $(python3 -c 'import importlib.metadata as m; print(m.version("nats-py"))')"

DIR=$(mktemp -d /tmp/js-bench-XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$rc" -eq 0 ]; then
    rm -rf "$DIR"
  else
    for n in n1 n2 n3; do
      [ -f "$DIR/$n.log" ] && { echo "--- $n.log (tail)" >&2; tail -n 15 "$DIR/$n.log" >&2; }
    done
    echo "logs kept in $DIR" >&2
  fi
}
trap cleanup EXIT

for i in 1 2 3; do
  routes=""
  for j in 1 2 3; do
    [ "$i" = "$j" ] || routes="$routes    nats-route://127.0.0.1:1622$((j + 1))
"
  done
  mkdir -p "$DIR/n$i"
  cat >"$DIR/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:1422$((i + 1))
jetstream {
  store_dir: "$DIR/n$i"
}
cluster {
  name: jsbench
  listen: 127.0.0.1:1622$((i + 1))
  routes: [
$routes  ]
}
EOF
  nats-server -c "$DIR/n$i.conf" >"$DIR/n$i.log" 2>&1 &
  PIDS+=($!)
done

# The client ports first; the meta leader is waited for by the benchmark itself,
# which retries creating its streams until the cluster accepts them.
for port in 14222 14223 14224; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nats-server not listening on $port" >&2; exit 1; }
done

BENCH_SERVER_PIDS="n1=${PIDS[0]},n2=${PIDS[1]},n3=${PIDS[2]}" \
  python3 loadtest/jetstream_bench.py nats://127.0.0.1:14222
echo "wall time $((SECONDS - START)) s"
