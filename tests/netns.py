"""A veth pair with one end in a network namespace of the test's own, for live
tests: the sender lives in the namespace (10.77.<n>.2), the receiver side stays
in the root namespace (10.77.<n>.1). Removed on exit, whatever happens."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextlib.contextmanager
def veth_pair(tag: str = "a"):
    n = os.getpid() % 200 + (1 if tag == "a" else 0)
    ns, host, peer = f"rxf{os.getpid()}{tag}", f"rxh{os.getpid()}{tag}"[:15], f"rxp{os.getpid()}{tag}"[:15]
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", ns)
        sh("ip", "addr", "add", f"10.77.{n}.1/24", "dev", host)
        sh("ip", "link", "set", host, "up")
        sh("ip", "-n", ns, "addr", "add", f"10.77.{n}.2/24", "dev", peer)
        sh("ip", "-n", ns, "link", "set", peer, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", peer)
        time.sleep(0.2)
        yield {"ns": ns, "host_if": host, "peer_if": peer, "host_ip": f"10.77.{n}.1", "peer_ip": f"10.77.{n}.2"}
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
