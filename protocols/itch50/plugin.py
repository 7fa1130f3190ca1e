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


def _is_moldudp64_itch(p: bytes) -> bool:
    """A MoldUDP64 datagram whose blocks are exactly ITCH 5.0 messages of
    their types' sizes, filling it to the last byte."""
    from .spec import BY_TYPE

    if len(p) < 20 or not all(32 <= c < 127 for c in p[:10]):
        return False
    count = int.from_bytes(p[18:20], "big")
    if count in (0, 0xFFFF):
        return len(p) == 20
    pos = 20
    for _ in range(count):
        if pos + 3 > len(p):
            return False
        n = int.from_bytes(p[pos:pos + 2], "big")
        m = BY_TYPE.get(chr(p[pos + 2]))
        if m is None or n != m.wire_size:
            return False
        pos += 2 + n
    return pos == len(p)


@hookimpl
def rxfeed_claim_payloads(payloads):
    # MoldUDP64 carrying ITCH 5.0: claimed when most payloads frame exactly
    framed = sum(1 for p in payloads if _is_moldudp64_itch(bytes(p)))
    return "itch50" if framed and framed * 2 >= len(payloads) else None
