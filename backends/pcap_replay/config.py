"""Settings of the pcap_replay backend."""

from __future__ import annotations

import ipaddress

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


class PcapReplayConfig(PluginConfig):
    """Replay a capture file.

    :ivar path: pcap or pcapng file, plain or gzip.
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
        if len(v) > 16:
            raise ValueError("at most 16 destination filters")
        for f in v:
            try:
                parse_destination(f)
            except ValueError as exc:
                raise ValueError(f"bad destination {f!r}: {exc}") from None
        return v
