"""Settings of the record backend (``--record DIR``)."""

from __future__ import annotations

from pydantic import Field

from rxfeed.backend_base import WrapperConfig


class RecordConfig(WrapperConfig):
    """Live capture of what an inner backend delivers, to pcapng files (the
    inner backend named by ``backend`` and ``backend_config``: :class:`WrapperConfig`).

    :ivar dir: the directory the files go to (made if missing). Files are
        ``PREFIX-000001.pcapng``, ``-000002``, ... never over an existing file.
    :ivar prefix: file name prefix; ``None``: ``rxfeed-`` and the UTC start
        time (``rxfeed-20260102T093000Z``).
    :ivar rotate_mb: start a new file before one would grow past this many
        MiB; ``None``: never.
    :ivar rotate_s: start a new file once the current file's first packet
        is this many seconds old (receive time of the packets); ``None``: never.
    :ivar ring_bytes: the bounded queue between the receive loop and the
        writer thread; a packet that finds it full is not recorded and is
        counted (``overflow_packets``).
    :ivar drain_timeout_s: how long ``stats()`` and ``close()`` wait for the
        writer to catch up after the run.
    """

    dir: str = Field(min_length=1)
    prefix: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")
    rotate_mb: float | None = Field(None, gt=0.0, le=1 << 30)
    rotate_s: float | None = Field(None, gt=0.0)
    ring_bytes: int = Field(64 << 20, ge=4096, le=1 << 40)
    drain_timeout_s: float = Field(30.0, ge=0.0)
