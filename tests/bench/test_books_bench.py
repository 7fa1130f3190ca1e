"""Books on a generated day against the fastest peers (opt-in: ``pytest -m bench``).

Same file, same process, rounds interleaved, best of ``RXFEED_BENCH_ROUNDS``:

- rxfeed: ``nasdaq_file`` -> ITCH decoder -> ``OrderBooks(bbo=True)`` (full-depth
  L3 books for every locate, one row per best bid/offer change), then
  ``take_bbo()`` (the day's BBO changes as numpy).
- itch-book 0.2.1 (the peer): its C++ ``Session(["bbo"])``, the same job (full-depth
  L3 books with FIFO queues for every locate, one row per BBO price or size
  change), fed the whole file through its fastest paths (memmap, or its own 8 MiB
  chunks), then ``take_bbo()``. Best of the paths.
- itchcpp 1.6.4 ``BookManager`` (second peer): L3 books for every symbol of the
  day, one C++ pass; it emits no BBO events (less work), its BBO is read at the end.

Correctness cross-check, asserted: rxfeed's whole BBO-change sequence equals
itch-book's row for row (timestamp, locate, prices, shares), and every symbol's
final BBO is the same in rxfeed, itch-book and itchcpp.

Also, rxfeed only: the per-message book update latency (rdtsc inside the
handler) and depth-10 snapshots on every top-10 change. meatpy (pure Python)
is a footnote on a 100k-message day.

Issue 13's market day (``test_market_day_books_vs_fastest_peers``): the same
race on ``rxfeed generate --market -n 5000000 --symbols 500`` (cached in
RXFEED_BENCH_DIR as ``market5000000-500.itch``; RXFEED_BENCH_MARKET_MESSAGES /
_SYMBOLS change it), CPU time, plus rxfeed's per-message update p50/p99/max,
live orders at the peak, bytes per live order and the peak RSS of a process
running the books alone. Results in ``.benchmarks/rxfeed-books-market.json``.

Each run is timed by the wall clock and by this process's CPU time (user +
sys: the one to compare on a shared machine, where other jobs take the CPU).
``RXFEED_BENCH_MESSAGES`` sets the day (default 5,000,000, the throughput day).
Results go to ``.benchmarks/rxfeed-books.json``; no timing is asserted.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._book import OrderBooks
from rxfeed.tools.generator import generate_messages, write_nasdaq

from .peers import ITCH_BOOK_PATHS, assert_books_agree, count_messages, itchcpp_books

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_MESSAGES", "5000000"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_ROUNDS", "5"))
#: Issue #5: rxfeed's books at least this many times the peer's message rate.
TARGET = 2.5


@pytest.fixture(scope="module")
def day(bench_day) -> Path:
    return bench_day(f"day{N}.itch", N)


def rxfeed_books(path: Path, **options) -> tuple[int, OrderBooks, np.ndarray | None]:
    """One run: (messages, the books, the BBO changes if ``bbo=True``)."""
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    books = OrderBooks(**options)
    pipe.decoder.add_handlers(books)
    summary = pipe.run()
    bbo = books.take_bbo() if options.get("bbo") else None
    pipe.close()
    return summary.messages, books, bbo


def _timed(fn, *args):
    """(wall seconds, CPU seconds of this process, fn's result)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - w0, time.process_time() - c0, out


def _rate(run) -> float:
    """Messages per CPU second of one ``run()`` that returns its message count."""
    _, cpu, n = _timed(run)
    return n / cpu


def _race(path: Path, symbols: list[str], n: int = N, **options) -> tuple[dict[str, dict[str, float]], dict]:
    """Interleaved rounds; best msg/s per contender (by wall and by CPU time) and the last round's outputs."""
    best: dict[str, dict[str, float]] = {"wall": {}, "cpu": {}}
    last: dict = {}
    for _ in range(ROUNDS):
        contenders = {"rxfeed": lambda: rxfeed_books(path, bbo=True, **options)}
        contenders |= {f"itch_book_{k}": (lambda f=f: f(path)) for k, f in ITCH_BOOK_PATHS.items()}
        contenders["itchcpp_bookmanager"] = lambda: itchcpp_books(path, symbols)
        for name, run in contenders.items():
            wall, cpu, out = _timed(run)
            assert out[0] == n, f"{name} handled {out[0]} of {n} messages"
            for clock, dt in (("wall", wall), ("cpu", cpu)):
                best[clock][name] = max(best[clock].get(name, 0.0), n / dt)
            last[name] = out
    return best, last


def _cross_check(last: dict, symbols: dict[str, int]) -> dict[str, int]:
    """rxfeed's BBO changes == itch-book's (every row, each path); final BBOs agree with itchcpp too."""
    _, books, bbo = last["rxfeed"]
    for name in ITCH_BOOK_PATHS:
        agreed = assert_books_agree(books, bbo, last[f"itch_book_{name}"][1], last["itchcpp_bookmanager"][1], symbols)
    return agreed


def test_books_vs_fastest_peers(day):
    _, books, _ = rxfeed_books(day)
    symbols = books.symbols()
    assert count_messages(day) == N  # counted before the clock runs
    load = os.getloadavg()[0]
    best, last = _race(day, list(symbols))
    agreed = _cross_check(last, symbols)
    lines = [f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; {N:,} messages, "
             f"best of {ROUNDS} interleaved rounds; load {load:.1f} -> {os.getloadavg()[0]:.1f}; "
             f"{agreed['bbo_changes']:,} BBO changes, identical in rxfeed and itch-book; "
             f"final BBO of {agreed['symbols']} symbols identical in all three"]
    ratios = {}
    for clock, rates in best.items():
        peer = max((k for k in rates if k.startswith("itch_book_")), key=rates.get)
        ratios[clock] = {"books_bbo_vs_itch_book": rates["rxfeed"] / rates[peer],
                         "books_bbo_vs_itchcpp_bookmanager": rates["rxfeed"] / rates["itchcpp_bookmanager"]}
        lines += [f"[{clock}] {k:28s} {v / 1e6:8.2f} M msg/s" for k, v in rates.items()]
        lines += [f"[{clock}] {k:36s} {v:6.2f}x  (target >= {TARGET}x: {'met' if v >= TARGET else 'NOT met'})"
                  for k, v in ratios[clock].items()]
    print("\n" + "\n".join(lines))
    _write("rxfeed-books.json", {"messages": N, "rounds": ROUNDS, "best_msg_per_s": best, "ratios": ratios, **agreed})


#: The generated market day of issue 13 (tools/market_generator.py): Zipf-skewed
#: symbols, prices that walk, deep books, a TotalView-like message mix.
MARKET_N = int(os.environ.get("RXFEED_BENCH_MARKET_MESSAGES", "5000000"))
MARKET_SYMBOLS = int(os.environ.get("RXFEED_BENCH_MARKET_SYMBOLS", "500"))


@pytest.fixture(scope="module")
def market_day(bench_day) -> Path:
    from rxfeed.tools.market_generator import generate_market

    return bench_day(f"market{MARKET_N}-{MARKET_SYMBOLS}.itch", MARKET_N,
                     lambda p: generate_market(p, MARKET_N, MARKET_SYMBOLS))


def _rxfeed_alone(path: Path) -> dict:
    """One rxfeed books+BBO run in a fresh process: its peak RSS (MiB) and the books' memory()."""
    code = ("import json, resource, sys; from tests.bench.test_books_bench import rxfeed_books; "
            "_, b, bbo = rxfeed_books(sys.argv[1], bbo=True); "
            "print(json.dumps({**b.memory(), 'bbo_rows': len(bbo), "
            "'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2])
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_market_day_books_vs_fastest_peers(market_day):
    """Issue 13 item 3 on the 5M-message, 500-symbol market day: interleaved rounds
    rxfeed / itch-book / itchcpp (CPU time), the BBO tables compared row for row,
    per-message update p50/p99/max, peak RSS and live orders at the peak."""
    _, books, _ = rxfeed_books(market_day)
    symbols = books.symbols()
    n = count_messages(market_day)
    load = os.getloadavg()[0]
    best, last = _race(market_day, list(symbols), n)
    agreed = _cross_check(last, symbols)
    cpu = best["cpu"]
    peer = max((k for k in cpu if k.startswith("itch_book_")), key=cpu.get)
    ratios = {"vs_itch_book": cpu["rxfeed"] / cpu[peer], "vs_itchcpp": cpu["rxfeed"] / cpu["itchcpp_bookmanager"]}
    _, timed, _ = rxfeed_books(market_day, latency=True)
    lat = timed.latency()
    mem = _rxfeed_alone(market_day)
    lines = [f"market day {n:,} messages, {len(symbols)} symbols, best of {ROUNDS} interleaved rounds, CPU time; "
             f"load {load:.1f} -> {os.getloadavg()[0]:.1f}; {agreed['bbo_changes']:,} BBO changes identical"]
    lines += [f"  {k:28s} {v / 1e6:8.2f} M msg/s  {1e9 / v:6.0f} ns/msg" for k, v in cpu.items()]
    lines += [f"  rxfeed {k}: {v:.2f}x (target >= {TARGET}x)" for k, v in ratios.items()]
    lines += [f"  per-message update: p50 {lat['p50']} ns, p99 {lat['p99']} ns, p99.9 {lat['p99_9']} ns, "
              f"max {lat['max']} ns (target p99 < 150); {lat['over_20us']} of {n:,} updates >= 20 us",
              f"  memory: peak {mem['peak_live_orders']:,} live orders, {mem['bytes'] / 2**20:.1f} MiB of orders, "
              f"index and levels = {mem['bytes_per_peak_live_order']:.1f} B per live order (target <= 64); "
              f"index grew {mem['index_grows']}x; peak RSS of a books-only process {mem['peak_rss_mib']:.0f} MiB"]
    print("\n" + "\n".join(lines))
    _write("rxfeed-books-market.json", {"messages": n, "symbols": len(symbols), "rounds": ROUNDS,
                                        "best_msg_per_s": best, "ratios_cpu": ratios, "latency_ns": lat,
                                        "memory": mem, "load": [load, os.getloadavg()[0]], **agreed})


def test_books_rxfeed_latency_and_depth(day):
    depth = max(_rate(lambda: rxfeed_books(day, depth=10)[0]) for _ in range(3))
    _, books, _ = rxfeed_books(day, latency=True)
    lat = books.latency()
    print(f"\nrxfeed depth-10 snapshot on every top-10 change: {depth / 1e6:.2f} M msg/s (CPU time); "
          f"per-message book update: p50 {lat['p50']} ns, p90 {lat['p90']} ns, p99 {lat['p99']} ns, "
          f"p99.9 {lat['p99_9']} ns, max {lat['max']} ns")


def test_footnote_meatpy(bench_day):
    """meatpy 0.5 (pure Python), for the history only: a 100k day without 'O'
    (meatpy reads 'O' with a layout other than today's 48 bytes and stops)."""
    n = 100_000
    path = bench_day(f"books{n}-noO.itch", n, lambda p: write_nasdaq(
        p, (m for m in generate_messages(n, symbols=16, seed=42) if m[:1] != b"O")))
    ours = max(_rate(lambda: rxfeed_books(path, bbo=True)[0]) for _ in range(3))
    _, dt, seen = _timed(_meatpy_books, path)
    print(f"\nfootnote, {seen:,} messages, CPU time: meatpy {seen / dt / 1e3:.1f} k msg/s; rxfeed books+BBO "
          f"{ours / 1e6:.2f} M msg/s ({ours / (seen / dt):.0f}x)")


def _meatpy_books(path: Path) -> int:
    from meatpy.itch50.itch50_market_processor import ITCH50MarketProcessor
    from meatpy.itch50.itch50_message_reader import ITCH50MessageReader

    procs = {}
    date = datetime.datetime(2019, 12, 30)
    n = 0
    with ITCH50MessageReader(path) as reader:
        for msg in reader:
            n += 1
            loc = getattr(msg, "stock_locate", None)
            if type(msg).__name__ == "StockDirectoryMessage":
                procs[loc] = ITCH50MarketProcessor(msg.stock, date)
            if (p := procs.get(loc)) is not None:
                p.process_message(msg)
            elif loc == 0:
                for p in procs.values():
                    p.process_message(msg)
    return n


def _write(name: str, data: dict) -> None:
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(data, indent=2))
