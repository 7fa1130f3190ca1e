"""Python message classes of the IEX feeds, one per feed and type, built from :mod:`.spec`.

Each class is a :func:`collections.namedtuple` whose fields are the spec's
fields in wire order (``message_type`` first), named as in the table
(snake_case). Prices are integers in the spec's units (1/10,000 dollar),
timestamps ns since the POSIX epoch (UTC), Strings ``str`` without their
right padding, Byte codes one-character ``str``, flags integers.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, NamedTuple

from .spec import FEEDS

__all__ = ["BY_FEED", "MessageMeta", "to_dict"]

#: Feed name ("TOPS", "DEEP", "DEEP+") -> message type character -> class.
BY_FEED: dict[str, dict[str, type]] = {}

for _feed, _spec in FEEDS.items():
    BY_FEED[_feed] = {}
    for _m in _spec.messages:
        _cls = namedtuple(_m.name, tuple(f.name for f in _m.fields))  # type: ignore[misc]
        _cls.__doc__ = f"IEX {_feed} {_spec.version} '{_m.type}' {_m.spec_name} ({_m.length} bytes on the wire)."
        _cls.__module__ = __name__
        _cls.__qualname__ = f"{_feed.replace('+', '_PLUS')}.{_m.name}"
        BY_FEED[_feed][_m.type] = _cls


class MessageMeta(NamedTuple):
    """Where a message came from (``subscribe(..., with_meta=True)``); the
    first four fields mean what they mean for every rxfeed decoder.

    :ivar session: IEX-TP session id.
    :ivar sequence: the message's IEX-TP sequence number.
    :ivar rx_ts_ns: receive (or capture) time of its packet, ns; 0: unknown.
    :ivar status: what the session layer made of it: ``"new"``; in dissect
        mode (``sequenced = false``) also ``"duplicate"`` or ``"implausible"``
        (an unconfirmed jump, session change or restart).
    :ivar channel: IEX-TP channel id.
    :ivar protocol_id: IEX-TP message protocol id (0x8003 TOPS, 0x8004 DEEP, 0x8005 DEEP+).
    :ivar send_time: its segment's send time, ns since the epoch (UTC).
    """

    session: int
    sequence: int
    rx_ts_ns: int
    status: str | None
    channel: int
    protocol_id: int
    send_time: int


def to_dict(msg: Any) -> dict[str, Any]:
    """A message as a plain ``dict`` (spec field names as keys)."""
    return dict(zip(msg._fields, msg))
