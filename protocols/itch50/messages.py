"""Python message classes, one per ITCH 5.0 type, built from :mod:`.spec`.

Each class is a :func:`collections.namedtuple` whose fields are the common
header (``type``, ``stock_locate``, ``tracking_number``, ``timestamp``) then
the type's fields in wire order, named as in the spec (snake_case). Prices are
integers in the spec's units (``Price(4)``: 1/10,000 dollar); alpha fields are
``str`` with the right padding removed.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from .spec import HEADER_FIELDS, MESSAGES

__all__ = ["CLASSES", "BY_TYPE", "to_dict"] + [m.name for m in MESSAGES]

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


def to_dict(msg: Any) -> dict[str, Any]:
    """A message as a plain ``dict`` (spec field names as keys)."""
    return dict(zip(msg._fields, msg))
