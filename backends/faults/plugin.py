"""Entry point ``rxfeed = faults``: registers the fault-injecting wrapper backend."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import FaultsBackend

    registry.add(FaultsBackend)


@hookimpl
def rxfeed_native_info():
    from . import _faults

    return {"faults": f"built ({_faults.__file__.rsplit('/', 1)[-1]})"}
