"""Pure-Python encoder and reference decoder for ITCH 5.0, from :mod:`.spec`.

The encoder is what the synthetic-day generator writes with; the decoder is
the independent reference the Cython decoder is tested against. Neither is on
any hot path.
"""

from __future__ import annotations

import struct
from typing import Any

from .spec import BY_TYPE, HEADER_FIELDS, Message

_STRUCT_KIND = {"char": "c", "u8": "B", "u16": "H", "u32": "I", "u64": "Q", "price4": "I", "price8": "Q"}


def _struct_for(msg: Message) -> struct.Struct:
    fmt = ">cHHHI" + "".join(f"{f.size}s" if f.kind == "alpha" else _STRUCT_KIND[f.kind] for f in msg.fields)
    s = struct.Struct(fmt)
    if s.size != msg.wire_size:  # the spec table and struct disagree: a bug in the table
        raise AssertionError(f"{msg.type}: struct size {s.size} != spec {msg.wire_size}")
    return s


STRUCTS: dict[str, struct.Struct] = {t: _struct_for(m) for t, m in BY_TYPE.items()}


def _wire_value(kind: str, size: int, v: Any) -> Any:
    if kind == "alpha":
        b = v.encode("ascii") if isinstance(v, str) else bytes(v)
        if len(b) > size:
            raise ValueError(f"alpha value {v!r} longer than {size}")
        return b.ljust(size, b" ")
    if kind == "char":
        return v.encode("ascii") if isinstance(v, str) else bytes(v)
    return int(v)


def encode(type: str, *, stock_locate: int = 0, tracking_number: int = 0, timestamp: int = 0,
           **fields: Any) -> bytes:
    """Encode one message; every field of the type must be given by name."""
    msg = BY_TYPE[type]
    values = [type.encode(), stock_locate, tracking_number, timestamp >> 32, timestamp & 0xFFFFFFFF]
    for f in msg.fields:
        values.append(_wire_value(f.kind, f.wire_size, fields.pop(f.name)))
    if fields:
        raise TypeError(f"unknown fields for {type}: {sorted(fields)}")
    return STRUCTS[type].pack(*values)


def decode(data: bytes) -> dict[str, Any]:
    """Decode one message to a dict keyed by spec field names.

    Raises ``ValueError`` on an unknown type or a length that does not match.
    """
    if not data:
        raise ValueError("empty message")
    t = chr(data[0])
    msg = BY_TYPE.get(t)
    if msg is None:
        raise ValueError(f"unknown ITCH 5.0 message type {t!r}")
    if len(data) != msg.wire_size:
        raise ValueError(f"type {t!r} is {msg.wire_size} bytes, got {len(data)}")
    raw = STRUCTS[t].unpack(data)
    out: dict[str, Any] = dict(zip(HEADER_FIELDS, (t, raw[1], raw[2], (raw[3] << 32) | raw[4])))
    for f, v in zip(msg.fields, raw[5:]):
        if f.kind == "alpha":
            out[f.name] = v.decode("latin-1").rstrip(" ")
        elif f.kind == "char":
            out[f.name] = v.decode("latin-1")
        else:
            out[f.name] = v
    return out
