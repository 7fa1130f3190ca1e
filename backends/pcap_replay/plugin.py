"""Entry point ``rxfeed = pcap_replay``: registers the backend and claims capture files."""

from __future__ import annotations

from rxfeed import sources
from rxfeed.hookspecs import hookimpl


@hookimpl
def rxfeed_register_backends(registry):
    from .backend import PcapReplayBackend

    registry.add(PcapReplayBackend)


@hookimpl
def rxfeed_detect_source(path: str, head: bytes):
    # a capture holds any protocol: the decoder is found from its payloads
    if sources.kind(head) in ("pcap", "pcapng"):
        return ("pcap_replay", None)
    return None


@hookimpl
def rxfeed_native_info():
    from . import _pcap

    return {"pcap_replay": f"built ({_pcap.__file__.rsplit('/', 1)[-1]})"}
