"""Entry point ``rxfeed = dpdk``. Registered whether or not the extension was
built, so ``rxfeed plugins`` can say which; using an unbuilt one is a clear error."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import DpdkBackend

    registry.add(DpdkBackend)


@hookimpl
def rxfeed_native_info():
    try:
        from . import _dpdk
    except ImportError:
        return {"dpdk": "not built (libdpdk-dev was not found at build time)"}
    return {"dpdk": f"built against {_dpdk.version()}"}
