"""MoldUDP64 session layer: in-order, at-most-once delivery; gaps, duplicates,
session changes, heartbeats and end of session are events and counters."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed.protocols.itch50.reference import encode

from .c_harness import build_harness
from .conftest import mold, run_payloads

ROOT = Path(__file__).resolve().parents[1]


def D(ref: int) -> bytes:
    return encode("D", stock_locate=1, timestamp=ref, order_reference_number=ref)


def seqs(got):
    return [meta[1] for _, meta in got]


def test_in_order_delivery_with_sequences():
    _, s, got = run_payloads([mold(1, [D(1), D(2)]), mold(3, [D(3)])])
    assert seqs(got) == [1, 2, 3]
    assert [m.order_reference_number for m, _ in got] == [1, 2, 3]
    assert got[0][1][0] == "TESTSESS01"
    assert s.gaps == 0 and s.duplicates == 0 and s.messages == 3


def test_gap_is_an_event_and_counted():
    pipe, s, got = run_payloads([mold(1, [D(1)]), mold(5, [D(5), D(6)])])
    assert seqs(got) == [1, 5, 6]
    assert s.gaps == 1 and s.gap_messages == 3
    (ev,) = [e for e in pipe.decoder.events if e["kind"] == "gap"]
    assert ev["session"] == "TESTSESS01" and ev["first"] == 2 and ev["count"] == 3


def test_late_join_is_a_gap_unless_configured():
    _, s, _ = run_payloads([mold(10, [D(10)])])
    assert s.gaps == 1 and s.gap_messages == 9
    _, s, got = run_payloads([mold(10, [D(10)])], initial_sequence=0)
    assert s.gaps == 0 and seqs(got) == [10]


def test_duplicates_and_overlaps_are_dropped_and_counted():
    payloads = [mold(1, [D(1), D(2)]), mold(1, [D(1), D(2)]), mold(2, [D(2), D(3)]), mold(4, [D(4)])]
    _, s, got = run_payloads(payloads)
    assert seqs(got) == [1, 2, 3, 4]
    assert s.duplicates == 3
    assert s.decoder_stats["duplicate_packets"] == 1


def test_reordered_packet_after_gap_is_not_delivered_twice():
    _, s, got = run_payloads([mold(1, [D(1)]), mold(3, [D(3)]), mold(2, [D(2)])])
    assert seqs(got) == [1, 3]  # 2 arrived late: already reported as a gap, never out of order
    assert s.gaps == 1 and s.duplicates == 1


def test_heartbeat_reveals_a_gap_and_end_of_session_is_an_event():
    pipe, s, got = run_payloads([mold(1, [D(1)]), mold(2, []), mold(4, [], count=0), mold(4, [], count=0xFFFF)])
    assert seqs(got) == [1]
    assert s.decoder_stats["heartbeats"] == 2
    assert s.gaps == 1 and s.gap_messages == 2
    assert s.decoder_stats["end_of_session"] == 1
    assert [e["kind"] for e in pipe.decoder.events] == ["gap", "end_of_session"]


def test_session_change_is_an_event_and_restarts_sequences():
    """A new session is taken once its next packet confirms it."""
    pipe, s, got = run_payloads([mold(1, [D(1), D(2)]), mold(1, [D(11)], session=b"TESTSESS02"),
                                 mold(2, [D(12)], session=b"TESTSESS02")])
    assert seqs(got) == [1, 2, 1, 2]
    assert got[-1][1][0] == got[-2][1][0] == "TESTSESS02"
    assert s.decoder_stats["session_changes"] == 1 and s.errors == {}
    assert [e["kind"] for e in pipe.decoder.events] == ["session_change"]


def test_a_stray_packet_of_another_session_does_not_restart_the_session():
    """A -> one packet of B -> A again: B's packet is dropped and counted; A's
    messages are not delivered a second time (found by the MoldUDP64 fuzzer)."""
    payloads = [mold(1, [D(1), D(2)]), mold(1, [D(9)], session=b"STRAYSESS1"), mold(1, [D(1), D(2)]),
                mold(3, [D(3)])]
    pipe, s, got = run_payloads(payloads)
    assert seqs(got) == [1, 2, 3] and [m.order_reference_number for m, _ in got] == [1, 2, 3]
    assert s.decoder_stats["session_changes"] == 0 and s.errors == {"implausible_sequence": 1}
    assert s.duplicates == 2
    assert [e["kind"] for e in pipe.decoder.events] == ["implausible_sequence"]


def test_a_session_that_comes_back_resumes_where_it_was_left():
    """A, then B (confirmed), then A again: A resumes at its position - its
    messages are never delivered twice (found by the MoldUDP64 fuzzer)."""
    b = b"TESTSESS02"
    payloads = [mold(1, [D(1), D(2)]), mold(1, [D(11)], session=b), mold(2, [D(12)], session=b),
                mold(1, [D(1), D(2)]), mold(3, [D(3)]), mold(3, [D(13)], session=b), mold(4, [D(14)], session=b)]
    pipe, s, got = run_payloads(payloads)
    delivered = [(meta[0], meta[1]) for _, meta in got]
    assert delivered == [("TESTSESS01", 1), ("TESTSESS01", 2), ("TESTSESS02", 1), ("TESTSESS02", 2),
                         ("TESTSESS01", 3), ("TESTSESS02", 3), ("TESTSESS02", 4)]
    assert s.decoder_stats["session_changes"] == 3 and s.duplicates == 2


def test_without_a_jump_limit_a_session_change_is_taken_at_once():
    pipe, s, got = run_payloads([mold(1, [D(1), D(2)]), mold(1, [D(11)], session=b"TESTSESS02")],
                                max_sequence_jump=0)
    assert seqs(got) == [1, 2, 1] and s.decoder_stats["session_changes"] == 1


def test_malformed_packets_are_counted_not_crashed():
    good = D(1)
    payloads = [
        b"short",                                         # shorter than the header
        mold(1, [good])[:-5],                             # block runs past the datagram
        mold(2, [good], count=3),                         # count says 3, one present
        mold(5, [b"Z" + bytes(10)]),                      # unknown type: skipped by its length
        mold(6, [good[:-1]]),                             # length does not match type
        mold(7, [good]) + b"xx",                          # trailing bytes after the block
    ]
    _, s, got = run_payloads(payloads)
    assert s.errors["short_packet"] == 1
    assert s.errors["truncated_block"] == 2
    assert s.errors["unknown_type"] == 1
    assert s.errors["bad_length"] == 1
    assert s.errors["trailing_bytes"] == 1
    assert seqs(got) == [2, 7]
    assert any("lost inside malformed" in w for w in s.warnings)


# --- each message gets its own meta (issue 9, finding 7) -----------------------

def test_meta_is_each_messages_own_even_inside_one_burst():
    # both datagrams arrive in one burst (burst=4): the first message's meta must
    # still name its own session, not the session of the burst's last packet
    _, s, got = run_payloads([mold(1, [D(1)]), mold(1, [D(2)], session=b"TESTSESS02"), mold(2, [D(3)],
                                                                                           session=b"TESTSESS02")])
    assert [(meta[0], meta[1]) for _, meta in got] == [("TESTSESS01", 1), ("TESTSESS02", 1), ("TESTSESS02", 2)]
    assert [meta.session for _, meta in got] == ["TESTSESS01", "TESTSESS02", "TESTSESS02"]
    assert all(meta.status == "new" for _, meta in got)


# --- implausible sequence numbers (issue 9, finding 9) -------------------------

HUGE = 1_100_000_000_000


def test_one_implausible_jump_does_not_poison_the_session():
    pipe, s, got = run_payloads([mold(1, [D(1)]), mold(HUGE, [D(99)]), mold(2, [D(2)]), mold(3, [D(3)])])
    assert seqs(got) == [1, 2, 3]
    assert s.gaps == 0 and s.gap_messages == 0 and s.duplicates == 0
    assert s.errors["implausible_sequence"] == 1
    assert s.decoder_stats["next_sequence"] == 4
    (ev,) = [e for e in pipe.decoder.events if e["kind"] == "implausible_sequence"]
    assert ev["first"] == HUGE and ev["count"] == 1


def test_confirmed_jump_is_accepted_and_the_held_datagram_delivered():
    far = 5_000_000
    pipe, s, got = run_payloads([mold(1, [D(1)]), mold(far, [D(2), D(3)]), mold(far + 2, [D(4)])])
    assert seqs(got) == [1, far, far + 1, far + 2]
    assert [m.order_reference_number for m, _ in got] == [1, 2, 3, 4]
    assert s.gaps == 1 and s.gap_messages == far - 2
    assert "implausible_sequence" not in s.errors
    assert s.decoder_stats["sequence_jumps_confirmed"] == 1
    (ev,) = [e for e in pipe.decoder.events if e["kind"] == "gap"]
    assert ev["first"] == 2 and ev["count"] == far - 2


def test_held_datagram_survives_the_end_of_its_burst():
    # burst=4: the jump is the 4th datagram, its confirmation comes in the next burst
    far = 7_000_000
    payloads = [mold(1, [D(1)]), mold(2, [D(2)]), mold(3, [D(3)]), mold(far, [D(70), D(71)]), mold(far + 2, [D(72)])]
    _, s, got = run_payloads(payloads)
    assert seqs(got) == [1, 2, 3, far, far + 1, far + 2]
    assert [m.order_reference_number for m, _ in got] == [1, 2, 3, 70, 71, 72]


def test_confirmation_reordered_before_the_jump_loses_nothing():
    far = 5_000_000
    _, s, got = run_payloads([mold(1, [D(1)]), mold(far + 2, [D(12)]), mold(far, [D(10), D(11)])])
    assert seqs(got) == [1, far, far + 1, far + 2]
    assert s.gaps == 1 and s.gap_messages == far - 2 and s.duplicates == 0


def test_two_different_implausible_jumps_are_both_dropped():
    _, s, got = run_payloads([mold(1, [D(1)]), mold(HUGE, [D(9)]), mold(HUGE * 3, [D(9)]), mold(2, [D(2)])])
    assert seqs(got) == [1, 2]
    assert s.errors["implausible_sequence"] == 2 and s.gaps == 0


def test_unconfirmed_jump_at_the_end_is_implausible():
    _, s, got = run_payloads([mold(1, [D(1)]), mold(HUGE, [D(2)])])
    assert seqs(got) == [1]
    assert s.errors["implausible_sequence"] == 1 and s.gaps == 0


def test_jump_limit_is_a_decoder_setting():
    payloads = [mold(1, [D(1)]), mold(20, [D(20)]), mold(2, [D(2)])]
    _, s, got = run_payloads(payloads, max_sequence_jump=10)
    assert seqs(got) == [1, 2] and s.errors["implausible_sequence"] == 1
    _, s, got = run_payloads(payloads, max_sequence_jump=100)  # within the limit: an ordinary gap
    assert seqs(got) == [1, 20] and s.gaps == 1 and s.duplicates == 1
    _, s, got = run_payloads([mold(1, [D(1)]), mold(HUGE, [D(2)])], max_sequence_jump=0)  # 0: no limit
    assert seqs(got) == [1, HUGE] and s.gap_messages == HUGE - 2


def test_sequence_plus_count_overflow_is_counted_and_dropped():
    top = (1 << 64) - 1
    _, s, got = run_payloads([mold(1, [D(1)]), mold(top, [D(8), D(9)]), mold(2, [D(2)])])
    assert seqs(got) == [1, 2]
    assert s.errors["sequence_overflow"] == 1 and s.gaps == 0 and s.duplicates == 0
    # the last representable sequence is fine
    _, s, got = run_payloads([mold(top - 1, [D(1)])], initial_sequence=0)
    assert seqs(got) == [top - 1] and "sequence_overflow" not in s.errors


def test_new_messages_lost_in_a_block_cut_inside_its_duplicate_part_are_counted():
    cut = mold(1, [D(1), D(2), D(3)])[:20 + 5]  # 1 and 2 already delivered; the cut also loses 3
    _, s, got = run_payloads([mold(1, [D(1), D(2)]), cut, mold(4, [D(4)])])
    assert seqs(got) == [1, 2, 4]
    assert s.errors["truncated_block"] == 1
    assert any(w.startswith("1 sequenced messages were lost") for w in s.warnings)


def test_random_streams_with_corrupt_sequences_keep_the_invariants():
    import random

    for seed in range(20):
        rnd = random.Random(seed)
        payloads, seq = [], 1
        for _ in range(200):
            n = rnd.randint(0, 3)
            r = rnd.random()
            if r < 0.05:      # corrupt: a huge (each different) or wrapping sequence number
                wrap = rnd.random() < 0.3
                payloads.append(mold((1 << 64) - 1 if wrap else rnd.getrandbits(62) | (1 << 62),
                                     [D(0)] * (max(n, 2) if wrap else n)))
                continue
            if r < 0.15:      # a repeat or a late datagram
                back = rnd.randint(1, 20)
                payloads.append(mold(max(1, seq - back), [D(0)] * n))
                continue
            if r < 0.2:       # loss
                seq += rnd.randint(1, 5)
            payloads.append(mold(seq, [D(0)] * n))
            seq += n
        _, s, got = run_payloads(payloads)
        delivered = seqs(got)
        assert delivered == sorted(set(delivered)), seed  # once each, in order
        assert len(delivered) + s.gap_messages == s.decoder_stats["next_sequence"] - 1, seed
        assert s.decoder_stats["next_sequence"] <= seq + 1, seed  # never poisoned beyond the real stream


# --- a confirmed candidate, then a second one (the IEX-TP finding, e0d2468) -----

def _accounted(pipe, s, payloads) -> tuple[int, int]:
    """(messages the headers declare, messages delivered or counted): every
    declared message is delivered, a duplicate, implausible or overflowing."""
    declared = sum(c for c in (struct.unpack_from(">H", p, 18)[0] for p in payloads) if c != 0xFFFF)
    c = pipe.decoder.counters()
    rec = s.recovery or {}  # with recovery, copies are the sequencer's: whole (redundant) or at a head (overlap)
    copies = rec.get("redundant_messages", 0) + rec.get("overlap_messages", 0)
    return declared, s.messages + s.duplicates + copies + c["implausible_messages"] + c["overflow_messages"]


@pytest.mark.parametrize("recovery", [{}, {"reorder_window_ms": 250.0}], ids=["plain", "recovery"])
def test_a_datagram_repeating_messages_at_its_head_is_accounted(recovery):
    """(1, 2 messages) then (1, 3 messages): the repeated two are counted
    (duplicates without recovery; the sequencer's overlap with it)."""
    payloads = [mold(1, [D(1), D(2)]), mold(1, [D(1), D(2), D(3)])]
    pipe, s, got = run_payloads(payloads, recovery=recovery)
    assert [meta[1] for _, meta in got] == [1, 2, 3]
    declared, accounted = _accounted(pipe, s, payloads)
    assert declared == 5 and accounted == 5
    if recovery:
        assert s.recovery["overlap_messages"] == 2


@pytest.mark.parametrize("recovery", [{}, {"reorder_window_ms": 250.0}], ids=["plain", "recovery"])
def test_a_session_that_comes_back_far_from_where_it_was_left_loses_nothing(recovery):
    """A, then B (confirmed), then A again far ahead of where it was left and
    then far behind, then B again: every change is confirmed, A resumes with a
    gap up to the confirmed position, and every message of every datagram is
    delivered or counted in exactly one counter."""
    a, b = b"TESTSESS01", b"TESTSESS02"
    payloads = [mold(1, [D(1), D(2)], session=a), mold(1, [D(11)], session=b), mold(2, [D(12)], session=b),
                mold(1000, [D(1000)], session=a), mold(1001, [D(1001), D(1002)], session=a),
                mold(4, [D(14)], session=b), mold(3, [D(13)], session=b),
                mold(5, [D(5)], session=a), mold(6, [D(6)], session=a),
                mold(2000, [D(2000)], session=b), mold(2001, [D(2001)], session=b)]
    pipe, s, got = run_payloads(payloads, max_sequence_jump=100, recovery=recovery)
    assert [(meta[0], meta[1]) for _, meta in got] == [
        ("TESTSESS01", 1), ("TESTSESS01", 2), ("TESTSESS02", 1), ("TESTSESS02", 2),
        ("TESTSESS01", 1000), ("TESTSESS01", 1001), ("TESTSESS01", 1002),
        ("TESTSESS02", 3), ("TESTSESS02", 4), ("TESTSESS02", 2000), ("TESTSESS02", 2001)]
    declared, accounted = _accounted(pipe, s, payloads)
    assert accounted == declared and s.duplicates == 2
    assert s.decoder_stats["session_changes"] == 5 and s.gap_messages == 997 + 1995


_SESSIONS3 = (b"SESSIONAAA", b"SESSIONBBB", b"SESSIONCCC")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_SESSIONS3), st.one_of(st.integers(0, 12), st.integers(0, 3000)),
                          st.integers(0, 3)), max_size=40),
       st.sampled_from([3, 100]), st.sampled_from([0, 1]))
def test_sessions_coming_and_going_account_for_every_message(specs, max_jump, initial):
    """Random sessions and positions, a small jump limit: each sequence of a
    session is delivered at most once and in order, and every declared
    message is delivered or counted in exactly one counter."""
    payloads = [mold(seq, [D(seq + i) for i in range(n)], session=sess) for sess, seq, n in specs]
    pipe, s, got = run_payloads(payloads, max_sequence_jump=max_jump, initial_sequence=initial)
    declared, accounted = _accounted(pipe, s, payloads)
    assert accounted == declared
    for sess in _SESSIONS3:
        mine = [meta[1] for _, meta in got if meta[0] == sess.decode()]
        assert len(mine) == len(set(mine))


_HOLD_CDEF = """
int h_accept_all(const uint8_t *data, const uint32_t *lens, uint32_t n, uint64_t max_jump, uint64_t *out);
"""
_HOLD_SOURCE = r"""
#include "moldudp64.h"
/* accept() only (never resolve()), then the end of input: the counters */
int h_accept_all(const uint8_t *data, const uint32_t *lens, uint32_t n, uint64_t max_jump, uint64_t *out) {
    rxf_mold_session s;
    rxf_mold_verdict v;
    int holds = 0;
    memset(&s, 0, sizeof s);
    s.initial_seq = 1;
    s.max_jump = max_jump;
    for (uint32_t i = 0; i < n; data += lens[i], i++)
        holds += rxf_mold_accept(&s, data, lens[i], &v) == RXF_MOLD_HOLD;
    rxf_mold_drop_candidate(&s);
    out[0] = s.implausible_packets;
    out[1] = s.implausible_messages;
    return holds;
}
"""


@pytest.fixture(scope="module")
def hold_lib():
    return build_harness("_rxf_mold_hold_harness", _HOLD_CDEF, _HOLD_SOURCE, [str(ROOT / "protocols/moldudp64")])


def test_a_second_hold_drops_the_first_candidate_counted(hold_lib):
    """A caller that passes a datagram to accept() while one is held (the
    decoder does, for blocks its sequencer hands back) loses no message from
    the counts: the earlier candidate is dropped and counted as implausible."""
    payloads = [mold(1, [D(1)]), mold(100, [D(100), D(101)]), mold(300, [D(300)]),
                mold(1, [D(7)], session=b"TESTSESS02")]
    out = hold_lib.ffi.new("uint64_t[2]")
    holds = hold_lib.lib.h_accept_all(b"".join(payloads), [len(p) for p in payloads], len(payloads), 10, out)
    assert holds == 3
    assert (out[0], out[1]) == (3, 4)
