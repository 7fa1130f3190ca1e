"""The nasdaq_file backend class."""

from __future__ import annotations

from typing import Any

from rxfeed.interfaces import RxBackend

from ._nasdaq_file import NasdaqFileReader
from .config import NasdaqFileConfig


class NasdaqFileBackend(RxBackend):
    """Hands the file to the decoder as stream chunks of whole messages
    (``RXF_PKT_STREAM``): pointers into the read (or inflate) window; files,
    pipes and FIFOs. Unframeable data is skipped, counted and reported."""

    name = "nasdaq_file"
    Config = NasdaqFileConfig
    description = "NASDAQ ITCH file (length-prefixed, plain or gzip; file, pipe or FIFO)"
    stream = True

    def __init__(self, config: NasdaqFileConfig) -> None:
        super().__init__(config)
        self.reader = NasdaqFileReader(config.path, config.chunk_size, config.loops)

    def native_capsule(self) -> Any:
        return self.reader.capsule()

    def stats(self) -> dict[str, Any]:
        return self.reader.stats()

    def progress(self) -> tuple[int, int]:
        return self.reader.progress()

    def close(self) -> None:
        self.reader.close()
