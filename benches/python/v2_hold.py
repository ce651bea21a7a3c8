"""Holds one job through the published Python v2 client (SpiNNMan's
SpallocClient, whose job object keeps it alive from a thread) for SECONDS,
then destroys it: what `spalloc alloc -c 'sleep SECONDS'` does over v2, for
benches/compare.sh to measure the keepalive's cost.

Usage: v2_hold.py SERVICE_URL USER SECONDS
The password comes from SPALLOC_PASSWORD, the service's CA from
REQUESTS_CA_BUNDLE.
"""
import os
import sys
import time

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.spalloc import SpallocClient


def main():
    url, user, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    unittest_setup()
    for key in ("spalloc_machine", "spalloc_triad", "spalloc_physical",
                "spalloc_ip_address", "spalloc_width", "spalloc_height",
                "spalloc_max_dead_boards"):
        set_config("Machine", key, "None")
    SpiNNManDataWriter.mock().set_n_required(1, None)
    client = SpallocClient(url, user, os.environ["SPALLOC_PASSWORD"])
    job = client.create_job()
    job.wait_until_ready()
    time.sleep(seconds)
    job.destroy("held")
    client.close()


main()
