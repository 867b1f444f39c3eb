#!/usr/bin/env python3
"""The checks at the end of loadtest/cluster.sh: a cluster of engine partitions after
mixed load, a SIGKILL of one partition and its restart (docs/SCALE-OUT.md).

  cluster_check.py --node 0 http://127.0.0.1:P0 DIR0 --node 1 … --node 2 … \\
      --assignment ICICI=0,ENBD=1,HDFC=1,ADCB=2,AXIS=2 --acks a0.tsv a1.tsv a2.tsv \\
      [--loads l0.json l1.json l2.json] [--deltran target/release/deltran] [--out DIR]
  cluster_check.py --self-test        the netting checks on hand-made answers

Each node is queried with the operator key its first start wrote to DIR/api-keys (a
key is valid only on the node whose store made it). Checks, once every window that
holds an acknowledged transfer is cut cluster-wide (each node's `open_window` past the
highest acknowledged window, and each of those windows has a cluster result on every
node) and netted on every partition:

1. every acknowledged transfer (the chaos acks files: `key<TAB>transaction id`) is
   stored exactly once in the cluster, on its sender's partition, under its id, as the
   chaos client sent it (the body is a function of the key: `body_for` in chaos.rs,
   with the flows of loadtest/pairs.rs): from each partition's full transfer list,
   one GET per acknowledged transfer on its sender's node, and a sample read
   through the other nodes (which ask the sender's partition);
2. every window cut cluster-wide: per currency, the banks' positions sum to minus the
   hub's, the instructions into the hub less those out of it equal the hub's position
   and those into it the currency's net; each bank's cluster position (debits,
   credits) is the sum over partitions of that partition's own netting of the window
   (its stored legs; a bank absent on a partition counts 0); each currency's gross is
   the sum of the partitions'; the transfer count is the sum of the partitions'; every
   node answers the same result;
3. every credit leg of those windows is applied exactly once on its receiver's
   partition: what each partition's own window credits to banks of other partitions
   is, per bank and currency, what those partitions applied
   (`/api/v1/cluster/windows/{w}/credits`, polled while legs are in flight);
4. `deltran audit --data-dir DIR` exits 0 on every partition (with --deltran);
and, with --loads, that no load saw an answer a careful client cannot retry (a 5xx
other than 503, a 4xx other than 429) or a timeout.

Prints one line per failed check (at most a few per kind, then a count) and ends with
`3 partitions, A acknowledged, A stored, audit clean`, or a last line naming what
failed (exit 1). Amounts are compared as decimal.Decimal, never float.
Python 3.11 standard library only."""

import argparse
import copy
import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from decimal import Decimal

HUB = "HUB"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"cluster-check: {msg}", flush=True)


# ---------------------------------------------------------------------------------
# What the chaos client sent for a key (loadtest/chaos.rs `body_for`, `parse_key`).

def read_pairs(path=os.path.join(ROOT, "loadtest", "pairs.rs")):
    """The flows of loadtest/pairs.rs: (sender, receiver, from, to) in order."""
    with open(path) as f:
        text = f.read()
    pairs = re.findall(r'\(\s*"(\w+)",\s*"(\w+)",\s*"(\w+)",\s*"(\w+)"\s*\)', text)
    if len(pairs) != 5:
        raise SystemExit(f"cluster-check: expected 5 flows in {path}, found {len(pairs)}")
    return pairs


def parse_key(key):
    """`<run>-<conn>-<k>` → (conn, k), as chaos.rs's parse_key (the run may hold '-')."""
    parts = key.rsplit("-", 2)
    if len(parts) != 3:
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None


def sent_for(key, pairs):
    """The transfer the chaos client sends under `key` (chaos.rs `body_for`)."""
    ck = parse_key(key)
    if ck is None:
        return None
    conn, k = ck
    sender, receiver, frm, to = pairs[(conn + k) % len(pairs)]
    return {
        "sender_bank": sender,
        "receiver_bank": receiver,
        "amount": Decimal(f"{100 + k % 900}.{k % 100:02d}"),
        "from_currency": frm,
        "to_currency": to,
    }


def parse_assignment(text):
    assignment = {}
    for part in text.split(","):
        bank, _, p = part.partition("=")
        assignment[bank.strip()] = int(p)
    return assignment


# ---------------------------------------------------------------------------------
# The netting checks: pure functions of the answers, unit-checked by --self-test.

def D(text):
    return Decimal(str(text))


def check_cluster_window(w, cluster):
    """Conservation in one cluster window result. Returns failure lines."""
    fails = []
    positions = cluster.get("positions") or []
    currencies = {c["currency"]: c for c in cluster.get("currencies") or []}
    instructions = cluster.get("instructions") or []
    for p in positions:
        if D(p["credits"]) - D(p["debits"]) != D(p["position"]):
            fails.append(f"window {w}: {p['bank']} {p['currency']} position {p['position']} "
                         f"is not credits {p['credits']} - debits {p['debits']}")
    seen = {p["currency"] for p in positions} | {i["currency"] for i in instructions}
    for c in sorted(seen - set(currencies)):
        fails.append(f"window {w}: {c} has positions or instructions but no currency summary")
    for c, summary in sorted(currencies.items()):
        banks = sum((D(p["position"]) for p in positions if p["currency"] == c), Decimal(0))
        hub = D(summary["hub_position"])
        if banks != -hub:
            fails.append(f"window {w}: {c}: banks' positions sum to {banks}, hub position {hub} "
                         f"(conservation)")
        into = sum((D(i["amount"]) for i in instructions
                    if i["currency"] == c and i["payee"] == HUB), Decimal(0))
        out = sum((D(i["amount"]) for i in instructions
                   if i["currency"] == c and i["payer"] == HUB), Decimal(0))
        if into - out != hub:
            fails.append(f"window {w}: {c}: instructions move {into} into the hub and {out} out "
                         f"of it, its position is {hub}")
        if into != D(summary["net"]):
            fails.append(f"window {w}: {c}: debtors pay {into} into the hub, net is {summary['net']}")
        gross = sum((D(p["debits"]) for p in positions if p["currency"] == c), Decimal(0))
        if gross != D(summary["gross"]):
            fails.append(f"window {w}: {c}: gross {summary['gross']} is not the banks' debits {gross}")
    # Each bank's instruction moves its position, and only banks with a position pay or
    # receive.
    moved = {}
    for i in instructions:
        if i["payer"] == HUB and i["payee"] != HUB:
            key, amount = (i["payee"], i["currency"]), D(i["amount"])
        elif i["payee"] == HUB and i["payer"] != HUB:
            key, amount = (i["payer"], i["currency"]), -D(i["amount"])
        else:
            fails.append(f"window {w}: instruction {i} is not between a bank and the hub")
            continue
        moved[key] = moved.get(key, Decimal(0)) + amount
    for p in positions:
        key = (p["bank"], p["currency"])
        if moved.pop(key, Decimal(0)) != D(p["position"]):
            fails.append(f"window {w}: {key[0]} {key[1]}: instructions do not move its position "
                         f"{p['position']}")
    for key, amount in sorted(moved.items()):
        fails.append(f"window {w}: {key[0]} {key[1]}: instructions move {amount} without a position")
    return fails


def check_against_partitions(w, cluster, locals_by_partition):
    """The cluster window against each partition's own netting of window `w` (its
    stored legs): positions, gross and counts are the sums of the partitions'."""
    fails = []
    summed = {}  # (bank, currency) -> [debits, credits, position]
    gross = {}
    count = 0
    for part, local in sorted(locals_by_partition.items()):
        for p in local.get("positions") or []:
            s = summed.setdefault((p["bank"], p["currency"]), [Decimal(0)] * 3)
            s[0] += D(p["debits"])
            s[1] += D(p["credits"])
            s[2] += D(p["position"])
        for c in local.get("currencies") or []:
            gross[c["currency"]] = gross.get(c["currency"], Decimal(0)) + D(c["gross"])
        count += int(local.get("transfer_count") or 0)
    clustered = {}
    for p in cluster.get("positions") or []:
        key = (p["bank"], p["currency"])
        if key in clustered:
            fails.append(f"window {w}: {key[0]} {key[1]} appears twice in the cluster positions")
        clustered[key] = [D(p["debits"]), D(p["credits"]), D(p["position"])]
    zero = [Decimal(0)] * 3
    for key in sorted(set(summed) | set(clustered)):
        have, want = clustered.get(key, zero), summed.get(key, zero)
        if have != want:
            fails.append(
                f"window {w}: {key[0]} {key[1]}: cluster position {have[2]} (debits {have[0]}, "
                f"credits {have[1]}) is not the partitions' stored legs {want[2]} "
                f"(debits {want[0]}, credits {want[1]})")
    for c in cluster.get("currencies") or []:
        if D(c["gross"]) != gross.get(c["currency"], Decimal(0)):
            fails.append(f"window {w}: {c['currency']}: cluster gross {c['gross']} is not the "
                         f"partitions' {gross.get(c['currency'], Decimal(0))}")
    for c in sorted(set(gross) - {c["currency"] for c in cluster.get("currencies") or []}):
        if gross[c] != 0:
            fails.append(f"window {w}: {c}: the partitions' gross is {gross[c]}, the cluster has none")
    if int(cluster.get("transfer_count") or 0) != count:
        fails.append(f"window {w}: cluster transfer_count {cluster.get('transfer_count')} is not "
                     f"the partitions' {count}")
    reported = {int(p["partition"]): int(p["transfer_count"]) for p in cluster.get("partitions") or []}
    for part, local in sorted(locals_by_partition.items()):
        n = int(local.get("transfer_count") or 0)
        if reported.get(part, 0) != n:
            fails.append(f"window {w}: the cluster result counts {reported.get(part)} transfers of "
                         f"partition {part}, which has {n} in its window")
    return fails


def check_credits(w, locals_by_partition, applied_by_partition, assignment):
    """Every credit leg of window `w` applied exactly once where its receiver is: what
    each partition's own window credits to banks of other partitions is, per bank and
    currency, what those partitions applied (`/api/v1/cluster/windows/{w}/credits`,
    reversals taken off). A bank the assignment does not name is on partition 0."""
    owed = {}
    for part, local in locals_by_partition.items():
        for p in local.get("positions") or []:
            owner = assignment.get(p["bank"], 0)
            if owner != part and D(p["credits"]) != 0:
                key = (owner, p["bank"], p["currency"])
                owed[key] = owed.get(key, Decimal(0)) + D(p["credits"])
    applied = {}
    for part, answer in applied_by_partition.items():
        for a in answer.get("applied") or []:
            if D(a["amount"]) != 0:
                applied[(part, a["bank"], a["currency"])] = D(a["amount"])
    fails = []
    for key in sorted(set(owed) | set(applied)):
        if owed.get(key, Decimal(0)) != applied.get(key, Decimal(0)):
            fails.append(f"window {w}: {key[1]} {key[2]}: other partitions' windows credit it "
                         f"{owed.get(key, Decimal(0))}, partition {key[0]} applied "
                         f"{applied.get(key, Decimal(0))}")
    return fails


def check_transfer(key, tid, found, pairs, assignment):
    """One acknowledged transfer against the copies of it the partitions store
    (`found`: [(partition, transfer view)]). Returns failure lines."""
    sent = sent_for(key, pairs)
    if sent is None:
        return [f"ack {key}: not a chaos key"]
    owner = assignment.get(sent["sender_bank"])
    if not found:
        return [f"ack {key} ({tid}): not stored on any partition"]
    fails = []
    if len(found) > 1:
        fails.append(f"ack {key}: stored {len(found)} times: "
                     + ", ".join(f"{t['transaction_id']} on partition {p}" for p, t in found))
    for p, t in found:
        if p != owner:
            fails.append(f"ack {key}: stored on partition {p}, its sender {sent['sender_bank']} "
                         f"is on partition {owner}")
        if t["transaction_id"] != tid:
            fails.append(f"ack {key}: acknowledged as {tid}, stored as {t['transaction_id']}")
        for field in ("sender_bank", "receiver_bank", "from_currency", "to_currency"):
            if t.get(field) != sent[field]:
                fails.append(f"ack {key}: stored {field} {t.get(field)}, sent {sent[field]}")
        if D(t.get("amount")) != sent["amount"]:
            fails.append(f"ack {key}: stored amount {t.get('amount')}, sent {sent['amount']}")
        if t.get("status") not in ("accepted", "netted", "settled"):
            fails.append(f"ack {key}: stored with status {t.get('status')}")
    return fails


# ---------------------------------------------------------------------------------
# HTTP: one keep-alive connection per thread and node.

class Node:
    def __init__(self, partition, url, data_dir):
        self.partition = partition
        self.url = url.rstrip("/")
        self.data_dir = data_dir
        u = urllib.parse.urlparse(self.url)
        self.host, self.port = u.hostname, u.port or 80
        self.key = operator_key(data_dir)
        self.local = threading.local()

    def get(self, path, timeout=15):
        """(status, parsed JSON or None); retries a broken connection a few times."""
        last = None
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.local.conn = conn
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
                resp = conn.getresponse()
                body = resp.read()
                try:
                    value = json.loads(body) if body else None
                except ValueError:
                    value = None
                return resp.status, value
            except (OSError, http.client.HTTPException) as e:
                last = e
                conn.close()
                self.local.conn = None
                time.sleep(0.2 * (attempt + 1))
        raise RuntimeError(f"GET {self.url}{path}: {last}")


def operator_key(data_dir):
    path = os.path.join(data_dir, "api-keys")
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "operator":
                return fields[2]
    raise SystemExit(f"cluster-check: no operator key in {path}")


class Failures:
    """Failure lines by kind: the first few of each printed, all counted."""
    SHOWN = 5

    def __init__(self):
        self.kinds = {}

    def add(self, kind, lines):
        for line in lines:
            n = self.kinds.get(kind, 0)
            if n < self.SHOWN:
                print(f"FAILED {kind}: {line}", flush=True)
            elif n == self.SHOWN:
                print(f"FAILED {kind}: … (the rest of this kind only counted)", flush=True)
            self.kinds[kind] = n + 1

    def summary(self):
        return "; ".join(f"{kind}: {n} failed" for kind, n in self.kinds.items())


# ---------------------------------------------------------------------------------
# The run's checks.

def read_acks(paths):
    acks = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "\t" in line:
                    key, tid = line.split("\t", 1)
                    acks.append((key, tid))
    return acks


def list_transfers(node):
    """Every transfer the node's partition stores, paged by id."""
    out, cursor = [], None
    while True:
        # This partition's own (a list gathers every partition's by default).
        path = "/api/v1/transfers?limit=1000&partition_only=true" + (f"&cursor={cursor}" if cursor else "")
        status, page = node.get(path, timeout=60)
        if status != 200:
            raise RuntimeError(f"partition {node.partition}: GET {path} answered {status}: {page}")
        out.extend(page["transactions"])
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def cluster_views(nodes):
    views = {}
    for n in nodes:
        status, v = n.get("/api/v1/cluster")
        views[n.partition] = v if status == 200 else {"error": status, "body": v}
    return views


def wait_windows(nodes, highest, deadline, failures):
    """Waits until every node's open window is past `highest` and every window up to
    it has a cluster result on every node; returns the last window cut everywhere."""
    last_print = 0
    while True:
        views = cluster_views(nodes)
        opens = [v.get("open_window") for v in views.values()]
        if all(isinstance(o, int) and o > highest for o in opens):
            cut = min(opens) - 1
            missing = []
            for w in range(1, highest + 1):
                for n in nodes:
                    status, _ = n.get(f"/api/v1/cluster/windows/{w}")
                    if status != 200:
                        missing.append((w, n.partition, status))
                        break
                if missing:
                    break
            if not missing:
                return cut, views
        if time.time() > deadline:
            failures.add("windows", [f"not every window up to {highest} was cut cluster-wide in "
                                     f"time: /api/v1/cluster answers "
                                     + json.dumps({p: {k: v.get(k) for k in ('open_window', 'coordinator', 'epoch', 'error')}
                                                   for p, v in views.items()})])
            return None, views
        if time.time() - last_print > 10:
            log(f"waiting for window {highest} to be cut everywhere: open windows {opens}")
            last_print = time.time()
        time.sleep(1)


def local_window(node, w, deadline):
    """The partition's own window `w` once it is netted (not open or closing)."""
    while True:
        status, v = node.get(f"/api/v1/windows/{w}")
        if status == 200 and v.get("state") not in ("open", "closing"):
            return v, None
        if time.time() > deadline:
            return None, (f"partition {node.partition}: window {w} answered {status} "
                          f"{(v or {}).get('state') if isinstance(v, dict) else v}, not netted in time")
        time.sleep(0.5)


def strip_volatile(v):
    return json.dumps(v, sort_keys=True)


def run(args):
    pairs = read_pairs()
    assignment = parse_assignment(args.assignment)
    nodes = [Node(int(p), url, d) for p, url, d in args.node]
    by_partition = {n.partition: n for n in nodes}
    failures = Failures()
    deadline = time.time() + args.wait_s

    # 0. The loads' answers.
    for path in args.loads or []:
        with open(path) as f:
            text = f.read().strip()
        try:
            load = json.loads(text.splitlines()[-1])
        except (ValueError, IndexError):
            failures.add("load", [f"{path}: no summary ({text[:200]!r})"])
            continue
        log(f"load {load['run_id']}: {load['acknowledged']} acknowledged "
            f"({load['replayed']} replayed), answers {json.dumps(load['answers'])}, "
            f"refused {load['connection_refused']}, broken {load['connection_broken']}, "
            f"timeouts {load['timeouts']}, p99 {load['latency_ms']['p99']} ms, "
            f"longest without ack {load['longest_seconds_without_ack']} s")
        bad = []
        if load["other_5xx"]:
            bad.append(f"{load['other_5xx']} answers 5xx other than 503")
        if load["unexpected"]:
            bad.append(f"{len(load['unexpected'])} answers a client cannot retry, e.g. "
                       f"{load['unexpected'][0][:300]}")
        if load["timeouts"]:
            bad.append(f"{load['timeouts']} timeouts")
        failures.add("load", [f"{load['run_id']}: {b}" for b in bad])

    # 1. Every acknowledged transfer, stored once, on its sender's partition.
    acks = read_acks(args.acks)
    keys = {}
    for key, tid in acks:
        if key in keys and keys[key] != tid:
            failures.add("acks", [f"{key} acknowledged as {keys[key]} and as {tid}"])
        keys[key] = tid
    log(f"{len(acks)} acknowledgements ({len(keys)} keys) in {len(args.acks)} files")
    stored = {}  # key -> [(partition, view)]
    for n in nodes:
        began = time.time()
        listed = list_transfers(n)
        for t in listed:
            k = t.get("idempotency_key")
            if k in keys:
                stored.setdefault(k, []).append((n.partition, t))
        log(f"partition {n.partition} stores {len(listed)} transfers "
            f"(listed in {time.time() - began:.1f} s)")
    bad_keys = set()
    windows_of_acks = {}
    no_window = 0
    for key, tid in keys.items():
        found = stored.get(key, [])
        fails = check_transfer(key, tid, found, pairs, assignment)
        failures.add("stored", fails)
        if fails:
            bad_keys.add(key)
        else:
            w = found[0][1].get("window_id")
            if w is None:
                no_window += 1
            else:
                windows_of_acks[w] = windows_of_acks.get(w, 0) + 1
    if no_window:
        log(f"{no_window} acknowledged transfers have no window yet")

    # The same, one GET per acknowledged transfer on its sender's node (and a sample
    # on the other nodes, which read it from the sender's partition).
    def get_one(item):
        key, tid = item
        sent = sent_for(key, pairs)
        if sent is None or sent["sender_bank"] not in assignment:
            return key, [f"ack {key}: no partition for its sender"]
        owner = by_partition[assignment[sent["sender_bank"]]]
        status, t = owner.get(f"/api/v1/transfers/{tid}")
        if status != 200:
            return key, [f"ack {key}: GET /api/v1/transfers/{tid} on partition {owner.partition} "
                         f"answered {status}"]
        if t.get("transaction_id") != tid or t.get("idempotency_key") not in (None, key):
            return key, [f"ack {key}: GET {tid} on partition {owner.partition} answered "
                         f"{t.get('transaction_id')} (key {t.get('idempotency_key')})"]
        return key, []

    def same_elsewhere(item):
        key, tid = item
        sent = sent_for(key, pairs)
        fails = []
        for n in nodes:
            if n.partition != assignment.get(sent["sender_bank"]):
                status, t = n.get(f"/api/v1/transfers/{tid}")
                if status != 200 or t.get("transaction_id") != tid:
                    fails.append(f"ack {key}: GET {tid} on node {n.partition} (not its sender's "
                                 f"partition, so read from it) answered {status}")
        return fails

    began = time.time()
    got_ok = 0
    items = list(keys.items())
    with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        for key, fails in pool.map(get_one, items, chunksize=64):
            failures.add("get", fails)
            got_ok += not fails
            if fails:
                bad_keys.add(key)
        for fails in pool.map(same_elsewhere, items[:: max(1, len(items) // 300)]):
            failures.add("get", fails)
    log(f"{got_ok} of {len(items)} acknowledged transfers read back on their sender's node "
        f"({time.time() - began:.1f} s)")

    # 2. Every window cut cluster-wide, against the partitions' own nettings.
    highest = max(windows_of_acks, default=0)
    log(f"acknowledged transfers are in windows {min(windows_of_acks, default=0)}..{highest}; "
        f"waiting for them to be cut on every partition")
    cut, views = wait_windows(nodes, highest, deadline, failures)
    for p, v in sorted(views.items()):
        log(f"node {p}: " + json.dumps({k: v.get(k) for k in
                                        ("node", "partition", "epoch", "coordinator", "open_window", "error")}))
    coordinators = [p for p, v in views.items() if v.get("coordinator") is True]
    if len(coordinators) != 1:
        failures.add("cluster", [f"{len(coordinators)} nodes say they hold the coordinator lease: {coordinators}"])
    for p, v in sorted(views.items()):
        if v.get("partition") != p:
            failures.add("cluster", [f"node {p} runs partition {v.get('partition')}"])
        if v.get("assignment") is not None and v.get("assignment") != assignment:
            failures.add("cluster", [f"node {p} has assignment {v.get('assignment')}, not {assignment}"])
    windows_checked = 0
    legs_checked = 0
    if cut is not None:
        for w in range(1, cut + 1):
            answers = {}
            for n in nodes:
                status, v = n.get(f"/api/v1/cluster/windows/{w}")
                answers[n.partition] = (status, v)
            status, cluster = answers[nodes[0].partition]
            if status != 200:
                # Windows past the acknowledged ones may be cut on some nodes only.
                if w <= highest:
                    failures.add("windows", [f"window {w}: no cluster result on node "
                                             f"{nodes[0].partition} ({status})"])
                continue
            for p, (s, v) in answers.items():
                if s == 200 and strip_volatile(v) != strip_volatile(cluster):
                    failures.add("windows", [f"window {w}: node {p}'s cluster result differs "
                                             f"from node {nodes[0].partition}'s"])
            if cluster.get("window_id") != w:
                failures.add("windows", [f"window {w}: the result names window {cluster.get('window_id')}"])
            failures.add("netting", check_cluster_window(w, cluster))
            locals_ = {}
            for n in nodes:
                local, err = local_window(n, w, max(deadline, time.time() + 10))
                if err:
                    failures.add("windows", [err])
                else:
                    locals_[n.partition] = local
            if len(locals_) == len(nodes):
                failures.add("netting", check_against_partitions(w, cluster, locals_))
                # Credit legs travel after their commit: polled until they are all in.
                legs_deadline = max(deadline, time.time() + 20)
                while True:
                    applied = {}
                    for n in nodes:
                        status, v = n.get(f"/api/v1/cluster/windows/{w}/credits")
                        applied[n.partition] = v if status == 200 else {}
                    fails = check_credits(w, locals_, applied, assignment)
                    if not fails or time.time() > legs_deadline:
                        break
                    time.sleep(0.5)
                failures.add("credits", fails)
                legs_checked += sum(int(a["legs"]) for v in applied.values()
                                    for a in v.get("applied") or [])
                acked = windows_of_acks.get(w, 0)
                if acked > int(cluster.get("transfer_count") or 0):
                    failures.add("netting", [f"window {w}: {acked} acknowledged transfers, the "
                                             f"cluster result counts {cluster.get('transfer_count')}"])
            windows_checked += 1
        log(f"{windows_checked} cluster windows checked (1..{cut}), "
            f"{sum(windows_of_acks.values())} acknowledged transfers in them, "
            f"{legs_checked} credit legs applied across partitions")

    # 3. The audit of every partition's store.
    audit_clean = True
    if args.deltran:
        for n in nodes:
            out_path = os.path.join(args.out or os.path.dirname(n.data_dir), f"audit.{n.partition}.txt")
            r = subprocess.run([args.deltran, "audit", "--data-dir", n.data_dir],
                               capture_output=True, text=True, timeout=300)
            with open(out_path, "w") as f:
                f.write(r.stdout + r.stderr)
            last = (r.stdout.strip().splitlines() or [""])[-1]
            log(f"audit of partition {n.partition}: exit {r.returncode}, {last}")
            if r.returncode != 0:
                audit_clean = False
                violated = [l.strip() for l in r.stdout.splitlines() if l.startswith("VIOLATED")]
                why = "; ".join(violated) or ((r.stderr.strip() or r.stdout.strip()).splitlines() or ["?"])[-1]
                failures.add("audit", [f"partition {n.partition}: exit {r.returncode}: {why} (see {out_path})"])
    else:
        audit_clean = None

    stored_ok = len(keys) - len(bad_keys)
    if failures.kinds:
        print(f"{len(nodes)} partitions, {len(keys)} acknowledged, {stored_ok} stored, "
              f"FAILED: {failures.summary()}")
        return 1
    audit = "audit clean" if audit_clean else "audit not run"
    print(f"{len(nodes)} partitions, {len(keys)} acknowledged, {stored_ok} stored, {audit}")
    return 0


# ---------------------------------------------------------------------------------
# --self-test: the checks on hand-made answers.

def self_test():
    def pos(bank, cur, debits, credits):
        return {"bank": bank, "currency": cur, "debits": debits, "credits": credits,
                "position": str(D(credits) - D(debits))}

    # Partition 0 (ICICI, ENBD): ICICI → ENBD 1000.00 INR → 44.05 AED;
    # ENBD → ICICI 10.00 AED → 227.00 INR.
    p0 = {"state": "netted", "transfer_count": 2,
          "positions": [pos("ENBD", "AED", "10.00", "44.05"), pos("ICICI", "INR", "1000.00", "227.00")],
          "currencies": [{"currency": "AED", "gross": "10.00"}, {"currency": "INR", "gross": "1000.00"}]}
    # Partition 1 (HDFC, ADCB): HDFC → ADCB 500.00 INR → 22.03 AED; ADCB → HDFC 5.00 AED → 113.50 INR.
    p1 = {"state": "netted", "transfer_count": 2,
          "positions": [pos("ADCB", "AED", "5.00", "22.03"), pos("HDFC", "INR", "500.00", "113.50")],
          "currencies": [{"currency": "AED", "gross": "5.00"}, {"currency": "INR", "gross": "500.00"}]}
    # Partition 2 (AXIS): AXIS → ENBD 200.00 INR → 8.81 AED (ENBD credited, not on this partition).
    p2 = {"state": "netted", "transfer_count": 1,
          "positions": [pos("AXIS", "INR", "200.00", "0"), pos("ENBD", "AED", "0", "8.81")],
          "currencies": [{"currency": "INR", "gross": "200.00"}]}
    locals_ = {0: p0, 1: p1, 2: p2}
    positions = [pos("ADCB", "AED", "5.00", "22.03"), pos("AXIS", "INR", "200.00", "0"),
                 pos("ENBD", "AED", "10.00", "52.86"), pos("HDFC", "INR", "500.00", "113.50"),
                 pos("ICICI", "INR", "1000.00", "227.00")]

    def instructions(ps):
        out = []
        for p in ps:
            v = D(p["position"])
            if v < 0:
                out.append({"currency": p["currency"], "payer": p["bank"], "payee": HUB, "amount": str(-v)})
            elif v > 0:
                out.append({"currency": p["currency"], "payer": HUB, "payee": p["bank"], "amount": str(v)})
        return out

    def currencies(ps, gross):
        out = []
        for c in sorted({p["currency"] for p in ps}):
            banks = sum((D(p["position"]) for p in ps if p["currency"] == c), Decimal(0))
            net = sum((-D(p["position"]) for p in ps if p["currency"] == c and D(p["position"]) < 0), Decimal(0))
            out.append({"currency": c, "gross": gross[c], "net": str(net), "hub_position": str(-banks)})
        return out

    good = {"window_id": 7, "transfer_count": 5,
            "partitions": [{"partition": 0, "transfer_count": 2}, {"partition": 1, "transfer_count": 2},
                           {"partition": 2, "transfer_count": 1}],
            "positions": positions,
            "currencies": currencies(positions, {"AED": "15.00", "INR": "1700.00"}),
            "instructions": instructions(positions)}
    assert check_cluster_window(7, good) == [], check_cluster_window(7, good)
    assert check_against_partitions(7, good, locals_) == [], check_against_partitions(7, good, locals_)
    # Hub figures by hand: INR banks -773 (ICICI) - 386.50 (HDFC) - 200 (AXIS) = -1359.50.
    inr = next(c for c in good["currencies"] if c["currency"] == "INR")
    assert D(inr["hub_position"]) == D("1359.50"), inr
    assert D(inr["net"]) == D("1359.50"), inr
    aed = next(c for c in good["currencies"] if c["currency"] == "AED")
    assert D(aed["hub_position"]) == D("-59.89"), aed  # 17.03 + 42.86 received
    # Trailing zeros do not matter.
    same = json.loads(json.dumps(good))
    same["positions"][0]["debits"] = "5.0000"
    assert check_cluster_window(7, same) == [] and check_against_partitions(7, same, locals_) == []

    def broken(change):
        b = json.loads(json.dumps(good))
        change(b)
        return check_cluster_window(7, b), check_against_partitions(7, b, locals_)

    # A hub position off by one minor unit: conservation and instructions fail.
    a, _ = broken(lambda b: b["currencies"][1].update(hub_position="1359.49"))
    assert any("conservation" in f for f in a) and any("instructions move" in f for f in a), a
    # An instruction lost: the hub's instructions and the bank's settlement fail.
    a, _ = broken(lambda b: b["instructions"].pop(0))
    assert any("into the hub" in f for f in a) and any("do not move" in f for f in a), a
    # A cluster position that is not the partitions' legs (credits moved from ENBD to
    # ADCB, conserved): conservation holds, the partition sums catch it.
    def move(b):
        b["positions"][0] = pos("ADCB", "AED", "5.00", "23.03")
        b["positions"][2] = pos("ENBD", "AED", "10.00", "51.86")
        b["instructions"] = instructions(b["positions"])
    a, p = broken(move)
    assert a == [], a
    assert len(p) == 2 and all("stored legs" in f for f in p), p
    # A bank missing from the cluster result (AXIS), or an extra one.
    _, p = broken(lambda b: b["positions"].pop(1))
    assert any("AXIS INR: cluster position 0" in f for f in p), p
    _, p = broken(lambda b: b["positions"].append(pos("XYZ", "INR", "0", "0")))
    assert p == [], p  # a zero position equals an absent one
    _, p = broken(lambda b: b["positions"].append(pos("XYZ", "INR", "1", "0")))
    assert any("XYZ INR" in f for f in p), p
    # Counts: the total and one partition's.
    _, p = broken(lambda b: b.update(transfer_count=6))
    assert any("transfer_count 6" in f for f in p), p
    _, p = broken(lambda b: b["partitions"][2].update(transfer_count=2))
    assert any("partition 2" in f for f in p), p
    # Gross.
    a, p = broken(lambda b: b["currencies"][0].update(gross="16.00"))
    assert any("gross" in f for f in a) and any("gross" in f for f in p), (a, p)
    # A partition absent from the window (no transfers there) counts 0.
    empty = {"state": "netted", "transfer_count": 0, "positions": [], "currencies": []}
    only01 = json.loads(json.dumps(good))
    only01["positions"] = [pos("ADCB", "AED", "5.00", "22.03"), pos("ENBD", "AED", "10.00", "44.05"),
                           pos("HDFC", "INR", "500.00", "113.50"), pos("ICICI", "INR", "1000.00", "227.00")]
    only01["currencies"] = currencies(only01["positions"], {"AED": "15.00", "INR": "1500.00"})
    only01["instructions"] = instructions(only01["positions"])
    only01["transfer_count"] = 4
    only01["partitions"][2]["transfer_count"] = 0
    assert check_cluster_window(7, only01) == []
    assert check_against_partitions(7, only01, {0: p0, 1: p1, 2: empty}) == []
    # An empty window.
    nothing = {"window_id": 8, "transfer_count": 0, "partitions": [], "positions": [],
               "currencies": [], "instructions": []}
    assert check_cluster_window(8, nothing) == []
    assert check_against_partitions(8, nothing, {0: empty, 1: empty, 2: empty}) == []

    # Credit legs: ENBD (partition 1) credited 44.05 AED by partition 0's window and
    # 7.00 by partition 2's, ICICI (partition 0) 227.00 INR by partition 1's.
    assign = {"ICICI": 0, "ENBD": 1, "HDFC": 1}
    locs = {0: {"positions": [pos("ICICI", "INR", "1000.00", "0"), pos("ENBD", "AED", "0", "44.05")]},
            1: {"positions": [pos("ENBD", "AED", "10.00", "0"), pos("ICICI", "INR", "0", "227.00"),
                              pos("HDFC", "INR", "0", "3.00")]},
            2: {"positions": [pos("ENBD", "AED", "0", "7.00")]}}
    right = {0: {"applied": [{"bank": "ICICI", "currency": "INR", "amount": "227.00", "legs": 1}]},
             1: {"applied": [{"bank": "ENBD", "currency": "AED", "amount": "51.05", "legs": 2}]},
             2: {"applied": []}}
    assert check_credits(7, locs, right, assign) == []
    twice = copy.deepcopy(right)
    twice[1]["applied"][0]["amount"] = "95.10"
    assert any("ENBD AED" in f for f in check_credits(7, locs, twice, assign))
    lost = copy.deepcopy(right)
    lost[0]["applied"] = []
    assert any("ICICI INR" in f for f in check_credits(7, locs, lost, assign))
    stray = copy.deepcopy(right)
    stray[2]["applied"] = [{"bank": "HDFC", "currency": "INR", "amount": "3.00", "legs": 1}]
    assert any("HDFC INR" in f for f in check_credits(7, locs, stray, assign))

    # Keys and bodies (chaos.rs body_for): conn 3, k 1234 → PAIRS[(3 + 1234) % 5 = 2].
    pairs = read_pairs()
    assert parse_key("cl0-20261207-3-1234") == (3, 1234)
    s = sent_for("cl0-20261207-3-1234", pairs)
    assert (s["sender_bank"], s["receiver_bank"]) == (pairs[2][0], pairs[2][1]), s
    assert s["amount"] == D("434.34"), s  # 100 + 1234 % 900, 1234 % 100
    assignment = parse_assignment("ICICI=0,ENBD=0,HDFC=1,ADCB=1,AXIS=2")
    view = {"transaction_id": "t1", "status": "accepted", "sender_bank": s["sender_bank"],
            "receiver_bank": s["receiver_bank"], "amount": "434.34",
            "from_currency": s["from_currency"], "to_currency": s["to_currency"]}
    owner = assignment[s["sender_bank"]]
    key = "cl0-20261207-3-1234"
    assert check_transfer(key, "t1", [(owner, view)], pairs, assignment) == []
    assert check_transfer(key, "t1", [], pairs, assignment)
    assert any("stored 2 times" in f for f in
               check_transfer(key, "t1", [(owner, view), (owner, view)], pairs, assignment))
    assert any("stored on partition" in f for f in
               check_transfer(key, "t1", [((owner + 1) % 3, view)], pairs, assignment))
    assert any("acknowledged as t1" in f for f in
               check_transfer(key, "t1", [(owner, dict(view, transaction_id="t2"))], pairs, assignment))
    assert any("amount" in f for f in
               check_transfer(key, "t1", [(owner, dict(view, amount="434.35"))], pairs, assignment))
    print("cluster-check: self-test passed")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--node", nargs=3, action="append", metavar=("PARTITION", "URL", "DATA_DIR"))
    ap.add_argument("--assignment", default="ICICI=0,ENBD=0,HDFC=1,ADCB=1,AXIS=2")
    ap.add_argument("--acks", nargs="+", default=[])
    ap.add_argument("--loads", nargs="*", default=[])
    ap.add_argument("--deltran", help="the deltran binary: runs `deltran audit` on every partition")
    ap.add_argument("--out", help="where the audits' output goes")
    ap.add_argument("--wait-s", type=float, default=120,
                    help="how long to wait for the windows to be cut and netted")
    ap.add_argument("--threads", type=int, default=6)
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.node:
        ap.error("--node is needed (or --self-test)")
    try:
        return run(args)
    except Exception as e:  # the last line must still say what failed
        import traceback
        traceback.print_exc()
        print(f"{len(args.node)} partitions: FAILED: the check could not complete: "
              f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
