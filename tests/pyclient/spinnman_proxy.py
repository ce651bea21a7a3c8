"""Reaches every board of a job through a spalloc v2 service's proxy with
the published Python v2 client (SpiNNMan's SpallocClient), and prints what
the boards said as one JSON object.

Usage: python spinnman_proxy.py SERVICE_URL USER PASSWORD N_BOARDS

For each board: the job's proxied SCP connection to its Ethernet chip
(`connect_to_board`), SCP's version command sent and its reply read and
decoded by SpiNNMan itself. Then a boot message through the proxied boot
connection (which a board takes without a word). The service's
certificate authority comes from REQUESTS_CA_BUNDLE (HTTPS) and
WEBSOCKET_CLIENT_CA_BUNDLE (the websocket). Every wait is bounded.
"""

import json
import sys

from spinn_utilities.config_holder import set_config
from spinnman.config_setup import unittest_setup
from spinnman.data.spinnman_data_writer import SpiNNManDataWriter
from spinnman.messages.scp.impl import GetVersion
from spinnman.messages.spinnaker_boot import (
    SpinnakerBootMessage, SpinnakerBootOpCode)
from spinnman.spalloc import SpallocClient


def main():
    url, user, password, n_boards = sys.argv[1:5]
    unittest_setup()
    for key in ("spalloc_machine", "spalloc_triad", "spalloc_physical",
                "spalloc_ip_address", "spalloc_width", "spalloc_height",
                "spalloc_max_dead_boards"):
        set_config("Machine", key, "None")
    SpiNNManDataWriter.mock().set_n_required(int(n_boards), None)

    client = SpallocClient(url, user, password)
    job = client.create_job()
    job.wait_until_ready()
    boards = []
    for (x, y), host in sorted(job.get_connections().items()):
        connection = job.connect_to_board(x, y)
        request = GetVersion(x, y, 0)
        request.scp_request_header.sequence = 100 + x + 16 * y
        connection.send(connection.get_scp_data(request))
        result, sequence, data, offset = connection.receive_scp_response(10.0)
        response = request.get_scp_response()
        response.read_bytestring(data, offset)
        info = response.version_info
        boards.append({
            "chip": [x, y], "host": host, "result": result.name,
            "sequence": sequence, "reply_chip": [info.x, info.y],
            "core": info.p, "name": info.name, "hardware": info.hardware,
            "version": list(info.version_number)})
        connection.close()
    boot = job.connect_for_booting()
    boot.send_boot_message(
        SpinnakerBootMessage(SpinnakerBootOpCode.FLOOD_FILL_START, 0, 0, 0))
    boot.close()
    # SpiNNMan's destroy() closes the websocket and at once opens a new
    # connection for its DELETE, while the websocket's receiver thread may
    # still be answering the server's close frame (websocket-client replies
    # to it). Under load that late write lands on the new connection, which
    # has reused the file descriptor, and breaks its TLS handshake. Close the
    # websocket first and wait (bounded) for the receiver to finish;
    # destroy() then finds it closed.
    receiver = job._SpallocJob__proxy_thread
    receiver.close()
    job._SpallocJob__proxy_ping.close()
    job._SpallocJob__proxy_handle.close()
    receiver.join(10.0)
    if receiver.is_alive():
        sys.exit("the proxy's receiver thread did not end within 10 s")
    job.destroy("done by spinnman")
    client.close()
    print(json.dumps({"boards": boards, "boot": "sent"}))


if __name__ == "__main__":
    main()
