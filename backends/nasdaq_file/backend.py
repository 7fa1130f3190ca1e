"""The nasdaq_file backend class."""

from __future__ import annotations

from rxfeed.backend_base import NativeBackend, NativeReader

from ._nasdaq_file import NasdaqFileReader
from .config import NasdaqFileConfig


class NasdaqFileBackend(NativeBackend):
    """Hands the file to the decoder as stream chunks of whole messages
    (``RXF_PKT_STREAM``): pointers into the read (or inflate) window; files,
    pipes and FIFOs. Unframeable data is skipped, counted and reported."""

    name = "nasdaq_file"
    Config = NasdaqFileConfig
    description = "NASDAQ ITCH file (length-prefixed, plain or gzip; file, pipe or FIFO)"
    stream = True

    def open_reader(self, config: NasdaqFileConfig) -> NativeReader:
        return NasdaqFileReader(config.path, config.chunk_size, config.loops)
