"""Fuzz the IEX books (protocols/iex/iex_book.c) with IEX messages.

Input: one byte choosing the feed (its value mod 3: TOPS, DEEP, DEEP+), then
messages as IEX-TP frames them (u16 little-endian length, body; a short last
one kept as it is), fed through the generated decoders and the books' handler
table (``IexBooks.feed_raw``). Properties:
- every book is well formed (the C structure check; levels in price order
  with sizes; a DEEP+ level's queue holds exactly its orders and size);
- when the books counted no integrity problem and the plain-Python
  reference (tests/iex_book_reference.py) takes the same messages, the
  books equal the reference's.
"""

from __future__ import annotations

from rxfeed.protocols.iex._iex_book import IexBooks
from rxfeed.tools.iex_generator import FEEDS
from tests.fuzz._harness import fuzz_main, length_prefixed
from tests.iex_book_reference import REFERENCE
from tests.test_iex_spec import unpack

FEED_OF_BYTE = ("tops", "deep", "deep+")


def check_books(books: IexBooks, feed: str) -> dict:
    """Assert that every book of ``feed`` is well formed; return its levels."""
    assert books._check() == ""
    out = {}
    for sym in books.symbols():
        bk = books.book(sym, feed)
        for side, rows, sign in (("8", bk.bids(), -1), ("5", bk.asks(), 1)):
            prices = [r[0] for r in rows]
            assert all(sign * (b - a) > 0 for a, b in zip(prices, prices[1:])), (sym, side, prices)
            assert all(r[1] > 0 for r in rows), (sym, side, rows)
            for row in rows if feed == "deep+" else ():
                q = bk.queue(side, row[0])
                assert len(q) == row[2] and sum(s for _, s in q) == row[1], (sym, side, row, q)
            if rows:
                out[(sym, side)] = {r[0]: r[1] for r in rows}
    return out


def reference_levels(feed: str, msgs: list[bytes]) -> dict | None:
    """The reference's books after ``msgs``, None when it refuses one of them."""
    ref = REFERENCE[feed]()
    try:
        for raw in msgs:
            ref.on(unpack(FEEDS[feed], raw))
    except (AssertionError, KeyError, ValueError, UnicodeDecodeError):
        return None
    return ref.book()


def check(data: bytes) -> None:
    """The module's properties for one input (``data``)."""
    if not data:
        return
    feed = FEED_OF_BYTE[data[0] % 3]
    msgs = length_prefixed(data[1:], "little")  # as IEX-TP frames messages
    books = IexBooks(bbo=True, trades=True)
    books.feed_raw(feed, msgs)
    got = check_books(books, feed)
    if not any(books.counters()["integrity"].values()):
        want = reference_levels(feed, msgs)
        assert want is None or got == want, (feed, got, want)
    books.take_bbo(), books.take_trades()


if __name__ == "__main__":
    fuzz_main(check)
