"""Settings of the pcap_replay backend."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pydantic import Field, field_validator

from rxfeed.config import PluginConfig


def parse_destination(text: str) -> tuple[int, int]:
    """``"233.54.12.111:26477"``, ``"*:26477"``, ``"233.54.12.111"`` -> (ip, port), 0 = any."""
    host, _, port = text.partition(":")
    ip = 0 if host in ("", "*") else int(ipaddress.IPv4Address(host))
    p = 0 if port in ("", "*") else int(port)
    if not 0 <= p <= 65535:
        raise ValueError(f"port {p} out of range")
    return ip, p


#: Destination filters a backend takes at most (RXF_FILTER_MAX in rxfeed/net.h).
FILTER_MAX = 16


def check_destinations(filters: Sequence[str]) -> tuple[str, ...]:
    """Validate ``group:port`` destinations for any backend that filters with
    ``rxf_dst_filter``: at most :data:`FILTER_MAX`, each parseable. Raises
    ``ValueError`` (never truncates); returns them as a tuple."""
    if len(filters) > FILTER_MAX:
        raise ValueError(f"at most {FILTER_MAX} destination filters (got {len(filters)})")
    for f in filters:
        try:
            parse_destination(f)
        except ValueError as exc:
            raise ValueError(f"bad destination {f!r}: {exc}") from None
    return tuple(filters)


class PcapReplayConfig(PluginConfig):
    """Replay a capture file.

    :ivar path: pcap or pcapng file, plain or gzip; a pipe or FIFO too (read once).
    :ivar filters: destinations to keep (``group:port``, ``*`` wildcards); empty keeps all UDP.
    :ivar speed: 0 as fast as possible; 1 original inter-packet timing; k k-times faster.
    :ivar loops: passes over the file (the session layer restarts at each pass).
    """

    path: str
    filters: tuple[str, ...] = ()
    speed: float = Field(0.0, ge=0.0)
    loops: int = Field(1, ge=1)

    @field_validator("filters")
    @classmethod
    def _check_filters(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_destinations(v)
