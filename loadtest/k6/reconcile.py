#!/usr/bin/env python3
"""After a k6 run: compare what the engine answered with what it stored.

    reconcile.py clock                       the engine's clock (ms), from its Date header
    reconcile.py check SUMMARY RUN_ID SINCE  reconcile a run (SUMMARY: k6 --summary-export)
    reconcile.py steps SUMMARY               the stress scenario's table, step by step

BASE_URL and OPERATOR_KEY come from the environment, as for the scenarios.

The definition `check` applies (loadtest/k6/README.md says the same):
  * every `202` answer to a submission that is not a replay is a transfer stored
    exactly once and accepted: the count of those answers (k6 counter
    `transfers_accepted`) must equal the count of stored transfers of this run whose
    status is not `rejected` (`accepted`, `netted` or `settled`: the status follows
    the window; or `queued`, `expired`, `cancelled`, which are stored transfers too);
  * every `422` answer carrying a `transaction_id` is a stored rejection: its count
    (`transfers_rejected`) must equal the stored transfers of this run whose status is
    `rejected`;
  * "of this run": the idempotency key starts with `RUN_ID-` (every submission of a
    run carries a fresh key with that prefix, lib.js `nextIdempotencyKey`), and no key
    is stored twice;
  * answers that do not tell whether a transfer was stored (`transfers_unsure`: a 5xx
    other than `503 overloaded`, or no answer) widen the check to
    answered <= stored <= answered + unsure, and the run says so.
The stored transfers are read with `GET /api/v1/transfers` and the operator key,
paged from a cursor just before SINCE (transfer ids are UUIDv7, sorted by creation
time, and the list is in id order), so an engine's older transfers are skipped.
"""

import json
import os
import sys
import urllib.request
from email.utils import parsedate_to_datetime

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:8080").rstrip("/")
OPERATOR_KEY = os.environ.get("OPERATOR_KEY", "")
# Transfers made up to this long before the engine's clock read at the start count:
# the Date header has whole seconds.
SINCE_MARGIN_MS = 5000


def get(path):
    request = urllib.request.Request(BASE_URL + path, headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.headers, json.loads(answer.read() or b"null")


def clock():
    headers, _ = get("/health")
    print(int(parsedate_to_datetime(headers["Date"]).timestamp() * 1000))


def cursor_at(ms):
    """A transfer id (UUIDv7) sorting before every transfer made from `ms` on."""
    text = f"{max(0, ms):012x}"
    return f"{text[:8]}-{text[8:12]}-7000-8000-000000000000"


def stored_transfers(run_id, since_ms):
    prefix = f"{run_id}-"
    cursor, found = cursor_at(since_ms - SINCE_MARGIN_MS), []
    while True:
        _, page = get(f"/api/v1/transfers?limit=1000&cursor={cursor}")
        found += [t for t in page["transactions"] if (t.get("idempotency_key") or "").startswith(prefix)]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def counter(summary, name):
    return int(summary["metrics"].get(name, {}).get("count", 0))


def check(summary_path, run_id, since_ms):
    with open(summary_path) as f:
        summary = json.load(f)
    answered = {name: counter(summary, f"transfers_{name}") for name in
                ("accepted", "rejected", "refused", "unsure", "replayed", "invalid")}
    stored = stored_transfers(run_id, int(since_ms))
    keys = [t["idempotency_key"] for t in stored]
    stored_rejected = sum(1 for t in stored if t["status"] == "rejected")
    stored_accepted = len(stored) - stored_rejected
    unsure = answered["unsure"]

    print(f"reconciliation of run {run_id} against {BASE_URL}:")
    print("  answers to submissions: " + ", ".join(f"{k} {v}" for k, v in answered.items()))
    failures = []
    for what, said, kept in (("accepted (202)", answered["accepted"], stored_accepted),
                             ("rejected (422 with transaction_id)", answered["rejected"], stored_rejected)):
        exact = said == kept
        within = said <= kept <= said + unsure
        verdict = "OK" if exact else ("OK within the unsure answers" if within else "MISMATCH")
        print(f"  {what}: answered {said}, stored {kept}: {verdict}")
        if not within:
            failures.append(what)
    if len(set(keys)) != len(keys):
        print(f"  MISMATCH: {len(keys) - len(set(keys))} idempotency keys stored more than once")
        failures.append("duplicates")
    if failures:
        print("reconciliation: FAILED")
        return 1
    print("reconciliation: OK")
    return 0


def steps(summary_path):
    """The stress scenario's steps: target rate, what was sent and answered, p95."""
    with open(summary_path) as f:
        metrics = json.load(f)["metrics"]
    step_seconds = float(metrics.get("stress_step_seconds", {}).get("value", 0)) or None
    targets = sorted({int(name.split("step:")[1].rstrip("}")) for name in metrics if "{step:" in name})
    if not targets:
        return 0
    print("stress, step by step:")
    print(f"  {'target/s':>9} {'sent/s':>8} {'202':>8} {'503':>8} {'other':>6} {'p95 ms':>8} {'p99 ms':>8}")
    first_refusal = None
    for target in targets:
        sub = lambda name: metrics.get(f"{name}{{step:{target}}}", {})
        sent = int(sub("http_reqs").get("count", 0))
        accepted = int(sub("transfers_accepted").get("count", 0))
        refused = int(sub("transfers_refused").get("count", 0))
        duration = sub("http_req_duration")
        rate = f"{sent / step_seconds:8.0f}" if step_seconds else f"{'?':>8}"
        print(f"  {target:>9} {rate} {accepted:>8} {refused:>8} {sent - accepted - refused:>6}"
              f" {duration.get('p(95)', 0):>8.1f} {duration.get('p(99)', 0):>8.1f}")
        if refused and first_refusal is None:
            first_refusal = (target, sent / step_seconds if step_seconds else None)
    dropped = int(metrics.get("dropped_iterations", {}).get("count", 0))
    if first_refusal:
        target, sent = first_refusal
        print(f"503s start at the step of {target}/s (sent {sent:.0f}/s)" if sent else f"503s start at the step of {target}/s")
    else:
        print(f"no 503 up to the last step ({targets[-1]}/s)")
    if dropped:
        print(f"k6 dropped {dropped} iterations: it could not start them at the target rate (every VU was"
              " waiting for an answer, or k6 was short of CPU); sent/s is what the engine was offered")
    return 0


def main(args):
    if args[:1] == ["clock"]:
        return clock()
    if args[:1] == ["check"] and len(args) == 4:
        return check(*args[1:])
    if args[:1] == ["steps"] and len(args) == 2:
        return steps(args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
