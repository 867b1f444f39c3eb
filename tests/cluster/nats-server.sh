#!/usr/bin/env bash
# Prints the path of nats-server, installing Debian's (2.9, with JetStream) first when
# it is missing and we may (root with apt-get). The NATS tests (tests/cluster_nats.rs)
# run it once per test run.
set -euo pipefail
if ! command -v nats-server >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "nats-server: not found; installing it with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
        }
    else
        echo "nats-server is not on PATH and cannot be installed automatically (needs root and apt-get); install nats-server and re-run" >&2
        exit 1
    fi
fi
command -v nats-server
