"""The IEX-TP session layer (protocols/iex/iextp.h), driven through a small
cffi harness that does what a decoder does: check a segment, hold a
candidate, resolve it with the next segment, walk the delivered messages.

Segments are written by hand from the IEX Transport Specification 1.26 (the
40-byte little-endian header, [u16 length][message] blocks), either copied
from its "Example Messages" section or packed with ``struct`` here, never by
the code under test."""

from __future__ import annotations

import calendar
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .c_harness import C_PUSH_U64, build_harness

ROOT = Path(__file__).resolve().parents[1]

CDEF = """
typedef struct tp_harness tp_harness;
tp_harness *h_new(uint16_t protocol_id, uint32_t channel_id, uint64_t initial_seq, uint64_t max_jump);
void h_free(tp_harness *h);
int h_feed(tp_harness *h, const uint8_t *p, uint32_t len);
int h_accept(tp_harness *h, const uint8_t *p, uint32_t len);  /* accept() only, even with a candidate held */
void h_finish(tp_harness *h);
/* each delivered message: session id, epoch (restarts of it so far), sequence, length, bytes */
size_t h_delivered(tp_harness *h, uint64_t **quads, uint8_t **bytes);
/* each event: kind (1 gap, 2 session change, 3 restart, 4 offset mismatch), a, b */
size_t h_events(tp_harness *h, uint64_t **triples);
void h_counters(tp_harness *h, uint64_t out[22]);
int h_parse(const uint8_t *p, uint32_t len, int64_t out[10]);
uint32_t h_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id, uint32_t session_id,
                   uint64_t first, uint64_t count);
uint32_t h_test_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id, uint32_t session_id);
int h_seq_block(tp_harness *h, const uint8_t *p, uint32_t len, uint64_t head, uint64_t out[2]);
"""

SOURCE = r"""
#include <stdlib.h>
#include "iextp.h"

typedef struct tp_harness {
    rxf_iextp_session s;
    uint8_t cand[65536];
    uint32_t cand_len;
    uint64_t epoch[16];  /* restarts per session id (ids < 16 in these tests; others share slot 15) */
    uint64_t *quads; size_t n_quads, cap_quads;
    uint8_t *bytes; size_t n_bytes, cap_bytes;
    uint64_t *events; size_t n_events, cap_events;
} tp_harness;

""" + C_PUSH_U64 + r"""
static void event(tp_harness *h, uint64_t kind, uint64_t a, uint64_t b) {
    push(&h->events, &h->n_events, &h->cap_events, kind);
    push(&h->events, &h->n_events, &h->cap_events, a);
    push(&h->events, &h->n_events, &h->cap_events, b);
}

static void keep_bytes(tp_harness *h, const uint8_t *m, uint32_t n) {
    if (n == 0) return;
    while (h->n_bytes + n > h->cap_bytes) { h->cap_bytes = h->cap_bytes ? h->cap_bytes * 2 : 4096; h->bytes = realloc(h->bytes, h->cap_bytes); }
    memcpy(h->bytes + h->n_bytes, m, n);
    h->n_bytes += n;
}

static void report(tp_harness *h, const rxf_iextp_verdict *v) {
    if (v->session_changed) event(h, 2, h->s.session_id, 0);
    if (v->restarted) { event(h, 3, h->s.session_id, 0); h->epoch[h->s.session_id < 16 ? h->s.session_id : 15]++; }
    if (v->gap_count) event(h, 1, v->gap_first, v->gap_count);
    if (v->offset_mismatch) event(h, 4, v->seq, (uint64_t)v->h.stream_offset);
}

/* accept() one segment and walk what it delivers */
static int take(tp_harness *h, const uint8_t *p, uint32_t len) {
    rxf_iextp_verdict v;
    int r = rxf_iextp_accept(&h->s, p, len, &v);
    report(h, &v);
    if (r == RXF_IEXTP_HOLD) { memcpy(h->cand, p, len); h->cand_len = len; }
    if (r != RXF_IEXTP_DELIVER) return r;
    uint32_t off = RXF_IEXTP_HEADER_LEN + v.skip_bytes, mlen;
    const uint8_t *m;
    uint64_t ep = h->epoch[h->s.session_id < 16 ? h->s.session_id : 15];
    for (uint32_t i = v.skip; i < v.count; i++) {
        if (!rxf_iextp_next_message(p, len, &off, &m, &mlen)) abort(); /* parse() promised the blocks */
        push(&h->quads, &h->n_quads, &h->cap_quads, h->s.session_id);
        push(&h->quads, &h->n_quads, &h->cap_quads, ep);
        push(&h->quads, &h->n_quads, &h->cap_quads, v.seq + i);
        push(&h->quads, &h->n_quads, &h->cap_quads, mlen);
        keep_bytes(h, m, mlen);
    }
    return r;
}

tp_harness *h_new(uint16_t protocol_id, uint32_t channel_id, uint64_t initial_seq, uint64_t max_jump) {
    tp_harness *h = calloc(1, sizeof *h);
    h->s.protocol_id = protocol_id;
    h->s.channel_id = channel_id;
    h->s.initial_seq = initial_seq;
    h->s.max_jump = max_jump;
    rxf_iextp_reset(&h->s);
    return h;
}
void h_free(tp_harness *h) { free(h->quads); free(h->bytes); free(h->events); free(h); }

/* every segment in a heap block of its exact length: a read past it is an error under the sanitizers */
static int feed(tp_harness *h, const uint8_t *p, uint32_t len) {
    if (h->s.have_candidate) {
        rxf_iextp_verdict v;
        int r = rxf_iextp_resolve(&h->s, p, len, &v);
        report(h, &v);
        if (r == RXF_IEXTP_CONFIRMED) { /* both, in order, as if they had just arrived */
            uint8_t *held = malloc(h->cand_len ? h->cand_len : 1);
            uint32_t held_len = h->cand_len;
            memcpy(held, h->cand, held_len);
            if (v.packet_first) { feed(h, p, len); r = feed(h, held, held_len); }
            else { feed(h, held, held_len); r = feed(h, p, len); }
            free(held);
            return r;
        }
    }
    return take(h, p, len);
}
int h_feed(tp_harness *h, const uint8_t *data, uint32_t len) {
    uint8_t *p = malloc(len ? len : 1);
    if (len) memcpy(p, data, len);
    int r = feed(h, p, len);
    free(p);
    return r;
}
int h_accept(tp_harness *h, const uint8_t *p, uint32_t len) { return take(h, p, len); }
void h_finish(tp_harness *h) { rxf_iextp_drop_candidate(&h->s); }

size_t h_delivered(tp_harness *h, uint64_t **quads, uint8_t **bytes) { *quads = h->quads; *bytes = h->bytes; return h->n_quads / 4; }
size_t h_events(tp_harness *h, uint64_t **triples) { *triples = h->events; return h->n_events / 3; }

void h_counters(tp_harness *h, uint64_t out[22]) {
    const rxf_iextp_session *s = &h->s;
    uint64_t c[22] = {s->packets, s->heartbeats, s->session_changes, s->restarts, s->jumps_confirmed,
                      s->gaps, s->gap_messages, s->duplicate_packets, s->duplicate_messages,
                      s->implausible_packets, s->implausible_messages, s->offset_mismatches, s->other_stream,
                      s->short_packets, s->bad_version, s->truncated, s->trailing_bytes, s->count_mismatch,
                      s->bad_sequence, s->malformed_messages, s->next_seq, s->have_candidate};
    memcpy(out, c, sizeof c);
}

int h_parse(const uint8_t *data, uint32_t len, int64_t out[10]) {
    rxf_iextp_header x;
    uint8_t *p = malloc(len ? len : 1);
    if (len) memcpy(p, data, len);
    int r = rxf_iextp_parse(p, len, &x);
    free(p);
    int64_t o[10] = {x.version, x.protocol_id, x.channel_id, x.session_id, x.payload_len, x.message_count,
                     x.stream_offset, x.first_seq, x.send_time_ns, x.reserved};
    memcpy(out, o, sizeof o);
    return r;
}

uint32_t h_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id, uint32_t session_id,
                   uint64_t first, uint64_t count) {
    return rxf_iextp_request(out, cap, protocol_id, channel_id, session_id, first, count);
}
uint32_t h_test_request(uint8_t *out, uint32_t cap, uint16_t protocol_id, uint32_t channel_id, uint32_t session_id) {
    return rxf_iextp_test_request(out, cap, protocol_id, channel_id, session_id);
}

int h_seq_block(tp_harness *h, const uint8_t *p, uint32_t len, uint64_t head, uint64_t out[2]) {
    rxf_seq_block b;
    if (!rxf_iextp_seq_block(&h->s, p, len, head, &b)) return 0;
    out[0] = b.first;
    out[1] = b.count;
    return b.len == len && b.data == p;
}
"""

COUNTERS = ("packets", "heartbeats", "session_changes", "restarts", "jumps_confirmed", "gaps", "gap_messages",
            "duplicate_packets", "duplicate_messages", "implausible_packets", "implausible_messages",
            "offset_mismatches", "other_stream", "short_packets", "bad_version", "truncated", "trailing_bytes",
            "count_mismatch", "bad_sequence", "malformed_messages", "next_seq", "have_candidate")
GAP, SESSION_CHANGE, RESTART, OFFSET_MISMATCH = 1, 2, 3, 4
OK, E_SHORT, E_VERSION, E_TRUNCATED, E_TRAILING, E_BLOCKS, E_SEQUENCE = range(7)
MALFORMED, NOTHING, DELIVER, HOLD, OTHER = -1, 0, 1, 2, 3
DEEP = 0x8004


class Harness:
    """The compiled harness: its functions, and its ``ffi`` for buffers."""

    def __init__(self, module: Any) -> None:
        self.ffi = module.ffi
        self._lib = module.lib

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)


@pytest.fixture(scope="module")
def lib() -> Harness:
    return Harness(build_harness("_rxf_iextp_harness", CDEF, SOURCE, [str(ROOT / "protocols/iex")]))


# --- segments written from the specification ---------------------------------------------------

# IEX Transport Specification 1.26, "Example Messages": a DEEP v1.0 segment with two messages
SPEC_SEGMENT = bytes.fromhex(
    "01 00 04 80 01 00 00 00 00 00 87 42 48 00 02 00"   # version, reserved, protocol, channel, session, len, count
    "8c a6 21 00 00 00 00 00 ca c3 00 00 00 00 00 00"   # stream offset 2,205,324, first sequence 50122
    "ec 45 c2 20 96 86 6d 14"                           # send time
    "26 00 54 00 ac 63 c0 20 96 86 6d 14 5a 49 45 58 54 20 20 20 64 00 00 00"  # block 1: 38-byte Trade Report
    "24 1d 0f 00 00 00 00 00 96 8f 06 00 00 00 00 00"
    "1e 00 38 01 ac 63 c0 20 96 86 6d 14 5a 49 45 58 54 20 20 20 e4 25 00 00"  # block 2: 30-byte Price Level Update
    "24 1d 0f 00 00 00 00 00")
# the same section's Gap Fill Test Response (TOPS v1.5): a heartbeat-like segment
SPEC_TEST_RESPONSE = bytes.fromhex(
    "01 00 02 80 01 00 00 00 00 00 87 42 00 00 00 00 8c a6 21 00 00 00 00 00 ca c3 00 00 00 00 00 00"
    "ec 45 c2 20 96 86 6d 14")
# its Gap Fill Request header (DEEP, channel 1, the same session) and the first of its range blocks
SPEC_REQUEST_HEADER = bytes.fromhex("01 01 04 80 01 00 00 00 00 00 87 42")
SPEC_RANGE_12340_12350 = bytes.fromhex("34 30 00 00 00 00 00 00 3e 30 00 00 00 00 00 00")
SPEC_TEST_REQUEST = bytes.fromhex("01 01 04 80 01 00 00 00 00 00 87 42 00 00 00 00")
SPEC_SESSION = 0x42870000  # bytes 00 00 87 42, little endian


def seg(seq: int, messages: list[bytes], *, session: int = 7, offset: int | None = None, send: int | None = None,
        protocol: int = DEEP, channel: int = 1, count: int | None = None, payload_len: int | None = None,
        version: int = 1) -> bytes:
    """A segment packed by hand: the 40-byte header of the specification, then [u16 length][message] blocks.
    The stream offset defaults to what a sender whose messages are all 10 bytes long would put there."""
    payload = b"".join(struct.pack("<H", len(m)) + m for m in messages)
    header = struct.pack("<BBHIIHHqqq", version, 0, protocol, channel, session,
                         len(payload) if payload_len is None else payload_len,
                         len(messages) if count is None else count,
                         (seq - 1) * 12 if offset is None else offset, seq,
                         1_700_000_000_000_000_000 + seq if send is None else send)
    return header + payload


def msg(seq: int) -> bytes:
    """A 10-byte message naming its sequence number."""
    return b"M" + struct.pack("<Q", seq) + b"."


@dataclass
class Run:
    delivered: list[tuple[int, int, int, bytes]]  # (session, epoch, seq, message)
    events: list[tuple[int, int, int]]
    counters: dict[str, int]
    results: list[int]

    @property
    def seqs(self) -> list[int]:
        return [d[2] for d in self.delivered]

    def kinds(self, kind: int) -> list[tuple[int, int]]:
        return [(a, b) for k, a, b in self.events if k == kind]


def run(lib: Harness, segments: list[bytes], *, protocol: int = DEEP, channel: int = 1, initial_seq: int = 0,
        max_jump: int = 100) -> Run:
    """Feed the segments, then end the input; what came out."""
    ffi = lib.ffi
    h = lib.h_new(protocol, channel, initial_seq, max_jump)
    try:
        results = [lib.h_feed(h, s, len(s)) for s in segments]
        lib.h_finish(h)
        quads, data = ffi.new("uint64_t **"), ffi.new("uint8_t **")
        n = lib.h_delivered(h, quads, data)
        delivered, at = [], 0
        for i in range(n):
            session, epoch, seq, length = (quads[0][4 * i + j] for j in range(4))
            delivered.append((session, epoch, seq, bytes(ffi.buffer(data[0] + at, length))))
            at += length
        triples = ffi.new("uint64_t **")
        m = lib.h_events(h, triples)
        events = [tuple(triples[0][3 * i + j] for j in range(3)) for i in range(m)]
        out = ffi.new("uint64_t[22]")
        lib.h_counters(h, out)
        return Run(delivered, events, dict(zip(COUNTERS, out)), results)
    finally:
        lib.h_free(h)


# --- the header ----------------------------------------------------------------------------------

def test_spec_example_header_fields(lib):
    out = lib.ffi.new("int64_t[10]")
    assert lib.h_parse(SPEC_SEGMENT, len(SPEC_SEGMENT), out) == OK
    version, protocol, channel, session, payload_len, count, offset, seq, send, reserved = out
    assert (version, reserved, protocol, channel) == (1, 0, DEEP, 1)
    assert session == SPEC_SESSION
    assert (payload_len, count) == (72, 2)
    assert (offset, seq) == (2_205_324, 50122)
    # the example's comment shows 2016-08-23 15:30:32.572839404 New York time (EDT, UTC-4)
    assert send == calendar.timegm((2016, 8, 23, 19, 30, 32, 0, 0, 0)) * 10**9 + 572_839_404


def test_spec_example_segment_delivers_both_messages(lib):
    r = run(lib, [SPEC_SEGMENT], protocol=0)
    assert r.seqs == [50122, 50123]
    assert r.delivered[0][3] == SPEC_SEGMENT[42:80] and r.delivered[0][3][:1] == b"T"
    assert r.delivered[1][3] == SPEC_SEGMENT[82:112] and r.delivered[1][3][:1] == b"8"
    assert r.delivered[0][0] == SPEC_SESSION
    assert r.counters["packets"] == 1 and r.events == []


def test_spec_gap_fill_test_response_is_a_heartbeat(lib):
    r = run(lib, [SPEC_TEST_RESPONSE], protocol=0)
    assert r.counters["heartbeats"] == 1 and r.delivered == []
    assert r.counters["next_seq"] == 50122  # the sequence number of the next message


def test_protocol_and_channel_select_the_stream(lib):
    r = run(lib, [SPEC_TEST_RESPONSE, SPEC_SEGMENT, seg(1, [msg(1)], channel=2)], protocol=DEEP, channel=1)
    assert r.counters["other_stream"] == 2  # TOPS 1.5 (0x8002) and channel 2
    assert r.seqs == [50122, 50123]
    assert r.results == [OTHER, DELIVER, OTHER]


@pytest.mark.parametrize("data, why", [
    (SPEC_SEGMENT[:39], E_SHORT),
    (b"\x02" + SPEC_SEGMENT[1:], E_VERSION),
    (SPEC_SEGMENT[:-1], E_TRUNCATED),                  # payload length 72, 71 bytes present
    (SPEC_SEGMENT + b"\x00", E_TRAILING),              # 73 bytes present
    (SPEC_SEGMENT[:14] + b"\x03\x00" + SPEC_SEGMENT[16:], E_BLOCKS),  # count 3, two blocks
    (SPEC_SEGMENT[:14] + b"\x01\x00" + SPEC_SEGMENT[16:], E_BLOCKS),  # count 1, bytes left over
    (SPEC_SEGMENT[:12] + b"\x49\x00\x03\x00" + SPEC_SEGMENT[16:] + b"\x05", E_BLOCKS),  # 1 byte for a 2-byte length
    (SPEC_SEGMENT[:24] + struct.pack("<q", 0) + SPEC_SEGMENT[32:], E_SEQUENCE),
    (SPEC_SEGMENT[:16] + struct.pack("<q", -1) + SPEC_SEGMENT[24:], E_SEQUENCE),
    (SPEC_SEGMENT[:24] + struct.pack("<q", 2**63 - 1) + SPEC_SEGMENT[32:], E_SEQUENCE),  # seq + 2 overflows
])
def test_malformed_headers_are_refused(lib, data, why):
    out = lib.ffi.new("int64_t[10]")
    assert lib.h_parse(data, len(data), out) == why


def test_a_block_longer_than_the_payload_is_never_read_past(lib):
    """Second block's length says 200 bytes: the segment is refused whole, nothing delivered."""
    bad = bytearray(SPEC_SEGMENT)
    bad[80:82] = struct.pack("<H", 200)
    r = run(lib, [bytes(bad), seg(50124, [msg(1)], session=SPEC_SESSION)], protocol=0)
    assert r.counters["count_mismatch"] == 1 and r.counters["malformed_messages"] == 2
    assert r.seqs == [50124]


# --- session layer -----------------------------------------------------------------------------

def test_in_order_delivery_and_message_bytes(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)]), seg(3, [msg(3)])])
    assert r.seqs == [1, 2, 3]
    assert [d[3] for d in r.delivered] == [msg(1), msg(2), msg(3)]
    assert r.counters["gaps"] == 0 and r.counters["offset_mismatches"] == 0


def test_gap_is_an_event_with_its_range(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(5, [msg(5), msg(6)])])
    assert r.seqs == [1, 5, 6]
    assert r.kinds(GAP) == [(2, 3)]
    assert r.counters["gaps"] == 1 and r.counters["gap_messages"] == 3
    assert r.counters["offset_mismatches"] == 0


def test_late_join_is_a_gap_with_initial_sequence(lib):
    assert run(lib, [seg(10, [msg(10)])], initial_seq=1).kinds(GAP) == [(1, 9)]
    assert run(lib, [seg(10, [msg(10)])], initial_seq=0).kinds(GAP) == []


def test_heartbeats_mark_the_position_and_reveal_gaps(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(2, []), seg(2, []), seg(4, []), seg(4, [msg(4)])])
    assert r.seqs == [1, 4]
    assert r.counters["heartbeats"] == 3
    assert r.kinds(GAP) == [(2, 2)]
    assert r.counters["offset_mismatches"] == 0


def test_duplicates_and_overlaps_are_skipped_and_counted(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)]), seg(1, [msg(1), msg(2)]), seg(2, [msg(2), msg(3)]), seg(4, [msg(4)])])
    assert r.seqs == [1, 2, 3, 4]
    assert [d[3] for d in r.delivered] == [msg(1), msg(2), msg(3), msg(4)]  # the overlap's new block, not its first
    assert r.counters["duplicate_packets"] == 1 and r.counters["duplicate_messages"] == 3
    assert r.counters["offset_mismatches"] == 0


def test_reordered_segment_after_a_gap_is_not_delivered_out_of_order(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(3, [msg(3)]), seg(2, [msg(2)])])
    assert r.seqs == [1, 3] and r.counters["duplicate_packets"] == 1


def test_session_change_is_confirmed_by_the_next_segment(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)]), seg(1, [msg(11)], session=8), seg(2, [msg(12)], session=8)])
    assert [(d[0], d[2]) for d in r.delivered] == [(7, 1), (7, 2), (8, 1), (8, 2)]
    assert r.kinds(SESSION_CHANGE) == [(8, 0)]
    assert r.counters["session_changes"] == 1 and r.counters["implausible_packets"] == 0


def test_a_stray_segment_of_another_session_is_dropped(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)]), seg(1, [msg(9)], session=8), seg(1, [msg(1), msg(2)]),
                  seg(3, [msg(3)])])
    assert r.seqs == [1, 2, 3]
    assert r.counters["session_changes"] == 0
    assert r.counters["implausible_packets"] == 1 and r.counters["implausible_messages"] == 1


def test_session_change_without_confirmation_when_max_jump_is_0(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(1, [msg(1)], session=8)], max_jump=0)
    assert [(d[0], d[2]) for d in r.delivered] == [(7, 1), (8, 1)]
    assert r.counters["session_changes"] == 1


def test_a_session_that_comes_back_resumes(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(2, [msg(2)]), seg(1, [msg(1)], session=8), seg(2, [msg(2)], session=8),
                  seg(1, [msg(1), msg(2)]), seg(3, [msg(3)])], max_jump=0)
    assert [(d[0], d[2]) for d in r.delivered] == [(7, 1), (7, 2), (8, 1), (8, 2), (7, 3)]


def test_implausible_jump_held_then_confirmed_or_dropped(lib):
    confirmed = run(lib, [seg(1, [msg(1)]), seg(500, [msg(500)]), seg(501, [msg(501)])], max_jump=100)
    assert confirmed.seqs == [1, 500, 501] and confirmed.kinds(GAP) == [(2, 498)]
    assert confirmed.counters["jumps_confirmed"] == 1
    assert confirmed.counters["offset_mismatches"] == 0
    dropped = run(lib, [seg(1, [msg(1)]), seg(500, [msg(500)]), seg(2, [msg(2)])], max_jump=100)
    assert dropped.seqs == [1, 2] and dropped.counters["implausible_packets"] == 1
    held_at_end = run(lib, [seg(1, [msg(1)]), seg(500, [msg(500)])], max_jump=100)
    assert held_at_end.seqs == [1] and held_at_end.counters["implausible_messages"] == 1


def test_sequence_restart_at_1_within_a_session_is_a_reset_event(lib):
    """Not described by the specification (a session id never reuses a
    sequence number): a reset, once the next segment confirms it."""
    t = 2_000_000_000_000_000_000
    first = [seg(1, [msg(1), msg(2)], send=t), seg(3, [msg(3)], send=t + 1), seg(4, [msg(4)], send=t + 2)]
    again = [seg(1, [msg(101)], offset=0, send=t + 10), seg(2, [msg(102)], offset=12, send=t + 11)]
    r = run(lib, first + again)
    assert [(d[1], d[2]) for d in r.delivered] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    assert r.delivered[-1][3] == msg(102)
    assert r.kinds(RESTART) == [(7, 0)] and r.counters["restarts"] == 1
    assert r.counters["offset_mismatches"] == 0 and r.counters["implausible_packets"] == 0


def test_a_late_copy_of_the_first_segment_is_a_duplicate_not_a_restart(lib):
    t = 2_000_000_000_000_000_000
    r = run(lib, [seg(1, [msg(1)], send=t), seg(2, [msg(2)], send=t + 1), seg(1, [msg(1)], send=t),
                  seg(3, [msg(3)], send=t + 2)])
    assert r.seqs == [1, 2, 3]
    assert r.counters["restarts"] == 0 and r.counters["duplicate_packets"] == 1


def test_an_unconfirmed_restart_is_dropped(lib):
    t = 2_000_000_000_000_000_000
    r = run(lib, [seg(1, [msg(1)], send=t), seg(2, [msg(2)], send=t + 1), seg(1, [msg(9)], send=t + 5),
                  seg(3, [msg(3)], send=t + 6)])
    assert r.seqs == [1, 2, 3]
    assert r.counters["restarts"] == 0 and r.counters["implausible_packets"] == 1


def test_a_session_that_comes_back_and_restarts(lib):
    """Session 7, then 8, then 7 again from 1: the session change is
    confirmed, 7 resumes at its old position, where its segments are a
    restart at 1 (held again, then confirmed by the following segment)."""
    t = 2_000_000_000_000_000_000
    r = run(lib, [seg(1, [msg(1), msg(2)], send=t), seg(1, [msg(1)], session=8, send=t + 1),
                  seg(2, [msg(2)], session=8, send=t + 2), seg(1, [msg(101)], offset=0, send=t + 10),
                  seg(2, [msg(102)], offset=12, send=t + 11)])
    assert [(d[0], d[1], d[2]) for d in r.delivered] == [(7, 0, 1), (7, 0, 2), (8, 0, 1), (8, 0, 2), (7, 1, 1),
                                                         (7, 1, 2)]
    assert r.counters["session_changes"] == 2 and r.counters["restarts"] == 1
    assert r.counters["implausible_packets"] == 0


def test_a_second_hold_drops_the_first_candidate_counted(lib):
    """A caller that passes a segment to accept() while one is held loses no
    message from the counts: the first candidate is dropped as implausible."""
    h = lib.h_new(DEEP, 1, 0, 10)
    out = lib.ffi.new("uint64_t[22]")
    try:
        for data in (seg(1, [msg(1)]), seg(100, [msg(100), msg(101)]), seg(300, [msg(300)])):
            lib.h_accept(h, data, len(data))
        lib.h_finish(h)
        lib.h_counters(h, out)
        counters = dict(zip(COUNTERS, out))
        assert counters["implausible_packets"] == 2 and counters["implausible_messages"] == 3
    finally:
        lib.h_free(h)


def test_truncated_final_segment_is_counted_and_delivers_nothing(lib):
    last = seg(3, [msg(3), msg(4)])
    r = run(lib, [seg(1, [msg(1), msg(2)]), last[:-5]])
    assert r.seqs == [1, 2]
    assert r.counters["truncated"] == 1 and r.counters["malformed_messages"] == 2
    assert r.results[-1] == MALFORMED


def test_payload_length_disagreeing_with_the_datagram(lib):
    r = run(lib, [seg(1, [msg(1)], payload_len=11), seg(1, [msg(1)], payload_len=13), seg(1, [msg(1)])])
    assert r.counters["trailing_bytes"] == 1 and r.counters["truncated"] == 1
    assert r.seqs == [1]


def test_message_count_disagreeing_with_the_payload(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)], count=3), seg(1, [msg(1), msg(2)], count=1), seg(1, [], count=1),
                  seg(1, [msg(1)], count=0), seg(1, [msg(1)])])
    assert r.counters["count_mismatch"] == 4 and r.counters["malformed_messages"] == 5
    assert r.seqs == [1] and r.counters["packets"] == 1


def test_stream_offset_mismatch_is_counted_and_resyncs(lib):
    r = run(lib, [seg(1, [msg(1)]), seg(2, [msg(2)], offset=40), seg(3, [msg(3)], offset=52), seg(4, [msg(4)])])
    assert r.seqs == [1, 2, 3, 4]  # delivery follows the sequence numbers
    assert r.kinds(OFFSET_MISMATCH) == [(2, 40), (4, 36)]  # 12 expected; then 64 expected, 36 found
    assert r.counters["offset_mismatches"] == 2


def test_stream_offset_after_a_gap_must_leave_room_for_the_lost_messages(lib):
    ok = run(lib, [seg(1, [msg(1)]), seg(5, [msg(5)], offset=12 + 3 * 2)])  # three empty messages lost
    assert ok.counters["offset_mismatches"] == 0
    bad = run(lib, [seg(1, [msg(1)]), seg(5, [msg(5)], offset=12 + 5)])
    assert bad.kinds(OFFSET_MISMATCH) == [(5, 17)]


def test_stream_offset_of_an_overlapping_segment_and_a_heartbeat(lib):
    r = run(lib, [seg(1, [msg(1), msg(2)]), seg(2, [msg(2), msg(3)], offset=13), seg(4, [], offset=36)])
    assert r.seqs == [1, 2, 3]
    assert r.kinds(OFFSET_MISMATCH) == [(2, 13), (4, 36)]  # 12 expected; the heartbeat's 37 (13 + 24)


# --- the sequencer's view and the gap fill request -----------------------------------------------

def test_seq_block_view(lib):
    ffi = lib.ffi
    h = lib.h_new(DEEP, 1, 0, 100)
    out = ffi.new("uint64_t[2]")
    try:
        first = seg(1, [msg(1), msg(2)])
        assert lib.h_seq_block(h, first, len(first), 0, out) == 0  # no session yet: the session layer starts it
        lib.h_feed(h, first, len(first))
        for data, expect in [(seg(5, [msg(5)]), (5, 1)), (seg(3, []), (3, 0)), (seg(2, [msg(2)]), (2, 1))]:
            assert lib.h_seq_block(h, data, len(data), 3, out) == 1 and tuple(out) == expect
        for data in [seg(2, [msg(2)], session=8), seg(500, [msg(1)]), seg(3, [msg(3)])[:-1],
                     seg(1, [msg(1)], send=2**62), seg(3, [msg(3)], protocol=0x8003)]:
            assert lib.h_seq_block(h, data, len(data), 3, out) == 0
    finally:
        lib.h_free(h)


def test_gap_fill_request_matches_the_specification(lib):
    buf = lib.ffi.new("uint8_t[64]")
    n = lib.h_request(buf, 64, DEEP, 1, SPEC_SESSION, 12340, 11)  # 12340 .. 12350 inclusive
    assert bytes(buf[0:n]) == SPEC_REQUEST_HEADER + struct.pack("<I", 1) + SPEC_RANGE_12340_12350
    n = lib.h_test_request(buf, 64, DEEP, 1, SPEC_SESSION)
    assert bytes(buf[0:n]) == SPEC_TEST_REQUEST
    assert lib.h_request(buf, 31, DEEP, 1, SPEC_SESSION, 1, 1) == 0
    assert lib.h_request(buf, 64, DEEP, 1, SPEC_SESSION, 1, 0) == 0
    assert lib.h_request(buf, 64, DEEP, 1, SPEC_SESSION, 2**63 - 1, 2) == 0
    assert lib.h_test_request(buf, 15, DEEP, 1, SPEC_SESSION) == 0


# --- properties ---------------------------------------------------------------------------------

_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=300, deadline=None, suppress_health_check=_QUIET)
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_random_bytes_never_crash(lib, datagrams):
    r = run(lib, [bytes(d) for d in datagrams], protocol=0, channel=0)
    refused = sum(r.counters[k] for k in ("short_packets", "bad_version", "truncated", "trailing_bytes",
                                           "count_mismatch", "bad_sequence"))
    assert refused + r.counters["packets"] + r.counters["implausible_packets"] <= len(datagrams)


_SEGMENT = st.tuples(  # session, seq, message lengths, offset delta, send time, bytes cut, count delta
    st.sampled_from([7, 8]), st.integers(1, 40), st.lists(st.integers(0, 6), max_size=4),
    st.sampled_from([0, 0, 0, 1, -2]), st.integers(0, 50), st.sampled_from([0, 0, 0, 1, 3, 40]),
    st.sampled_from([0, 0, 0, 0, 1, -1]))


def _build(spec: tuple) -> tuple[bytes, bool]:
    """A segment from drawn parameters, maybe damaged; and whether it is still well formed."""
    session, seq, lengths, offset_delta, send, cut, count_delta = spec
    messages = [bytes([seq + i]) * n for i, n in enumerate(lengths)]
    count = max(0, len(messages) + count_delta)
    data = seg(seq, messages, session=session, offset=max(0, (seq - 1) * 4 + offset_delta), send=send, count=count)
    whole = count_delta == 0 or count == len(messages)
    if cut:
        data = data[:-cut] if cut < len(data) else b""
        whole = False
    return data, whole


@settings(max_examples=300, deadline=None, suppress_health_check=_QUIET)
@given(st.lists(_SEGMENT, max_size=60), st.sampled_from([0, 5, 100]))
def test_counts_add_up_and_nothing_is_delivered_twice(lib, specs, max_jump):
    built = [_build(s) for s in specs]
    r = run(lib, [d for d, _ in built], max_jump=max_jump)
    c = r.counters
    declared = sum(struct.unpack_from("<H", d, 14)[0] for d, whole in built if whole)
    assert len(r.delivered) + c["duplicate_messages"] + c["implausible_messages"] == declared
    refused = sum(c[k] for k in ("short_packets", "truncated", "trailing_bytes", "count_mismatch", "bad_sequence"))
    assert refused == sum(1 for _, whole in built if not whole)
    assert c["have_candidate"] == 0
    per_stream: dict[tuple[int, int], list[int]] = {}
    for session, epoch, seq, message in r.delivered:
        per_stream.setdefault((session, epoch), []).append(seq)
        assert message == bytes([seq % 256]) * len(message)  # the block of that sequence number
    for seqs in per_stream.values():
        assert seqs == sorted(set(seqs))  # once each, in order
