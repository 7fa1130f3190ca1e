"""Fuzz the order books (book.c) with ITCH messages in NASDAQ file framing.

The decoder feeds the C books (BBO, trades and depth-5 snapshots on) and
the independent Python reference (tests/book_reference.py). Properties:
- every book is well formed: bid prices strictly fall and ask prices
  strictly rise from the top, every level has orders and shares, a level's
  FIFO holds exactly its orders and shares, ``bbo()`` is the top level;
- when the books counted no integrity problem, every book equals the
  reference level by level (any input the books do not count as an
  integrity problem must be book-consistent).
"""

from __future__ import annotations

from typing import Any

from rxfeed.protocols.itch50._book import OrderBooks
from tests.book_reference import RefBooks
from tests.fuzz._harness import exact_buffers, fuzz_main, run_decoder


def check_book(books: OrderBooks, loc: int) -> dict[str, list[tuple[int, int, int]]]:
    """Assert that one book is well formed; return its depth."""
    book = books[loc]
    d = book.depth(n=100_000)
    for side, levels, sign in (("B", d["bids"], -1), ("S", d["asks"], 1)):
        prices = [p for p, _, _ in levels]
        assert all(sign * (b - a) > 0 for a, b in zip(prices, prices[1:])), (loc, side, prices)
        for price, shares, orders in levels:
            assert shares > 0 and orders > 0, (loc, side, price, shares, orders)
            q = book.queue(side, price)
            assert len(q) == orders and sum(sh for _, sh in q) == shares, (loc, side, price, q)
    top = tuple((lv[0][0], lv[0][1]) if lv else (0, 0) for lv in (d["bids"], d["asks"]))
    assert book.bbo() == top, (loc, book.bbo(), top)
    return d


def check(data: bytes) -> None:
    """The module's properties for one NASDAQ-framed message stream (``data``)."""
    books = OrderBooks(bbo=True, trades=True, depth=5)
    ref = RefBooks()

    def attach(dec: Any) -> None:
        dec.add_handlers(books)
        dec.subscribe(ref.on)

    run_decoder(exact_buffers(data, 4096), attach, stream=True)
    clean = not any(books.counters()["integrity"].values())
    for loc in sorted({loc for loc, _ in ref.levels} | set(books.symbols().values())):
        d = check_book(books, loc)
        if clean:
            assert d["bids"] == ref.depth(loc, "B") and d["asks"] == ref.depth(loc, "S"), (loc, d)
    books.take_bbo(), books.take_trades(), books.take_depth()


if __name__ == "__main__":
    fuzz_main(check)
