"""Entry point ``rxfeed = record``: registers the live-capture wrapper backend."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import RecordBackend

    registry.add(RecordBackend)


@hookimpl
def rxfeed_native_info():
    from . import _record

    return {"record": f"built ({_record.__file__.rsplit('/', 1)[-1]})"}
