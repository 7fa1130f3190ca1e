"""The nasdaq_file backend class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
        return NasdaqFileReader(config.path, config.chunk_size, config.loops, config.mmap,
                                 config.check_framing)

    # what the conformance kit needs (``pytest --rxfeed-conformance nasdaq_file``)
    conformance_reset_option = "loops"

    @staticmethod
    def conformance_payloads(n: int = 300, seed: int = 1) -> list[bytes]:
        """It frames what it reads: runs of 10 length-prefixed ITCH messages, not random bytes."""
        import struct

        from rxfeed.tools.generator import generate_messages

        framed = [struct.pack(">H", len(m)) + m for m in generate_messages(max(10 * n, 64), symbols=2, seed=seed)]
        return [b"".join(framed[i:i + 10]) for i in range(0, 10 * n, 10)]

    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """The payloads one after the other in a file, read in 4 KiB chunks."""
        (tmp_path / "src.itch").write_bytes(b"".join(payloads))
        return {"path": str(tmp_path / "src.itch"), "chunk_size": 4096}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """A missing file and a cut gzip."""
        import gzip

        (tmp_path / "bad.itch.gz").write_bytes(gzip.compress(bytes(5000))[:-20])
        return [{"path": str(tmp_path / "missing.itch")}, {"path": str(tmp_path / "bad.itch.gz")}]
