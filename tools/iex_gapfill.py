"""rxfeed's own IEX-TP gap fill server (``rxfeed serve rerequest`` of an IEX capture), for tests and labs.

The IEX Transport Specification's UDP Gap Fill Request (little endian): a
16-byte header -- version (1), request type (1: Sequenced Messages),
message protocol id, channel id, session id, number of ranges (u32) --
then per range the first and last sequence number (i64 each, inclusive).
The answer is ordinary IEX-TP segments of the session (header: version,
protocol id, channel, session, payload length, message count, stream offset,
first sequence, send time; then [u16 LE length][message] blocks), sent back
to the request's source address; at most 1,000 messages per UDP request, as
the TOPS, DEEP and DEEP+ specifications say. A Gap Fill Test Request (no
range) is answered with one heartbeat-like segment (count 0) at the
session's end.

It shares the MoldUDP64 server's machinery (:class:`RerequestServer`: the
store, per-client rate limits, one outcome per request, a thread); what
differs is the request it parses and the header it writes. The store holds
one session of one stream (protocol id, channel) of a capture, the first copy
of each sequence number; stream offsets are the store's own (the session's
blocks from its first sequence number, which is 1 for a whole capture).
"""

from __future__ import annotations

import struct
import time
from typing import Any

from .rerequest import MessageStore, RerequestServer, ServerLimits, _read_payloads, _store_from_numbered

REQUEST_HEADER = struct.Struct("<BBHIII")
REQUEST_RANGE = struct.Struct("<qq")
SEGMENT_HEADER = struct.Struct("<BBHIIHHqqq")
#: The specifications' "Maximum UDP Retransmission Response" of TOPS, DEEP and DEEP+.
UDP_MAX_MESSAGES = 1000
#: Ranges one request may carry here (the specification does not bound them; answers cover the first).
MAX_RANGES = 16


def iex_store(path: str, session_id: int | None = None, channel: int | None = None) -> tuple[MessageStore, int, int]:
    """``(store, protocol id, channel)`` of an IEX capture: one session (given,
    else the first carrying messages) of one channel (given, else that
    session's first), first copy of each sequence number."""
    from rxfeed.protocols.iex.plugin import is_iextp_segment

    payloads, _ = _read_payloads(path, ())
    seqs: list[int] = []
    blocks: list[bytes] = []
    protocol = 0
    for p in payloads:
        if not is_iextp_segment(p):
            continue
        _, _, proto, ch, sid, _, count, _, first, _ = SEGMENT_HEADER.unpack_from(p)
        if count == 0 or first < 1 or (session_id is not None and sid != session_id) or \
                (channel is not None and ch != channel):
            continue
        session_id, channel, protocol = sid, ch, proto
        pos = SEGMENT_HEADER.size
        for k in range(count):  # is_iextp_segment checked that the blocks fill the payload
            size = 2 + int.from_bytes(p[pos:pos + 2], "little")
            seqs.append(first + k)
            blocks.append(p[pos:pos + size])
            pos += size
    if session_id is None or channel is None:
        raise ValueError(f"{path}: no IEX-TP segment with messages")
    return _store_from_numbered(seqs, blocks, session_id.to_bytes(4, "little")), protocol, channel


class IexGapFillServer(RerequestServer):
    """An IEX-TP gap fill server (UDP, Sequenced Messages) on one socket and one thread.

    ``source``: a capture path (see :func:`iex_store`) or a
    ``(store, protocol_id, channel)`` triple. Limits as the MoldUDP64
    server's; ``max_count`` is at most 1,000 (the specifications' UDP limit).
    """

    request_cap = REQUEST_HEADER.size + MAX_RANGES * REQUEST_RANGE.size + 1
    header_size = SEGMENT_HEADER.size

    def __init__(self, source: str | tuple[MessageStore, int, int], session_id: int | None = None,
                 listen: tuple[str, int] = ("127.0.0.1", 0), limits: ServerLimits | None = None) -> None:
        store, self.protocol_id, self.channel = iex_store(source, session_id) if isinstance(source, str) else source
        limits = limits or ServerLimits()
        limits.max_count = min(limits.max_count, UDP_MAX_MESSAGES)
        super().__init__(store, listen=listen, limits=limits)
        self.session_id = int.from_bytes(store.session, "little")
        self.counters["test_requests"] = 0

    def _check(self, request: bytes) -> tuple[str | None, int, int, int]:
        """(outcome if refused, else None; first sequence; count asked; count it may have)."""
        if len(request) < REQUEST_HEADER.size:
            return "malformed", 0, 0, 0
        version, kind, proto, channel, session, ranges = REQUEST_HEADER.unpack_from(request)
        if version != 1 or kind != 1 or len(request) != REQUEST_HEADER.size + ranges * REQUEST_RANGE.size \
                or ranges > MAX_RANGES:
            return "malformed", 0, 0, 0
        if (proto, channel) != (self.protocol_id, self.channel):
            return "wrong_session", 0, 0, 0
        if ranges == 0:  # a Gap Fill Test Request
            return "zero_count", 0, 0, 0
        first, last = REQUEST_RANGE.unpack_from(request, REQUEST_HEADER.size)
        if last < first or first < 1:
            return "malformed", 0, 0, 0
        count = last - first + 1
        refused = self._refusal(session.to_bytes(4, "little"), first, count)
        if refused:
            return refused, first, count, 0
        if count > self.limits.max_count:
            self.counters["capped"] += 1
        return None, first, count, min(count, self.limits.max_count, self.window()[1] - first)

    def handle(self, request: bytes, addr: tuple[str, int]) -> str:
        outcome = super().handle(request, addr)
        if outcome == "zero_count" and len(request) == REQUEST_HEADER.size:
            self.counters["test_requests"] += 1
            self._send_segment(self.store.end_seq, 0, addr)  # the test response: a heartbeat at the end
        return outcome

    def _send(self, seq: int, n: int, addr: tuple[str, int]) -> bool:
        return self._send_segment(seq, n, addr)

    def _send_segment(self, seq: int, n: int, addr: tuple[str, int]) -> bool:
        i = seq - self.store.first_seq
        blocks = self.store.blocks(seq, n) if n else memoryview(b"")
        header = SEGMENT_HEADER.pack(1, 0, self.protocol_id, self.channel, self.session_id, len(blocks), n,
                                     int(self.store.offsets[min(i, len(self.store))]), seq, time.time_ns())
        return self._send_datagram(header, blocks, n, addr)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["session"] = self.session_id
        out.update(protocol_id=self.protocol_id, channel=self.channel)
        return out
