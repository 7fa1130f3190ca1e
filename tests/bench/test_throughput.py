"""Throughput on a generated 5M-message day (opt-in: ``pytest -m bench``).

Same file, same run: rxfeed's three outputs, the floor (a C loop that only
walks the length prefixes), the MoldUDP64-in-pcap path, and the fastest
Python ITCH package from PyPI we found (itchfeed, which uses its C++ backend
itchcpp when installed). Ratios are printed at the end and written to
``.benchmarks/rxfeed-throughput.json``; nothing here asserts a timing.

``RXFEED_BENCH_MESSAGES`` changes the day's size (default 5,000,000).
"""

from __future__ import annotations

import json
import mmap
import os
import platform
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._decoder import count_framed
from rxfeed.protocols.itch50._handlers import ChecksumHandler

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_MESSAGES", "5000000"))
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def day(bench_day):
    return {"itch": bench_day(f"day{N}.itch", N), "pcap": bench_day(f"day{N}.pcap", N)}


def _record(benchmark, name, messages):
    mps = messages / benchmark.stats.stats.min
    RESULTS[name] = mps
    benchmark.extra_info["messages"] = messages
    benchmark.extra_info["messages_per_s_best"] = round(mps)


def _run(backend, path, setup):
    pipe = Pipeline(backend, "itch50", backend_config={"path": str(path)})
    setup(pipe.decoder)
    s = pipe.run()
    pipe.close()
    return s.messages


def test_floor_walk_length_prefixes(benchmark, day):
    with open(day["itch"], "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        n = benchmark.pedantic(lambda: count_framed(m), rounds=5, iterations=1)
    assert n == N
    _record(benchmark, "floor", n)


def test_a_c_handler_every_field(benchmark, day):
    n = benchmark.pedantic(lambda: _run("nasdaq_file", day["itch"], lambda d: d.add_handlers(ChecksumHandler())),
                           rounds=5, iterations=1)
    assert n == N
    _record(benchmark, "a_c_handler", n)


def test_a_c_handler_moldudp64_pcap(benchmark, day):
    n = benchmark.pedantic(lambda: _run("pcap_replay", day["pcap"], lambda d: d.add_handlers(ChecksumHandler())),
                           rounds=5, iterations=1)
    assert n == N
    _record(benchmark, "a_c_handler_pcap", n)


def test_b_numpy_batches(benchmark, day):
    n = benchmark.pedantic(lambda: _run("nasdaq_file", day["itch"], lambda d: d.subscribe_batches(lambda t, a: None)),
                           rounds=3, iterations=1)
    _record(benchmark, "b_numpy_batches", n)


def test_c_python_callbacks(benchmark, day):
    def setup(d):
        d.subscribe(lambda m: None)

    n = benchmark.pedantic(lambda: _run("nasdaq_file", day["itch"], setup), rounds=3, iterations=1)
    _record(benchmark, "c_python_callbacks", n)


def test_peer_itchfeed(benchmark, day):
    import itch  # the bench extra, installed by scripts/dev.sh
    import itch.parser as itch_parser

    def parse():
        n = 0
        with open(day["itch"], "rb") as f:
            for _ in itch_parser.MessageParser().parse_file(f):
                n += 1
        return n

    n = benchmark.pedantic(parse, rounds=2, iterations=1)
    assert n == N
    _record(benchmark, "peer_itchfeed" + ("_cpp" if getattr(itch, "USING_CPP_BACKEND", False) else ""), n)


def test_zz_report():
    peer = next((v for k, v in RESULTS.items() if k.startswith("peer_")), None)
    lines = [f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.processor() or '?'}; "
             f"python {platform.python_version()}; {N:,} messages"]
    for k, v in RESULTS.items():
        lines.append(f"{k:24s} {v / 1e6:8.2f} M msg/s")
    ratios = {}
    if "floor" in RESULTS and "a_c_handler" in RESULTS:
        ratios["a_vs_floor"] = RESULTS["a_c_handler"] / RESULTS["floor"]
    if peer:
        for k in ("b_numpy_batches", "c_python_callbacks"):
            if k in RESULTS:
                ratios[f"{k}_vs_peer"] = RESULTS[k] / peer
    if "a_c_handler_pcap" in RESULTS and "a_c_handler" in RESULTS:
        ratios["pcap_cost_per_msg_vs_file"] = RESULTS["a_c_handler"] / RESULTS["a_c_handler_pcap"]
    for k, v in ratios.items():
        lines.append(f"{k:28s} {v:6.2f}x")
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-throughput.json").write_text(json.dumps({"results": RESULTS, "ratios": ratios}, indent=2))
    assert RESULTS, "run the whole module"
