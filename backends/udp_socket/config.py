"""Settings of the kernel UDP socket backend."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator, model_validator

from rxfeed.backend_base import check_filter_count
from rxfeed.config import PluginConfig


def parse_group(text: str) -> tuple[int, int, int]:
    """``[source@]group:port`` -> (group, source, port), addresses in host order."""
    src, _, rest = text.rpartition("@")
    host, sep, port = rest.partition(":")
    if not sep:
        raise ValueError(f"{text!r}: expected group:port")
    g = int(ipaddress.IPv4Address(host))
    s = int(ipaddress.IPv4Address(src)) if src else 0
    p = int(port)
    if not 0 < p < 65536:
        raise ValueError(f"{text!r}: bad port")
    return g, s, p


class UdpSocketConfig(PluginConfig):
    """:ivar groups: ``group:port`` or ``source@group:port`` (source-specific);
        a unicast address just binds the port. All entries share one port.
    :ivar interface_address: local address of the interface to join on (default: kernel's choice).
    :ivar interface: interface name to join on (alternative to the address).
    :ivar rcvbuf: socket receive buffer in bytes (0: system default; raised with SO_RCVBUFFORCE as root).
    :ivar busy_poll_us: SO_BUSY_POLL microseconds (0: off).
    :ivar blocking: block in recvmmsg (100 ms timeout) instead of spinning non-blocking.
    :ivar idle_timeout_s: end of source after this long without a datagram (0: never).
    """

    groups: tuple[str, ...] = Field(min_length=1)
    interface_address: str | None = None
    interface: str | None = None
    rcvbuf: int = Field(0, ge=0, le=1 << 30)
    busy_poll_us: int = Field(0, ge=0, le=1_000_000)
    blocking: bool = False
    idle_timeout_s: float = Field(0.0, ge=0.0)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        check_filter_count(v)
        for g in v:
            parse_group(g)
        return v

    @model_validator(mode="after")
    def _one_port(self) -> "UdpSocketConfig":
        ports = {parse_group(g)[2] for g in self.groups}
        if len(ports) != 1:
            raise ValueError(f"all groups must share one port (got {sorted(ports)}); run a pipeline per port")
        return self
