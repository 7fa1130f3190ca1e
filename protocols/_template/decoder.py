"""Template decoder: shape of a ProtocolDecoder (delegates to the ITCH decoder)."""

from __future__ import annotations

from typing import Any

from rxfeed.config import PluginConfig
from rxfeed.interfaces import ProtocolDecoder


class TemplateDecoderConfig(PluginConfig):
    """No settings yet; add fields with defaults and docs."""


class TemplateDecoder(ProtocolDecoder[TemplateDecoderConfig]):
    name = "template"
    Config = TemplateDecoderConfig
    description = "copy me"

    def __init__(self, config: TemplateDecoderConfig | None = None) -> None:
        super().__init__(config or TemplateDecoderConfig())
        from rxfeed.protocols.itch50._decoder import ItchDecoder  # replace with your own

        self._impl = ItchDecoder()

    def decoder_capsule(self) -> Any:
        return self._impl.capsule()

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._impl.counters()
        return counters
