"""The pcap_replay backend class."""

from __future__ import annotations

from typing import Any

from rxfeed.backend_base import NativeBackend, NativeReader, destinations

from ._pcap import PcapReader
from .config import PcapReplayConfig


class PcapReplayBackend(NativeBackend):
    """Replays pcap/pcapng (Ethernet, 802.1Q, Linux SLL/SLL2, raw IPv4) through the
    native loop; UDP payloads point into the read window (files, pipes, FIFOs)."""

    name = "pcap_replay"
    Config = PcapReplayConfig
    description = "pcap/pcapng replay (file, pipe or FIFO read into a window; gzip inflated into it)"

    def open_reader(self, config: PcapReplayConfig) -> NativeReader:
        return PcapReader(config.path, destinations(config.filters), config.speed, config.loops)

    def extra_stats(self) -> dict[str, Any]:
        return {"format": self.reader.format}
