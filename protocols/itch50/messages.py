"""Python message classes, one per ITCH 5.0 type, built from :mod:`.spec`.

Each class is a :func:`collections.namedtuple` whose fields are the common
header (``type``, ``stock_locate``, ``tracking_number``, ``timestamp``) then
the type's fields in wire order, named as in the spec (snake_case). Prices are
integers in the spec's units (``Price(4)``: 1/10,000 dollar); alpha fields are
``str`` with the right padding removed.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, NamedTuple

from .spec import HEADER_FIELDS, MESSAGES

__all__ = ["CLASSES", "BY_TYPE", "MessageMeta", "to_dict"] + [m.name for m in MESSAGES]

#: Class name -> class.
CLASSES: dict[str, type] = {}
#: Message type character -> class.
BY_TYPE: dict[str, type] = {}

for _m in MESSAGES:
    _cls = namedtuple(_m.name, HEADER_FIELDS + tuple(f.name for f in _m.fields))  # type: ignore[misc]
    _cls.__doc__ = f"ITCH 5.0 '{_m.type}' {_m.name} ({_m.wire_size} bytes on the wire)."
    _cls.__module__ = __name__
    CLASSES[_m.name] = _cls
    BY_TYPE[_m.type] = _cls
    globals()[_m.name] = _cls


class MessageMeta(NamedTuple):
    """Where a message came from, as ``subscribe(..., with_meta=True)`` passes it:
    always of the message's own packet.

    :ivar session: MoldUDP64 session (10 characters, padding kept); None without MoldUDP64.
    :ivar sequence: its MoldUDP64 sequence number (as on the wire); None without MoldUDP64.
    :ivar rx_ts_ns: receive (or capture) time of its packet, ns since the epoch; 0: unknown.
    :ivar status: what the session layer made of it: ``"new"``; in dissect mode
        (``sequenced = false``) also ``"duplicate"`` (already delivered),
        ``"implausible"`` (an unconfirmed sequence jump) or ``"overflow"``
        (sequence + count past 2^64), all dropped in sequenced mode; None
        without MoldUDP64.
    """

    session: str | None
    sequence: int | None
    rx_ts_ns: int
    status: str | None


def to_dict(msg: Any) -> dict[str, Any]:
    """A message as a plain ``dict`` (spec field names as keys)."""
    return dict(zip(msg._fields, msg))
