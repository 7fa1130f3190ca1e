"""IEX books (protocols/iex/iex_book.c, ``IexBooks``) against the plain-Python
reference books of ``iex_book_reference`` on generated days: DEEP price levels,
DEEP+ orders, TOPS tops; DEEP atomic per event; DEEP the aggregation of DEEP+;
BBO changes and trades; bad input counted, random input never fatal.

Messages reach the C books through their handler table by ``feed_raw`` (the
generated decoders, one message at a time), as the IEX decoder will call it."""

from __future__ import annotations

from itertools import islice

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed.protocols.iex._iex_book import BBO_DTYPE, PROTOCOLS, IexBooks
from rxfeed.tools.iex_generator import FEEDS, Packer, iex_messages, iex_steps

from .iex_book_reference import REFERENCE, LevelBooks, OrderBooks
from .test_iex_spec import unpack

N, SYMBOLS = 3000, 4
SEEDS = (1, 7, 2024)
BOOK_TYPES = {"deep+": set("aMRLC"), "deep": set("85"), "tops": {"Q"}}
T0 = 1_700_000_000 * 10**9
HANDLED = set("QT85aMRLCBHODS")  # the types IexBooks takes (auction, official price, ... change no book)


def levels_of(books: IexBooks, feed: str) -> dict[tuple[str, str], dict[int, int]]:
    """Every non-empty side of ``feed``'s books as ``{(symbol, "8"/"5"): {price: size}}``."""
    out = {}
    for sym in books.symbols():
        bk = books.book(sym, feed)
        for side, lv in (("8", bk.bids()), ("5", bk.asks())):
            if lv:
                out[(sym, side)] = {row[0]: row[1] for row in lv}
    return out


def event_ends(feed: str, msgs: list[bytes]):
    """(index, decoded) of every message after which ``feed``'s books hold a complete event."""
    for i, raw in enumerate(msgs):
        m = unpack(FEEDS[feed], raw)
        if m["message_type"] in BOOK_TYPES[feed] and (feed != "deep" or m["event_flags"] & 1):
            yield i, m


# --- generated days against the reference ------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("feed", list(FEEDS))
def test_books_equal_the_reference_at_every_event_end_and_at_the_end(feed, seed):
    msgs = list(iex_messages(feed, N, SYMBOLS, seed))
    books, ref = IexBooks(bbo=True, trades=True), REFERENCE[feed]()
    at = checked = 0
    for i, m in event_ends(feed, msgs):
        books.feed_raw(feed, msgs[at:i + 1])
        for raw in msgs[at:i + 1]:
            ref.on(unpack(FEEDS[feed], raw))
        at = i + 1
        assert levels_of(books, feed) == ref.book(), (feed, seed, i)
        checked += 1
    books.feed_raw(feed, msgs[at:])
    for raw in msgs[at:]:
        ref.on(unpack(FEEDS[feed], raw))
    assert levels_of(books, feed) == ref.book() and checked > 500
    assert books._check() == ""
    c = books.counters()
    assert not any(c["integrity"].values()), c["integrity"]
    handled = [m for m in msgs if chr(m[0]) in HANDLED]
    assert c["messages"] == len(handled) > 0.9 * len(msgs) and c["halts"] == 1 and c["trade_breaks"] > 0


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_deep_plus_queues_and_order_counts_match_the_reference(seed):
    msgs = list(iex_messages("deep+", N, SYMBOLS, seed))
    books, ref = IexBooks(), OrderBooks()
    books.feed_raw("deep+", msgs)
    for raw in msgs:
        ref.on(unpack(FEEDS["deep+"], raw))
    queues = 0
    for sym in books.symbols():
        bk = books.book(sym, "deep+")
        for side_name, side, rows in (("B", "8", bk.bids()), ("S", "5", bk.asks())):
            for price, size, orders in rows:
                want = ref.queues[(sym, side, price)]
                got = bk.queue(side_name, price)
                assert [oid for oid, _ in got] == want and len(want) == orders
                assert [s for _, s in got] == [ref.orders[o][2] for o in want] and sum(s for _, s in got) == size
                queues += 1
    assert queues > 5


@pytest.mark.parametrize("feed", list(FEEDS))
def test_bbo_changes_and_trades_are_the_references(feed):
    msgs = list(iex_messages(feed, N, SYMBOLS, SEEDS[1]))
    books, ref = IexBooks(bbo=True, trades=True), REFERENCE[feed]()
    books.feed_raw(feed, msgs)
    want_bbo, tops = [], {}
    for raw in msgs:
        m = unpack(FEEDS[feed], raw)
        ref.on(m)
        complete = m["message_type"] in BOOK_TYPES[feed] and (feed != "deep" or m["event_flags"] & 1)
        for s in dict.fromkeys(k[0] for k in ref.book()) | dict.fromkeys(tops) if complete else ():
            if ref.top(s) != tops.get(s, (0, 0, 0, 0)):  # one event changes one symbol's book
                tops[s] = ref.top(s)
                want_bbo.append((m["timestamp"], s, *tops[s]))
    names = {i: s for s, i in books.symbols().items()}
    bbo = books.take_bbo()
    got = [(int(e["timestamp"]), names[int(e["symbol"])], int(e["bid_size"]), int(e["bid_price"]),
            int(e["ask_price"]), int(e["ask_size"])) for e in bbo]
    assert got == want_bbo and len(got) > 100
    assert set(bbo["protocol_id"]) == {PROTOCOLS[feed]} and books.counters()["bbo_changes"] == len(got)
    trades = books.take_trades()
    assert [(int(t["trade_id"]), int(t["size"]), int(t["price"]), int(t["sale_condition_flags"]))
            for t in trades] == ref.trades
    assert len(books.take_bbo()) == len(books.take_trades()) == 0  # taken: emptied
    if feed == "deep+":
        execs = trades[trades["type"] == b"L"]
        assert len(execs) == books.counters()["executions"] > 0 and set(execs["side"]) == {b"8", b"5"}
        assert (execs["order_id"] > 0).all() and (trades[trades["type"] == b"T"]["order_id"] == 0).all()


def test_deep_books_are_the_aggregation_of_deep_plus_and_tops_their_top_after_every_step():
    books = IexBooks()
    steps = 0
    for step in islice(iex_steps(N, SYMBOLS, 11), 3500):
        for feed in ("deep+", "deep", "tops"):
            books.feed_raw(feed, step.get(feed, []))
        plus = {k: {p: s for p, s in v.items()} for k, v in levels_of(books, "deep+").items()}
        assert levels_of(books, "deep") == plus
        for sym in books.symbols():
            top_plus, top_tops = books.book(sym, "deep+"), books.book(sym, "tops")
            assert (top_plus.best_bid or (0, 0))[:2] == (top_tops.best_bid or (0, 0))
            assert (top_plus.best_ask or (0, 0))[:2] == (top_tops.best_ask or (0, 0))
        steps += 1
    assert steps == 3500 and books.counters()["events_applied"] > 1000 and books._check() == ""


# --- DEEP atomicity ------------------------------------------------------------------------------------

DEEP, PLUS, TOPS = Packer(FEEDS["deep"]), Packer(FEEDS["deep+"]), Packer(FEEDS["tops"])


def plu(side: str, price: int, size: int, done: bool, sym: str = "ZVZZT", ts: int = T0) -> bytes:
    return DEEP.pack(side, event_flags=int(done), timestamp=ts, symbol=sym, size=size, price=price)


def test_a_deep_event_is_never_observable_half_applied():
    books = IexBooks(bbo=True)
    books.feed_raw("deep", [plu("8", 100_0000, 100, True), plu("5", 101_0000, 200, True)])
    before = levels_of(books, "deep")
    trade = DEEP.pack("T", sale_condition_flags=0, timestamp=T0, symbol="ZVZZT", size=100, price=100_0000,
                      trade_id=9)
    event = [plu("8", 100_0000, 0, False), trade, plu("8", 99_0000, 300, False), plu("5", 100_5000, 50, False),
             plu("5", 101_0000, 0, True)]
    for k, msg in enumerate(event[:-1]):
        books.feed_raw("deep", [msg])
        assert levels_of(books, "deep") == before, k  # mid-event: the previous complete state
        assert books.counters()["staged"] == k + (k < 1)  # a trade inside the event completes nothing
    n_bbo = len(books.take_bbo())
    books.feed_raw("deep", event[-1:])
    assert levels_of(books, "deep") == {("ZVZZT", "8"): {99_0000: 300}, ("ZVZZT", "5"): {100_5000: 50}}
    bbo = books.take_bbo()  # one change for the whole event, none in the middle
    assert n_bbo == 2 and len(bbo) == 1 and bbo.dtype == BBO_DTYPE
    assert (bbo["bid_price"][0], bbo["bid_size"][0], bbo["ask_price"][0], bbo["ask_size"][0]) == \
           (99_0000, 300, 100_5000, 50)
    assert books.counters()["events_applied"] == 3 and books.counters()["staged"] == 0


def test_generated_deep_events_mid_way_show_the_previous_state():
    msgs = list(iex_messages("deep", N, SYMBOLS, 3))
    books, ref, multi = IexBooks(), LevelBooks(), 0
    for raw in msgs:
        m = unpack(FEEDS["deep"], raw)
        books.feed_raw("deep", [raw])
        ref.on(m)
        if m["message_type"] in "85" and not m["event_flags"] & 1:
            multi += 1
        assert levels_of(books, "deep") == ref.book()  # the reference applies whole events only
    assert multi > 100


def test_staging_overflow_is_counted_and_applies_what_was_held():
    books = IexBooks()
    books.feed_raw("deep", [plu("8", (i + 1) * 100, 1, False) for i in range(4097)])
    c = books.counters()
    assert c["integrity"]["staged_overflow"] == 1 and c["staged"] == 1
    assert len(books.book("ZVZZT", "deep").bids()) == 4096
    books.feed_raw("deep", [plu("8", 1, 1, True)])
    assert len(books.book("ZVZZT", "deep").bids()) == 4098 and books._check() == ""


# --- DEEP+ verbs -----------------------------------------------------------------------------------------

def add(oid: int, side: str, size: int, price: int, sym: str = "ZVZZT") -> bytes:
    return PLUS.pack("a", side=side, timestamp=T0, symbol=sym, order_id=oid, size=size, price=price)


def modify(oid: int, size: int, price: int, keep: bool = False, sym: str = "ZVZZT") -> bytes:
    return PLUS.pack("M", modify_flags=int(keep), timestamp=T0, symbol=sym, order_id_reference=oid, size=size,
                     price=price)


def delete(oid: int, sym: str = "ZVZZT") -> bytes:
    return PLUS.pack("R", timestamp=T0, symbol=sym, order_id_reference=oid)


def executed(oid: int, size: int, price: int, sym: str = "ZVZZT") -> bytes:
    return PLUS.pack("L", sale_condition_flags=0, timestamp=T0, symbol=sym, order_id_reference=oid, size=size,
                     price=price, trade_id=oid + 1000)


def test_modify_keeps_priority_only_as_the_flag_says():
    books = IexBooks()
    books.feed_raw("deep+", [add(1, "8", 100, 50_0000), add(2, "8", 100, 50_0000), add(3, "8", 100, 50_0000)])
    bk = books.book("ZVZZT", "deep+")
    books.feed_raw("deep+", [modify(1, 60, 50_0000, keep=True)])  # smaller, kept: stays first
    assert bk.queue("B", 50_0000) == [(1, 60), (2, 100), (3, 100)]
    books.feed_raw("deep+", [modify(2, 40, 50_0000)])  # priority reset: to the back
    assert bk.queue("B", 50_0000) == [(1, 60), (3, 100), (2, 40)]
    books.feed_raw("deep+", [modify(3, 100, 49_0000)])  # a new price: its own level
    assert bk.bids() == [(50_0000, 100, 2), (49_0000, 100, 1)]
    books.feed_raw("deep+", [modify(1, 500, 50_0000, keep=True)])  # "kept" with a larger size: reset, counted
    assert bk.queue("B", 50_0000) == [(2, 40), (1, 500)]
    c = books.counters()
    assert (c["modifies"], c["priority_kept"], c["integrity"]["modify_priority_conflict"]) == (4, 1, 1)


def test_executions_deletes_and_clear_book():
    books = IexBooks(trades=True)
    books.feed_raw("deep+", [add(1, "5", 100, 51_0000), add(2, "5", 100, 51_0000), add(3, "8", 10, 49_0000),
                             executed(1, 30, 51_0000), executed(1, 70, 51_0000), delete(2)])
    bk = books.book("ZVZZT", "deep+")
    assert bk.asks() == [] and bk.bids() == [(49_0000, 10, 1)]
    t = books.take_trades()
    assert list(t["size"]) == [30, 70] and list(t["order_id"]) == [1, 1] and list(t["side"]) == [b"5", b"5"]
    books.feed_raw("deep+", [add(4, "5", 5, 52_0000), PLUS.pack("C", timestamp=T0, symbol="ZVZZT")])
    assert bk.bids() == bk.asks() == [] and books.counters()["clears"] == 1 and books._check() == ""
    books.feed_raw("deep+", [add(1, "8", 10, 49_0000)])  # ids of cleared orders may come back
    assert bk.bids() == [(49_0000, 10, 1)] and books.counters()["integrity"]["duplicate_add"] == 0


def test_bad_input_is_counted_never_fatal():
    books = IexBooks()
    books.feed_raw("deep+", [
        add(1, "8", 100, 50_0000),
        add(1, "8", 100, 50_0000),            # duplicate_add
        add(2, "X", 100, 50_0000),            # invalid_side
        add(3, "8", 0, 50_0000),              # zero_size
        add(4, "8", 100, -5),                 # bad_price
        add(5, "8", 100, 0),                  # bad_price
        modify(99, 10, 50_0000),              # unknown_order
        delete(98),                           # unknown_order
        executed(97, 1, 50_0000),             # unknown_order
        executed(1, 0, 50_0000),              # zero_size
        modify(1, 0, 50_0000),                # zero_size
        executed(1, 150, 50_0000, sym="OTHER"),  # exec_beyond_remaining, symbol_mismatch
        add(6, "8", 1, 50_0000)[:20],         # bad_length
        b"\x00" * 40, b"",                    # unknown_type, bad_length
    ])
    books.feed_raw("deep", [plu("8", -1, 5, True)])  # bad_price
    books.feed_raw("deep", [DEEP.pack("T", sale_condition_flags=0, timestamp=T0, symbol="ZVZZT", size=1, price=1,
                                      trade_id=1)], claim=0x1234)  # unknown_protocol
    books.feed_raw("deep", [plu("8", 100, 5, True)], claim=PROTOCOLS["deep+"])  # wrong_feed
    i = books.counters()["integrity"]
    assert (i["duplicate_add"], i["invalid_side"], i["zero_size"], i["bad_price"], i["unknown_order"],
            i["exec_beyond_remaining"], i["symbol_mismatch"], i["bad_length"], i["unknown_type"],
            i["unknown_protocol"], i["wrong_feed"]) == (1, 1, 3, 3, 3, 1, 1, 2, 1, 1, 1)
    assert books.book("ZVZZT", "deep+").bids() == [] and books._check() == ""


def test_views_feeds_symbols_losses_and_latency():
    books = IexBooks(latency=True)
    with pytest.raises(KeyError):
        books["NOPE"]
    books.feed_raw("tops", [TOPS.pack("Q", flags=0, timestamp=T0, symbol="ZVZZT", bid_size=100, bid_price=99_0000,
                                      ask_price=101_0000, ask_size=0)])
    bk = books["ZVZZT"]  # the feed last taken: TOPS
    assert bk.feed == "tops" and bk.best_bid == (99_0000, 100) and bk.best_ask is None and bk.asks() == []
    books.feed_raw("deep+", [add(1, "8", 7, 98_0000, sym="QQQ")])
    assert books["QQQ"].feed == "deep+" and books["QQQ"].best_bid == (98_0000, 7, 1)
    assert books.symbols() == {"ZVZZT": 0, "QQQ": 1} and books.book(1, "deep+").bids() == [(98_0000, 7, 1)]
    with pytest.raises(ValueError):
        books.book("QQQ", "itch")
    with pytest.raises(ValueError):
        books.book("ZVZZT", "tops").queue("B", 1)
    with pytest.raises(ValueError):
        books.book("QQQ", "deep+").queue("X", 98_0000)
    assert books.book("QQQ", "deep+").queue("8", 98_0000) == [(1, 7)]
    with pytest.raises(TypeError):
        books.feed_raw("deep+", ["not bytes"])
    with pytest.raises(KeyError):
        books.book("TOOLONGNAME", "deep")
    assert not books.suspect
    books.mark_lost({"session": "1", "first": 10, "count": 5})
    assert books.suspect and books.counters()["lost_messages"] == 5 and books.lost_ranges == [("1", 10, 5)]
    lat = books.latency()
    assert lat["count"] == 2 and lat["p50"] > 0 and "IEX" in lat["what"]
    assert IexBooks().capsule() is not None
    with pytest.raises(ValueError, match="depth"):
        IexBooks(depth=10)
    with pytest.raises(ValueError):
        IexBooks().latency()


def test_many_symbols_grow_the_symbol_table():
    books = IexBooks()
    names = [f"S{i:06d}" for i in range(5000)]
    books.feed_raw("deep+", [add(i + 1, "8", 1, 10_000 + i, sym=s) for i, s in enumerate(names)])
    idx = books.symbols()
    assert list(idx) == names and all(books.book(s, "deep+").best_bid == (10_000 + i, 1, 1)
                                      for i, s in enumerate(names))
    assert books._check() == ""


# --- random input ----------------------------------------------------------------------------------------

_SYMS = st.sampled_from(["A", "B", "ZVZZT"])
_PX = st.integers(-2, 6).map(lambda k: k * 100)
_SIZE = st.integers(0, 4)
_ID = st.integers(0, 6)


def _plus_message():
    return st.one_of(
        st.builds(lambda o, s, z, p, y: add(o, s, z, p, y), _ID, st.sampled_from("85X"), _SIZE, _PX, _SYMS),
        st.builds(lambda o, z, p, k, y: modify(o, z, p, k, y), _ID, _SIZE, _PX, st.booleans(), _SYMS),
        st.builds(lambda o, y: delete(o, y), _ID, _SYMS),
        st.builds(lambda o, z, p, y: executed(o, z, p, y), _ID, _SIZE, _PX, _SYMS),
        st.builds(lambda y: PLUS.pack("C", timestamp=T0, symbol=y), _SYMS),
    )


def _deep_message():
    return st.builds(lambda s, p, z, d, y: plu(s, p, z, d, y), st.sampled_from("85"), _PX, _SIZE, st.booleans(),
                     _SYMS)


def _mangled(msg: st.SearchStrategy) -> st.SearchStrategy:
    """A message, sometimes cut short or with a byte changed, sometimes random bytes."""
    return st.one_of(msg, st.tuples(msg, st.integers(0, 45)).map(lambda t: t[0][:t[1]]),
                     st.tuples(msg, st.integers(0, 45), st.integers(0, 255)).map(
                         lambda t: t[0][:t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]),
                     st.binary(max_size=48))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plus=st.lists(_mangled(_plus_message()), max_size=60), deep=st.lists(_mangled(_deep_message()), max_size=40))
def test_random_message_sequences_never_crash_and_books_stay_sound(plus, deep):
    books = IexBooks(bbo=True, trades=True)
    books.feed_raw("deep+", plus)
    books.feed_raw("deep", deep)
    books.feed_raw("tops", plus + deep)
    assert books._check() == ""
    c = books.counters()
    # every message decoded and handled, or counted as not decoding (types without a handler: neither)
    assert c["messages"] + c["integrity"]["unknown_type"] + c["integrity"]["bad_length"] <= 2 * (len(plus) + len(deep))
    for sym in books.symbols():
        for feed in PROTOCOLS:
            bk = books.book(sym, feed)
            bids, asks = bk.bids(), bk.asks()
            assert all(r[1] > 0 for r in bids + asks)
            assert [r[0] for r in bids] == sorted((r[0] for r in bids), reverse=True)
            assert [r[0] for r in asks] == sorted(r[0] for r in asks)
    books.take_bbo(), books.take_trades()


# --- through the IEX decoder ------------------------------------------------------------------------------

@pytest.mark.parametrize("feed", list(FEEDS))
def test_books_through_the_decoder_equal_the_reference(tmp_path, feed):
    """A generated capture replayed by the ``iex`` decoder into ``make_books()``:
    the same books, BBO changes and trades as the reference and as ``feed_raw``."""
    from rxfeed import Pipeline
    from rxfeed.tools.iex_generator import generate_iex

    path = tmp_path / f"{feed}.pcap"
    n = generate_iex(path, feed, N, SYMBOLS, 5)
    pipe = Pipeline("pcap_replay", "iex", backend_config={"path": str(path)})
    books = pipe.decoder.make_books(bbo=True, trades=True)
    with pipe:
        summary = pipe.run()
    assert summary.messages == n and summary.error is None
    msgs = list(iex_messages(feed, N, SYMBOLS, 5))
    ref, direct = REFERENCE[feed](), IexBooks(bbo=True, trades=True)
    for raw in msgs:
        ref.on(unpack(FEEDS[feed], raw))
    direct.feed_raw(feed, msgs)
    assert levels_of(books, feed) == ref.book() == levels_of(direct, feed)
    a, d = books.take_bbo(), direct.take_bbo()
    assert len(a) == len(d) > 10 and (a == d).all()
    a, d = books.take_trades(), direct.take_trades()
    assert len(a) == len(d) > 10 and (a == d).all()
    final = books.final_bbo()
    for sym in books.symbols():
        bs, bp, ap, as_ = ref.top(sym)
        assert final[sym] == {"bid_price": bp, "bid_shares": bs, "ask_price": ap, "ask_shares": as_}
    assert not books.suspect and books._check() == ""
