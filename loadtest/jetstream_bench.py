"""JetStream figures for credit legs: sync publish latency, pipelined publish
throughput, publish-to-pull-consumer latency and Nats-Msg-Id dedup, for a stream with
3 replicas (CREDITS, credits.>) and one with 1 (CREDITS1, credits1.>).

Run by loadtest/jetstream_bench.sh, which starts the 3-node cluster on 127.0.0.1:
    python3 loadtest/jetstream_bench.py nats://127.0.0.1:14222
Sizes from the environment: SYNC_N=5000 ASYNC_N=100000 INFLIGHT=256 E2E_N=5000
E2E_RATE=2000. BENCH_SERVER_PIDS=n1=PID,n2=PID,... (set by the shell script) adds the
servers' CPU to the throughput line. One asyncio process: publisher and consumer share
its single thread, so its own scheduling is part of every figure.
"""

import asyncio
import json
import os
import sys
import time
import uuid

import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

SYNC_N = int(os.environ.get("SYNC_N", 5000))
ASYNC_N = int(os.environ.get("ASYNC_N", 100000))
INFLIGHT = int(os.environ.get("INFLIGHT", 256))
E2E_N = int(os.environ.get("E2E_N", 5000))
E2E_RATE = float(os.environ.get("E2E_RATE", 2000))
RUN = uuid.uuid4().hex[:12]
PAYLOAD_BYTES = 300


def leg(i, sent_ns=0):
    """A credit leg as JSON, padded to PAYLOAD_BYTES."""
    body = {
        "leg_id": f"{RUN}-{i:08d}",
        "batch_id": f"b-{i // 1000:06d}",
        "from_partition": i % 8,
        "to_partition": (i * 7 + 3) % 8,
        "participant": "BANK%04d" % (i % 500),
        "currency": "AED",
        "amount": "%d.%02d" % (1000 + i % 99000, i % 100),
        "kind": "credit",
        "sent_ns": sent_ns,
        "pad": "",
    }
    raw = json.dumps(body, separators=(",", ":"))
    body["pad"] = "x" * max(0, PAYLOAD_BYTES - len(raw))
    return json.dumps(body, separators=(",", ":")).encode()


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def machine_busy_ticks():
    """All CPUs' non-idle ticks (user nice system irq softirq steal) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def cpu_targets():
    out = [("client", os.getpid())]
    for part in filter(None, os.environ.get("BENCH_SERVER_PIDS", "").split(",")):
        name, pid = part.split("=")
        out.append((name, int(pid)))
    return out


async def ensure_stream(js, name, subjects, replicas):
    cfg = StreamConfig(name=name, subjects=subjects, num_replicas=replicas,
                       storage=StorageType.FILE)
    deadline = time.monotonic() + 60
    while True:
        try:
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                pass
            await js.add_stream(cfg)
            info = await js.stream_info(name)
            leader = info.cluster.leader if info.cluster else "?"
            print(f"stream {name}: replicas={replicas}, leader {leader}", flush=True)
            return
        except Exception as e:  # no meta leader yet, or the stream's group not formed
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not create stream {name}: {e!r}")
            await asyncio.sleep(0.5)


async def msg_count(js, name):
    return (await js.stream_info(name)).state.messages


async def sync_publish(js, tag, subj):
    lat = []
    for i in range(SYNC_N):
        data = leg(i)
        t = time.perf_counter()
        await js.publish(subj, data, headers={"Nats-Msg-Id": f"{RUN}-sync-{i}"})
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    print(f"{tag} sync publish: p50 {pct(lat, 50):.2f} ms p99 {pct(lat, 99):.2f} ms "
          f"max {lat[-1]:.1f} ms ({SYNC_N} msgs)", flush=True)


async def async_publish(js, tag, subj, stream):
    before = await msg_count(js, stream)
    sem = asyncio.Semaphore(INFLIGHT)
    acks = errors = dups = 0
    payloads = [leg(i) for i in range(ASYNC_N)]  # built ahead: not part of the timing

    async def one(i):
        nonlocal acks, errors, dups
        try:
            ack = await js.publish(subj, payloads[i], timeout=30,
                                   headers={"Nats-Msg-Id": f"{RUN}-async-{i}"})
            acks += 1
            if ack.duplicate:
                dups += 1
        except Exception:
            errors += 1
        finally:
            sem.release()

    targets = cpu_targets()
    c0 = {n: cpu_ticks(p) for n, p in targets}
    m0 = machine_busy_ticks()
    t0 = time.perf_counter()
    tasks = []
    for i in range(ASYNC_N):
        await sem.acquire()
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    dt = time.perf_counter() - t0
    c1 = {n: cpu_ticks(p) for n, p in targets}
    m1 = machine_busy_ticks()
    after = await msg_count(js, stream)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = ", ".join(f"{n} {100.0 * (c1[n] - c0[n]) / hz / dt:.0f}%" for n, _ in targets)
    ours = sum(c1[n] - c0[n] for n, _ in targets)
    cpu += (f"; whole machine {100.0 * (m1 - m0) / hz / dt:.0f}% of {100 * os.cpu_count()}%, "
            f"other processes {100.0 * max(0, (m1 - m0) - ours) / hz / dt:.0f}%")
    print(f"{tag} async publish: {ASYNC_N / dt:,.0f} msgs/s ({ASYNC_N} msgs in {dt:.2f} s, "
          f"{INFLIGHT} in flight, {acks} acks, {errors} errors, {dups} duplicates, "
          f"stream +{after - before})", flush=True)
    print(f"{tag} async publish CPU (% of one core): {cpu}", flush=True)


async def end_to_end(js, tag, subj, stream):
    durable = f"e2e_{stream.lower()}"
    await js.add_consumer(stream, ConsumerConfig(
        durable_name=durable, ack_policy=AckPolicy.EXPLICIT, filter_subject=subj,
        max_ack_pending=20000))
    psub = await js.pull_subscribe(subj, durable=durable, stream=stream)
    lat = []
    fetches = []
    done = asyncio.Event()

    async def consume():
        deadline = time.monotonic() + E2E_N / E2E_RATE + 30
        while len(lat) < E2E_N and time.monotonic() < deadline:
            try:
                msgs = await psub.fetch(batch=256, timeout=1)
            except nats.errors.TimeoutError:
                continue
            now = time.perf_counter_ns()
            fetches.append(len(msgs))
            for m in msgs:
                lat.append((now - json.loads(m.data)["sent_ns"]) / 1e6)
                await m.ack()
        done.set()

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.2)  # the first pull request is out before the first message
    pubs = []
    t0 = time.perf_counter()
    for i in range(E2E_N):
        delay = t0 + i / E2E_RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        data = leg(i, sent_ns=time.perf_counter_ns())
        pubs.append(asyncio.create_task(
            js.publish(subj, data, timeout=30, headers={"Nats-Msg-Id": f"{RUN}-e2e-{i}"})))
    sent_dt = time.perf_counter() - t0
    res = await asyncio.gather(*pubs, return_exceptions=True)
    perr = sum(isinstance(r, Exception) for r in res)
    await done.wait()
    await consumer
    info = await js.consumer_info(stream, durable)
    lat.sort()
    print(f"{tag} end-to-end (publish -> pull fetch, ack each): p50 {pct(lat, 50):.2f} ms "
          f"p99 {pct(lat, 99):.2f} ms max {lat[-1] if lat else float('nan'):.1f} ms "
          f"({len(lat)}/{E2E_N} delivered at {E2E_N / sent_dt:,.0f}/s, {perr} publish errors, "
          f"{info.num_ack_pending} unacked; {len(fetches)} fetches of batch<=256, "
          f"mean {sum(fetches) / max(1, len(fetches)):.1f}, largest {max(fetches, default=0)})",
          flush=True)
    await psub.unsubscribe()


async def dedup(js, tag, subj, stream):
    mid = f"{RUN}-dedup"
    a1 = await js.publish(subj, leg(0), headers={"Nats-Msg-Id": mid})
    n1 = await msg_count(js, stream)
    a2 = await js.publish(subj, leg(0), headers={"Nats-Msg-Id": mid})
    n2 = await msg_count(js, stream)
    ok = (not a1.duplicate) and a2.duplicate is True and n2 == n1 and a2.seq == a1.seq
    print(f"{tag} dedup: first duplicate={bool(a1.duplicate)} seq {a1.seq}, second "
          f"duplicate={a2.duplicate} seq {a2.seq}, stream count {n1} -> {n2}: "
          f"{'OK' if ok else 'FAILED'}", flush=True)
    return ok


async def main(url):
    m0, t0 = machine_busy_ticks(), time.perf_counter()
    ours0 = sum(cpu_ticks(p) for _, p in cpu_targets())
    nc = await nats.connect(url, max_reconnect_attempts=5)
    js = nc.jetstream(timeout=10)
    ok = True
    for stream, prefix, replicas in (("CREDITS", "credits", 3), ("CREDITS1", "credits1", 1)):
        await ensure_stream(js, stream, [f"{prefix}.>"], replicas)
    for stream, prefix, replicas in (("CREDITS", "credits", 3), ("CREDITS1", "credits1", 1)):
        tag = f"R{replicas}"
        await sync_publish(js, tag, f"{prefix}.sync")
        await async_publish(js, tag, f"{prefix}.async", stream)
        await end_to_end(js, tag, f"{prefix}.e2e", stream)
        ok = await dedup(js, tag, f"{prefix}.dedup", stream) and ok
    await nc.drain()
    dt = time.perf_counter() - t0
    hz = os.sysconf("SC_CLK_TCK")
    ours = sum(cpu_ticks(p) for _, p in cpu_targets()) - ours0
    others = 100.0 * max(0, machine_busy_ticks() - m0 - ours) / hz / dt
    print(f"other processes on the machine during the run: {others:.0f}% of one core on average"
          f"{' (the figures above are disturbed)' if others > 15 else ''}", flush=True)
    if not ok:
        sys.exit("dedup check failed")
    print("jetstream bench done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:14222"))
