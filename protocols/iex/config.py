"""Settings of the iex decoder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rxfeed.config import PluginConfig
from rxfeed.recovery import RecoveryConfig


class IexConfig(PluginConfig):
    """:ivar feed: which IEX feed to decode; ``auto``: the first IEX-TP
        segment's message protocol id decides (segments of another feed are
        counted as ``other_protocol`` and dropped).
    :ivar channel: the IEX-TP channel id to take; 0: every channel, one
        session tracker each (DEEP+ has 16). Recovery follows one channel:
        with ``recovery`` on, 0 means channel 1.
    :ivar initial_sequence: sequence a session should start at; a first
        segment above it is a gap (a late join). 0: start at the first seen.
    :ivar max_sequence_jump: a segment more than this many messages ahead, or
        of another session id, waits for the next segment to confirm it;
        unconfirmed, it is dropped and counted (``implausible_sequence``). 0: no limit.
    :ivar batch_size: records per numpy batch.
    :ivar stop_at_end_of_session: end a live run at the System Event "end of messages".
    :ivar sequenced: True: each sequence number once, in order. False:
        dissect mode (``rxfeed inspect``): every message of every segment
        reaches the outputs, with its status in the meta.
    :ivar recovery: the sequencer between the lines and IEX-TP, and the gap
        fill client (off by default; docs/recovery.md)."""

    feed: Literal["auto", "TOPS", "DEEP", "DEEP+"] = "auto"
    channel: int = Field(0, ge=0, le=(1 << 32) - 1)
    initial_sequence: int = Field(1, ge=0, le=(1 << 63) - 1)
    max_sequence_jump: int = Field(10_000, ge=0, le=(1 << 64) - 1)
    batch_size: int = Field(65536, ge=1, le=1 << 24)
    stop_at_end_of_session: bool = Field(False, description="stop the run at the System Event 'end of messages' (C)")
    sequenced: bool = Field(True, description="False: dissect mode, every message with its session-layer status")
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig,
                                     description="A/B arbitration, reorder window and gap fill (docs/recovery.md)")
