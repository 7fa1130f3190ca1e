"""The pcap_replay backend class."""

from __future__ import annotations

from typing import Any

from rxfeed.interfaces import RxBackend

from ._pcap import PcapReader
from .config import PcapReplayConfig, parse_destination


class PcapReplayBackend(RxBackend):
    """Replays pcap/pcapng (Ethernet, 802.1Q, Linux SLL/SLL2, raw IPv4) through the
    native loop; UDP payloads point into the read window (files, pipes, FIFOs)."""

    name = "pcap_replay"
    Config = PcapReplayConfig
    description = "pcap/pcapng replay (file, pipe or FIFO read into a window; gzip inflated into it)"

    def __init__(self, config: PcapReplayConfig) -> None:
        super().__init__(config)
        self.reader = PcapReader(config.path, [parse_destination(f) for f in config.filters],
                                 config.speed, config.loops)

    def native_capsule(self) -> Any:
        return self.reader.capsule()

    def stats(self) -> dict[str, Any]:
        s = self.reader.stats()
        s["format"] = self.reader.format
        return s

    def progress(self) -> tuple[int, int]:
        return self.reader.progress()

    def close(self) -> None:
        self.reader.close()
