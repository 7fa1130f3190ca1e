"""Entry point ``rxfeed = iex``: registered exactly as a third party's would be."""

from __future__ import annotations

from rxfeed.hookspecs import hookimpl

#: IEX-TP message protocol ids of the feeds this plugin decodes.
PROTOCOL_IDS = (0x8003, 0x8004, 0x8005)


@hookimpl
def rxfeed_register_decoders(registry):
    from .decoder import IexProtocolDecoder

    registry.add(IexProtocolDecoder)


@hookimpl
def rxfeed_native_info():
    from . import _iex_decoder as _decoder

    return {"iex": f"built ({_decoder.__file__.rsplit('/', 1)[-1]})"}


def is_iextp_segment(p: bytes) -> bool:
    """An IEX-TP version 1 segment of TOPS, DEEP or DEEP+ whose payload length
    is the datagram's and whose message blocks fill it exactly."""
    if len(p) < 40 or p[0] != 1 or int.from_bytes(p[2:4], "little") not in PROTOCOL_IDS:
        return False
    if int.from_bytes(p[12:14], "little") != len(p) - 40:
        return False
    pos = 40
    for _ in range(int.from_bytes(p[14:16], "little")):
        if pos + 2 > len(p):
            return False
        pos += 2 + int.from_bytes(p[pos:pos + 2], "little")
    return pos == len(p)


@hookimpl
def rxfeed_claim_payloads(payloads):
    # IEX-TP: claimed when most payloads are whole segments of an IEX feed
    framed = sum(1 for p in payloads if is_iextp_segment(bytes(p)))
    return "iex" if framed and framed * 2 >= len(payloads) else None
