"""Round trips per second through the published Python client's
ProtocolClient: `version` calls on one connection, the counterpart of
examples/bench_rpc.rs (run by benches/compare.sh).

Usage: rpc_rate.py HOST PORT SECONDS
Prints: calls_per_s=... calls=...
"""
import sys
import time

from spalloc_client import ProtocolClient


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    client = ProtocolClient(host, port)
    client.connect(timeout=10.0)
    for _ in range(200):
        client.version(timeout=10.0)
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(64):
            client.version(timeout=10.0)
        calls += 64
        if time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    client.close()
    print(f"calls_per_s={calls / elapsed:.0f} calls={calls}")


main()
