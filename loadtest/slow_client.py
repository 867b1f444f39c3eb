#!/usr/bin/env python3
"""A WebSocket client that subscribes to `transactions` and never reads: the
slow-consumer half of loadtest/slow_bench.sh. Holds the connection for N seconds.
  DELTRAN_KEY=dtk_… slow_client.py ADDR SECONDS
The key (an operator's sees every transfer) goes in the handshake's Authorization."""
import os, socket, sys, time

addr, seconds = sys.argv[1], float(sys.argv[2])
key = os.environ.get("DELTRAN_KEY") or sys.exit("set DELTRAN_KEY to an API key")
host, port = addr.split(":")
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall((f"GET /ws HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
if not head.startswith(b"HTTP/1.1 101"):
    sys.exit(f"handshake refused: {head.decode(errors='replace').splitlines()[0]}")
payload = b'{"type":"subscribe","channels":["transactions"]}'
mask = b"\x01\x02\x03\x04"
frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
s.sendall(frame)
time.sleep(seconds)  # never read
