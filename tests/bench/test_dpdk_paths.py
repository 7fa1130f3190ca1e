"""DPDK (net_pcap virtual device) vs pcap_replay on the same generated 5M-message
capture, same run; and per-datagram software latency inside the loop (rdtsc,
burst of 1: rx_burst returned -> decoder done). Opt-in: ``pytest -m bench``.

Each run is a separate ``rxfeed replay`` process (EAL starts once per process);
``messages_per_s`` is the decoder's own count over the loop's wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_MESSAGES", "5000000"))


@pytest.fixture(scope="module")
def capture(bench_day):
    return bench_day(f"day{N}.pcap", N)


def replay(path, *args):
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(path), "--json", *args],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    return json.loads(out)


def test_dpdk_vs_pcap_replay_throughput(capture):
    best = {}
    for _ in range(3):
        for backend in ("pcap_replay", "dpdk"):
            s = replay(capture, "--backend", backend)
            assert s["messages"] == N and s["gaps"] == 0
            best[backend] = max(best.get(backend, 0), s["messages_per_s"])
    ratio = best["pcap_replay"] / best["dpdk"]
    print(f"\npcap_replay {best['pcap_replay'] / 1e6:.2f} M msg/s, dpdk net_pcap {best['dpdk'] / 1e6:.2f} M msg/s; "
          f"DPDK cost per message = {ratio:.2f}x pcap_replay's")


def test_per_datagram_latency(capture):
    for backend in ("pcap_replay", "dpdk"):
        s = replay(capture, "--backend", backend, "--burst", "1", "--latency", "--max-packets", "100000")
        lat = s["latency"]
        per_dgram = s["messages"] / s["packets"]
        print(f"\n{backend}: {lat['bursts']} datagrams of {per_dgram:.1f} messages: p50 {lat['p50']} ns, "
              f"p99 {lat['p99']} ns, p99.9 {lat['p99_9']} ns, max {lat['max']} ns")
        assert lat["bursts"] == s["packets"]


def _frames(path):
    from rxfeed import _runloop
    from rxfeed.backends.pcap_replay._pcap import PcapReader

    r = PcapReader(str(path))
    _runloop.run_native(r.capsule(), _runloop.null_decoder(), 256, 0, 0.0, False)
    return r.stats()["frames"]


def efvi_replay(path, *args):
    env = {**os.environ, "RXF_EFVI_STANDIN_PCAP": str(path)}
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", "efvi", "--json",
                          "-o", "interface=sfc0", "-o", 'filters=["233.54.12.111:26477"]',
                          "-o", f"expected_frames={_frames(path)}", *args],
                         capture_output=True, text=True, check=True, timeout=600, env=env).stdout
    return json.loads(out)


def test_efvi_standin_vs_pcap_replay(capture):
    """ef_vi through the stand-in: the stand-in copies each frame into the
    posted buffer (as a NIC's DMA would), then the backend works in place."""
    best = {}
    for _ in range(3):
        s = replay(capture, "--backend", "pcap_replay")
        best["pcap_replay"] = max(best.get("pcap_replay", 0), s["messages_per_s"])
        s = efvi_replay(capture)
        assert s["messages"] == N and s["gaps"] == 0
        best["efvi"] = max(best.get("efvi", 0), s["messages_per_s"])
    print(f"\npcap_replay {best['pcap_replay'] / 1e6:.2f} M msg/s, efvi stand-in {best['efvi'] / 1e6:.2f} M msg/s; "
          f"ef_vi cost per message = {best['pcap_replay'] / best['efvi']:.2f}x pcap_replay's")
    s = efvi_replay(capture, "--burst", "1", "--latency", "--max-packets", "100000")
    lat = s["latency"]
    print(f"efvi stand-in: per event p50 {lat['p50']} ns, p99 {lat['p99']} ns, p99.9 {lat['p99_9']} ns, "
          f"max {lat['max']} ns")
