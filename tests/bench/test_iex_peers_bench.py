"""IEX DEEP on a generated day against the fastest IEX parsers on PyPI (issue 12; opt-in: ``pytest -m bench``).

Same file (rxfeed's generator, DEEP over IEX-TP in a classic pcap, 16 symbols,
seed 42; gzip of the same bytes for the peer that reads IEX's ``.pcap.gz``
only), same run. Each contender in :data:`CONTENDERS` is run in its own test,
best of a few rounds (pytest-benchmark, ``benchmark.pedantic``); every run
must report exactly the messages of its types that the pcap holds, counted
by an independent reader (``iex_peers.deep_census``), or the test fails. The
peers and how each is driven: ``tests/bench/iex_peers.py``.

Each run is timed by the wall clock and by CPU time: this process's plus, for
a peer that works in child processes (iex-cppparser's gunzip | tcpdump | C++
pipe), its children's; pytest-benchmark's own timer sees neither child CPU
nor (with ``--benchmark-timer=time.process_time``) the children's wall time,
so the rates here come from these clocks. Rates are messages in the file per
second (every contender walks the whole file; iex-cppparser reports only
'T', '8' and '5'). Results are printed by ``test_zz_report`` and written to
``.benchmarks/rxfeed-iex-peers.json``; nothing here asserts a timing.

``RXFEED_IEX_BENCH_MESSAGES`` sets the day (default 400,000, near the issue's
392k-message capture); ``RXFEED_BENCH_ROUNDS`` the rounds (default 3; iex-parser,
minutes a round, at most ``RXFEED_IEX_SLOW_ROUNDS``, default 2).
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
import time
from pathlib import Path

import pytest

from rxfeed.tools.iex_generator import generate_iex

from .iex_peers import IEX_PEERS, Contender, deep_census

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_IEX_BENCH_MESSAGES", "400000"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_ROUNDS", "3"))
SLOW_ROUNDS = int(os.environ.get("RXFEED_IEX_SLOW_ROUNDS", "2"))
#: Contenders slower than ~10k msg/s: a round of theirs takes minutes.
SLOW = {"iex_parser"}
#: Issue 12: rxfeed's DEEP decode + books at least this many times the fastest peer's message rate.
TARGET = 100.0



def rxfeed_deep_decode(path: Path) -> int:
    """rxfeed: pcap_replay -> iex decoder (IEX-TP, every message decoded), counted; no consumer."""
    from rxfeed.pipeline import Pipeline

    with Pipeline("pcap_replay", "iex", backend_config={"path": str(path)}) as pipe:
        return pipe.run().messages


def rxfeed_deep_books(path: Path) -> int:
    """rxfeed: the same with DEEP price-level books for every symbol, BBO changes and trades recorded."""
    from rxfeed.pipeline import Pipeline

    with Pipeline("pcap_replay", "iex", backend_config={"path": str(path)}) as pipe:
        books = pipe.decoder.make_books(bbo=True, trades=True)
        n = pipe.run().messages
        assert books.counters()["messages"] > 0  # the messages the books took (trades, levels, status)
        return n


#: Every contender on the same DEEP day, one test each; test_zz_report prints
#: each rxfeed entry's rate and its ratio to the fastest peer.
CONTENDERS: dict[str, Contender] = {**IEX_PEERS, "rxfeed_deep_decode": Contender(rxfeed_deep_decode),
                                    "rxfeed_deep_books": Contender(rxfeed_deep_books)}
#: name -> {"wall": best msg/s, "cpu": best msg/s}, filled by the tests in this module.
RESULTS: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def deep_day(bench_day) -> dict[str, Path]:
    """The generated DEEP day as ``.pcap`` and the same bytes as ``.pcap.gz``."""
    pcap = bench_day(f"deep{N}.pcap", N, lambda p: generate_iex(p, "deep", N, symbols=16, seed=42))
    return {"pcap": pcap, "pcap_gz": bench_day(f"deep{N}.pcap.gz", N, lambda p: _gzip(pcap, p))}


def _gzip(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, gzip.open(dst, "wb", compresslevel=6) as g:
        shutil.copyfileobj(f, g, 1 << 20)


def _clocks() -> tuple[float, float, float]:
    """(wall, this process's CPU, waited-for children's CPU) in seconds. This
    process's CPU from ``time.process_time`` (ns resolution: rxfeed's runs take
    tens of ms, below ``os.times``' 10 ms tick); children's from ``os.times``."""
    t = os.times()
    return time.perf_counter(), time.process_time(), t.children_user + t.children_system


def test_day_census(deep_day):
    """The day holds N messages, the same in the .pcap and the .pcap.gz."""
    census = deep_census(deep_day["pcap"])
    assert census.messages() == N
    assert deep_census(deep_day["pcap_gz"]) == census


@pytest.mark.parametrize("name", list(CONTENDERS))
def test_deep_day(benchmark, deep_day, name):
    contender = CONTENDERS[name]
    path = deep_day["pcap_gz" if contender.gzip_input else "pcap"]
    expected = deep_census(deep_day["pcap"]).messages(contender.reports)  # counted before any clock runs
    runs: list[tuple[float, float]] = []

    def one_run() -> int:
        w0, c0, k0 = _clocks()
        n = contender.run(path)
        w1, c1, k1 = _clocks()
        runs.append((w1 - w0, (c1 - c0) + ((k1 - k0) if contender.children else 0.0)))
        return n

    rounds = min(ROUNDS, SLOW_ROUNDS) if name in SLOW else ROUNDS
    n = benchmark.pedantic(one_run, rounds=rounds, iterations=1)
    assert n == expected, f"{name} reported {n} messages, the pcap holds {expected} of the types it reports"
    RESULTS[name] = {"wall": N / min(w for w, _ in runs), "cpu": N / min(c for _, c in runs)}
    benchmark.extra_info.update(messages_in_file=N, messages_reported=n, rounds=rounds,
                                **{f"messages_per_s_best_{k}": round(v) for k, v in RESULTS[name].items()})


def test_zz_report():
    assert RESULTS, "run the whole module"
    lines = [f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; IEX DEEP day of "
             f"{N:,} messages; best of {ROUNDS} rounds ({SLOW_ROUNDS} for {', '.join(sorted(SLOW))}); "
             f"load {os.getloadavg()[0]:.1f}"]
    lines += [f"{name:30s} {r['wall'] / 1e3:10.1f} k msg/s wall {r['cpu'] / 1e3:10.1f} k msg/s CPU"
              for name, r in RESULTS.items()]
    ratios: dict[str, dict[str, float]] = {}
    peers = [k for k in RESULTS if k in IEX_PEERS]
    for ours in (k for k in RESULTS if k.startswith("rxfeed") and peers):
        for clock in ("wall", "cpu"):
            best = max(peers, key=lambda k: RESULTS[k][clock])
            ratios.setdefault(ours, {})[clock] = RESULTS[ours][clock] / RESULTS[best][clock]
            lines.append(f"[{clock}] {ours} / {best}: {ratios[ours][clock]:.1f}x (target >= {TARGET:.0f}x)")
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-iex-peers.json").write_text(json.dumps({"messages": N, "best_msg_per_s": RESULTS,
                                                           "ratios": ratios}, indent=2))
