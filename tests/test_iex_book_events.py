"""IEX books emit normalised events (rxfeed.events) into an event ring, as
ITCH's do: on generated days the events alone, applied to ``EventBooks``,
rebuild every book ``IexBooks`` holds (DEEP by level, DEEP+ by order with
its FIFO queues) after every message; every message (DEEP: every atomic
event) ends with one LAST; symbols, trades, states and losses come out; a
full ring is counted and reported, a waiting producer loses nothing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed.event_books import EventBooks
from rxfeed.events import FLAG_LAST, KIND_DTYPES, EventKind, EventRing, LossReason, TradingState, as_kind, check_events
from rxfeed.protocols.iex._iex_book import IexBooks
from rxfeed.tools.iex_generator import FEEDS, Packer, iex_messages

from .test_book_events import assert_full_ring_reported, consume_slowly_while, drain
from .test_iex_books import _deep_message, _mangled, _plus_message, plu

N, SYMBOLS, VENUE = 3000, 4, 5
RING = 1 << 18
T0 = 1_700_000_000 * 10**9
PLUS = Packer(FEEDS["deep+"])


def books_with_events(ring: EventRing, **kw) -> IexBooks:
    books = IexBooks(**kw)
    books.emit_events(ring, venue=VENUE)
    return books


def same_depth(books: IexBooks, mirror: EventBooks, feed: str, sym: str) -> None:
    """``mirror``'s book of ``sym`` is ``books``' (DEEP+: with every FIFO queue)."""
    idx = books.symbols()[sym]
    bk = books.book(sym, feed)
    got = mirror.depth(VENUE, idx + 1)
    if feed == "deep":
        assert [(p, s, 0) for p, s in bk.bids()] == got["bids"], sym
        assert [(p, s, 0) for p, s in bk.asks()] == got["asks"], sym
        return
    assert bk.bids() == got["bids"] and bk.asks() == got["asks"], sym
    for side, levels in (("B", got["bids"]), ("S", got["asks"])):
        for price, _, _ in levels:
            assert bk.queue(side, price) == mirror.queue(VENUE, idx + 1, side, price), (sym, side, price)


@pytest.mark.parametrize("seed", (1, 7))
@pytest.mark.parametrize("feed", ["deep", "deep+"])
def test_events_rebuild_the_books_after_every_message(feed, seed):
    ring, mirror = EventRing(RING), EventBooks()
    books = books_with_events(ring)
    kinds, groups, multi = Counter(), 0, 0
    for raw in iex_messages(feed, N, SYMBOLS, seed):
        books.feed_raw(feed, [raw])
        ev = drain(ring)
        if not len(ev):
            continue
        check_events(ev)
        last = (ev["flags"] & FLAG_LAST) != 0
        assert last[-1] and last.sum() == 1 and (ev["venue"] == VENUE).all()
        assert (ev["seq"] == ev["seq"][0]).all() and (ev["ts"] == ev["ts"][0]).all()
        kinds.update(int(k) for k in ev["kind"])
        mirror.apply(ev)
        groups += 1
        multi += (ev["kind"] == EventKind.LEVEL).sum() > 1  # a DEEP event of several updates: one group
        for sym_id in set(int(s) for s in ev["symbol"]) - {0}:
            same_depth(books, mirror, feed, list(books.symbols())[sym_id - 1])
    assert ring.stats()["dropped"] == 0 and groups > 500 and (multi > 100 or feed == "deep+")
    for sym in books.symbols():
        same_depth(books, mirror, feed, sym)
        assert mirror.kind(VENUE, books.symbols()[sym] + 1) in ("levels" if feed == "deep" else "orders", "empty")
    c = books.counters()
    book_kinds = {EventKind.LEVEL} if feed == "deep" else {EventKind.ORDER_ADD, EventKind.ORDER_MODIFY,
                                                           EventKind.ORDER_DELETE}
    assert all(kinds[k] > 50 for k in book_kinds) and kinds[EventKind.BBO] == c["bbo_changes"]
    assert not set(kinds) & ({EventKind.LEVEL, EventKind.ORDER_ADD, EventKind.ORDER_MODIFY,
                              EventKind.ORDER_DELETE} - book_kinds)


@pytest.mark.parametrize("feed", list(FEEDS))
def test_bbo_trades_symbols_and_states_are_the_books(feed):
    ring = EventRing(RING)
    books = books_with_events(ring, bbo=True, trades=True)
    books.feed_raw(feed, list(iex_messages(feed, N, SYMBOLS, 3)))
    ev = drain(ring)
    check_events(ev)
    assert ring.stats()["dropped"] == 0
    names = books.symbols()
    # symbols: one SYMBOL each, id = index + 1, ahead of any other event of the symbol
    sym = as_kind(ev, EventKind.SYMBOL)
    assert {n.decode().strip(): int(s) - 1 for n, s in zip(sym["name"], sym["symbol"])} == names
    assert len(sym) == len(names) and (sym["price_decimals"] == 4).all()
    first = {int(s): i for i, s in reversed(list(enumerate(ev["symbol"])))}
    assert all(ev["kind"][first[s]] == EventKind.SYMBOL for s in first if s)
    # BBO: each change of the books' top, in order; the last one is the final top
    bbo, want = as_kind(ev, EventKind.BBO), books.take_bbo()
    assert len(bbo) == len(want) > 100
    assert (bbo["symbol"] == want["symbol"] + 1).all() and (bbo["ts"] == want["timestamp"]).all()
    for f in ("bid_price", "ask_price"):
        assert (bbo[f] == want[f]).all()
    assert (bbo["bid_qty"] == want["bid_size"]).all() and (bbo["ask_qty"] == want["ask_size"]).all()
    # trades: the books' trades, the resting side of an execution B/S
    trade, want = as_kind(ev, EventKind.TRADE), books.take_trades()
    assert len(trade) == len(want) > 10
    assert [(int(t["price"]), int(t["qty"]), int(t["match_id"]), int(t["order_id"])) for t in trade] == \
           [(int(t["price"]), int(t["size"]), int(t["trade_id"]), int(t["order_id"])) for t in want]
    assert [t["side"] for t in trade] == [{b"8": b"B", b"5": b"S"}.get(t["side"], b"") for t in want]
    # states: the halt of the day (H), the venue's system events (symbol 0)
    status = as_kind(ev, EventKind.STATUS)
    stock, venue = status[status["symbol"] != 0], status[status["symbol"] == 0]
    assert len(venue) >= 1 and set(venue["venue_code"]) <= {ord(c) for c in "OSRMEC"}
    halts = stock[stock["venue_code"] == ord("H")]
    assert len(halts) == books.counters()["halts"] == 1 and (halts["state"] == TradingState.HALTED).all()
    assert TradingState.TRADING in set(int(s) for s in stock["state"])
    # every message's events end with one LAST; seq is the message's place in the call
    seq = ev["seq"].astype(np.int64)
    last = (ev["flags"] & FLAG_LAST) != 0
    assert (np.diff(seq) >= 0).all() and last[np.flatnonzero(np.diff(seq) > 0)].all() and last[-1]
    assert last.sum() == len(np.unique(seq))


def book_events(msgs: list[bytes]) -> tuple[IexBooks, EventBooks, list[list[tuple]]]:
    """DEEP+ ``msgs`` one at a time: the books, their mirror, and per message its events as (kind, id, qty)."""
    ring, mirror = EventRing(1 << 10), EventBooks()
    books = books_with_events(ring)
    per = []
    for raw in msgs:
        books.feed_raw("deep+", [raw])
        ev = drain(ring)
        mirror.apply(ev)
        order = ev.view(KIND_DTYPES[EventKind.ORDER_ADD])  # the ORDER_* kinds share one body
        per.append([(EventKind(int(e["kind"])).name, int(e["order_id"]), int(e["qty"])) for e in order
                    if int(e["kind"]) in (EventKind.ORDER_ADD, EventKind.ORDER_MODIFY, EventKind.ORDER_DELETE)])
    return books, mirror, per


def add(oid: int, side: str, size: int, price: int) -> bytes:
    return PLUS.pack("a", side=side, timestamp=T0, symbol="ZVZZT", order_id=oid, size=size, price=price)


def modify(oid: int, size: int, price: int, keep: bool = False) -> bytes:
    return PLUS.pack("M", modify_flags=int(keep), timestamp=T0, symbol="ZVZZT", order_id_reference=oid,
                     size=size, price=price)


def test_modifies_tell_a_consumer_what_the_book_did_to_the_queue():
    books, mirror, per = book_events([
        add(1, "8", 100, 50_0000), add(2, "8", 100, 50_0000), add(3, "8", 100, 50_0000),
        modify(1, 60, 50_0000, keep=True),     # kept: a MODIFY (qty left), the consumer keeps its place
        modify(2, 40, 50_0000),                # priority reset at the same price: DELETE + ADD
        modify(3, 100, 49_0000),               # a new price: one MODIFY, the consumer moves it
        modify(1, 500, 50_0000, keep=True),    # "kept" with a larger size: reset, one MODIFY moves it
        modify(2, 40, 50_0000, keep=True),     # kept and unchanged: nothing happened
    ])
    assert per[3:] == [[("ORDER_MODIFY", 1, 60)], [("ORDER_DELETE", 2, 0), ("ORDER_ADD", 2, 40)],
                       [("ORDER_MODIFY", 3, 100)], [("ORDER_MODIFY", 1, 500)], []]
    same_depth(books, mirror, "deep+", "ZVZZT")
    assert mirror.queue(VENUE, 1, "B", 50_0000) == [(2, 40), (1, 500)]


def test_executions_and_clear_book_empty_the_consumers_book_too():
    executed = PLUS.pack("L", sale_condition_flags=0, timestamp=T0, symbol="ZVZZT", order_id_reference=1,
                         size=30, price=51_0000, trade_id=77)
    clear = PLUS.pack("C", timestamp=T0, symbol="ZVZZT")
    unknown = PLUS.pack("R", timestamp=T0, symbol="ZVZZT", order_id_reference=99)
    books, mirror, per = book_events([add(1, "5", 100, 51_0000), add(2, "5", 100, 51_0000),
                                      add(3, "8", 10, 49_0000), executed, unknown, clear])
    assert per[3] == [("ORDER_MODIFY", 1, 70)] and per[4] == []
    assert sorted(per[5]) == [("ORDER_DELETE", i, 0) for i in (1, 2, 3)]
    assert mirror.depth(VENUE, 1) == {"bids": [], "asks": []} and books.book("ZVZZT", "deep+").asks() == []


def test_full_ring_is_counted_and_reported_as_loss():
    ring = EventRing(1 << 10)
    books = books_with_events(ring)
    books.feed_raw("deep+", list(iex_messages("deep+", N, SYMBOLS, 1)))
    assert_full_ring_reported(ring)


def run_pipeline(path, ring: EventRing, wait: bool):
    """The generated capture through the ``iex`` decoder into its books, emitting events."""
    from rxfeed import Pipeline

    pipe = Pipeline("pcap_replay", "iex", backend_config={"path": str(path)})
    books = pipe.decoder.make_books()
    books.emit_events(ring, venue=VENUE, wait=wait)
    with pipe:
        summary = pipe.run()
    assert summary.error is None
    return books


def test_waiting_books_lose_nothing_with_a_slow_consumer(tmp_path):
    from rxfeed.tools.iex_generator import generate_iex

    path = tmp_path / "deep.pcap"
    generate_iex(path, "deep", N, SYMBOLS, 5)
    ring = EventRing(1 << 10)
    ev, books = consume_slowly_while(ring, lambda: run_pipeline(path, ring, wait=True))
    assert ring.stats()["dropped"] == 0 and not (ev["kind"] == EventKind.LOSS).any() and len(ev) > 2000
    reference = EventRing(RING)
    run_pipeline(path, reference, wait=False)
    assert ev.tobytes() == drain(reference).tobytes()
    mirror = EventBooks()
    mirror.apply(ev)
    for sym in books.symbols():
        same_depth(books, mirror, "deep", sym)


def test_declared_loss_becomes_a_feed_loss_event():
    ring = EventRing(64)
    books = books_with_events(ring)
    books.mark_lost({"session": 1, "first": 1000, "count": 25})
    ev = drain(ring)
    loss = as_kind(ev, EventKind.LOSS)
    assert len(ev) == 1 and (int(loss["first"][0]), int(loss["count"][0]), int(loss["reason"][0])) == (
        1000, 25, LossReason.FEED)
    assert int(loss["venue"][0]) == VENUE and int(ev["flags"][0]) & FLAG_LAST and books.suspect


def test_event_options_are_checked_and_the_sink_takes_iex():
    from rxfeed.sinks.nats_js.sink import NatsJsSink

    books = IexBooks()
    with pytest.raises(ValueError, match="u16"):
        books.emit_events(EventRing(64), venue=70_000)
    ring = EventRing(64)
    books.emit_events(ring)
    books.emit_events(None)  # off again: nothing is written
    books.feed_raw("deep+", [add(1, "8", 10, 50_0000)])
    assert len(drain(ring)) == 0 and "iex" in NatsJsSink.decoders


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plus=st.lists(_mangled(_plus_message()), max_size=60), deep=st.lists(_mangled(_deep_message()), max_size=40))
def test_random_messages_emit_only_what_the_books_did(plus, deep):
    """Random, refused, unknown and corrupted messages: the events still mirror the books exactly,
    and the consumer refuses none of them (nothing is reported that the books did not do)."""
    for feed, msgs in (("deep+", plus), ("deep", deep + [plu("8", 100, 1, True)])):
        ring, mirror = EventRing(RING), EventBooks()
        books = books_with_events(ring)
        books.feed_raw(feed, msgs)
        ev = drain(ring)
        check_events(ev)
        mirror.apply(ev)
        for sym in books.symbols():
            same_depth(books, mirror, feed, sym)
        c = mirror.counters()
        assert c["refused"] == c["unknown_level"] == c["symbol_mismatch"] == 0, c
        assert mirror.check() is None
