"""Normalised market-data events as numpy: the layout of ``rxf_event``
(``rxfeed/events.h``), protocol-neutral, one 64-byte record per event.

:data:`EVENT_DTYPE` reads any record (the head, and the body as four raw
u64); :data:`KIND_DTYPES` has one dtype per kind, of the same size, naming
that kind's body fields: ``events[events["kind"] == EventKind.BBO].view(
KIND_DTYPES[EventKind.BBO])``. docs/distribution.md ("Event encoding") is
the reference; tests compare these offsets with the C compiler's.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

#: ``RXF_EVENT_VERSION``: the layout and meaning of the fields below.
EVENT_VERSION = 1
#: ``RXF_EVENT_SIZE``: bytes per record.
EVENT_SIZE = 64
#: Flags (``RXF_EVF_*``).
FLAG_LAST = 0x01
FLAG_SUSPECT = 0x02


class EventKind(IntEnum):
    """``enum rxf_event_kind``."""

    ORDER_ADD = 1
    ORDER_MODIFY = 2
    ORDER_DELETE = 3
    LEVEL = 4
    BBO = 5
    TRADE = 6
    STATUS = 7
    LOSS = 8
    SYMBOL = 9


class TradingState(IntEnum):
    """``enum rxf_trading_state`` (a STATUS event's ``state``)."""

    UNKNOWN = 0
    HALTED = 1
    PAUSED = 2
    QUOTING = 3
    TRADING = 4
    CLOSED = 5


class LossReason(IntEnum):
    """``enum rxf_loss_reason`` (a LOSS event's ``reason``)."""

    FEED = 1
    RING = 2
    STREAM = 3


#: (name, format, offset) of the 32-byte head every record has. The reserved
#: fields are named so that :data:`EVENT_DTYPE` covers every byte: numpy
#: copies (concatenate, fancy indexing) copy fields, not the gaps between them.
_HEAD: list[tuple[str, str, int]] = [
    ("version", "u1", 0), ("kind", "u1", 1), ("side", "S1", 2), ("flags", "u1", 3),
    ("venue", "<u2", 4), ("_reserved", "<u2", 6), ("symbol", "<u4", 8), ("_reserved2", "<u4", 12),
    ("seq", "<u8", 16), ("ts", "<u8", 24),
]
_BODY = 32

#: Each kind's body fields: (name, format, offset within the body); ``body.<view>.<name>`` in C.
BODY_FIELDS: dict[EventKind, tuple[str, list[tuple[str, str, int]]]] = {
    EventKind.ORDER_ADD: ("order", [("price", "<i8", 0), ("qty", "<u8", 8), ("order_id", "<u8", 16),
                                    ("new_order_id", "<u8", 24)]),
    EventKind.LEVEL: ("level", [("price", "<i8", 0), ("qty", "<u8", 8), ("orders", "<u8", 16)]),
    EventKind.BBO: ("bbo", [("bid_price", "<i8", 0), ("bid_qty", "<u8", 8), ("ask_price", "<i8", 16),
                            ("ask_qty", "<u8", 24)]),
    EventKind.TRADE: ("trade", [("price", "<i8", 0), ("qty", "<u8", 8), ("order_id", "<u8", 16),
                                ("match_id", "<u8", 24)]),
    EventKind.STATUS: ("status", [("state", "<u4", 0), ("venue_code", "<u4", 4), ("reason", "S8", 8)]),
    EventKind.LOSS: ("loss", [("first", "<u8", 0), ("count", "<u8", 8), ("reason", "<u4", 16)]),
    EventKind.SYMBOL: ("symbol", [("name", "S16", 0), ("price_decimals", "<u4", 16)]),
}
BODY_FIELDS[EventKind.ORDER_MODIFY] = BODY_FIELDS[EventKind.ORDER_ADD]
BODY_FIELDS[EventKind.ORDER_DELETE] = BODY_FIELDS[EventKind.ORDER_ADD]


def _dtype(fields: list[tuple[str, str, int]]) -> np.dtype:
    return np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                     "offsets": [f[2] for f in fields], "itemsize": EVENT_SIZE, "aligned": True})


#: Any record: the head, then the body as four raw u64.
EVENT_DTYPE = _dtype(_HEAD + [("raw", "(4,)<u8", _BODY)])
#: Per kind: the head, then that kind's body fields by name.
KIND_DTYPES: dict[EventKind, np.dtype] = {
    kind: _dtype(_HEAD + [(name, fmt, _BODY + off) for name, fmt, off in fields])
    for kind, (_, fields) in BODY_FIELDS.items()
}


class EventError(ValueError):
    """Bytes that are not whole records of this version and known kinds."""


def check_events(events: np.ndarray) -> None:
    """Raise :class:`EventError` naming the first record of another version or
    of an unknown kind (``rxf_event_check``)."""
    bad_version = np.flatnonzero(events["version"] != EVENT_VERSION)
    if len(bad_version):
        i = int(bad_version[0])
        raise EventError(f"event {i}: version {int(events['version'][i])}, this reader knows {EVENT_VERSION}")
    known = np.isin(events["kind"], np.array([int(k) for k in EventKind], dtype=np.uint8))
    bad_kind = np.flatnonzero(~known)
    if len(bad_kind):
        i = int(bad_kind[0])
        raise EventError(f"event {i}: unknown kind {int(events['kind'][i])}")


def events_from_bytes(data: bytes | bytearray | memoryview) -> np.ndarray:
    """The records in ``data`` (a read-only view, :data:`EVENT_DTYPE`), checked:
    :class:`EventError` for a length that is not whole records, another
    version or an unknown kind."""
    if len(data) % EVENT_SIZE:
        raise EventError(f"{len(data)} bytes is not a whole number of {EVENT_SIZE}-byte events")
    events = np.frombuffer(data, dtype=EVENT_DTYPE)
    check_events(events)
    return events


def make_events(kind: EventKind, n: int = 1, **fields: Any) -> np.ndarray:
    """``n`` records of ``kind`` (version set, everything else 0 unless given
    in ``fields``, by the names of :data:`KIND_DTYPES`), as :data:`EVENT_DTYPE`."""
    out = np.zeros(n, dtype=KIND_DTYPES[kind])
    out["version"] = EVENT_VERSION
    out["kind"] = int(kind)
    for name, value in fields.items():
        out[name] = value
    return out.view(EVENT_DTYPE)


def as_kind(events: np.ndarray, kind: EventKind) -> np.ndarray:
    """The records of ``kind`` in ``events``, viewed with its named fields (a copy)."""
    return np.ascontiguousarray(events[events["kind"] == int(kind)]).view(KIND_DTYPES[kind])


def __getattr__(name: str) -> Any:
    """``EventRing`` lives in the compiled ``rxfeed._event_ring`` (imported on first use)."""
    if name == "EventRing":
        from rxfeed._event_ring import EventRing

        return EventRing
    raise AttributeError(f"module 'rxfeed.events' has no attribute {name!r}")
