#!/usr/bin/env python3
"""The poisoning client of loadtest/poison_bench.sh: one keep-alive connection to
127.0.0.1:PORT sending a transfer every INTERVAL_MS, at most COUNT of them and for at
most SECONDS, then printing its answers by status (`poisoner_status_<code>=n`).
  DELTRAN_KEY=dtk_… poison_client.py PORT SECONDS COUNT [nul|overflow] [INTERVAL_MS]
nul: the reference holds a NUL byte (valid JSON `\\u0000`, text Postgres cannot store).
overflow: 1e14 AED to INR, whose converted amount is too large for its column (needs
the corridor maximum and ENBD's cap raised, as poison_bench.sh does)."""
import http.client, json, os, sys, time
from collections import Counter

port, seconds, count = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
kind = sys.argv[4] if len(sys.argv) > 4 else "nul"
interval = (float(sys.argv[5]) if len(sys.argv) > 5 else 5.0) / 1000
key = os.environ.get("DELTRAN_KEY") or sys.exit("set DELTRAN_KEY to an API key")

if kind == "nul":
    transfer = {"sender_bank": "ICICI", "receiver_bank": "ENBD", "amount": "777.77",
                "from_currency": "INR", "to_currency": "AED", "reference": "a\u0000b"}
elif kind == "overflow":
    transfer = {"sender_bank": "ENBD", "receiver_bank": "HDFC", "amount": "100000000000000.00",
                "from_currency": "AED", "to_currency": "INR", "reference": "too large"}
else:
    sys.exit(f"unknown poison {kind!r}: nul or overflow")
body = json.dumps(transfer)  # json.dumps writes the NUL as \u0000
headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

answers = Counter()
connection = None
deadline = time.monotonic() + seconds
next_send = time.monotonic()
sent = 0
while sent < count and time.monotonic() < deadline:
    time.sleep(max(0.0, next_send - time.monotonic()))
    next_send += interval
    sent += 1
    try:
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/api/v1/transfers", body, headers)
        response = connection.getresponse()
        answer = response.read()
        label = str(response.status)
        if response.status >= 400:
            try:
                label += "_" + json.loads(answer).get("code", "")
            except ValueError:
                pass
        answers[label] += 1
    except (OSError, http.client.HTTPException):
        answers["connection_error"] += 1
        connection = None
print(f"poisoner_sent={sent}")
for label, n in sorted(answers.items()):
    print(f"poisoner_status_{label}={n}")
