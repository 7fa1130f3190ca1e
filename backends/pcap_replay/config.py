"""Settings of the pcap_replay backend."""

from __future__ import annotations

from pydantic import Field

from rxfeed.backend_base import DestinationFilters, parse_destination
from rxfeed.config import PluginConfig

__all__ = ["PcapReplayConfig", "parse_destination"]  # parse_destination: moved to rxfeed.backend_base


class PcapReplayConfig(PluginConfig):
    """Replay a capture file.

    :ivar path: pcap or pcapng file, plain or gzip; a pipe or FIFO too (read once).
    :ivar filters: destinations to keep (``group:port``, ``*`` wildcards); empty keeps all UDP.
    :ivar speed: 0 as fast as possible; 1 original inter-packet timing; k k-times faster.
    :ivar loops: passes over the file (the session layer restarts at each pass).
    :ivar mmap: map a plain regular file and hand out pointers into the
        mapping (no copy; a cut under the replay is still a clear error,
        see docs/backends/pcap_replay.md); False reads it through a window
        as a pipe is. Pipes, FIFOs and gzip are always read.
    """

    path: str
    filters: DestinationFilters = ()
    speed: float = Field(0.0, ge=0.0)
    loops: int = Field(1, ge=1)
    mmap: bool = True
