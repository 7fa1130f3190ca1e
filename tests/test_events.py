"""The normalised event record: the C struct (rxfeed/events.h) and the numpy
dtypes (rxfeed.events) have one layout, and records cross between them intact."""

from __future__ import annotations

import numpy as np
import pytest

from rxfeed.events import (BODY_FIELDS, EVENT_DTYPE, EVENT_SIZE, EVENT_VERSION, FLAG_LAST, KIND_DTYPES,
                           EventError, EventKind, LossReason, TradingState, as_kind, events_from_bytes,
                           make_events)

from .c_harness import build_harness

HEAD = ["version", "kind", "side", "flags", "venue", "symbol", "seq", "ts"]


def _layout_pairs() -> list[tuple[str, str]]:
    """(numpy field of some kind's dtype, C member designator of rxf_event) for every named field."""
    pairs = [(f, f) for f in HEAD]
    for kind, (view, fields) in BODY_FIELDS.items():
        pairs += [(f"{kind.name}.{name}", f"body.{view}.{name}") for name, _, _ in fields]
    return pairs


def _build():
    pairs = _layout_pairs()
    offsets = ", ".join(f"offsetof(rxf_event, {c})" for _, c in pairs)
    sizes = ", ".join(f"sizeof(((rxf_event *)0)->{c})" for _, c in pairs)
    cdef = """
        size_t n_fields(void); void layout(size_t *offsets, size_t *sizes); size_t event_size(void);
        unsigned event_version(void);
        void fill_examples(void *out);
        const char *check(const void *e);
        uint64_t modify_sum(const void *events, size_t n);
    """
    source = f"""
        #include <string.h>
        #include "rxfeed/events.h"
        static const size_t OFF[] = {{{offsets}}};
        static const size_t SIZE[] = {{{sizes}}};
        size_t n_fields(void) {{ return sizeof OFF / sizeof OFF[0]; }}
        void layout(size_t *o, size_t *s) {{ memcpy(o, OFF, sizeof OFF); memcpy(s, SIZE, sizeof SIZE); }}
        size_t event_size(void) {{ return sizeof(rxf_event); }}
        unsigned event_version(void) {{ return RXF_EVENT_VERSION; }}
        const char *check(const void *e) {{ return rxf_event_check((const rxf_event *)e); }}
        /* one event of each kind, with values the test knows */
        void fill_examples(void *out) {{
            rxf_event *e = out;
            e[0] = rxf_event_make(RXF_EV_ORDER_ADD, 3, 17, 1001, 5000);
            e[0].side = RXF_SIDE_BID; e[0].body.order.price = 1234500; e[0].body.order.qty = 300;
            e[0].body.order.order_id = 77;
            e[1] = rxf_event_make(RXF_EV_ORDER_MODIFY, 3, 17, 1002, 5001);
            e[1].body.order.price = -25; e[1].body.order.qty = 100; e[1].body.order.order_id = 77;
            e[1].body.order.new_order_id = 78; e[1].flags = RXF_EVF_LAST;
            e[2] = rxf_event_make(RXF_EV_ORDER_DELETE, 3, 17, 1003, 5002);
            e[2].body.order.order_id = 78;
            e[3] = rxf_event_make(RXF_EV_LEVEL, 3, 17, 1004, 5003);
            e[3].side = RXF_SIDE_ASK; e[3].body.level.price = 1234600; e[3].body.level.qty = 900;
            e[3].body.level.orders = 4;
            e[4] = rxf_event_make(RXF_EV_BBO, 3, 17, 1005, 5004);
            e[4].body.bbo.bid_price = 1234500; e[4].body.bbo.bid_qty = 300;
            e[4].body.bbo.ask_price = 1234600; e[4].body.bbo.ask_qty = 900;
            e[5] = rxf_event_make(RXF_EV_TRADE, 3, 17, 1006, 5005);
            e[5].side = RXF_SIDE_BID; e[5].body.trade.price = 1234500; e[5].body.trade.qty = 50;
            e[5].body.trade.order_id = 77; e[5].body.trade.match_id = UINT64_MAX;
            e[6] = rxf_event_make(RXF_EV_STATUS, 3, 17, 1007, 5006);
            e[6].body.status.state = RXF_STATE_HALTED; e[6].body.status.venue_code = 'H';
            memcpy(e[6].body.status.reason, "LUDP    ", 8);
            e[7] = rxf_event_make(RXF_EV_LOSS, 3, 0, 1008, 5007);
            e[7].body.loss.first = 1 + (1ull << 40); e[7].body.loss.count = 12; e[7].body.loss.reason = RXF_LOSS_FEED;
            e[8] = rxf_event_make(RXF_EV_SYMBOL, 3, 17, 1009, 5008);
            memcpy(e[8].body.symbol.name, "AAPL            ", 16); e[8].body.symbol.price_decimals = 4;
        }}
        /* what a C reader sees of modify events written by Python */
        uint64_t modify_sum(const void *events, size_t n) {{
            const rxf_event *e = events; uint64_t sum = 0;
            for (size_t i = 0; i < n; i++)
                if (e[i].kind == RXF_EV_ORDER_MODIFY)
                    sum += e[i].body.order.new_order_id + e[i].body.order.qty + (uint64_t)e[i].body.order.price
                           + e[i].symbol + e[i].seq;
            return sum;
        }}
    """
    return build_harness("_rxf_events_harness", cdef, source)


@pytest.fixture(scope="module")
def harness():
    return _build()


def _numpy_field(name: str) -> tuple[int, int]:
    """(offset, size) of a field named as in :func:`_layout_pairs`."""
    if "." in name:
        kind, field = name.split(".")
        dt = KIND_DTYPES[EventKind[kind]]
    else:
        dt, field = EVENT_DTYPE, name
    fmt, off = dt.fields[field][:2]
    return off, fmt.itemsize


def test_dtypes_have_the_c_layout(harness):
    lib, ffi = harness.lib, harness.ffi
    pairs = _layout_pairs()
    assert lib.n_fields() == len(pairs)
    offs, sizes = ffi.new("size_t[]", len(pairs)), ffi.new("size_t[]", len(pairs))
    lib.layout(offs, sizes)
    c = {name: (offs[i], sizes[i]) for i, (name, _) in enumerate(pairs)}
    assert {name: _numpy_field(name) for name, _ in pairs} == c
    assert lib.event_size() == EVENT_SIZE == EVENT_DTYPE.itemsize
    assert all(dt.itemsize == EVENT_SIZE for dt in KIND_DTYPES.values())
    assert lib.event_version() == EVENT_VERSION
    assert set(KIND_DTYPES) == set(EventKind)


def test_c_records_read_in_numpy(harness):
    buf = harness.ffi.new("char[]", 9 * EVENT_SIZE)
    harness.lib.fill_examples(buf)
    ev = events_from_bytes(bytes(harness.ffi.buffer(buf)))
    assert list(ev["kind"]) == list(range(1, 10))
    assert list(ev["seq"]) == list(range(1001, 1010)) and list(ev["ts"]) == list(range(5000, 5009))
    assert (ev["venue"] == 3).all() and list(ev["symbol"]) == [17] * 7 + [0, 17]
    add = as_kind(ev, EventKind.ORDER_ADD)[0]
    assert (add["side"], add["price"], add["qty"], add["order_id"]) == (b"B", 1234500, 300, 77)
    mod = as_kind(ev, EventKind.ORDER_MODIFY)[0]
    assert (mod["price"], mod["qty"], mod["order_id"], mod["new_order_id"], mod["flags"]) == (-25, 100, 77, 78, FLAG_LAST)
    lvl = as_kind(ev, EventKind.LEVEL)[0]
    assert (lvl["side"], lvl["price"], lvl["qty"], lvl["orders"]) == (b"S", 1234600, 900, 4)
    bbo = as_kind(ev, EventKind.BBO)[0]
    assert (bbo["bid_price"], bbo["bid_qty"], bbo["ask_price"], bbo["ask_qty"]) == (1234500, 300, 1234600, 900)
    trade = as_kind(ev, EventKind.TRADE)[0]
    assert (trade["price"], trade["qty"], trade["order_id"], trade["match_id"]) == (1234500, 50, 77, 2**64 - 1)
    st = as_kind(ev, EventKind.STATUS)[0]
    assert (st["state"], st["venue_code"], st["reason"]) == (TradingState.HALTED, ord("H"), b"LUDP    ")
    loss = as_kind(ev, EventKind.LOSS)[0]
    assert (loss["first"], loss["count"], loss["reason"]) == (1 + 2**40, 12, LossReason.FEED)
    sym = as_kind(ev, EventKind.SYMBOL)[0]
    assert (sym["name"].rstrip(), sym["price_decimals"]) == (b"AAPL", 4)


def test_numpy_records_read_in_c_and_back(harness):
    ev = make_events(EventKind.ORDER_MODIFY, 5, symbol=np.arange(5), seq=10**12 + np.arange(5),
                     price=-7, qty=np.arange(5) * 100, order_id=1, new_order_id=np.arange(5) + 2**33)
    ev = np.concatenate([ev, make_events(EventKind.TRADE, 2, qty=999)])
    raw = ev.tobytes()
    expected = sum(2**33 + i + i * 100 - 7 + i + 10**12 + i for i in range(5))
    assert harness.lib.modify_sum(harness.ffi.from_buffer(raw), len(ev)) == expected
    for i in range(len(ev)):
        assert harness.lib.check(harness.ffi.from_buffer(raw[i * EVENT_SIZE:(i + 1) * EVENT_SIZE])) == harness.ffi.NULL
    back = events_from_bytes(raw)
    assert back.tobytes() == raw and (as_kind(back, EventKind.ORDER_MODIFY)["new_order_id"] == np.arange(5) + 2**33).all()


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "not a whole number"),
    (lambda b: bytes([EVENT_VERSION + 1]) + b[1:], "version 2"),
    (lambda b: b[:1] + bytes([0]) + b[2:], "unknown kind 0"),
    (lambda b: b[:EVENT_SIZE + 1] + bytes([99]) + b[EVENT_SIZE + 2:], "event 1: unknown kind 99"),
])
def test_malformed_records_rejected_in_python_and_c(harness, mutate, message):
    bad = mutate(make_events(EventKind.BBO, 2, bid_price=5).tobytes())
    with pytest.raises(EventError, match=message):
        events_from_bytes(bad)
    if len(bad) % EVENT_SIZE == 0:
        which = int(message.split()[1].rstrip(":")) if message.startswith("event") else 0
        why = harness.lib.check(harness.ffi.from_buffer(bad[which * EVENT_SIZE:(which + 1) * EVENT_SIZE]))
        assert harness.ffi.string(why).startswith(b"unknown event")


def test_numpy_copies_keep_every_byte():
    """EVENT_DTYPE names every byte (reserved ones too): concatenating or
    indexing records copies them whole, so what a sink sends is what was written."""
    ev = make_events(EventKind.BBO, 3, bid_price=5)
    raw = bytearray(ev.tobytes())
    raw[6], raw[12] = 0xAA, 0xBB      # reserved bytes a later version may use
    ev = np.frombuffer(bytes(raw), dtype=EVENT_DTYPE)
    assert np.concatenate([ev[:1], ev[1:]]).tobytes() == bytes(raw)
    assert ev[[0, 1, 2]].tobytes() == bytes(raw)
