"""The protocol-neutral sequencer (core/include/rxfeed/sequencer.h), driven
through a small cffi harness: every sequence number delivered exactly once and
in order, whatever the lines do (drop, duplicate, reorder, one line dead);
holes that cannot be filled are declared lost once, with their exact range;
the reorder buffer never exceeds its limits."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from .c_harness import C_PUSH_U64, build_harness

CDEF = """
typedef struct seq_harness seq_harness;
seq_harness *h_new(uint32_t max_blocks, uint32_t slot_size, uint64_t max_bytes, uint64_t max_wait_ns,
                   uint64_t next_seq);
void h_free(seq_harness *h);
void h_offer(seq_harness *h, uint64_t first, uint32_t count, const uint8_t *data, uint32_t len,
             uint32_t line, uint64_t now_ns);
void h_tick(seq_harness *h, uint64_t now_ns);
void h_flush(seq_harness *h, uint64_t now_ns);
/* each delivered message: its sequence number, and whether the bytes said the same */
size_t h_delivered(seq_harness *h, uint64_t **seqs);
size_t h_bad_bytes(seq_harness *h);
/* each loss: first, count, why (3 uint64 per loss) */
size_t h_losses(seq_harness *h, uint64_t **triples);
size_t h_gaps(seq_harness *h, uint64_t **pairs);
/* each block without messages passed on (heartbeat, end of session): its position */
size_t h_markers(seq_harness *h, uint64_t **firsts);
void h_counters(seq_harness *h, uint64_t out[16]);
void h_line(seq_harness *h, uint32_t line, uint64_t out[7]);
"""

SOURCE = r"""
#include <stdlib.h>
#include "rxfeed/sequencer.h"

/* A block's bytes are its messages' sequence numbers, u64 little endian. */
typedef struct seq_harness {
    rxf_sequencer s;
    uint64_t *seqs; size_t n_seqs, cap_seqs, bad_bytes;
    uint64_t *losses; size_t n_losses, cap_losses;
    uint64_t *gaps; size_t n_gaps, cap_gaps;
    uint64_t *markers; size_t n_markers, cap_markers;
} seq_harness;

""" + C_PUSH_U64 + r"""
static void on_deliver(void *user, const rxf_seq_block *b, uint32_t skip) {
    seq_harness *h = user;
    if (b->count == 0)
        push(&h->markers, &h->n_markers, &h->cap_markers, b->first);
    for (uint32_t i = skip; i < b->count; i++) {
        uint64_t v;
        if ((uint64_t)(i + 1) * 8 > b->len) { h->bad_bytes++; continue; }
        memcpy(&v, b->data + (size_t)i * 8, 8);
        if (v != b->first + i) h->bad_bytes++;
        push(&h->seqs, &h->n_seqs, &h->cap_seqs, b->first + i);
    }
}

static void on_lost(void *user, uint64_t first, uint64_t count, int why, uint64_t now) {
    seq_harness *h = user;
    push(&h->losses, &h->n_losses, &h->cap_losses, first);
    push(&h->losses, &h->n_losses, &h->cap_losses, count);
    push(&h->losses, &h->n_losses, &h->cap_losses, (uint64_t)why);
}

static void on_gap(void *user, uint64_t first, uint64_t count, uint64_t now) {
    seq_harness *h = user;
    push(&h->gaps, &h->n_gaps, &h->cap_gaps, first);
    push(&h->gaps, &h->n_gaps, &h->cap_gaps, count);
}

seq_harness *h_new(uint32_t max_blocks, uint32_t slot_size, uint64_t max_bytes, uint64_t max_wait_ns,
                   uint64_t next_seq) {
    seq_harness *h = calloc(1, sizeof *h);
    rxf_seq_callbacks cb = {h, on_deliver, on_lost, on_gap};
    if (rxf_seq_init(&h->s, &cb, next_seq, max_blocks, slot_size, max_bytes, max_wait_ns) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

void h_free(seq_harness *h) { rxf_seq_destroy(&h->s); free(h->seqs); free(h->losses); free(h->gaps); free(h->markers); free(h); }

void h_offer(seq_harness *h, uint64_t first, uint32_t count, const uint8_t *data, uint32_t len,
             uint32_t line, uint64_t now_ns) {
    rxf_seq_block b = {first, count, len, data, now_ns, line};
    rxf_seq_offer(&h->s, &b, now_ns);
}

void h_tick(seq_harness *h, uint64_t now_ns) { rxf_seq_tick(&h->s, now_ns); }
void h_flush(seq_harness *h, uint64_t now_ns) { rxf_seq_flush(&h->s, now_ns); }
size_t h_delivered(seq_harness *h, uint64_t **seqs) { *seqs = h->seqs; return h->n_seqs; }
size_t h_bad_bytes(seq_harness *h) { return h->bad_bytes; }
size_t h_losses(seq_harness *h, uint64_t **t) { *t = h->losses; return h->n_losses / 3; }
size_t h_gaps(seq_harness *h, uint64_t **t) { *t = h->gaps; return h->n_gaps / 2; }
size_t h_markers(seq_harness *h, uint64_t **t) { *t = h->markers; return h->n_markers; }

void h_counters(seq_harness *h, uint64_t out[16]) {
    rxf_sequencer *s = &h->s;
    uint64_t v[16] = {s->next, s->delivered_messages, s->duplicates, s->redundant, s->gaps_opened,
                      s->gaps_filled, s->lost_ranges, s->lost_messages, s->gap_open, s->n_held,
                      s->held_peak_blocks, s->held_peak_bytes, s->held_bytes, s->too_large, s->blocks,
                      s->lost_by_why[RXF_SEQ_LOST_TIMEOUT]};
    memcpy(out, v, sizeof v);
}

void h_line(seq_harness *h, uint32_t line, uint64_t out[7]) {
    rxf_seq_line_stats *l = &h->s.lines[line];
    uint64_t v[7] = {l->packets, l->first_arrivals, l->copies, l->gaps, l->gap_messages, l->last_rx_ns,
                     l->next_seq};
    memcpy(out, v, sizeof v);
}
"""

COUNTERS = ("next", "delivered", "duplicates", "redundant", "gaps_opened", "gaps_filled", "lost_ranges",
            "lost_messages", "gap_open", "held", "held_peak_blocks", "held_peak_bytes", "held_bytes", "too_large",
            "blocks", "lost_timeout")


@pytest.fixture(scope="module")
def lib():
    return build_harness("_rxf_seq_harness", CDEF, SOURCE)


@dataclass
class Seq:
    """One sequencer under test, with what it delivered and declared lost."""

    mod: object
    max_blocks: int = 64
    slot_size: int = 2048
    max_bytes: int = 1 << 20
    max_wait_ns: int = 1_000_000
    next_seq: int = 0
    h: object = field(init=False)

    def __post_init__(self) -> None:
        self.h = self.mod.lib.h_new(self.max_blocks, self.slot_size, self.max_bytes, self.max_wait_ns, self.next_seq)
        assert self.h != self.mod.ffi.NULL

    def offer(self, first: int, count: int, line: int = 0, now: int = 0) -> None:
        data = b"".join((first + i).to_bytes(8, "little") for i in range(count))
        self.mod.lib.h_offer(self.h, first, count, data, len(data), line, now)

    def tick(self, now: int) -> None:
        self.mod.lib.h_tick(self.h, now)

    def flush(self, now: int = 0) -> None:
        self.mod.lib.h_flush(self.h, now)

    def delivered(self) -> list[int]:
        p = self.mod.ffi.new("uint64_t **")
        n = self.mod.lib.h_delivered(self.h, p)
        return list(self.mod.ffi.unpack(p[0], n)) if n else []

    def losses(self) -> list[tuple[int, int, int]]:
        p = self.mod.ffi.new("uint64_t **")
        n = self.mod.lib.h_losses(self.h, p)
        flat = list(self.mod.ffi.unpack(p[0], 3 * n)) if n else []
        return [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]

    def gaps(self) -> list[tuple[int, int]]:
        p = self.mod.ffi.new("uint64_t **")
        n = self.mod.lib.h_gaps(self.h, p)
        flat = list(self.mod.ffi.unpack(p[0], 2 * n)) if n else []
        return [tuple(flat[i:i + 2]) for i in range(0, len(flat), 2)]

    def markers(self) -> list[int]:
        p = self.mod.ffi.new("uint64_t **")
        n = self.mod.lib.h_markers(self.h, p)
        return list(self.mod.ffi.unpack(p[0], n)) if n else []

    def counters(self) -> dict[str, int]:
        out = self.mod.ffi.new("uint64_t[16]")
        self.mod.lib.h_counters(self.h, out)
        c = dict(zip(COUNTERS, out))
        c["bad_bytes"] = self.mod.lib.h_bad_bytes(self.h)
        return c

    def line(self, n: int) -> dict[str, int]:
        out = self.mod.ffi.new("uint64_t[7]")
        self.mod.lib.h_line(self.h, n, out)
        return dict(zip(("packets", "first_arrivals", "copies", "gaps", "gap_messages", "last_rx_ns", "next_seq"),
                        out))

    def close(self) -> None:
        self.mod.lib.h_free(self.h)

    def check_invariants(self) -> dict[str, int]:
        c = self.counters()
        seqs = self.delivered()
        assert seqs == sorted(set(seqs)), "delivered twice or out of order"
        assert c["bad_bytes"] == 0, "a held copy did not keep its bytes"
        assert c["gaps_opened"] == c["gaps_filled"] + c["lost_ranges"] + c["gap_open"], c
        assert c["held_peak_bytes"] <= self.max_bytes and c["held_peak_blocks"] <= self.max_blocks
        assert sum(n for _, n, _ in self.losses()) == c["lost_messages"]
        return c


def blocks(n_messages: int, seed: int, max_count: int = 8) -> list[tuple[int, int]]:
    """A stream cut into blocks of 1..max_count messages: (first, count)."""
    rng, out, seq = random.Random(seed), [], 1
    while seq <= n_messages:
        count = min(rng.randint(1, max_count), n_messages - seq + 1)
        out.append((seq, count))
        seq += count
    return out


def test_in_order_input_is_delivered_as_is(lib):
    s = Seq(lib)
    for first, count in blocks(1000, 1):
        s.offer(first, count)
    s.flush()
    c = s.check_invariants()
    assert s.delivered() == list(range(1, 1001)) and c["gaps_opened"] == 0 and c["held_peak_blocks"] == 0


def test_a_reordered_block_waits_and_the_gap_is_filled(lib):
    s = Seq(lib)
    s.offer(1, 2, now=0)
    s.offer(6, 2, now=10)  # 3..5 missing: held
    assert s.delivered() == [1, 2] and s.gaps() == [(3, 3)]
    s.offer(3, 3, now=20)
    assert s.delivered() == list(range(1, 8))
    c = s.check_invariants()
    assert c["gaps_filled"] == 1 and c["lost_messages"] == 0 and c["held"] == 0


def test_a_gap_not_filled_in_time_is_declared_lost_with_its_range(lib):
    s = Seq(lib, max_wait_ns=1000)
    s.offer(1, 5, now=0)
    s.offer(9, 3, now=100)  # 6..8 missing
    s.tick(1099)
    assert s.losses() == [] and s.delivered() == [1, 2, 3, 4, 5]
    s.tick(1100)
    assert s.losses() == [(6, 3, 1)] and s.delivered() == [1, 2, 3, 4, 5, 9, 10, 11]
    s.offer(6, 3, now=1200)  # too late: nothing delivered twice or out of order
    assert s.delivered()[-1] == 11
    c = s.check_invariants()
    assert c["lost_timeout"] == 1 and c["duplicates"] + c["redundant"] == 1


def test_end_of_input_declares_open_gaps_lost_and_delivers_what_was_held(lib):
    s = Seq(lib)
    s.offer(1, 1)
    s.offer(3, 1)
    s.offer(6, 2)
    s.flush()
    assert s.delivered() == [1, 3, 6, 7] and s.losses() == [(2, 1, 3), (4, 2, 3)]
    s.check_invariants()


def test_a_full_buffer_gives_up_the_oldest_gap(lib):
    s = Seq(lib, max_blocks=2)
    s.offer(1, 1)
    for first in (3, 5, 7):  # three held blocks behind three holes; room for two
        s.offer(first, 1)
    assert s.losses() == [(2, 1, 2)] and s.delivered() == [1, 3]
    c = s.check_invariants()
    assert c["held"] == 2 and c["held_peak_blocks"] == 2


def test_byte_limit_is_kept(lib):
    s = Seq(lib, max_bytes=100)  # a 10-message block is 80 bytes: one fits
    s.offer(1, 1)
    s.offer(20, 10)
    s.offer(40, 10)
    c = s.check_invariants()
    assert c["held_bytes"] <= 100 and s.losses() == [(2, 18, 2)] and s.delivered()[:2] == [1, 20]


def test_a_block_larger_than_a_slot_is_delivered_after_giving_up_the_holes_before_it(lib):
    s = Seq(lib, slot_size=64)  # 9 messages = 72 bytes
    s.offer(1, 1)
    s.offer(5, 2)
    s.offer(10, 9)
    assert s.delivered() == [1, 5, 6, *range(10, 19)] and s.losses() == [(2, 3, 2), (7, 3, 2)]
    assert s.check_invariants()["too_large"] == 1


def test_a_block_arriving_before_the_held_head_in_a_full_buffer_is_delivered(lib):
    s = Seq(lib, max_blocks=1)
    s.offer(1, 1)
    s.offer(10, 1)  # held
    s.offer(5, 1)   # full: the hole before 5 is given up, 5 delivered, 10 still waits for 6..9
    assert s.delivered() == [1, 5] and s.losses() == [(2, 3, 2)]
    s.offer(6, 4)
    assert s.delivered() == [1, 5, 6, 7, 8, 9, 10]
    s.check_invariants()


def test_copies_from_another_line_are_redundant_from_the_same_line_duplicates(lib):
    s = Seq(lib)
    for first, count in blocks(200, 2):
        s.offer(first, count, line=0)
        s.offer(first, count, line=1)
    s.offer(1, 3, line=0)  # line A repeats itself
    c = s.check_invariants()
    assert s.delivered() == list(range(1, 201))
    assert c["redundant"] == len(blocks(200, 2)) and c["duplicates"] == 1
    assert s.line(0)["first_arrivals"] == len(blocks(200, 2)) and s.line(1)["first_arrivals"] == 0


def test_a_line_dead_halfway_loses_nothing(lib):
    s = Seq(lib)
    bl = blocks(5000, 3)
    for i, (first, count) in enumerate(bl):
        if i < len(bl) // 2:
            s.offer(first, count, line=0, now=i)
        s.offer(first, count, line=1, now=i)
    s.flush()
    c = s.check_invariants()
    assert s.delivered() == list(range(1, 5001)) and c["lost_messages"] == 0
    assert s.line(0)["next_seq"] == bl[len(bl) // 2][0]  # where line A stopped


def test_line_only_gaps_are_counted_per_line(lib):
    s = Seq(lib)
    s.offer(1, 2, line=0)
    s.offer(1, 2, line=1)
    s.offer(3, 2, line=1)  # line A misses 3..4
    s.offer(5, 1, line=0)
    s.offer(5, 1, line=1)
    assert s.line(0)["gaps"] == 1 and s.line(0)["gap_messages"] == 2 and s.line(1)["gaps"] == 0
    assert s.delivered() == [1, 2, 3, 4, 5] and s.check_invariants()["gaps_opened"] == 0


def test_a_heartbeat_ahead_marks_the_hole_before_it(lib):
    """A block without messages (heartbeat) at 5 says 1..4 exist: the hole
    opens (and is asked for) before any of them arrives; it never moves the
    position by itself."""
    s = Seq(lib, next_seq=1)
    s.offer(5, 0)
    assert s.gaps() == [(1, 4)] and s.delivered() == []
    s.offer(1, 2)
    assert s.delivered() == [1, 2] and s.check_invariants()["gap_open"] == 1
    s.offer(3, 2)
    st = s.check_invariants()
    assert s.delivered() == [1, 2, 3, 4] and st["gaps_filled"] == 1 and st["gap_open"] == 0


def test_a_heartbeat_behind_or_before_the_start_moves_nothing(lib):
    s = Seq(lib)  # not started
    s.offer(5, 0)
    s.offer(1, 2)
    s.offer(2, 0)  # behind
    assert s.delivered() == [1, 2] and s.check_invariants()["gaps_opened"] == 0


def test_a_lost_hole_before_a_heartbeat_is_declared(lib):
    s = Seq(lib, next_seq=1, max_wait_ns=100)
    s.offer(1, 2, now=0)
    s.offer(9, 0, now=10)  # 3..8 exist
    s.tick(now=200)
    assert s.losses() == [(3, 6, 1)] and s.check_invariants()["gap_open"] == 0


@pytest.mark.parametrize("seed", range(30))
def test_two_faulty_lines_deliver_everything_in_order_exactly_once(lib, seed):
    """Each line independently drops, duplicates and reorders (bounded); a
    block is lost only when both lines lost it, and then it is declared."""
    rng = random.Random(seed)
    bl = blocks(3000, seed)
    drop, dup, reorder = rng.choice([0.01, 0.05]), 0.02, 0.05
    arrivals = []  # (time, line, first, count)
    lost_on = {0: set(), 1: set()}
    for line in (0, 1):
        for i, (first, count) in enumerate(bl):
            if rng.random() < drop:
                lost_on[line].add(first)
                continue
            t = i * 100 + line * 7
            if rng.random() < reorder:
                t += rng.randint(1, 8) * 100  # arrives up to 8 blocks late
            arrivals.append((t, line, first, count))
            if rng.random() < dup:
                arrivals.append((t + 50, line, first, count))
    arrivals.sort()
    s = Seq(lib, max_blocks=256, max_wait_ns=2_000)  # a hole may wait 20 blocks' time
    for t, line, first, count in arrivals:
        s.tick(t)
        s.offer(first, count, line=line, now=t)
    s.flush(10**9)
    c = s.check_invariants()
    never = {first for first in lost_on[0] & lost_on[1]}
    expected = [seq for first, count in bl if first not in never for seq in range(first, first + count)]
    got = s.delivered()
    # a copy arrives at most ~800 ns late and a hole waits 2,000 ns: what came
    # on either line is delivered, exactly what came on neither is declared
    # lost (but a tail lost on both lines is unknowable: neither)
    lost_seqs = [seq for first, n, _ in s.losses() for seq in range(first, first + n)]
    missing = [seq for first, count in bl if first in never for seq in range(first, first + count)]
    tail = max(got) if got else 0
    assert got == [seq for seq in expected if seq <= tail]
    assert lost_seqs == [seq for seq in missing if seq < tail]
    assert c["lost_timeout"] + c["lost_ranges"] >= (1 if lost_seqs else 0) and c["held"] == 0
    s.close()


def test_a_later_hole_behind_a_lost_one_has_waited_since_it_was_seen(lib):
    """Holes 3..4 and 7..8 both seen at t=10; the window is 100. At t=150 the
    first is lost, and so is the second: it has been open for 140, it does
    not get a fresh window after the first is settled."""
    s = Seq(lib, next_seq=1, max_wait_ns=100)
    s.offer(1, 2, now=0)
    s.offer(5, 2, now=10)
    s.offer(9, 1, now=10)
    s.tick(now=150)
    assert s.losses() == [(3, 2, 1), (7, 2, 1)] and s.delivered() == [1, 2, 5, 6, 9]
    assert s.check_invariants()["gap_open"] == 0


def test_an_end_of_session_right_after_a_held_block_waits_and_is_passed_on(lib):
    """The end of session (a block without messages at 7) arrives on both
    lines while 5..6 wait behind the hole 3..4: it is held (not taken for a
    copy of 5..6) and passed on once, after 6."""
    s = Seq(lib, next_seq=1)
    s.offer(1, 2)
    s.offer(5, 2)
    s.offer(7, 0, line=0)
    s.offer(7, 0, line=1)
    assert s.markers() == []
    s.offer(3, 2, line=1)
    assert s.delivered() == [1, 2, 3, 4, 5, 6] and s.markers() == [7]
    s.check_invariants()
