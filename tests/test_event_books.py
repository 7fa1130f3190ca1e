"""Books rebuilt from event records (rxfeed.event_books, core/src/event_books.c)
against a plain-Python reference model written here: random streams over several
venues and symbols (adds, modifies of every flavour, deletes, levels, bad records)
give the same depth, queues and BBO after every batch; snapshots rebuild identical
books; bad batches and bad snapshots change nothing; refusals are counted."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed.event_books import CHANGED_DTYPE, EventBooks
from rxfeed.events import (EVENT_DTYPE, FLAG_LAST, FLAG_SUSPECT, KIND_DTYPES, EventError, EventKind,
                           TradingState, make_events)

U32 = 2**32 - 1
ORDER_KINDS = (EventKind.ORDER_ADD, EventKind.ORDER_MODIFY, EventKind.ORDER_DELETE)


def ev(kind: EventKind, venue: int = 1, symbol: int = 1, side: bytes = b"", seq: int = 0, **body) -> np.ndarray:
    """One record (EVENT_DTYPE) of ``kind``; body fields by the names of KIND_DTYPES."""
    return make_events(kind, 1, venue=venue, symbol=symbol, side=side, seq=seq, ts=seq * 1000, **body)


def add(venue, symbol, side, price, qty, oid, seq=0):
    return ev(EventKind.ORDER_ADD, venue, symbol, side, seq, price=price, qty=qty, order_id=oid)


def modify(venue, symbol, oid, price, qty, new_id=0, side=b"", seq=0):
    return ev(EventKind.ORDER_MODIFY, venue, symbol, side, seq, price=price, qty=qty, order_id=oid,
              new_order_id=new_id)


def delete(venue, symbol, oid, seq=0):
    return ev(EventKind.ORDER_DELETE, venue, symbol, b"", seq, order_id=oid)


def level(venue, symbol, side, price, qty, seq=0):
    return ev(EventKind.LEVEL, venue, symbol, side, seq, price=price, qty=qty)


def batch(records: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(records) if records else np.zeros(0, dtype=EVENT_DTYPE)


# --- the reference model ---------------------------------------------------------------------------------

class Reference:
    """The semantics of docs/distribution.md ("Rebuilding books from events") in plain Python:
    orders by (venue, id), a FIFO list of ids per (venue, symbol, side, price), level totals."""

    def __init__(self) -> None:
        self.orders: dict[tuple[int, int], list] = {}      # (venue, id) -> [symbol, side, price, qty]
        self.fifo: dict[tuple, list[int]] = defaultdict(list)  # (venue, symbol, side, price) -> ids
        self.levels: dict[tuple, int] = {}                 # (venue, symbol, side, price) -> total

    def apply(self, rec) -> None:
        kind = EventKind(int(rec["kind"]))
        r = np.asarray(rec).reshape(1).view(KIND_DTYPES[kind])[0]
        getattr(self, "_" + kind.name.lower(), lambda r: None)(r)

    def _off(self, venue: int, oid: int) -> None:
        sym, side, price, _ = self.orders.pop((venue, oid))
        q = self.fifo[(venue, sym, side, price)]
        q.remove(oid)
        if not q:
            del self.fifo[(venue, sym, side, price)]

    def _on(self, venue, oid, sym, side, price, qty) -> None:
        self.orders[(venue, oid)] = [sym, side, price, qty]
        self.fifo[(venue, sym, side, price)].append(oid)

    def kind(self, venue: int, sym: int) -> str:
        """What the book holds: "orders", "levels" or "empty" (an empty book takes either)."""
        if any(k[:2] == (venue, sym) for k in self.fifo):
            return "orders"
        return "levels" if any(k[:2] == (venue, sym) for k in self.levels) else "empty"

    def _order_add(self, r) -> None:
        venue, sym, side, qty, oid = int(r["venue"]), int(r["symbol"]), r["side"], int(r["qty"]), int(r["order_id"])
        if not sym or side not in (b"B", b"S") or not 0 < qty <= U32 or (venue, oid) in self.orders:
            return
        if self.kind(venue, sym) == "levels":
            return
        self._on(venue, oid, sym, side, int(r["price"]), qty)

    def _order_modify(self, r) -> None:
        venue, oid, qty, price = int(r["venue"]), int(r["order_id"]), int(r["qty"]), int(r["price"])
        if (venue, oid) not in self.orders:
            return
        sym, old_side, old_price, old_qty = self.orders[(venue, oid)]
        side = r["side"] or old_side
        new_id = int(r["new_order_id"]) or oid
        if side not in (b"B", b"S") or qty > U32:
            return
        if qty == 0:
            self._off(venue, oid)
        elif new_id == oid and price == old_price and side == old_side and qty <= old_qty:
            self.orders[(venue, oid)][3] = qty
        elif new_id == oid or (venue, new_id) not in self.orders:
            self._off(venue, oid)
            self._on(venue, new_id, sym, side, price, qty)

    def _order_delete(self, r) -> None:
        if (int(r["venue"]), int(r["order_id"])) in self.orders:
            self._off(int(r["venue"]), int(r["order_id"]))

    def _level(self, r) -> None:
        venue, sym, side, price, qty = int(r["venue"]), int(r["symbol"]), r["side"], int(r["price"]), int(r["qty"])
        if not sym or side not in (b"B", b"S") or self.kind(venue, sym) == "orders":
            return
        if qty:
            self.levels[(venue, sym, side, price)] = qty
        else:
            self.levels.pop((venue, sym, side, price), None)

    def depth(self, venue: int, sym: int) -> dict:
        out = {}
        for side, name in ((b"B", "bids"), (b"S", "asks")):
            if self.kind(venue, sym) == "levels":
                rows = [(k[3], q, 0) for k, q in self.levels.items() if k[:3] == (venue, sym, side)]
            else:
                rows = [(k[3], sum(self.orders[(venue, i)][3] for i in ids), len(ids))
                        for k, ids in self.fifo.items() if k[:3] == (venue, sym, side)]
            out[name] = sorted(rows, reverse=side == b"B")
        return out

    def queue(self, venue: int, sym: int, side: bytes, price: int) -> list[tuple[int, int]]:
        if self.kind(venue, sym) != "orders":
            return []
        return [(i, self.orders[(venue, i)][3]) for i in self.fifo.get((venue, sym, side, price), [])]


def assert_same(books: EventBooks, ref: Reference, keys) -> None:
    """Depth, BBO and every queue of every book in ``keys`` equal the reference's; the structure sound."""
    for venue, sym in keys:
        want = ref.depth(venue, sym)
        assert books.depth(venue, sym) == want, (venue, sym)
        bid = want["bids"][0][:2] if want["bids"] else (0, 0)
        ask = want["asks"][0][:2] if want["asks"] else (0, 0)
        assert books.bbo(venue, sym) == (*bid, *ask)
        assert (books.kind(venue, sym) or "empty") == ref.kind(venue, sym)
        for side, name in ((b"B", "bids"), (b"S", "asks")):
            for price, _, _ in want[name]:
                assert books.queue(venue, sym, side.decode(), price) == ref.queue(venue, sym, side, price)
    assert books.check() is None


# --- random streams ----------------------------------------------------------------------------------------

VENUES = (1, 7)
ORDER_SYMBOLS = (1, 2, 3)
LEVEL_SYMBOLS = (50, 51)
KEYS = [(v, s) for v in VENUES for s in ORDER_SYMBOLS + LEVEL_SYMBOLS]


class Stream:
    """Random records drawn from the reference's state (so that most name live orders)."""

    def __init__(self, seed: int, ref: Reference) -> None:
        self.rng, self.ref, self.next_id, self.seq = random.Random(seed), ref, 1, 0

    def _live(self, venue: int) -> int | None:
        ids = [oid for (v, oid) in self.ref.orders if v == venue]
        return self.rng.choice(ids) if ids else None

    def _modify(self, venue: int) -> np.ndarray:
        rng, oid = self.rng, self._live(venue)
        if oid is None:
            return modify(venue, 1, 10**9, 100, 1)  # an unknown id
        sym, side, price, qty = self.ref.orders[(venue, oid)]
        flavour = rng.choice(["down", "same", "up", "price", "replace", "replace_live", "zero", "side", "id0"])
        new_qty = {"down": max(1, qty - rng.randint(1, 3)), "same": qty, "up": qty + rng.randint(1, 5),
                   "zero": 0}.get(flavour, rng.randint(1, 20))
        new_price = price + rng.choice([-1, 1]) if flavour == "price" else price
        new_id = oid
        if flavour == "replace":
            new_id, self.next_id = self.next_id, self.next_id + 1
        elif flavour == "replace_live":
            new_id = self._live(venue) or oid
        elif flavour == "id0":
            new_id = 0
        new_side = (b"S" if side == b"B" else b"B") if flavour == "side" else rng.choice([b"", side])
        return modify(venue, sym, oid, new_price, new_qty, new_id, new_side)

    def _add(self, venue: int) -> np.ndarray:
        rng = self.rng
        oid = self._live(venue) if rng.random() < 0.05 else None  # a duplicate now and then
        if oid is None:
            oid, self.next_id = self.next_id, self.next_id + 1
        qty = rng.choice([0, U32 + 1] + [rng.randint(1, 20)] * 18)
        side = rng.choice([b"B", b"S"] * 20 + [b"X"])
        return add(venue, rng.choice(ORDER_SYMBOLS), side, rng.randint(95, 105), qty, oid)

    def _other(self, venue: int) -> np.ndarray:
        rng = self.rng
        kind = rng.choice([EventKind.BBO, EventKind.TRADE, EventKind.STATUS, EventKind.SYMBOL])
        if kind == EventKind.STATUS:
            return ev(kind, venue, rng.choice((0, *ORDER_SYMBOLS)), state=rng.randint(0, 5))
        if kind == EventKind.SYMBOL:
            return ev(kind, venue, rng.choice(ORDER_SYMBOLS), name=b"SYM%d" % rng.randint(0, 9), price_decimals=4)
        if kind == EventKind.BBO:
            return ev(kind, venue, rng.choice(ORDER_SYMBOLS), bid_price=100, bid_qty=5)
        return ev(kind, venue, rng.choice(ORDER_SYMBOLS), price=100, qty=5)

    def record(self) -> np.ndarray:
        rng, venue = self.rng, self.rng.choice(VENUES)
        roll = rng.random()
        if roll < 0.35:
            rec = self._add(venue)
        elif roll < 0.6:
            rec = self._modify(venue)
        elif roll < 0.75:
            rec = delete(venue, 1, self._live(venue) or 10**9 + rng.randint(0, 5))
        elif roll < 0.92:
            sym = rng.choice(LEVEL_SYMBOLS + ORDER_SYMBOLS[:1])  # now and then a level on an order book
            rec = level(venue, sym, rng.choice([b"B", b"S"]), rng.randint(95, 105), rng.choice([0, 0, 5, 10, 300]))
        else:
            rec = self._other(venue)
        self.seq += 1
        rec["seq"] = self.seq
        self.ref.apply(rec[0])
        return rec

    def batch(self, n: int) -> np.ndarray:
        return batch([self.record() for _ in range(n)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_streams_equal_the_reference_after_every_batch(seed):
    ref, books, sizes = Reference(), EventBooks(), random.Random(seed + 100)
    stream = Stream(seed, ref)
    for _ in range(40):
        events = stream.batch(sizes.randint(1, 60))
        books.apply(events)
        assert_same(books, ref, KEYS)
    c = books.counters()
    assert c["events"] == stream.seq and sum(c["by_kind"].values()) == stream.seq
    for name in ("adds", "modify_kept_place", "modify_moved", "modify_deletes", "deletes", "levels_set",
                 "levels_removed", "unknown_order", "duplicate_add", "duplicate_new_id", "bad_side", "zero_qty",
                 "too_large", "level_ignored"):
        assert c[name] > 0, name  # every path was taken


def test_snapshots_rebuild_identical_books_and_the_same_bytes():
    ref, books = Reference(), EventBooks()
    stream = Stream(11, ref)
    for _ in range(20):
        books.apply(stream.batch(50))
    fresh = EventBooks()
    for venue, sym in books.books():
        snap = books.snapshot(venue, sym)
        assert snap.dtype == EVENT_DTYPE
        fresh.load_snapshot(venue, sym, snap)
        assert fresh.snapshot(venue, sym).tobytes() == snap.tobytes()
        assert fresh.symbols().get((venue, sym)) == books.symbols().get((venue, sym))
        assert fresh.state(venue, sym) == books.state(venue, sym)
    assert_same(fresh, ref, KEYS)
    assert fresh.check() is None
    # a late consumer: snapshot now, then the later records, equals the publisher
    for _ in range(10):
        events = stream.batch(50)
        books.apply(events)
        fresh.apply(events.tobytes())
    assert_same(fresh, ref, KEYS)


def test_snapshot_order_and_flags():
    books = EventBooks()
    books.apply(batch([ev(EventKind.SYMBOL, 1, 5, name=b"ABC\0\0", price_decimals=4),
                       ev(EventKind.STATUS, 1, 5, state=TradingState.TRADING),
                       add(1, 5, b"S", 102, 1, 10), add(1, 5, b"B", 99, 2, 11), add(1, 5, b"B", 100, 3, 12),
                       add(1, 5, b"B", 100, 4, 13), add(1, 5, b"S", 101, 5, 14, seq=77)]))
    snap = books.snapshot(1, 5)
    assert list(snap["kind"]) == [9, 7, 1, 1, 1, 1, 1]
    adds = snap[2:].view(KIND_DTYPES[EventKind.ORDER_ADD])
    assert list(adds["order_id"]) == [12, 13, 11, 14, 10]  # bids best first (FIFO in a level), then asks
    assert list(adds["side"]) == [b"B", b"B", b"B", b"S", b"S"]
    assert set(adds["seq"]) == {77} and set(adds["ts"]) == {77000}  # the book's last change
    assert list(snap["flags"]) == [0] * 6 + [FLAG_LAST]
    assert books.symbols() == {(1, 5): "ABC"} and books.symbol_info(1, 5) == ("ABC", 4)
    books.apply(ev(EventKind.LOSS, 1, 0, first=1, count=2, reason=1))
    assert set(books.snapshot(1, 5)["flags"] & FLAG_SUSPECT) == {FLAG_SUSPECT}
    fresh = EventBooks()
    fresh.load_snapshot(1, 5, books.snapshot(1, 5))
    assert fresh.suspect(1, 5)  # a snapshot of a suspect book is suspect
    assert len(EventBooks().snapshot(3, 3)) == 0


def _bad_snapshots(snap: np.ndarray) -> dict[str, np.ndarray]:
    other_symbol = snap.copy()
    other_symbol["symbol"][-1] = 2
    with_modify = snap.copy()
    with_modify["kind"][-1] = int(EventKind.ORDER_MODIFY)
    wrong_version = snap.copy()
    wrong_version["version"][1] = 2
    twice = np.concatenate([snap, snap[-1:]])
    mixed = np.concatenate([snap, level(1, 1, b"B", 50, 5)])
    zero = snap.copy()
    zero.view(KIND_DTYPES[EventKind.ORDER_ADD])["qty"][-1] = 0
    elsewhere = np.concatenate([snap, add(1, 1, b"B", 90, 5, 999)])  # id 999 rests in book (1, 2)
    return {"another symbol": other_symbol, "ORDER_MODIFY": with_modify, "version 2": wrong_version,
            "an order id given twice": twice, "both orders and levels": mixed, "a quantity of 0": zero,
            "live in another book": elsewhere, "partial": snap.tobytes()[:-1]}


@pytest.mark.parametrize("bad", ["another symbol", "ORDER_MODIFY", "version 2", "an order id given twice",
                                 "both orders and levels", "a quantity of 0", "live in another book", "partial"])
def test_a_bad_snapshot_is_refused_and_the_book_is_untouched(bad):
    books = EventBooks()
    books.apply(batch([add(1, 1, b"B", 100, 5, 1), add(1, 1, b"B", 100, 6, 2), add(1, 1, b"S", 101, 7, 3),
                       add(1, 2, b"B", 100, 1, 999)]))
    good = books.snapshot(1, 1)
    target = EventBooks()
    target.apply(batch([add(1, 1, b"S", 105, 1, 50), add(1, 2, b"B", 100, 1, 999)]))
    before, depth = target.snapshot(1, 1).tobytes(), target.depth(1, 1)
    with pytest.raises(EventError):
        target.load_snapshot(1, 1, _bad_snapshots(good)[bad])
    assert target.snapshot(1, 1).tobytes() == before and target.depth(1, 1) == depth
    assert target.check() is None
    target.load_snapshot(1, 1, good)  # the good one loads
    assert target.depth(1, 1) == books.depth(1, 1)


def test_a_batch_with_one_bad_record_applies_nothing():
    books = EventBooks()
    books.apply(add(1, 1, b"B", 100, 5, 1))
    before, counters = books.snapshot(1, 1).tobytes(), books.counters()
    events = batch([add(1, 1, b"B", 101, 5, 2), delete(1, 1, 1), add(1, 1, b"S", 102, 5, 3)])
    for field, value, message in (("version", 2, "event 1: version 2"), ("kind", 0, "event 1: unknown kind 0"),
                                  ("kind", 10, "event 1: unknown kind 10")):
        bad = events.copy()
        bad[field][1] = value
        with pytest.raises(EventError, match=message):
            books.apply(bad)
        with pytest.raises(EventError, match=message):
            books.apply(bad.tobytes())
    with pytest.raises(EventError, match="whole number"):
        books.apply(events.tobytes()[:100])
    assert books.snapshot(1, 1).tobytes() == before and books.counters() == counters
    assert books.take_changed()["symbol"].tolist() == [1]  # from the first apply only
    with pytest.raises(TypeError):
        books.apply(np.zeros(3, dtype=np.uint64))
    with pytest.raises(TypeError):
        EventBooks(1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        books.apply(events[::2])
    unaligned = memoryview(b"xyz" + events.tobytes())[3:]  # read through an aligned copy
    assert books.apply(unaligned) == 3 and books.apply(np.zeros(0, dtype=EVENT_DTYPE)) == 0
    assert books.depth(1, 1) == {"bids": [(101, 5, 1)], "asks": [(102, 5, 1)]}


def test_modify_keeps_the_place_only_for_a_smaller_or_equal_quantity_at_the_same_price_side_and_id():
    books = EventBooks()

    def ids():
        return [i for i, _ in books.queue(1, 1, "B", 100)]

    books.apply(batch([add(1, 1, b"B", 100, 10, i) for i in (1, 2, 3, 4)]))
    books.apply(modify(1, 1, 1, 100, 7))                     # down: kept
    books.apply(modify(1, 1, 2, 100, 10, new_id=2))          # same, new id == id: kept
    assert ids() == [1, 2, 3, 4] and books.queue(1, 1, "B", 100)[0] == (1, 7)
    books.apply(modify(1, 1, 1, 100, 8))                     # up: to the back
    assert ids() == [2, 3, 4, 1]
    books.apply(modify(1, 1, 2, 100, 10, new_id=20))         # replaced: to the back under its new id
    assert ids() == [3, 4, 1, 20]
    books.apply(modify(1, 1, 3, 101, 10))                    # another price: the back of that level
    books.apply(modify(1, 1, 4, 100, 10, side=b"S"))         # another side
    assert ids() == [1, 20] and books.queue(1, 1, "B", 101) == [(3, 10)] and books.queue(1, 1, "S", 100) == [(4, 10)]
    books.apply(modify(1, 1, 1, 100, 0))                     # 0: deleted
    books.apply(modify(1, 1, 20, 100, 5, new_id=3))          # to a live id: refused
    assert ids() == [20]
    c = books.counters()
    assert (c["modify_kept_place"], c["modify_moved"], c["modify_deletes"], c["duplicate_new_id"]) == (2, 4, 1, 1)
    assert books.check() is None


def test_refusals_are_counted():
    books = EventBooks()
    n = books.apply(batch([
        add(1, 1, b"B", 100, 5, 1), add(1, 1, b"B", 100, 5, 1),   # a duplicate
        add(1, 1, b"X", 100, 5, 2), add(1, 1, b"B", 100, 0, 3), add(1, 1, b"B", 100, U32 + 1, 4),
        add(1, 0, b"B", 100, 5, 5),                                 # no symbol
        add(2, 1, b"B", 100, 5, 1),                                 # the same id in another venue: fine
        modify(1, 1, 99, 100, 5), delete(1, 1, 99), delete(3, 1, 1),  # unknown ids (and venue)
        modify(1, 1, 1, 100, U32 + 1), modify(1, 1, 1, 100, 4, side=b"Q"),
        delete(1, 2, 1),                                            # another symbol than its order's: applied
        ev(EventKind.BBO, 1, 1), ev(EventKind.TRADE, 1, 1, price=1, qty=1),
    ]))
    c = books.counters()
    assert n == 3 and c["changed"] == 3 and c["events"] == 15
    assert (c["duplicate_add"], c["bad_side"], c["zero_qty"], c["too_large"], c["no_symbol"]) == (1, 2, 1, 2, 1)
    assert (c["unknown_order"], c["symbol_mismatch"], c["adds"], c["deletes"]) == (3, 1, 2, 1)
    assert c["refused"] == 10
    assert c["by_kind"]["bbo"] == 1 and c["by_kind"]["trade"] == 1 and c["by_kind"]["order_add"] == 7
    assert books.depth(1, 1) == {"bids": [], "asks": []} and books.depth(2, 1)["bids"] == [(100, 5, 1)]
    assert (1, 0) not in books.books()  # refused records make no book


def test_levels_make_by_level_books_kept_apart_from_order_books():
    books = EventBooks()
    books.apply(batch([level(1, 9, b"B", 100, 500), level(1, 9, b"B", 99, 300), level(1, 9, b"S", 101, 200),
                       level(1, 9, b"B", 99, 0), level(1, 9, b"S", 150, 0),    # removed; not there: counted
                       add(1, 9, b"B", 98, 5, 1),                              # orders on a level book: refused
                       add(1, 4, b"B", 98, 5, 2), level(1, 4, b"B", 98, 77)])) # levels on an order book: ignored
    assert books.depth(1, 9) == {"bids": [(100, 500, 0)], "asks": [(101, 200, 0)]}
    assert books.kind(1, 9) == "levels" and books.kind(1, 4) == "orders" and books.kind(1, 5) is None
    assert books.depth(1, 4)["bids"] == [(98, 5, 1)] and books.queue(1, 9, "B", 100) == []
    c = books.counters()
    assert (c["levels_set"], c["levels_removed"], c["unknown_level"], c["wrong_book_kind"], c["level_ignored"]) \
        == (3, 1, 1, 1, 1)
    books.apply(batch([level(1, 9, b"B", 100, 0), level(1, 9, b"S", 101, 0)]))
    assert books.kind(1, 9) == "empty"
    books.apply(add(1, 9, b"B", 98, 5, 1))
    assert books.kind(1, 9) == "orders"  # an emptied level book takes orders, and the other way round
    books.apply(batch([delete(1, 4, 2), level(1, 4, b"S", 97, 3)]))
    assert books.kind(1, 4) == "levels" and books.depth(1, 4) == {"bids": [], "asks": [(97, 3, 0)]}
    assert list(books.snapshot(1, 9)["kind"]) == [1] and list(books.snapshot(1, 4)["kind"]) == [4]
    assert books.check() is None


def test_state_symbols_and_loss():
    books = EventBooks()
    books.apply(batch([ev(EventKind.STATUS, 1, 0, state=TradingState.HALTED),
                       ev(EventKind.STATUS, 1, 3, state=TradingState.TRADING),
                       ev(EventKind.STATUS, 1, 4, state=42),
                       ev(EventKind.SYMBOL, 1, 3, name=b"MSFT        ", price_decimals=2),
                       add(1, 3, b"B", 100, 1, 1), add(1, 5, b"B", 100, 1, 2), add(2, 5, b"B", 100, 1, 3)]))
    assert books.state(1, 0) == TradingState.HALTED and books.state(1, 3) == TradingState.TRADING
    assert books.state(1, 4) == 42 and books.state(1, 5) is None and books.state(9, 9) is None
    assert books.symbols() == {(1, 3): "MSFT"} and books.symbol_info(1, 5) is None
    assert set(books.books()) == {(1, 0), (1, 3), (1, 4), (1, 5), (2, 5)}
    books.apply(ev(EventKind.LOSS, 2, 5, first=10, count=3, reason=1))
    assert [books.suspect(v, s) for v, s in ((1, 3), (1, 5), (2, 5))] == [False, False, True]
    books.apply(ev(EventKind.LOSS, 1, 0, first=10, count=3, reason=2))
    assert [books.suspect(v, s) for v, s in ((1, 0), (1, 3), (1, 4), (1, 5), (2, 5))] == [True] * 5
    books.load_snapshot(1, 3, _cleared(books.snapshot(1, 3)))
    assert not books.suspect(1, 3) and books.suspect(1, 5)
    assert books.counters()["losses"] == 2


def _cleared(snap: np.ndarray) -> np.ndarray:
    """The snapshot as a repaired publisher would send it (no SUSPECT flag)."""
    out = snap.copy()
    out["flags"] &= np.uint8(0xFF ^ FLAG_SUSPECT)
    return out


def test_take_changed_lists_each_changed_book_once():
    books = EventBooks()
    assert books.take_changed().dtype == CHANGED_DTYPE and len(books.take_changed()) == 0
    books.apply(batch([add(1, 2, b"B", 100, 1, 1), add(3, 1, b"B", 100, 1, 1), add(1, 2, b"B", 100, 1, 2),
                       ev(EventKind.BBO, 5, 5), ev(EventKind.TRADE, 5, 6, price=1, qty=1), add(1, 7, b"B", 100, 0, 9)]))
    assert books.take_changed().tolist() == [(1, 2), (3, 1)]  # BBO, TRADE and a refused add change no book
    assert len(books.take_changed()) == 0
    books.apply(batch([ev(EventKind.STATUS, 3, 1, state=4), modify(1, 2, 1, 100, 1)]))
    assert books.take_changed().tolist() == [(3, 1), (1, 2)]
    books.load_snapshot(4, 4, add(4, 4, b"S", 10, 1, 1))
    assert books.take_changed().tolist() == [(4, 4)]
    assert books.check() is None


def test_readers_in_other_threads_wait_for_apply():
    day = generated_day(60_000, chunk=20_000)
    books, stop, found = EventBooks(), threading.Event(), []

    def reader():
        while not stop.is_set():
            found.append(books.check())  # a book seen half-changed would not pass
            for key in books.books()[:5]:
                books.depth(*key)
                books.snapshot(*key)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for start in range(0, len(day), 5_000):
        books.apply(day[start:start + 5_000])
    stop.set()
    for t in threads:
        t.join()
    assert found and set(found) == {None}
    assert books.counters()["adds"] == books.counters()["deletes"] == 60_000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([*ORDER_KINDS, EventKind.LEVEL]), st.integers(1, 2), st.integers(1, 6),
                          st.sampled_from([b"B", b"S", b"", b"Z"]), st.integers(1, 4), st.integers(0, 4),
                          st.integers(0, 6)), max_size=80))
def test_any_small_stream_equals_the_reference(ops):
    ref, books = Reference(), EventBooks()
    records = []
    for kind, sym, oid, side, price, qty, new_id in ops:
        body = {"price": price, "qty": qty}
        body.update({"order_id": oid, "new_order_id": new_id} if kind != EventKind.LEVEL else {})
        sym = sym if kind != EventKind.LEVEL else sym + 10
        records.append(ev(kind, 1, sym, side, **body))
        ref.apply(records[-1][0])
    books.apply(batch(records))
    assert_same(books, ref, [(1, s) for s in (1, 2, 11, 12)])
    fresh = EventBooks()
    for key in books.books():
        fresh.load_snapshot(*key, books.snapshot(*key))
    assert_same(fresh, ref, [(1, s) for s in (1, 2, 11, 12)])


# --- throughput (opt-in) -----------------------------------------------------------------------------------

def generated_day(n_ids: int, venues: int = 2, symbols: int = 100, chunk: int = 10_000, seed: int = 1) -> np.ndarray:
    """2.5 records per order id: its add, a modify for half of them (most keep their place), its delete;
    in rounds of ``chunk`` ids: round r adds its ids, modifies those of r - 1, deletes those of r - 2."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n_ids + 1, dtype=np.uint64)
    venue = (ids % venues).astype(np.uint16)
    sym = rng.integers(1, symbols + 1, n_ids).astype(np.uint32)
    side = np.where(rng.random(n_ids) < 0.5, b"B", b"S")
    price = np.where(side == b"B", 10_000 - rng.integers(0, 50, n_ids), 10_001 + rng.integers(0, 50, n_ids))
    qty = rng.integers(1, 1000, n_ids).astype(np.uint64)

    def records(kind: EventKind, sel: np.ndarray, **body) -> np.ndarray:
        out = np.zeros(len(sel), dtype=KIND_DTYPES[kind])
        out["version"], out["kind"], out["venue"], out["symbol"] = 1, int(kind), venue[sel], sym[sel]
        out["side"], out["order_id"] = side[sel], ids[sel]
        for name, value in body.items():
            out[name] = value
        return out.view(EVENT_DTYPE)

    rounds = []
    for r in range(0, n_ids // chunk + 2):
        parts = []
        now, prev, old = (np.arange(max(0, x * chunk), min(n_ids, (x + 1) * chunk)) if x >= 0 else np.arange(0)
                          for x in (r, r - 1, r - 2))
        parts.append(records(EventKind.ORDER_ADD, now, price=price[now], qty=qty[now]))
        half = prev[::2]
        moved = rng.random(len(half)) < 0.25
        parts.append(records(EventKind.ORDER_MODIFY, half, price=price[half] + moved, qty=np.maximum(1, qty[half] // 2),
                             new_order_id=ids[half]))
        parts.append(records(EventKind.ORDER_DELETE, old))
        day = np.concatenate(parts)
        rounds.append(day[rng.permutation(len(day))])  # ids of one round are in one part only: any order
    return np.concatenate(rounds)


@pytest.mark.bench
@pytest.mark.parametrize("chunk", [10_000, 200_000], ids=["20k-live-orders", "400k-live-orders"])
def test_throughput_of_a_generated_million_events(chunk):
    day = generated_day(400_000, chunk=chunk)
    assert len(day) == 1_000_000
    books = EventBooks()
    t0 = time.perf_counter()
    for start in range(0, len(day), 65_536):
        books.apply(day[start:start + 65_536])
    seconds = time.perf_counter() - t0
    c = books.counters()
    assert c["refused"] == 0 and c["adds"] == 400_000 and c["deletes"] == 400_000 and c["modifies"] == 200_000
    assert books.check() is None and all(books.depth(*k) == {"bids": [], "asks": []} for k in books.books())
    rate = len(day) / seconds
    print(f"\nEventBooks.apply, {2 * chunk:,} live orders at most: {len(day):,} events in {seconds * 1e3:.1f} ms"
          f" = {rate / 1e6:.2f} M events/s")
    assert rate > 1e6
