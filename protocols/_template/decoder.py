"""The template decoder: one message per payload. Replace ``on_packets``
with your protocol's framing; keep ``counters()``'s keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rxfeed.interfaces import Packet, PythonDecoder

from .config import TemplateDecoderConfig


class TemplateDecoder(PythonDecoder[TemplateDecoderConfig]):
    name = "template"
    Config = TemplateDecoderConfig
    description = "copy me: counts payloads"

    def __init__(self, config: TemplateDecoderConfig | None = None) -> None:
        super().__init__(config or TemplateDecoderConfig())
        self.packets = self.messages = self.malformed = 0

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        """One burst; ``p.data`` is valid during the call only (copy to keep)."""
        for p in packets:
            self.packets += 1
            if len(p.data) < self.config.min_payload:
                self.malformed += 1
            else:
                self.messages += 1
        return False  # True stops the run

    @staticmethod
    def conformance_samples() -> tuple[list[bytes], int]:
        """For the conformance kit (``pytest --rxfeed-conformance NAME``):
        valid payloads and the number of messages in them."""
        payloads = [bytes([i % 251]) * (1 + i % 40) for i in range(100)]
        return payloads, len(payloads)

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "messages": self.messages,
                "messages_per_type": {"payload": self.messages} if self.messages else {},
                "errors": {"malformed": self.malformed} if self.malformed else {}}
