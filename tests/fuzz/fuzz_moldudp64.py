"""Fuzz the MoldUDP64 session layer and the ITCH decoder on datagrams.

The input is a list of datagrams in NASDAQ file framing (u16 length, bytes);
each datagram is its own exact-size heap block. Properties:
- every message is delivered at most once and in order: within a run of
  messages of one session, sequence numbers strictly increase;
- the decoder's count equals the messages delivered to Python, per type too;
- no more messages than the datagrams can hold (20-byte header, 3+ bytes
  per message block);
- only messages whose sequence numbers came before (in an earlier datagram
  of the session, or below the initial sequence 1) may count as duplicates:
  sequence arithmetic done with unbounded integers bounds the count.

Bursts of one datagram: the session a callback sees is the one of its own
datagram (with larger bursts, issue 9 item 7, tested in test_moldudp64).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from tests.fuzz._harness import fuzz_main, nasdaq_records, run_decoder

MOLD_HEADER = 20
INITIAL_SEQUENCE = 1  # Itch50Config's default


def duplicates_allowed(datagrams: list[bytes]) -> int:
    """How many messages could be duplicates: those numbered below the end of
    an earlier datagram of their session (Python integers never wrap)."""
    allowed, ends = 0, {}
    for d in datagrams:
        if len(d) < MOLD_HEADER:
            continue
        session, seq, count = d[:10], int.from_bytes(d[10:18], "big"), int.from_bytes(d[18:20], "big")
        count = 0 if count == 0xFFFF else count
        end = ends.get(session, INITIAL_SEQUENCE)
        allowed += max(0, min(seq + count, end) - seq)
        ends[session] = max(end, seq + count)
    return allowed


def check(data: bytes) -> None:
    """The module's properties for one list of datagrams (``data``)."""
    datagrams = nasdaq_records(data)
    got: list[tuple[str, int, str]] = []

    def on_message(m: Any, meta: tuple[str, int, int]) -> None:
        got.append((meta[0], meta[1], m.type))

    s = run_decoder([np.frombuffer(d, dtype=np.uint8).copy() for d in datagrams],
                    lambda dec: dec.subscribe(on_message, with_meta=True), burst=1)
    assert s.messages == len(got) == sum(s.messages_per_type.values())
    assert Counter(t for _, _, t in got) == Counter(s.messages_per_type), s.messages_per_type
    assert s.messages <= sum((len(d) - MOLD_HEADER) // 3 for d in datagrams if len(d) >= MOLD_HEADER)
    assert s.duplicates <= duplicates_allowed(datagrams), (s.duplicates, s.decoder_stats)
    for (sess0, seq0, _), (sess1, seq1, _) in zip(got, got[1:]):
        if sess0 == sess1:
            assert seq1 > seq0, f"session {sess1!r}: sequence {seq1} delivered after {seq0}"


if __name__ == "__main__":
    fuzz_main(check)
