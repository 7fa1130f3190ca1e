"""Tell what a file is from its first bytes (gunzipped when gzip)."""

from __future__ import annotations

import gzip
from pathlib import Path

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def head(path: str | Path, n: int = 64) -> bytes:
    """Up to ``n`` leading bytes of the file's content (gunzipped if needed)."""
    with open(path, "rb") as f:
        raw = f.read(n)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError):
            return b""
    return raw


def kind(data: bytes) -> str:
    """``pcap``, ``pcapng`` or ``other`` from leading bytes."""
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if data[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return "other"
