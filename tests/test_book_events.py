"""ITCH books emit normalised events (rxfeed.events) into an event ring: the
events alone rebuild every book the C books hold (depth and FIFO queues), a
message's events end with one LAST flag, trades / states / symbols / losses
come out, and a full ring is counted and reported, never silent."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from rxfeed import Pipeline
from rxfeed.events import FLAG_LAST, EventKind, EventRing, LossReason, TradingState, as_kind, check_events
from rxfeed.protocols.itch50._book import OrderBooks

RING = 1 << 18


def run_books(path, ring, wait=False, venue=7, **kw):
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(path)})
    books = pipe.decoder.make_books(**kw)
    books.emit_events(ring, venue=venue, wait=wait)
    return pipe.run(), books


class EventModel:
    """Books rebuilt from ORDER_* events alone, written for this test (dicts and lists)."""

    def __init__(self):
        self.orders = {}   # id -> (symbol, side, price, qty)
        self.levels = {}   # (symbol, side) -> {price: [id, ...]}

    def _remove(self, oid):
        sym, side, price, _ = self.orders.pop(oid)
        q = self.levels[(sym, side)][price]
        q.remove(oid)
        if not q:
            del self.levels[(sym, side)][price]

    def apply(self, events):
        for e in as_kind_all(events):
            kind, sym, side = int(e["kind"]), int(e["symbol"]), e["side"].decode()
            if kind == EventKind.ORDER_ADD:
                oid = int(e["order_id"])
                assert oid not in self.orders
                self.orders[oid] = (sym, side, int(e["price"]), int(e["qty"]))
                self.levels.setdefault((sym, side), {}).setdefault(int(e["price"]), []).append(oid)
            elif kind == EventKind.ORDER_MODIFY:
                oid = int(e["order_id"])
                s, sd, p, q = self.orders[oid]
                assert (s, sd, p) == (sym, side, int(e["price"])) and int(e["qty"]) < q
                self.orders[oid] = (s, sd, p, int(e["qty"]))
            elif kind == EventKind.ORDER_DELETE:
                self._remove(int(e["order_id"]))

    def depth(self, sym, side):
        lv = self.levels.get((sym, side), {})
        return [(p, sum(self.orders[o][3] for o in lv[p]), len(lv[p])) for p in sorted(lv, reverse=side == "B")]


def as_kind_all(events):
    """Every record with the order body's field names (ORDER_* share one layout)."""
    from rxfeed.events import KIND_DTYPES

    return events.view(KIND_DTYPES[EventKind.ORDER_ADD])


def drain(ring):
    parts = []
    while True:
        got = ring.pop(1 << 16)
        if not len(got):
            return np.concatenate(parts) if parts else got
        parts.append(got)


def test_events_rebuild_every_book_and_queue(day_dir):
    ring = EventRing(RING)
    summary, books = run_books(day_dir / "day.pcap", ring)
    ev = drain(ring)
    check_events(ev)
    assert ring.stats()["dropped"] == 0 and len(ev) > 20_000
    assert (ev["venue"] == 7).all()
    model = EventModel()
    model.apply(ev)
    assert books.symbols()
    for name, loc in books.symbols().items():
        d = books[name].depth(n=10_000)
        assert [tuple(x) for x in d["bids"]] == model.depth(loc, "B"), name
        assert [tuple(x) for x in d["asks"]] == model.depth(loc, "S"), name
        for side, levels in (("B", d["bids"]), ("S", d["asks"])):
            for price, _, _ in levels[:5]:
                assert [r for r, _ in books[name].queue(side, price)] == model.levels[(loc, side)][price]
    c = books.counters()
    kinds = Counter(int(k) for k in ev["kind"])
    assert kinds[EventKind.ORDER_ADD] == c["adds"] + 0  # replaces' adds are counted as adds by the books
    assert kinds[EventKind.TRADE] == c["executions"] + c["trades"] + c["cross_trades"]
    assert kinds[EventKind.BBO] == c["bbo_changes"]


def test_symbols_states_and_last_flags(day_dir):
    ring = EventRing(RING)
    _, books = run_books(day_dir / "day.pcap", ring)
    ev = drain(ring)
    sym = as_kind(ev, EventKind.SYMBOL)
    assert {n.decode().strip(): int(s) for n, s in zip(sym["name"], sym["symbol"])} == books.symbols()
    assert (sym["price_decimals"] == 4).all()
    status = as_kind(ev, EventKind.STATUS)
    venue_wide = status[status["symbol"] == 0]
    assert len(venue_wide) >= 1 and set(venue_wide["venue_code"]) <= {ord(c) for c in "OSQMEC"}
    assert TradingState.TRADING in set(int(s) for s in venue_wide["state"])
    # every message's events end with exactly one LAST, sequences never go back
    seq = ev["seq"].astype(np.int64)
    assert (np.diff(seq) >= 0).all()
    last = (ev["flags"] & FLAG_LAST) != 0
    boundaries = np.flatnonzero(np.diff(seq) > 0)
    assert last[boundaries].all() and last[-1]
    assert last.sum() == len(np.unique(seq))


def test_full_ring_is_counted_and_reported_as_loss(day_dir):
    ring = EventRing(1 << 10)
    _, books = run_books(day_dir / "day.pcap", ring)
    assert_full_ring_reported(ring)


def assert_full_ring_reported(ring):
    """A ring that stayed full to the end: drops counted, and reported as
    LOSS (ring) records covering exactly them once it has room."""
    first = drain(ring)
    assert ring.flush_loss()
    ev = np.concatenate([first, drain(ring)])
    st = ring.stats()
    assert st["dropped"] > 0 and st["offered"] == st["queued"] + st["dropped"]
    loss = as_kind(ev, EventKind.LOSS)
    assert (loss["reason"] == LossReason.RING).all() and loss["count"].sum() == st["dropped"]
    assert len(ev) - len(loss) == st["queued"]


def consume_slowly_while(ring: EventRing, produce) -> tuple[np.ndarray, object]:
    """``produce()`` while a thread pops ``ring`` 300 records at a time; (every record popped, what it returned)."""
    parts: list[np.ndarray] = []
    stop = threading.Event()

    def pop_until_stopped_and_empty() -> None:
        while not (stop.is_set() and not ring.stats()["waiting"]):
            batch = ring.pop(300)
            if len(batch):
                parts.append(batch)

    worker = threading.Thread(target=pop_until_stopped_and_empty)
    worker.start()
    try:
        result = produce()
    finally:
        stop.set()
        worker.join(10)
    return np.concatenate(parts), result


def test_waiting_books_lose_nothing_with_a_slow_consumer(day_dir):
    ring = EventRing(1 << 10)
    ev, _ = consume_slowly_while(ring, lambda: run_books(day_dir / "day.pcap", ring, wait=True))
    assert ring.stats()["dropped"] == 0 and not (ev["kind"] == EventKind.LOSS).any()
    reference = EventRing(RING)
    run_books(day_dir / "day.pcap", reference)
    assert ev.tobytes() == drain(reference).tobytes()


def test_declared_loss_becomes_a_feed_loss_event():
    ring = EventRing(64)
    books = OrderBooks()
    books.emit_events(ring, venue=3)
    books.mark_lost({"session": "S", "first": 1000, "count": 25})
    ev = drain(ring)
    loss = as_kind(ev, EventKind.LOSS)
    assert len(ev) == 1 and (int(loss["first"][0]), int(loss["count"][0]), int(loss["reason"][0])) == (
        1000, 25, LossReason.FEED)
    assert int(loss["venue"][0]) == 3 and books.suspect


def test_event_options_are_checked():
    books = OrderBooks()
    with pytest.raises(ValueError, match="u16"):
        books.emit_events(EventRing(64), venue=70_000)
    with pytest.raises(ValueError, match="power of two"):
        EventRing(100)
    books.emit_events(None)   # off again: no ring is written
