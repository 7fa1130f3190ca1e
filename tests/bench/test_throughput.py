"""Throughput on a generated 5M-message day (opt-in: ``pytest -m bench``).

Same file, same run: rxfeed's three outputs, the floor (a C loop that only
walks the length prefixes), the MoldUDP64-in-pcap path, and the peer: the
fastest Python ITCH 5.0 decoder on PyPI, itchfeed with its C++ backend itchcpp
(every message as a message object), through each of its parse paths; the
best path is the peer's number. For (b), also itch-book's C++ session asked
for every numpy table it has (it decodes fewer types, and keeps books). The peer tests FAIL when itchcpp is not
itchfeed's backend (``itch.USING_CPP_BACKEND``): pure-Python itchfeed is ~5x
slower and would inflate every ratio. Ratios are printed at the end and
written to ``.benchmarks/rxfeed-throughput.json``; nothing here asserts a timing.

``RXFEED_BENCH_MESSAGES`` changes the day's size (default 5,000,000). On a shared
machine add ``--benchmark-timer=time.process_time`` (this process's CPU time).
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

from .peers import ITCHCPP_PARSE_PATHS, itch_book_numpy_tables, require_itchcpp

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


@pytest.mark.parametrize("path_name", sorted(ITCHCPP_PARSE_PATHS))
def test_peer_itchfeed_itchcpp(benchmark, day, path_name):
    require_itchcpp()  # fails (never skips, never falls back) unless itchcpp is itchfeed's backend
    n = benchmark.pedantic(lambda: ITCHCPP_PARSE_PATHS[path_name](day["itch"]), rounds=3, iterations=1)
    assert n == N
    _record(benchmark, f"peer_itchcpp_{path_name}", n)


def test_peer_itch_book_numpy_tables(benchmark, day):
    n = benchmark.pedantic(lambda: itch_book_numpy_tables(day["itch"]), rounds=3, iterations=1)
    assert n == N
    _record(benchmark, "numpy_peer_itch_book_tables", n)


def test_zz_report(request):
    peers = {k: v for k, v in RESULTS.items() if k.startswith("peer_")}
    assert peers, "the peer (itchfeed + itchcpp) was not measured: see test_peer_itchfeed_itchcpp"
    peer_name = max(peers, key=peers.get)
    peer = peers[peer_name]
    lines = [f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.processor() or '?'}; "
             f"python {platform.python_version()}; {N:,} messages; "
             f"timer {request.config.getoption('benchmark_timer')}; "
             f"load {os.getloadavg()[0]:.1f}"]
    for k, v in RESULTS.items():
        lines.append(f"{k:24s} {v / 1e6:8.2f} M msg/s")
    ratios = {}
    if "floor" in RESULTS and "a_c_handler" in RESULTS:
        ratios["a_vs_floor"] = RESULTS["a_c_handler"] / RESULTS["floor"]
    for k in ("a_c_handler", "b_numpy_batches", "c_python_callbacks"):
        if k in RESULTS:
            ratios[f"{k}_vs_peer"] = RESULTS[k] / peer
    if "numpy_peer_itch_book_tables" in RESULTS and "b_numpy_batches" in RESULTS:
        ratios["b_vs_itch_book_tables"] = RESULTS["b_numpy_batches"] / RESULTS["numpy_peer_itch_book_tables"]
    if "a_c_handler_pcap" in RESULTS and "a_c_handler" in RESULTS:
        ratios["pcap_cost_per_msg_vs_file"] = RESULTS["a_c_handler"] / RESULTS["a_c_handler_pcap"]
    for k, v in ratios.items():
        lines.append(f"{k:28s} {v:6.2f}x")
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-throughput.json").write_text(json.dumps({"results": RESULTS, "ratios": ratios, "peer": peer_name},
                                                           indent=2))
    assert RESULTS, "run the whole module"
