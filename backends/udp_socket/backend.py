"""The kernel UDP socket backend: the baseline every kernel-bypass path is compared with."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any, ClassVar

from rxfeed.backend_base import NativeBackend, NativeReader

from ._udp import UdpReceiver
from .config import UdpSocketConfig, parse_group


class UdpSocketBackend(NativeBackend):
    """recvmmsg() batches from one kernel socket, in the same nogil loop."""

    name = "udp_socket"
    Config = UdpSocketConfig
    description = "kernel UDP socket (recvmmsg, SO_TIMESTAMPNS, SO_RXQ_OVFL, optional busy poll)"

    def open_reader(self, config: UdpSocketConfig) -> NativeReader:
        parsed = [parse_group(g) for g in config.groups]
        iface_addr = int(ipaddress.IPv4Address(config.interface_address)) if config.interface_address else 0
        iface_index = socket.if_nametoindex(config.interface) if config.interface else 0
        return UdpReceiver(parsed[0][2], [(g, s) for g, s, _ in parsed], iface_addr, iface_index,
                           config.rcvbuf, config.busy_poll_us, config.blocking, config.idle_timeout_s)

    def extra_stats(self) -> dict[str, Any]:
        """The clock of ``rx_ts_ns`` and the membership (the receiving socket's own)."""
        cfg = self.config
        groups = [g.partition(":")[0] for g in cfg.groups]
        return {"clock_source": "kernel SO_TIMESTAMPNS (CLOCK_REALTIME when the kernel received the datagram)",
                "igmp": {"mode": "kernel", "interface": cfg.interface or cfg.interface_address or "kernel's choice",
                         "groups": [g for g in groups if ipaddress.IPv4Address(g.rpartition("@")[2]).is_multicast],
                         "joined_by": "the receiving socket"}}

    # What the conformance kit needs (``pytest --rxfeed-conformance udp_socket``): a
    # live source on loopback. The payloads are sent to the socket once it is
    # bound, before the run; a 4 MiB receive buffer holds them (SO_RCVBUFFORCE
    # as root, else up to net.core.rmem_max); 0.5 s without a datagram is the
    # end of the source.
    _conformance_pending: ClassVar[dict[str, list[bytes]]] = {}

    @classmethod
    def conformance_source(cls, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """A free loopback port, to which :meth:`conformance_opened` sends ``payloads``."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            group = f"127.0.0.1:{probe.getsockname()[1]}"
        cls._conformance_pending[group] = list(payloads)
        return {"groups": [group], "rcvbuf": 4 << 20, "idle_timeout_s": 0.5}

    @classmethod
    def conformance_opened(cls, backend: "UdpSocketBackend") -> None:
        """Send the payloads of a :meth:`conformance_source` config, in order."""
        group = backend.config.groups[0]
        host, port = group.rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for p in cls._conformance_pending.get(group, []):
                tx.sendto(p, (host, int(port)))

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """An interface that does not exist."""
        return [{"groups": ["127.0.0.1:9"], "interface": "rxf-no-such0"}]
