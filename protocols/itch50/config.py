"""Settings of the itch50 decoder."""

from __future__ import annotations

from pydantic import Field

from rxfeed.config import PluginConfig
from rxfeed.recovery import RecoveryConfig


class Itch50Config(PluginConfig):
    """:ivar initial_sequence: sequence a MoldUDP64 session should start at; a
        first packet above it is a gap (a late join). 0: start at the first seen.
    :ivar batch_size: records per numpy batch.
    :ivar stop_at_end_of_session: end a live run at the MoldUDP64 end-of-session packet.
    :ivar max_sequence_jump: a MoldUDP64 datagram more than this many messages
        ahead of the session is held until the next datagram confirms the new
        position (then the jump is a gap, nothing else is lost); unconfirmed,
        it is dropped and counted as ``implausible_sequence``. 0: no limit.
        Smaller is safer against a corrupt datagram (a jump within the limit
        is taken at once), larger delays fewer real gaps by one datagram.
    :ivar sequenced: True: the session layer delivers each sequence number once,
        in order. False: dissect mode (``rxfeed inspect``): every message of
        every datagram reaches the outputs, with its status in the meta.
    :ivar recovery: the sequencer between the lines and the session layer,
        and the MoldUDP64 re-request client (off by default; docs/recovery.md)."""

    initial_sequence: int = Field(1, ge=0, le=(1 << 64) - 1)
    batch_size: int = Field(65536, ge=1, le=1 << 24)
    stop_at_end_of_session: bool = Field(False, description="stop the run when MoldUDP64 ends the session")
    max_sequence_jump: int = Field(10_000, ge=0, le=(1 << 64) - 1,
                                   description="larger forward jumps need a confirming datagram; 0: no limit")
    sequenced: bool = Field(True, description="False: dissect mode, every message with its session-layer status")
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig,
                                     description="A/B arbitration, reorder window and re-request (docs/recovery.md)")
