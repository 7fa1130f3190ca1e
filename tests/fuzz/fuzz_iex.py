"""Fuzz the IEX decoder (IEX-TP session layer, TOPS/DEEP/DEEP+ decoders,
recovery's sequencer) on segments.

The input is one options byte, then a list of segments in NASDAQ file
framing (u16 length, bytes); each segment is its own exact-size heap block.
The options byte picks ``max_sequence_jump`` (0, 3 or the default 10,000),
the burst size (1 or 4), the numpy batch size and the reorder buffer's
limits. Every input runs twice through the real run loop: recovery off
(every channel) and recovery on (channel 1, no gap fill server, a reorder
window no run outlasts: holes are declared lost at the end, so the run does
not depend on time). Python callbacks (with meta), numpy batches and events
are subscribed. Properties:
- per channel and session, delivered sequence numbers strictly increase,
  except where a confirmed ``sequence_restart`` event of that session
  starts it again (one fall per restart); not on a channel that changed
  session more than 8 times: iextp.h remembers the positions of the last 8
  sessions left (RXF_IEXTP_PAST), one left before them starts afresh;
- the decoder's count equals the messages delivered to Python, per type too,
  and the records in the numpy batches;
- no more messages than the segments can hold (40-byte header, 3+ bytes per
  message block);
- recovery off: every message of a well-formed segment of the stream (the
  first feed's protocol id, the first 16 channels; checked here in Python)
  is accounted for exactly once: delivered, a duplicate, implausible
  (dropped with its held segment) or undecodable (unknown type, bad length).
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Any

import numpy as np

from rxfeed import Pipeline
from rxfeed.protocols.iex.config import IexConfig
from rxfeed.protocols.iex.decoder import IexProtocolDecoder
from tests.conftest import ListBackend
from tests.fuzz._harness import fuzz_main, nasdaq_records

IEXTP_HEADER = 40
PROTOCOL_IDS = (0x8003, 0x8004, 0x8005)  # TOPS, DEEP, DEEP+
MAX_CHANNELS = 16
MAX_JUMPS = (10_000, 0, 3)
SESSIONS_REMEMBERED = 8  # RXF_IEXTP_PAST: earlier sessions whose positions iextp.h keeps
RECOVERY = {"reorder_window_ms": 600_000.0}  # nothing times out during a run: deterministic


def decoder_config(options: int, recovery: bool) -> IexConfig:
    """The decoder settings the options byte picks."""
    rec: dict[str, Any] = {}
    if recovery:
        rec = {**RECOVERY, "reorder_max_datagrams": 4 if options & 0x10 else 64,
               "slot_bytes": 256 if options & 0x20 else 2048}
    return IexConfig(max_sequence_jump=MAX_JUMPS[(options & 3) % 3], batch_size=3 if options & 0x08 else 64,
                     channel=1 if recovery else 0, recovery=rec)


def run_iex(segments: list[bytes], options: int, recovery: bool) -> tuple[Any, list, dict, list]:
    """Segments through the run loop: (summary, [(type, meta)], {type: batch rows}, events)."""
    dec = IexProtocolDecoder(decoder_config(options, recovery))
    got: list[tuple[str, Any]] = []
    rows: Counter[str] = Counter()
    events: list[dict] = []
    dec.native.subscribe(lambda m, meta: got.append((m.message_type, meta)), with_meta=True)
    dec.native.subscribe_batches(lambda t, arr: rows.update({t: len(arr)}))
    dec.native.on_event(events.append)
    payloads = [np.frombuffer(s, dtype=np.uint8).copy() for s in segments]
    summary = Pipeline(ListBackend(payloads), dec, run={"burst": 4 if options & 4 else 1}).run()
    return summary, got, dict(rows), events


def check_sequences(got: list, events: list) -> None:
    """Per (channel, session): strictly increasing, one fall allowed per restart
    event; none checked on a channel that changed session more than
    RXF_IEXTP_PAST times (a session left before 8 others is forgotten)."""
    restarts = Counter((e["channel"], e["session"]) for e in events if e["kind"] == "sequence_restart")
    changes = Counter(e["channel"] for e in events if e["kind"] == "session_change")
    last: dict[tuple[int, int], int] = {}
    falls: Counter[tuple[int, int]] = Counter()
    for _, meta in got:
        key = (meta.channel, meta.session)
        if key in last and meta.sequence <= last[key] and changes[meta.channel] <= SESSIONS_REMEMBERED:
            falls[key] += 1
            assert falls[key] <= restarts[key], f"{key}: sequence {meta.sequence} delivered after {last[key]}"
        last[key] = meta.sequence


def whole_segment_count(seg: bytes) -> int | None:
    """The message count of a segment iextp.h accepts as well formed, else None."""
    if len(seg) < IEXTP_HEADER or seg[0] != 1:
        return None
    payload, count = struct.unpack_from("<HH", seg, 12)
    offset, first = struct.unpack_from("<qq", seg, 16)
    pos = IEXTP_HEADER
    for _ in range(count):
        if len(seg) - pos < 2:
            return None
        pos += 2 + int.from_bytes(seg[pos:pos + 2], "little")
    if payload != len(seg) - IEXTP_HEADER or pos != len(seg) or first < 1 or offset < 0 or first + count >= 1 << 63:
        return None
    return count


def messages_in_stream(segments: list[bytes]) -> int:
    """Messages of the well-formed segments the decoder takes with every
    channel on: the first IEX feed's protocol id (decided by the first
    version-1 segment of a known one), the first 16 channels."""
    protocol, channels, total = None, set(), 0
    for seg in segments:
        if len(seg) < IEXTP_HEADER or seg[0] != 1:
            continue
        proto, channel = struct.unpack_from("<HI", seg, 2)
        protocol = protocol or (proto if proto in PROTOCOL_IDS else None)
        if proto != protocol or (channel not in channels and len(channels) == MAX_CHANNELS):
            continue
        channels.add(channel)
        total += whole_segment_count(seg) or 0
    return total


def check_run(segments: list[bytes], options: int, recovery: bool) -> None:
    """The module's properties for one run."""
    s, got, rows, events = run_iex(segments, options, recovery)
    per_type = Counter(s.messages_per_type)
    assert s.messages == len(got) == sum(per_type.values()) == sum(rows.values()), (s.messages, len(got), rows)
    assert Counter(t for t, _ in got) == Counter(rows) == per_type, (rows, per_type)
    assert s.messages <= sum((len(d) - IEXTP_HEADER) // 3 for d in segments if len(d) >= IEXTP_HEADER)
    check_sequences(got, events)
    if not recovery:  # each message of a whole segment: delivered, a duplicate, implausible or undecodable
        c = s.decoder_stats
        accounted = s.messages + s.duplicates + c["implausible_messages"] + sum(
            s.errors.get(k, 0) for k in ("unknown_type", "bad_length"))
        assert accounted == messages_in_stream(segments), (accounted, messages_in_stream(segments), c)


def check(data: bytes) -> None:
    """Both runs (recovery off and on) of one input (``data``)."""
    if not data:
        return
    segments = nasdaq_records(data[1:])
    for recovery in (False, True):
        check_run(segments, data[0], recovery)


if __name__ == "__main__":
    fuzz_main(check)
