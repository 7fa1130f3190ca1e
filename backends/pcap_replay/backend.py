"""The pcap_replay backend class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed.backend_base import NativeBackend, NativeReader, destinations

from ._pcap import PcapReader
from .config import PcapReplayConfig


class PcapReplayBackend(NativeBackend):
    """Replays pcap/pcapng (Ethernet, 802.1Q, Linux SLL/SLL2, raw IPv4) through the
    native loop; UDP payloads point into the read window (files, pipes, FIFOs)."""

    name = "pcap_replay"
    Config = PcapReplayConfig
    description = "pcap/pcapng replay (a plain file mapped; pipe, FIFO or gzip read into a window)"

    def open_reader(self, config: PcapReplayConfig) -> NativeReader:
        return PcapReader(config.path, destinations(config.filters), config.speed, config.loops, config.mmap)

    def extra_stats(self) -> dict[str, Any]:
        return {"format": self.reader.format, "clock_source": "the capture's own timestamps (as recorded)"}

    # what the conformance kit needs (``pytest --rxfeed-conformance pcap_replay``)
    conformance_reset_option = "loops"

    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """A capture with one UDP datagram per payload."""
        from rxfeed.tools.generator import udp_frame, write_pcap

        write_pcap(tmp_path / "src.pcap", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)], nsec=True)
        return {"path": str(tmp_path / "src.pcap")}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """Missing, empty, random, cut and lying captures, and a cut gzip."""
        import gzip
        import struct

        from rxfeed.tools.generator import udp_frame, write_pcap

        write_pcap(tmp_path / "good.pcap", [(i, udp_frame(bytes(40))) for i in range(20)])
        raw = (tmp_path / "good.pcap").read_bytes()
        cases = {"missing.pcap": None, "empty.pcap": b"", "random.pcap": bytes(range(256)) * 8,
                 "cut_header.pcap": raw[:10], "cut_record.pcap": raw[:-7],
                 "huge_caplen.pcap": raw[:32] + struct.pack("<II", 0x7FFFFFFF, 60) + raw[40:],
                 "bad.pcap.gz": gzip.compress(raw)[:-9]}
        for name, data in cases.items():
            if data is not None:
                (tmp_path / name).write_bytes(data)
        return [{"path": str(tmp_path / name)} for name in cases]
