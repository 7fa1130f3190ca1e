"""The example_cffi file format: the magic ``RXCFFI01``, then records of
[u32 little-endian length][UDP payload] (reader.h)."""
from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

MAGIC = b"RXCFFI01"
#: Longest payload a record may hold (RXCF_MAX_PAYLOAD in reader.h).
MAX_PAYLOAD = 65535


def record(payload: bytes) -> bytes:
    """One record: the length, then the payload."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD}")
    return struct.pack("<I", len(payload)) + payload


def write(path: str | Path, payloads: Iterable[bytes]) -> None:
    """Write ``payloads`` as an example_cffi datagram file."""
    with open(path, "wb") as f:
        f.write(MAGIC)
        for p in payloads:
            f.write(record(p))
