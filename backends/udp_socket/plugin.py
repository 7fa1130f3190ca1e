"""Entry point ``rxfeed = udp_socket``."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import UdpSocketBackend

    registry.add(UdpSocketBackend)


@hookimpl
def rxfeed_native_info():
    from . import _udp

    return {"udp_socket": f"built ({_udp.__file__.rsplit('/', 1)[-1]})"}
