"""Settings of the nasdaq_file backend."""

from __future__ import annotations

from pydantic import Field

from rxfeed.config import PluginConfig


class NasdaqFileConfig(PluginConfig):
    """Read a NASDAQ ITCH file such as ``12302019.NASDAQ_ITCH50[.gz]``.

    :ivar path: the file, plain or gzip; a pipe or FIFO too (read once).
    :ivar chunk_size: bytes handed to the decoder per stream chunk.
    :ivar loops: passes over the file.
    :ivar mmap: map a plain regular file and hand out pointers into the
        mapping (no copy; a cut under the replay is still a clear error,
        see docs/backends/nasdaq_file.md); False reads it through a window
        as a pipe is. Pipes, FIFOs and gzip are always read.
    :ivar check_framing: walk every length prefix in the backend (chunks end
        on message boundaries; an unframeable point or a prefix that
        disagrees with its type is skipped, counted and reported, and
        decoding resynchronises). False hands raw chunks: only the decoder
        walks the prefixes (about 4-5 ns a message less), and at an
        unframeable point it stops decoding the stream (error
        ``stream_unrecoverable``, a warning) instead of resynchronising; a
        wrong non-zero prefix is trusted. For files you trust.
    """

    path: str
    chunk_size: int = Field(1 << 18, ge=4096, le=1 << 26)
    loops: int = Field(1, ge=1)
    mmap: bool = True
    check_framing: bool = True
