"""Settings of the itch50 decoder."""

from __future__ import annotations

from pydantic import Field

from rxfeed.config import PluginConfig


class Itch50Config(PluginConfig):
    """:ivar initial_sequence: sequence a MoldUDP64 session should start at; a
        first packet above it is a gap (a late join). 0: start at the first seen.
    :ivar batch_size: records per numpy batch.
    :ivar stop_at_end_of_session: end a live run at the MoldUDP64 end-of-session packet."""

    initial_sequence: int = Field(1, ge=0, le=(1 << 64) - 1)
    batch_size: int = Field(65536, ge=1, le=1 << 24)
    stop_at_end_of_session: bool = Field(False, description="stop the run when MoldUDP64 ends the session")
