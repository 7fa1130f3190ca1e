"""Tell what a file is from its first bytes (gunzipped when gzip).

A pipe or FIFO cannot be read twice: :func:`head` keeps what it read from one
together with the open descriptor, and the backend that opens the same path
next takes both over with :func:`claim` (so ``cat day | rxfeed replay
/dev/stdin`` and ``<(zcat day.gz)`` lose no bytes, and a FIFO's writer never
sees its reader go away)."""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: At most this many compressed bytes are read from a pipe to find a gzip head.
PIPE_SNIFF_LIMIT = 1 << 20

_held: dict[str, tuple[int, bytes]] = {}


def head(path: str | Path, n: int = 64) -> bytes:
    """Up to ``n`` leading bytes of the content (gunzipped if needed)."""
    key = str(path)
    if key not in _held:
        fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return _file_head(key, n)
        try:
            _held[key] = (fd, _read_pipe_head(fd, n))
        except OSError:  # e.g. a directory
            os.close(fd)
            raise
    return _gunzip_head(_held[key][1], n)


def claim(path: str | Path) -> tuple[int, bytes] | None:
    """The open descriptor of a pipe or FIFO :func:`head` read from, and the
    bytes it read (to be replayed before the rest), or None. The caller owns
    the descriptor from now on."""
    return _held.pop(str(path), None)


def trailing_warning(n: int, partial: bool = False) -> str:
    """The summary warning for bytes after the last complete gzip member
    (``partial``: a pipe, whose rest was not read)."""
    if partial:
        return (f"{n} trailing bytes after the last complete gzip member were ignored (not a gzip member); "
                "the rest of the pipe was not read")
    return f"{n} trailing bytes after the last complete gzip member were ignored (not a gzip member)"


def _file_head(path: str, n: int) -> bytes:
    with open(path, "rb") as f:
        raw = f.read(n)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                return g.read(n)
        except (OSError, EOFError):
            return b""
    return raw


def _read_pipe_head(fd: int, n: int) -> bytes:
    """Read from a pipe until ``n`` content bytes can be told (gunzipping as
    needed), the writer closes, or :data:`PIPE_SNIFF_LIMIT` bytes."""
    raw = b""
    while len(raw) < PIPE_SNIFF_LIMIT:
        if len(raw) >= 2 and (raw[:2] != b"\x1f\x8b" and len(raw) >= n or len(_gunzip_head(raw, n)) >= n):
            break
        more = os.read(fd, 65536)
        if not more:
            break
        raw += more
    return raw


def _gunzip_head(raw: bytes, n: int) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw[:n]
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, n)
    except zlib.error:
        return b""


def kind(data: bytes) -> str:
    """``pcap``, ``pcapng`` or ``other`` from leading bytes."""
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if data[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return "other"
