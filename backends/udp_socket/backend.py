"""The kernel UDP socket backend: the baseline every kernel-bypass path is compared with."""

from __future__ import annotations

import ipaddress
import socket

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
