#!/usr/bin/env python3
"""A projection of cluster mode to more machines, from loadtest/cluster_bench.sh's
phase 3 (its `scale.txt`: one line per partition count, with the machine's CPU per
acknowledged transfer and the cut-off's p50):

  partitions=2 acknowledged=30000 p50_ms=… p99_ms=… cpu_us_per_transfer=71.5 cut_off_ms p50=92 …

  python3 loadtest/usl_fit.py OUT/scale.txt [CORES]

It is a PROJECTION, not a measurement. Its assumptions:
- each machine has CORES cores (default 2, as this one) and runs one partition: its
  node, its Postgres and a NATS server, and the load is spread evenly over them;
- the work per transfer with N partitions (forwarding, credit legs, the fence, the
  cut-off's share) is what this machine measured with N partitions sharing its cores,
  so a machine of the cluster delivers CORES / w(N) transfers/s and the cluster N
  times that: X(N) = N * CORES / w(N);
- X(N) follows the Universal Scalability Law, X(N) = X(1) N / (1 + s (N - 1) +
  k N (N - 1)), whose contention s and coherency k are fitted by least squares to the
  measured points (N / C(N) - 1 = s (N - 1) + k N (N - 1), C(N) = X(N) / X(1));
- beside the fit, the linear reading: the work per transfer stays what it is with the
  most partitions measured (every transfer already crosses), so X(N) = N * CORES /
  w(widest); neither sees the parts every partition shares (the log's stream leader,
  the coordinator), which docs/SCALE-OUT.md weighs separately;
- the cut-off's time grows linearly with the partitions it waits for (t = a + b N,
  fitted), and must stay well within a window.
Standard library only."""

import re
import sys


def read(path):
    points = {}
    for line in open(path):
        n = re.search(r"partitions=(\d+)", line)
        w = re.search(r"cpu_us_per_transfer=([\d.]+)", line)
        t = re.search(r"cut_off_ms p50=(\d+)", line)
        if n and w:
            points[int(n.group(1))] = (float(w.group(1)), float(t.group(1)) if t else None)
    return points


def least_squares(rows):
    """Solves min |A x - b| for two unknowns: rows of (a1, a2, b)."""
    s11 = sum(a1 * a1 for a1, _, _ in rows)
    s12 = sum(a1 * a2 for a1, a2, _ in rows)
    s22 = sum(a2 * a2 for _, a2, _ in rows)
    t1 = sum(a1 * b for a1, _, b in rows)
    t2 = sum(a2 * b for _, a2, b in rows)
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-12:
        return t1 / s11 if s11 else 0.0, 0.0
    return (t1 * s22 - t2 * s12) / det, (s11 * t2 - s12 * t1) / det


def main():
    points = read(sys.argv[1])
    cores = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    if 1 not in points or len(points) < 2:
        sys.exit("usl_fit: needs the 1-partition point and at least one more")
    x = {n: n * cores * 1e6 / w for n, (w, _) in points.items()}
    c = {n: x[n] / x[1] for n in x}
    rows = [(n - 1, n * (n - 1), n / c[n] - 1) for n in sorted(x) if n > 1]
    sigma, kappa = least_squares(rows)
    if kappa < 0:
        # No coherency cost shows: contention alone, fitted again on its own.
        kappa = 0.0
        sigma = sum(a1 * b for a1, _, b in rows) / sum(a1 * a1 for a1, _, _ in rows)
    sigma = max(sigma, 0.0)
    usl = lambda n: x[1] * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    print("PROJECTION (not measured): one partition per machine of "
          f"{cores:g} cores, work per transfer as measured here")
    for n in sorted(points):
        print(f"measured partitions={n} cpu_us_per_transfer={points[n][0]:.1f} "
              f"capacity_per_machine={cores * 1e6 / points[n][0]:.0f}/s cluster={x[n]:.0f}/s")
    print(f"usl contention={sigma:.4f} coherency={kappa:.6f}")
    peak = ((1 - sigma) / kappa) ** 0.5 if kappa > 0 else float("inf")
    print(f"usl peak at partitions={peak:.0f}" if peak != float("inf") else "usl no peak (coherency 0)")
    cut = [(1.0, n, t) for n, (_, t) in points.items() if t is not None]
    a, b = least_squares(cut) if len(cut) >= 2 else (None, None)
    # The structural reading: past two partitions every transfer of uniform traffic
    # already pays for crossing (forwarding, a credit leg), so the work per transfer
    # stays the largest N's, and the cluster grows with its machines until a shared
    # part (the log's stream, the coordinator) is the limit, which this does not see.
    widest = max(points)
    linear = lambda n: x[1] if n == 1 else n * cores * 1e6 / points[widest][0]
    for n in (1, 2, 3, 10, 100):
        line = (f"projected partitions={n} usl_transfers_per_second={usl(n):.0f} "
                f"linear_transfers_per_second={linear(n):.0f}")
        if a is not None:
            line += f" cut_off_ms={a + b * n:.0f}"
        print(line)


if __name__ == "__main__":
    main()
