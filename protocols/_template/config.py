"""Settings of the template decoder (every field documented, unknown fields rejected)."""

from pydantic import Field

from rxfeed.config import PluginConfig


class TemplateDecoderConfig(PluginConfig):
    """:ivar min_payload: payloads shorter than this are counted as malformed."""

    min_payload: int = Field(1, ge=0, description="shorter payloads are counted as malformed")
