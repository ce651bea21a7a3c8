"""Drives the published Python v2 client (SpiNNMan's SpallocClient) against
a spalloc v2 service, and prints what it saw as one JSON object.

Usage: python spinnman_v2.py SERVICE_URL USER PASSWORD N_BOARDS

The service's certificate authority comes from REQUESTS_CA_BUNDLE, as for
any program using `requests`. Every wait here is bounded, so a server that
misbehaves makes the script fail rather than hang.
"""

import json
import sys
import time

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.spalloc import SpallocClient, SpallocState


def main():
    url, user, password, n_boards = sys.argv[1:5]
    unittest_setup()
    for key in ("spalloc_machine", "spalloc_triad", "spalloc_physical",
                "spalloc_ip_address", "spalloc_width", "spalloc_height",
                "spalloc_max_dead_boards"):
        set_config("Machine", key, "None")
    SpiNNManDataWriter.mock().set_n_required(int(n_boards), None)

    out = {}
    client = SpallocClient(url, user, password)
    out["version"] = str(client.version)
    machines = client.list_machines()
    out["machines"] = {
        name: {"width": m.width, "height": m.height, "tags": sorted(m.tags),
               "dead_boards": m.dead_boards, "dead_links": m.dead_links}
        for name, m in machines.items()}

    job = client.create_job()
    job.wait_until_ready()
    out["state"] = job.get_state().name
    out["connections"] = sorted(
        [[x, y, host] for (x, y), host in job.get_connections().items()])
    out["root"] = job.get_root_host()
    out["where_is_9_5"] = list(job.where_is_machine(9, 5))
    out["listed"] = len(list(client.list_jobs()))

    # The job object starts a keepalive thread at once; the server shows
    # its host once one has arrived.
    deadline = time.monotonic() + 20
    description = {}
    while time.monotonic() < deadline:
        description = job._get(job._url).json()
        if "keepalive-host" in description:
            break
        time.sleep(0.05)
    out["keepalive_host"] = description.get("keepalive-host")

    # A change of state, seen through the long-poll.
    job.destroy("done by spinnman")
    out["after_destroy"] = job.get_state().name
    out["waited"] = job.wait_for_state_change(SpallocState.READY).name
    out["reason"] = job._get(job._url).json().get("reason")
    client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
