"""Entry point ``rxfeed = nasdaq_file``."""

from __future__ import annotations

from rxfeed import sources
from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import NasdaqFileBackend

    registry.add(NasdaqFileBackend)


@hookimpl(trylast=True)
def rxfeed_detect_source(path: str, head: bytes):
    # a length prefix (possibly zero) followed by an ITCH 5.0 type byte
    from rxfeed.protocols.itch50.spec import BY_TYPE

    # the first record's length must be its type's (or 0: implied by the type)
    if sources.kind(head) != "other" or len(head) < 3 or chr(head[2]) not in BY_TYPE:
        return None
    length = int.from_bytes(head[:2], "big")
    return ("nasdaq_file", "itch50") if length in (0, BY_TYPE[chr(head[2])].wire_size) else None


@hookimpl
def rxfeed_native_info():
    from . import _nasdaq_file

    return {"nasdaq_file": f"built ({_nasdaq_file.__file__.rsplit('/', 1)[-1]})"}
