"""What the atheris harnesses share: the libFuzzer entry point, a scratch
directory for file-based sources, and input buffers whose size ASan knows.

A harness module defines ``check(data: bytes) -> None`` (raises
``AssertionError`` when a property fails) and ends with
``if __name__ == "__main__": fuzz_main(check)``. It is run from the repository
root as ``python -m tests.fuzz.fuzz_<name> [libFuzzer args] [corpus dir | input file]``
(see scripts/sanitize.sh); ``tests/test_fuzz_corpus.py`` runs every ``check``
over the committed corpus in the normal suite.
"""

from __future__ import annotations

import atexit
import gzip
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rxfeed import Pipeline
from rxfeed.summary import Summary
from tests.conftest import ListBackend

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
_scratch: Path | None = None


def scratch() -> Path:
    """A private directory (in /dev/shm when there is one) removed at exit."""
    global _scratch
    if _scratch is None:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None
        _scratch = Path(tempfile.mkdtemp(prefix="rxfeed-fuzz-", dir=base))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def is_gzip(data: bytes) -> bool:
    """The input is itself gzip (the reader inflates it; compressing it
    again would make a different input, so no plain/gzip comparison)."""
    return data[:2] == b"\x1f\x8b"


def write_plain_and_gzip(data: bytes, suffix: str) -> tuple[Path, Path]:
    """``data`` as a plain file and as a gzip file of two members split at a
    point taken from the data (concatenated members are one stream)."""
    plain = scratch() / f"in{suffix}"
    plain.write_bytes(data)
    cut = (data[-1] * len(data)) // 256 if data else 0
    gz = scratch() / f"in{suffix}.gz"
    gz.write_bytes(gzip.compress(data[:cut], mtime=0) + gzip.compress(data[cut:], mtime=0))
    return plain, gz


def exact_buffers(data: bytes, size: int) -> list[np.ndarray]:
    """``data`` cut into ``size``-byte pieces, each its own heap block of
    exactly that length (bytes objects carry a spare NUL byte), so that a
    read one byte past a piece is an ASan error."""
    return [np.frombuffer(data[i:i + size], dtype=np.uint8).copy() for i in range(0, len(data), size)]


def length_prefixed(data: bytes, byteorder: Literal["big", "little"]) -> list[bytes]:
    """Split ``data`` as records each behind a u16 length in ``byteorder``;
    a short last record is kept as it is."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], byteorder)
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def nasdaq_records(data: bytes) -> list[bytes]:
    """Split ``data`` as NASDAQ file framing (u16 big-endian length, body)."""
    return length_prefixed(data, "big")


def run_decoder(payloads: list[Any], attach: Callable[[Any], None], *, stream: bool = False,
                burst: int = 4) -> Summary:
    """Run the ITCH decoder over in-memory payloads (datagrams, or stream
    chunks) through the real run loop; ``attach(decoder)`` subscribes first."""
    from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder

    dec = Itch50Decoder(Itch50Config())
    attach(dec)
    return Pipeline(ListBackend(payloads, stream), dec, run={"burst": burst}).run()


def fuzz_main(check: Callable[[bytes], None]) -> None:
    """Hand ``check`` to libFuzzer (atheris); ``sys.argv`` holds its options."""
    import atheris

    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


#: summary fields that depend on the clock, not on what was read
TIMING_FIELDS = ("elapsed_s", "messages_per_s")


def same_run(a: dict | None, b: dict | None) -> bool:
    """Two run summaries (``Summary.to_dict()``, or None for a refused file)
    say the same apart from their timing."""
    if a is None or b is None:
        return a is b
    return {k: v for k, v in a.items() if k not in TIMING_FIELDS} == \
        {k: v for k, v in b.items() if k not in TIMING_FIELDS}
