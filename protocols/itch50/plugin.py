"""Entry point ``rxfeed = itch50``."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_decoders(registry):
    from .decoder import Itch50Decoder

    registry.add(Itch50Decoder)


@hookimpl
def rxfeed_native_info():
    from . import _decoder, _handlers

    return {"itch50": f"built ({_decoder.__file__.rsplit('/', 1)[-1]}, {_handlers.__file__.rsplit('/', 1)[-1]})"}
