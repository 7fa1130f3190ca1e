"""Settings of the template backend (every field documented, unknown fields rejected)."""

from pydantic import Field

from rxfeed.config import PluginConfig


class TemplateConfig(PluginConfig):
    """:ivar path: where the packets come from."""

    path: str
    burst_limit: int = Field(32, ge=1, description="most packets per read_burst")
