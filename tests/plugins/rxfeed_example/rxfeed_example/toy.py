"""A decoder for a made-up protocol ("TOY"), written in Python: a datagram is
[u32 BE sequence][u8 count] then count messages of [u8 type][u8 len][bytes].
It declares no capability beyond counting, so the CLI must refuse clearly
whatever needs more (inspect, --books, convert, ...)."""
from __future__ import annotations

import struct
from collections import Counter
from typing import Any

from rxfeed import Packet, PluginConfig, PythonDecoder


def datagram(seq: int, msgs: list[tuple[bytes, bytes]]) -> bytes:
    return struct.pack(">IB", seq, len(msgs)) + b"".join(t + bytes([len(p)]) + p for t, p in msgs)


def frames_exactly(data: bytes) -> bool:
    """Is ``data`` one TOY datagram whose messages fill it exactly?"""
    if len(data) < 5:
        return False
    pos = 5
    for _ in range(data[4]):
        if pos + 2 > len(data):
            return False
        pos += 2 + data[pos + 1]
    return pos == len(data)


class ToyConfig(PluginConfig):
    """No settings."""


class ToyDecoder(PythonDecoder[ToyConfig]):
    name = "example_toy"
    Config = ToyConfig
    description = "example: a made-up protocol decoded in Python"

    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__(config or ToyConfig())
        self.per_type: Counter[str] = Counter()
        self.packets = self.gaps = self.malformed = 0
        self.next_seq = 1

    def on_packets(self, packets: list[Packet]) -> bool:
        for p in packets:
            self.packets += 1
            data = p.data
            if len(data) < 5:
                self.malformed += 1
                continue
            seq, count = struct.unpack_from(">IB", data)
            self.gaps += max(0, seq - self.next_seq)
            self.next_seq = max(self.next_seq, seq + 1)
            pos = 5
            for _ in range(count):
                if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
                    self.malformed += 1
                    break
                self.per_type[chr(data[pos])] += 1
                pos += 2 + data[pos + 1]
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "messages": sum(self.per_type.values()),
                "messages_per_type": dict(self.per_type), "gaps": self.gaps,
                "errors": {"malformed": self.malformed} if self.malformed else {}}
