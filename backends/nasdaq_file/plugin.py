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

    if sources.kind(head) == "other" and len(head) >= 3 and chr(head[2]) in BY_TYPE:
        return ("nasdaq_file", "itch50")
    return None


@hookimpl
def rxfeed_native_info():
    from . import _nasdaq_file

    return {"nasdaq_file": f"built ({_nasdaq_file.__file__.rsplit('/', 1)[-1]})"}
