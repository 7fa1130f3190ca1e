"""The file format of the ``example_cython`` backend: the magic
:data:`MAGIC`, then one record per packet: a :data:`HEADER` (little-endian
u32 payload length, u64 receive time in ns since the epoch, u32 source and
destination IPv4 addresses in host order, u16 source and destination ports)
followed by the payload (at most :data:`MAX_PAYLOAD` bytes, a UDP payload)."""
from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAGIC = b"rxcyrec1"  # its third byte is no ITCH type: nasdaq_file's detector passes it on
HEADER = struct.Struct("<IQIIHH")
MAX_PAYLOAD = 65507


def record(payload: bytes, rx_ts_ns: int = 0, src_ip: int = 0, dst_ip: int = 0, src_port: int = 0,
           dst_port: int = 0) -> bytes:
    """One record: header and payload."""
    return HEADER.pack(len(payload), rx_ts_ns, src_ip, dst_ip, src_port, dst_port) + payload


def write(path: str | Path, packets: Iterable[Any]) -> None:
    """Write ``packets`` (bytes, or :class:`rxfeed.Packet` to carry metadata) to ``path``."""
    with open(path, "wb") as f:
        f.write(MAGIC)
        for p in packets:
            if isinstance(p, (bytes, bytearray, memoryview)):
                f.write(record(bytes(p)))
            else:
                f.write(record(bytes(p.data), p.rx_ts_ns, p.src_ip, p.dst_ip, p.src_port, p.dst_port))
