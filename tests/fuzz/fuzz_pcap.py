"""Fuzz the pcap/pcapng reader (plain and gzip) with the ITCH decoder behind it.

Properties, for any bytes:
- the plain file and the same bytes gzip-compressed (two members) are both
  refused at open, or both replay to the same frame, payload, message and
  drop counts (the gzip window must not change what is read);
- the plain file mapped (the default) and read through the window
  (``mmap: false``, heap memory that ASan checks) replay alike;
- counts add up: messages per type sum to messages, the decoder saw every
  payload the reader handed out, and nothing counted exceeds what the file
  can hold (12+ bytes per record, 3+ bytes per message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed import Pipeline
from tests.fuzz._harness import same_run, fuzz_main, is_gzip, write_plain_and_gzip

#: backend counters that must not depend on plain vs gzip
SAME_STATS = ("frames", "packets", "bytes", "skipped_blocks")


def replay(path: Path, mmap: bool = True) -> dict[str, Any] | None:
    """The run summary as a dict, or None when the reader refuses the file."""
    try:
        pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(path), "mmap": mmap})
    except ValueError:
        return None
    try:
        return pipe.run().to_dict()
    finally:
        pipe.close()


def check_counts(s: dict[str, Any], size: int) -> None:
    """Counters of one run are consistent with each other and the file size."""
    st = s["backend_stats"]
    assert sum(s["messages_per_type"].values()) == s["messages"], s
    assert s["packets"] == st["packets"] <= st["frames"], s
    assert st["frames"] * 12 <= size and st["bytes"] <= size, (size, st)
    assert s["messages"] * 3 <= st["bytes"], s


def check(data: bytes) -> None:
    """The module's properties for one capture file (``data``)."""
    plain, gz = write_plain_and_gzip(data, ".pcap")
    a = replay(plain)
    assert same_run(replay(plain, mmap=False), a)
    if is_gzip(data):  # the input itself is compressed: the reader's gzip path on it
        if a is not None:
            assert sum(a["messages_per_type"].values()) == a["messages"], a
        return
    b = replay(gz)
    assert (a is None) == (b is None), (a, b)
    if a is None:
        return
    check_counts(a, len(data))
    for key in ("packets", "messages", "messages_per_type", "errors", "gaps", "duplicates"):
        assert a[key] == b[key], (key, a[key], b[key])
    for key in SAME_STATS:
        assert a["backend_stats"][key] == b["backend_stats"][key], (key, a["backend_stats"], b["backend_stats"])


if __name__ == "__main__":
    fuzz_main(check)
