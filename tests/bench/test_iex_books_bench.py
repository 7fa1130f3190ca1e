"""IEX books per message against rxfeed's ITCH books (issue 12; opt-in: ``pytest -m bench``).

Same run, interleaved rounds, CPU time of this process: a generated ITCH day
(pcap of MoldUDP64 datagrams) through the itch50 decoder with full-depth books
(BBO changes and trades recorded), and generated IEX days of the same message
count through the iex decoder with DEEP price-level books, DEEP+ order-by-order
books and TOPS top of book (BBO changes and trades recorded). Each figure is
the whole run (pcap read, session layer, decode, books) divided by its
messages: what a user pays per message. The per-datagram latency histogram
(rdtsc inside the loop, burst 1) is printed for ITCH and DEEP.

``RXFEED_IEX_BENCH_MESSAGES`` sets the days (default 1,000,000);
``RXFEED_BENCH_ROUNDS`` the rounds (default 5). Nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pytest

from rxfeed.pipeline import Pipeline
from rxfeed.tools.generator import generate
from rxfeed.tools.iex_generator import generate_iex

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_IEX_BENCH_MESSAGES", "1000000"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_ROUNDS", "5"))
FEEDS = {"itch50": None, "iex DEEP": "deep", "iex DEEP+": "deep+", "iex TOPS": "tops"}


@pytest.fixture(scope="module")
def days(bench_day) -> dict[str, Path]:
    out = {"itch50": bench_day(f"itch{N}.pcap", N, lambda p: generate(p, N, symbols=16, seed=42))}
    for name, feed in FEEDS.items():
        if feed:
            out[name] = bench_day(f"{feed}{N}.pcap", N, lambda p, f=feed: generate_iex(p, f, N, 16, 42))
    return out


def books_run(path: Path, decoder: str, latency: bool = False) -> tuple[float, int, dict | None]:
    """(CPU seconds, messages, latency summary) of one run with books attached."""
    with Pipeline("pcap_replay", decoder, backend_config={"path": str(path)},
                  run={"latency": latency, "burst": 1} if latency else None) as pipe:
        books = pipe.decoder.make_books(bbo=True, trades=True)
        c0 = time.process_time()
        s = pipe.run()
        c1 = time.process_time()
        assert s.error is None and books.counters()["messages"] > 0
        return c1 - c0, s.messages, s.latency


def test_books_per_message_iex_vs_itch(days):
    best: dict[str, float] = {}
    for _ in range(ROUNDS):  # interleaved: a noisy moment costs every contender alike
        for name in FEEDS:
            secs, n, _ = books_run(days[name], "itch50" if name == "itch50" else "iex")
            assert n == N
            best[name] = min(best.get(name, float("inf")), secs / n * 1e9)
    lat = {name: books_run(days[name], "itch50" if name == "itch50" else "iex", latency=True)[2]
           for name in ("itch50", "iex DEEP")}
    lines = [f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; {N:,} messages per "
             f"day; best of {ROUNDS} interleaved rounds, CPU ns per message (read + session + decode + books); "
             f"load {os.getloadavg()[0]:.1f}"]
    lines += [f"{name:12s} {ns:7.1f} ns/msg  ({1e3 / ns:6.2f} M msg/s)  itch50/this {best['itch50'] / ns:5.2f}x"
              for name, ns in best.items()]
    lines += [f"latency per datagram, {name}: {json.dumps(v)}" for name, v in lat.items()]
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-iex-books.json").write_text(json.dumps({"messages": N, "ns_per_message": best,
                                                           "latency": lat}, indent=2))
