"""The whole life of a job through the published Python v2 client
(SpiNNMan's SpallocClient) over HTTPS: create a one-board job, wait until it
is ready, destroy it. The counterpart of `bench_v2 lifecycle` (run by
benches/compare.sh).

Usage: v2_lifecycle.py SERVICE_URL USER COUNT
The password comes from SPALLOC_PASSWORD, the service's CA from
REQUESTS_CA_BUNDLE. Prints: median_ms=... min_ms=... max_ms=... count=...
"""
import os
import statistics
import sys
import time

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.spalloc import SpallocClient


def life(client):
    start = time.perf_counter()
    job = client.create_job()
    job.wait_until_ready()
    job.destroy("bench")
    return (time.perf_counter() - start) * 1e3


def main():
    url, user, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    unittest_setup()
    for key in ("spalloc_machine", "spalloc_triad", "spalloc_physical",
                "spalloc_ip_address", "spalloc_width", "spalloc_height",
                "spalloc_max_dead_boards"):
        set_config("Machine", key, "None")
    SpiNNManDataWriter.mock().set_n_required(1, None)
    client = SpallocClient(url, user, os.environ["SPALLOC_PASSWORD"])
    life(client)
    times = sorted(life(client) for _ in range(max(count, 1)))
    client.close()
    print(f"median_ms={statistics.median(times):.3f} min_ms={times[0]:.3f} "
          f"max_ms={times[-1]:.3f} count={len(times)}")


main()
