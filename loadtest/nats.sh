# Shared by the cluster scripts (loadtest/cluster.sh, loadtest/cluster_bench.sh): free
# loopback ports, and a NATS JetStream cluster of N servers on loopback (Debian's
# nats-server, installed by tests/cluster/nats-server.sh when missing).
#   source loadtest/nats.sh; start_nats N
#   stop_nats   (stops them and deletes their JetStream data: the next start_nats
#                begins a new cluster, with no leases, assignment or registry)
# Needs OUT (the run's directory) and a `fail` function; sets NATS_BIN, NATS_PIDS
# (the caller stops them) and NATS_URLS (comma-separated client URLs).

NATS_BIN=$(bash tests/cluster/nats-server.sh) || fail "no nats-server (tests/cluster/nats-server.sh)"
command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null 2>&1 || fail "jq is missing (apt-get install jq)"
NATS_PIDS=()

# N free loopback ports, all held at once while chosen so that none repeats.
free_ports() {
  python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# Starts N clustered servers with JetStream and waits until each is healthy and all
# see one JetStream meta leader (60 s at most).
start_nats() {
  local n=$1 i j routes began leaders ports
  read -r -a ports <<<"$(free_ports $((3 * n)))"
  local client=("${ports[@]:0:n}") route=("${ports[@]:n:n}") monitor=("${ports[@]:2*n:n}")
  NATS_URLS=$(for p in "${client[@]}"; do printf 'nats://127.0.0.1:%s,' "$p"; done)
  NATS_URLS=${NATS_URLS%,}
  for i in $(seq 0 $((n - 1))); do
    routes=""
    for j in $(seq 0 $((n - 1))); do
      [ "$i" = "$j" ] || routes="$routes    nats-route://127.0.0.1:${route[$j]}
"
    done
    mkdir -p "$OUT/nats$i"
    cat >"$OUT/nats$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${client[$i]}
http: 127.0.0.1:${monitor[$i]}
jetstream {
  store_dir: "$OUT/nats$i"
}
cluster {
  name: deltran
  listen: 127.0.0.1:${route[$i]}
  routes: [
$routes  ]
}
CONF
    "$NATS_BIN" -c "$OUT/nats$i.conf" >>"$OUT/nats.$i.log" 2>&1 &
    NATS_PIDS+=($!)
  done
  began=$SECONDS
  for i in $(seq 0 $((n - 1))); do
    until curl -fs "http://127.0.0.1:${monitor[$i]}/healthz" >/dev/null 2>&1; do
      kill -0 "${NATS_PIDS[$i]}" 2>/dev/null || { tail -5 "$OUT/nats.$i.log"; fail "nats-server n$i exited (see $OUT/nats.$i.log)"; }
      [ $((SECONDS - began)) -lt 60 ] || fail "nats-server n$i not healthy within 60 s (see $OUT/nats.$i.log)"
      sleep 0.2
    done
  done
  # Every server sees the same JetStream meta leader.
  until leaders=$(for i in $(seq 0 $((n - 1))); do
                    curl -fs "http://127.0.0.1:${monitor[$i]}/jsz" | jq -r '.meta_cluster.leader // "none"' || echo none
                  done) && ! grep -q none <<<"$leaders" && [ "$(sort -u <<<"$leaders" | wc -l)" = 1 ]; do
    [ $((SECONDS - began)) -lt 60 ] || fail "no JetStream meta leader within 60 s: $(echo $leaders) (see $OUT/nats.*.log)"
    sleep 0.5
  done
  echo "nats: $n servers up in $((SECONDS - began)) s, JetStream meta leader $(sort -u <<<"$leaders")"
}

stop_nats() {
  local p i
  for p in "${NATS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${NATS_PIDS[@]}"; do { wait "$p"; } 2>/dev/null || true; done
  for i in $(seq 0 $((${#NATS_PIDS[@]} - 1))); do rm -rf "${OUT:?}/nats$i"; done
  NATS_PIDS=()
}
