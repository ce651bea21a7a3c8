"""The whole life of a job through the published Python client's Job:
create a one-board job, wait until it is ready, destroy it. The counterpart
of examples/bench_lifecycle.rs (run by benches/compare.sh).

Usage: lifecycle.py HOST PORT COUNT
Prints: median_ms=... min_ms=... max_ms=... count=...
"""
import statistics
import sys
import time

from spalloc_client import Job


def life(host, port):
    start = time.perf_counter()
    # Every setting is given, so no configuration file is consulted.
    job = Job(hostname=host, port=port, owner="bench-lifecycle",
              keepalive=60.0, timeout=10.0, reconnect_delay=5.0,
              config_filenames=[], machine=None, tags=None)
    job.wait_until_ready(timeout=10.0)
    job.destroy()
    return (time.perf_counter() - start) * 1e3


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    life(host, port)
    times = sorted(life(host, port) for _ in range(max(count, 1)))
    print(f"median_ms={statistics.median(times):.3f} min_ms={times[0]:.3f} "
          f"max_ms={times[-1]:.3f} count={len(times)}")


main()
