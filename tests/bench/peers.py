"""The peers rxfeed is measured against, each driven through its fastest
documented path (the ``bench`` extra installs them: ``pip install -e .[bench]``).

- Decode: itchfeed with its C++ backend itchcpp (``itch.USING_CPP_BACKEND``).
  :func:`require_itchcpp` raises instead of letting a benchmark fall back to
  pure-Python itchfeed, which is ~5x slower and would inflate every ratio.
- Books: itch-book's C++ session (full-depth L3 books for every locate, one
  row per best bid/offer change, ``Session(["bbo"])``), and itchcpp's
  ``BookManager`` (L3 books per tracked symbol, BBO readable at the end only).

Every function returns the number of messages the peer reports having handled,
so a benchmark can check it saw the whole file.
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: itch-book's own chunk size when it reads a file (``itch_book.Feed``).
ITCH_BOOK_CHUNK = 8 << 20


class PeerMissing(RuntimeError):
    """A peer is absent or running a slow fallback: the comparison would be meaningless."""


def require_itchcpp() -> Any:
    """``itch.parser.MessageParser``, checked to be itchcpp's C++ class; raises otherwise."""
    try:
        import itch
        import itch.parser
    except ImportError as e:
        raise PeerMissing("itchfeed is not installed: pip install -e '.[bench]'") from e
    if itch.USING_CPP_BACKEND is not True:
        raise PeerMissing("itchfeed is running pure Python (itch.USING_CPP_BACKEND is not True): install itchcpp "
                          "(pip install -e '.[bench]') and unset ITCH_NO_CPP; the ratios would be against a weak peer")
    parser = itch.parser.MessageParser
    if not parser.__module__.startswith("itchcpp"):
        raise PeerMissing(f"itch.parser.MessageParser is {parser.__module__}.{parser.__qualname__}, not itchcpp's")
    return parser


def itchcpp_parse_file(path: Path) -> int:
    """itchfeed+itchcpp: ``parse_file`` iterator, each message counted by a Python
    callable, the loop run by ``deque(maxlen=0)`` (no Python ``for``)."""
    parser = require_itchcpp()
    counted = _Counted()
    with open(path, "rb") as f:
        collections.deque(map(counted, parser().parse_file(f)), maxlen=0)
    return counted.n


def itchcpp_parse_messages(path: Path) -> int:
    """itchfeed+itchcpp: ``parse_messages(file, callback)``, a Python callback per message."""
    parser = require_itchcpp()
    counted = _Counted()
    with open(path, "rb") as f:
        parser().parse_messages(f, counted)
    return counted.n


class _Counted:
    """The cheapest Python consumer: counts what it is given."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, message: object) -> None:
        self.n += 1


#: The itchcpp parse paths measured; the peer's number is the best of them.
ITCHCPP_PARSE_PATHS: dict[str, Callable[[Path], int]] = {
    "parse_file": itchcpp_parse_file,
    "parse_messages": itchcpp_parse_messages,
}


def itch_book_bbo_memmap(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    """itch-book: the whole file mapped (numpy memmap, zero copy) and fed to one
    C++ ``Session(["bbo"])``; returns (messages, the BBO-change table)."""
    from itch_book._core import Session

    session = Session(["bbo"], 0, [])
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        session.feed(data)
    finally:
        del data
    return _finished(session, path), session.take_bbo()


def itch_book_bbo_chunked(path: Path) -> tuple[int, dict[str, np.ndarray]]:
    """itch-book: the file read in its own 8 MiB chunks into one C++
    ``Session(["bbo"])``, rows reserved as ``itch_book.Feed`` does (no reader thread)."""
    from itch_book._core import Session

    session = Session(["bbo"], 0, [])
    session.reserve(1_000_000 + ITCH_BOOK_CHUNK // 21)
    parts = []
    with open(path, "rb") as f:
        while chunk := f.read(ITCH_BOOK_CHUNK):
            session.feed(chunk)
            if session.rows() >= 1_000_000:
                parts.append(session.take_bbo())
    parts.append(session.take_bbo())
    return _finished(session, path), {k: np.concatenate([p[k] for p in parts]) for k in parts[-1]}


#: Every table itch-book's C++ session decodes into numpy (all but the directory).
ITCH_BOOK_DECODE_TABLES = ["trades", "messages", "noii", "halts", "reg_sho", "luld"]


def itch_book_numpy_tables(path: Path) -> int:
    """itch-book as a decoder into numpy: the whole file mapped and fed to one C++
    session asked for every table it has (A F E C X D U as order-by-order rows,
    trades P Q B, NOII, halts, Reg SHO, LULD, system events), then each table
    taken. It also keeps every book (it cannot decode E/C/X/D/U without them)
    and leaves L V W K N O undecoded (counted only)."""
    from itch_book._core import Session

    session = Session(ITCH_BOOK_DECODE_TABLES, 0, [])
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        session.feed(data)
    finally:
        del data
    for table in ITCH_BOOK_DECODE_TABLES + ["events"]:
        getattr(session, f"take_{table}")()
    return _finished(session, path)


def _finished(session: Any, path: Path) -> int:
    """Messages the session decoded; raises if it left bytes or refused any."""
    stats = session.stats()
    if stats["pending_bytes"] or stats["malformed"]:
        raise AssertionError(f"itch-book did not take all of {path}: {stats}")
    return int(stats["messages"])


#: The itch-book paths measured; the peer's number is the best of them.
ITCH_BOOK_PATHS: dict[str, Callable[[Path], tuple[int, dict[str, np.ndarray]]]] = {
    "memmap": itch_book_bbo_memmap,
    "chunked": itch_book_bbo_chunked,
}


def itchcpp_books(path: Path, symbols: list[str]) -> tuple[int, Any]:
    """itchcpp's ``BookManager``: every symbol tracked, the file read and
    processed in one C++ pass; returns (messages in the file, the manager).
    It emits no BBO events: its BBO is read per symbol at the end."""
    from itchcpp.book import BookManager

    books = BookManager()
    for s in symbols:
        books.track_symbol(s)
    books.process_stream(Path(path).read_bytes())
    return count_messages(Path(path)), books


@functools.lru_cache(maxsize=8)
def count_messages(path: Path) -> int:
    """Messages in a NASDAQ-framed file (u16 big-endian length + message),
    counted once per path, so a timed peer run does not pay for it."""
    from rxfeed.protocols.itch50._decoder import count_framed

    return int(count_framed(Path(path).read_bytes()))


def itch_book_as_rxfeed_bbo(table: dict[str, np.ndarray]) -> np.ndarray:
    """itch-book's raw BBO table as rows (timestamp, locate, bid px, bid shares,
    ask px, ask shares), prices in Price(4) units, 0 for an empty side."""
    return np.column_stack([table["ts"].astype(np.int64), table["locate"].astype(np.int64),
                            table["bid_px"].astype(np.int64), table["bid_sz"].astype(np.int64),
                            table["ask_px"].astype(np.int64), table["ask_sz"].astype(np.int64)])


def rxfeed_bbo_rows(bbo: np.ndarray) -> np.ndarray:
    """rxfeed's ``take_bbo()`` in the same column order as :func:`itch_book_as_rxfeed_bbo`."""
    return np.column_stack([bbo["timestamp"].astype(np.int64), bbo["locate"].astype(np.int64),
                            bbo["bid_price"].astype(np.int64), bbo["bid_shares"].astype(np.int64),
                            bbo["ask_price"].astype(np.int64), bbo["ask_shares"].astype(np.int64)])


def itchcpp_final_bbo(books: Any, symbol: str) -> dict[str, int]:
    """itchcpp's BBO for a symbol in rxfeed's ``final_bbo()`` form (Price(4) units, 0 = empty)."""
    q = books.book_for_symbol(symbol).bbo()
    return {"bid_price": round(q.bid_price * 10_000) if q.has_bid else 0,
            "bid_shares": int(q.bid_shares) if q.has_bid else 0,
            "ask_price": round(q.ask_price * 10_000) if q.has_ask else 0,
            "ask_shares": int(q.ask_shares) if q.has_ask else 0}


def assert_books_agree(books: Any, bbo: np.ndarray, itch_book_table: dict[str, np.ndarray], manager: Any,
                       symbols: dict[str, int]) -> dict[str, int]:
    """rxfeed's BBO changes (``take_bbo()``) equal itch-book's row for row, and
    every symbol's final BBO is the same in rxfeed, itch-book and itchcpp's
    ``BookManager``; returns what was compared."""
    ours = rxfeed_bbo_rows(bbo)
    theirs = itch_book_as_rxfeed_bbo(itch_book_table)
    assert ours.shape == theirs.shape, f"BBO changes: rxfeed {len(ours)}, itch-book {len(theirs)}"
    assert np.array_equal(ours, theirs), f"first differing BBO row: {np.argwhere((ours != theirs).any(1))[0]}"
    final = books.final_bbo()
    for sym, loc in symbols.items():
        rows = ours[ours[:, 1] == loc]
        assert len(rows), f"{sym}: no BBO change"
        assert dict(zip(("bid_price", "bid_shares", "ask_price", "ask_shares"), rows[-1, 2:].tolist())) == final[sym]
        assert itchcpp_final_bbo(manager, sym) == final[sym], f"{sym}: itchcpp {itchcpp_final_bbo(manager, sym)}"
    assert books.counters()["integrity"]["unknown_order"] == 0
    return {"bbo_changes": int(len(ours)), "symbols": len(symbols)}
