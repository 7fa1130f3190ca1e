"""Entry point ``rxfeed = efvi``. Registered whether or not the extension was built."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import EfviBackend

    registry.add(EfviBackend)


@hookimpl
def rxfeed_native_info():
    try:
        from . import _efvi
    except ImportError:
        return {"efvi": "not built (no ef_vi headers/libciul at build time)"}
    return {"efvi": f"built against {_efvi.BUILT_AGAINST}"}
