"""The latency lab end to end at a small size (seconds): namespace and veth
created and removed, a paced sender, every available receive path, one-way
latency per datagram and loss, a table and a CDF PNG."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_latency_small(tmp_path):
    png = tmp_path / "cdf.png"
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "bench", "latency", "-n", "3000", "--rates", "2000",
                          "--png", str(png), "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    paths = {r["path"] for r in rows}
    assert {"kernel_blocking", "kernel_busy_poll", "dpdk_af_packet", "dpdk_af_xdp", "efvi_standin"} <= paths
    for r in rows:
        assert "error" not in r, r
        assert r["messages_sent"] == 3000 and r["loss_pct"] == 0.0, r
        assert 0 < r["p50_us"] <= r["p99_us"] <= r["max_us"]
        assert r["rxfeed_p99_ns"] > 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before
