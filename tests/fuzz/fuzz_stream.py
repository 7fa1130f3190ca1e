"""Fuzz NASDAQ file framing (u16 length-prefixed messages, as a byte stream).

Properties, for any bytes:
- the nasdaq_file backend on the plain file and on the gzip file decode the
  same messages per type and count the same errors and drops;
- the decoder fed the same bytes in small chunks (cut every 1..251 bytes,
  each chunk its own exact-size heap block) decodes the same too: where
  chunks end must not matter. Where the backend skipped unframeable bytes
  (it resynchronises), the bare decoder frames otherwise (it trusts non-zero
  prefixes, stops at a zero one before an unknown type) and must count an
  error;
- the decoder's count equals the messages delivered to Python, and no more
  messages than the bytes can hold (3+ bytes each);
- a wire handler of every type (the zero-copy view) sees exactly those
  messages, each with its type's wire length (never a short one).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from rxfeed import Pipeline
from rxfeed.protocols.itch50._handlers import WireProbe
from tests.fuzz._harness import same_run, exact_buffers, fuzz_main, is_gzip, run_decoder, write_plain_and_gzip


def replay_file(path: Path, mmap: bool = True) -> dict[str, Any]:
    """The nasdaq_file run summary (smallest chunk size: more chunk ends);
    ``mmap=False``: read through the window (heap memory that ASan checks)."""
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path), "chunk_size": 4096, "mmap": mmap})
    try:
        return pipe.run().to_dict()
    finally:
        pipe.close()


def check(data: bytes) -> None:
    """The module's properties for one NASDAQ-framed byte stream (``data``)."""
    plain, gz = write_plain_and_gzip(data, ".itch")
    a = replay_file(plain)
    assert same_run(replay_file(plain, mmap=False), a)
    if is_gzip(data):  # the input itself is compressed: the reader's gzip path on it
        assert sum(a["messages_per_type"].values()) == a["messages"], a
        return
    b = replay_file(gz)
    step = 1 + zlib.crc32(data) % 251  # chunk size: arbitrary, but the same for an input
    got: list[Any] = []
    probe = WireProbe()
    s = run_decoder(exact_buffers(data, step), lambda dec: (dec.subscribe(got.append), dec.add_handlers(probe)),
                    stream=True)
    c = s.to_dict()
    assert s.messages == len(got) == sum(s.messages_per_type.values())
    assert probe.result["count"] == s.messages and probe.result["wrong_length"] == 0, probe.result
    assert s.messages * 3 <= len(data)
    for key in ("messages", "messages_per_type", "errors", "drops"):
        assert a[key] == b[key], (key, a[key], b[key])
    if a["drops"].get("unframeable_bytes"):
        # the backend resynchronises past unframeable bytes (counted); the bare
        # decoder, which trusts non-zero prefixes and stops at a zero prefix
        # before an unknown type, decodes otherwise - but never silently
        assert c["errors"], (a, c)
        return
    for key in ("messages", "messages_per_type", "errors"):
        assert a[key] == c[key], (key, a[key], c[key], step)


if __name__ == "__main__":
    fuzz_main(check)
