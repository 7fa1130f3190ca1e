"""DPDK pollers as lcores (issue 15): the mempool's per-lcore cache used vs
bypassed. Opt-in: ``pytest -m bench -k dpdk_lcore``.

The same poller thread (``run_parallel``: a thread that is not an EAL lcore,
as every poller of a multi-queue port) either registers itself as an lcore
(``register_lcores = true``: its mbuf allocations and frees go through its
cache in the pool) or does not (``false``: each one goes to the pool's ring,
as before issue 15). Two sources, each variant on the same source in the same
run, interleaved round by round with the order rotated:

- ``net_pcap`` with ``infinite_rx=1`` over a generated day
  (``RXFEED_BENCH_DPDK_MESSAGES``, default 200,000 messages, ~4,500 frames,
  looped): the PMD allocates a burst, copies each frame into it, the ITCH
  decoder reads it (a loop past the first is duplicates, skipped by
  sequence), rxfeed frees the burst;
- ``net_null``: the PMD allocates a burst of empty 64-byte frames, rxfeed's
  parser drops them (not IPv4), frees the burst: nothing but the pool's
  work, the upper bound of the effect.

Each run is its own process (EAL starts once per process) of
``RXFEED_BENCH_DPDK_FRAMES`` frames (default 2,000,000; net_null 10 times as
many, it is that much faster); its rate is frames over the loop's own wall
time (``elapsed_s``, EAL start and device set-up outside it). Ratios (cached / bypassed throughput) are of the best runs and
the median of the per-round ratios (``tests/bench/timing.py``). Results go to
``.benchmarks/rxfeed-dpdk-lcore.json``; nothing is asserted but that every
run received every frame on the path it was meant to take.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .timing import Runs, machine, ratios

pytestmark = pytest.mark.bench
MESSAGES = int(os.environ.get("RXFEED_BENCH_DPDK_MESSAGES", "200000"))
FRAMES = int(os.environ.get("RXFEED_BENCH_DPDK_FRAMES", "2000000"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_DPDK_ROUNDS", "5"))
VARIANTS = {"cached": {"register_lcores": True}, "bypassed": {"register_lcores": False}}

_RUN = """
import json, sys
from rxfeed import Pipeline
from rxfeed.pipeline import run_parallel
s = run_parallel([Pipeline("dpdk", "itch50", backend_config=json.loads(sys.argv[1]))])[0]
print(s.to_json())
"""


def frames(source: str) -> int:
    """Frames per run of ``source``."""
    return FRAMES * 10 if source == "net_null" else FRAMES


def source_config(source: str, capture: Path) -> dict[str, Any]:
    """The DPDK settings of one source, ``frames(source)`` frames long."""
    common = {"no_pci": True, "lcores": "0", "expected_frames": frames(source), "pool_size": 16383,
              "pool_cache": 256}
    if source == "net_null":
        return {**common, "port": "net_null0", "vdevs": ["net_null0"]}
    return {**common, "port": "net_pcap0", "vdevs": [f"net_pcap0,rx_pcap={capture},infinite_rx=1"]}


def run_once(config: dict[str, Any]) -> dict[str, Any]:
    """backend_stats and loop seconds of one run in a process of its own."""
    out = subprocess.run([sys.executable, "-c", _RUN, json.dumps(config)], capture_output=True, text=True,
                         check=True, timeout=600).stdout
    s = json.loads(out)
    b = s["backend_stats"]
    assert b["frames"] == config["expected_frames"], b
    assert b["lcore_registered"] is config["register_lcores"], b
    return {"elapsed_s": s["elapsed_s"], "lcore_id": b["lcore_id"], "cache_len_at_end": b["pool_cache_len_at_end"]}


def race(source: str, capture: Path) -> dict[str, Runs]:
    """Every variant once per round, the order rotated each round."""
    runs = {name: Runs() for name in VARIANTS}
    names = list(VARIANTS)
    for r in range(ROUNDS):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            got = run_once({**source_config(source, capture), **VARIANTS[name]})
            runs[name].times["wall"].append(got["elapsed_s"])
            runs[name].last = got
    return runs


def test_mempool_cache_used_vs_bypassed(bench_day):
    capture = bench_day(f"day{MESSAGES}.pcap", MESSAGES)
    results: dict[str, Any] = {"machine": machine(f"{FRAMES} frames per run (net_null x10), {ROUNDS} rounds"),
                               "sources": {}}
    print(f"\n{results['machine']}")
    for source in ("net_pcap", "net_null"):
        runs = race(source, capture)
        speed = ratios(runs, "bypassed", "cached", clock="wall")  # time ratio = throughput ratio
        rates = {n: frames(source) / runs[n].best("wall") / 1e6 for n in runs}
        results["sources"][source] = {"mframes_per_s_best": rates, "cached_over_bypassed": speed,
                                      "loop_s": {n: runs[n].times["wall"] for n in runs},
                                      "last": {n: runs[n].last for n in runs}}
        print(f"{source}: cache used {rates['cached']:.2f} M frames/s, bypassed {rates['bypassed']:.2f} M frames/s; "
              f"cached/bypassed throughput {speed['of_best']:.3f}x of best, {speed['median_paired']:.3f}x "
              f"median paired")
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-dpdk-lcore.json").write_text(json.dumps(results, indent=2))
