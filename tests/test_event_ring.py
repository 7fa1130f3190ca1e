"""The SPSC event ring (rxfeed/event_ring.h): a producer thread and a consumer
see every record in order; a full ring drops, counts, and reports the drops
as LOSS events that account exactly for what is missing."""

from __future__ import annotations

import pytest

from rxfeed.events import EventKind, LossReason

from .c_harness import build_harness

CDEF = """
    typedef struct { uint64_t offered, queued, dropped, loss_events, peak, waiting, capacity; } stats;
    void *ring_new(uint64_t capacity);
    const char *ring_new_error(uint64_t capacity);
    void ring_free(void *r);
    int push(void *r, uint64_t seq);
    uint32_t push_n(void *r, uint64_t seq, uint32_t n);
    int flush_loss(void *r);
    uint64_t fill(void *r, uint64_t n);
    uint64_t memory_bytes(void);
    void get_stats(void *r, stats *out);
    uint32_t pop_kinds(void *r, uint8_t *kinds, uint64_t *a, uint64_t *b, uint64_t *c, uint32_t max);
    int run(void *r, uint64_t n, int lossy, unsigned slow_every, uint8_t *kinds, uint64_t *a, uint64_t *b,
            uint64_t *c, uint64_t max_out, uint64_t *got);
"""

SOURCE = r"""
#include <pthread.h>
#include <time.h>
#include "rxfeed/event_ring.h"
typedef struct { uint64_t offered, queued, dropped, loss_events, peak, waiting, capacity; } stats;

void *ring_new(uint64_t capacity) { return rxf_event_ring_new(capacity, NULL); }
const char *ring_new_error(uint64_t capacity) {
    const char *why = "";
    rxf_event_ring *r = rxf_event_ring_new(capacity, &why);
    rxf_event_ring_free(r);
    return why;
}
void ring_free(void *r) { rxf_event_ring_free(r); }
static rxf_event trade(uint64_t seq) {
    rxf_event e = rxf_event_make(RXF_EV_TRADE, 1, (uint32_t)(seq % 97), seq, seq * 10);
    e.body.trade.qty = seq;
    return e;
}
int push(void *r, uint64_t seq) { rxf_event e = trade(seq); return rxf_event_ring_push(r, &e); }
uint32_t push_n(void *r, uint64_t seq, uint32_t n) {
    rxf_event e[8];
    for (uint32_t i = 0; i < n && i < 8; i++) e[i] = trade(seq + i);
    return rxf_event_ring_push_n(r, e, n);
}
int flush_loss(void *r) { return rxf_event_ring_flush_loss(r); }
uint64_t fill(void *r, uint64_t n) {
    uint64_t queued = 0;
    for (uint64_t i = 0; i < n; i++) { rxf_event e = trade(i); queued += (uint64_t)rxf_event_ring_push(r, &e); }
    return queued;
}
uint64_t memory_bytes(void) { return rxf_er_memory_bytes(); }
void get_stats(void *r, stats *o) { rxf_event_ring_stats_get(r, (rxf_event_ring_stats *)o); }

/* kind, then (TRADE: seq, qty, ts) or (LOSS: first, count, reason) */
static void record(const rxf_event *e, uint8_t *k, uint64_t *a, uint64_t *b, uint64_t *c) {
    *k = e->kind;
    if (e->kind == RXF_EV_LOSS) { *a = e->body.loss.first; *b = e->body.loss.count; *c = e->body.loss.reason; }
    else { *a = e->seq; *b = e->body.trade.qty; *c = e->ts; }
}
uint32_t pop_kinds(void *r, uint8_t *kinds, uint64_t *a, uint64_t *b, uint64_t *c, uint32_t max) {
    rxf_event buf[64];
    uint32_t got = 0;
    while (got < max) {
        uint32_t n = rxf_event_ring_pop(r, buf, max - got < 64 ? max - got : 64);
        if (n == 0) break;
        for (uint32_t i = 0; i < n; i++, got++) record(&buf[i], &kinds[got], &a[got], &b[got], &c[got]);
    }
    return got;
}

typedef struct { rxf_event_ring *r; uint64_t n; int lossy; _Atomic int done; } producer;
static void *produce(void *arg) {
    producer *p = arg;
    for (uint64_t i = 0; i < p->n; i++) {
        rxf_event e = trade(i);
        if (p->lossy) rxf_event_ring_push(p->r, &e);
        else while (!rxf_event_ring_try_push(p->r, &e)) ;
    }
    while (!rxf_event_ring_flush_loss(p->r)) ;
    atomic_store(&p->done, 1);
    return NULL;
}
/* a producer thread offers n trades; this thread consumes until it is done and the ring empty */
int run(void *r, uint64_t n, int lossy, unsigned slow_every, uint8_t *kinds, uint64_t *a, uint64_t *b,
        uint64_t *c, uint64_t max_out, uint64_t *got) {
    producer p = {r, n, lossy, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, produce, &p)) return -1;
    rxf_event buf[16];
    uint64_t out = 0, pops = 0;
    const struct timespec nap = {0, 20000};
    for (;;) {
        int done = atomic_load(&p.done);
        uint32_t k = rxf_event_ring_pop(r, buf, 16);
        for (uint32_t i = 0; i < k && out < max_out; i++, out++) record(&buf[i], &kinds[out], &a[out], &b[out], &c[out]);
        if (k == 0 && done) break;
        if (slow_every && ++pops % slow_every == 0) nanosleep(&nap, NULL);
    }
    pthread_join(t, NULL);
    *got = out;
    return 0;
}
"""


@pytest.fixture(scope="module")
def h():
    return build_harness("_rxf_event_ring_harness", CDEF, SOURCE, )


def _run(h, ring, n: int, lossy: bool, slow_every: int = 0):
    ffi, lib = h.ffi, h.lib
    cap = 2 * n + 16
    kinds, a, b, c = ffi.new("uint8_t[]", cap), ffi.new("uint64_t[]", cap), ffi.new("uint64_t[]", cap), ffi.new("uint64_t[]", cap)
    got = ffi.new("uint64_t *")
    assert lib.run(ring, n, int(lossy), slow_every, kinds, a, b, c, cap, got) == 0
    return [(kinds[i], a[i], b[i], c[i]) for i in range(got[0])]


def _stats(h, ring) -> dict[str, int]:
    s = h.ffi.new("stats *")
    h.lib.get_stats(ring, s)
    return {f: getattr(s, f) for f in ("offered", "queued", "dropped", "loss_events", "peak", "waiting", "capacity")}


@pytest.fixture
def ring(h):
    rings = []

    def make(capacity: int):
        r = h.lib.ring_new(capacity)
        assert r != h.ffi.NULL
        rings.append(r)
        return r

    yield make
    for r in rings:
        h.lib.ring_free(r)


def test_bad_capacity_is_refused(h):
    for bad in (0, 1, 3, 1000, 2**31):
        assert b"power of two" in h.ffi.string(h.lib.ring_new_error(bad))
    assert h.ffi.string(h.lib.ring_new_error(1024)) == b""


def test_a_ring_larger_than_half_the_memory_is_refused_before_it_is_committed(h):
    # the ring's pages are touched at creation (no page fault in the loop), so
    # a ring the machine (or the container: cgroup memory.max) cannot hold
    # must be refused, not get the process killed
    import os
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGESIZE")
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        memory = min(memory, int(limit)) if limit != "max" else memory
    except OSError:
        pass
    assert h.lib.memory_bytes() == memory
    too_big = 1 << max(1, (memory // 2 // 64)).bit_length()  # events: over half the memory at 64 bytes each
    capacity = min(too_big, 2**30)  # beyond 128 GiB of memory even the largest ring fits: then nothing is refused
    refused = b"more than half of this machine's memory" in h.ffi.string(h.lib.ring_new_error(capacity))
    assert refused == (capacity * 64 > memory // 2)


def test_the_ring_is_committed_at_creation_not_in_the_loop(h):
    # every page of the slots is resident once the ring exists: the producer's
    # first lap takes no page fault. 64 MiB is above glibc's largest mmap
    # threshold, so the slots are fresh pages: creating the ring faults them
    # in (32 huge pages, or 16,384 small ones), filling it faults nothing.
    import resource

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    before = faults()
    r = h.lib.ring_new(1 << 20)
    at_creation = faults() - before
    try:
        before = faults()
        assert h.lib.fill(r, 1 << 20) == 1 << 20
        in_loop = faults() - before
    finally:
        h.lib.ring_free(r)
    assert at_creation >= 32, f"only {at_creation} page faults creating a 64 MiB ring: its memory was not fresh"
    assert in_loop < 8, f"{in_loop} page faults while filling a 64 MiB ring"


def test_producer_thread_and_consumer_see_every_record_in_order(h, ring):
    r = ring(64)
    n = 200_000
    seen = _run(h, r, n, lossy=False)
    assert len(seen) == n
    assert all(k == EventKind.TRADE and a == i and b == i and c == 10 * i for i, (k, a, b, c) in enumerate(seen))
    st = _stats(h, r)
    assert (st["offered"], st["queued"], st["dropped"], st["loss_events"], st["waiting"]) == (n, n, 0, 0, 0)
    assert 1 <= st["peak"] <= 64


def test_full_ring_drops_are_counted_and_reported_as_loss_events(h, ring):
    r = ring(8)
    for i in range(10):
        assert h.lib.push(r, i) == (1 if i < 8 else 0)
    st = _stats(h, r)
    assert (st["offered"], st["queued"], st["dropped"], st["loss_events"], st["waiting"]) == (10, 8, 2, 0, 8)
    ffi = h.ffi
    kinds, a, b, c = ffi.new("uint8_t[16]"), ffi.new("uint64_t[16]"), ffi.new("uint64_t[16]"), ffi.new("uint64_t[16]")
    assert h.lib.pop_kinds(r, kinds, a, b, c, 16) == 8
    assert h.lib.push(r, 10) == 1  # the loss event goes first, then this one
    assert h.lib.pop_kinds(r, kinds, a, b, c, 16) == 2
    assert (kinds[0], a[0], b[0], c[0]) == (EventKind.LOSS, 8, 2, LossReason.RING)
    assert (kinds[1], a[1]) == (EventKind.TRADE, 10)
    assert _stats(h, r)["loss_events"] == 1


def test_a_message_s_events_are_queued_all_or_none(h, ring):
    """push_n (one feed message's events): all fit or all are dropped, and
    the drop is one loss covering exactly them, before the next events."""
    r = ring(8)
    assert h.lib.push_n(r, 0, 3) == 3 and h.lib.push_n(r, 3, 3) == 3
    assert h.lib.push_n(r, 6, 3) == 0          # 2 slots left: none of the 3 go in
    st = _stats(h, r)
    assert (st["offered"], st["queued"], st["dropped"], st["waiting"]) == (9, 6, 3, 6)
    ffi = h.ffi
    kinds, a, b, c = ffi.new("uint8_t[16]"), ffi.new("uint64_t[16]"), ffi.new("uint64_t[16]"), ffi.new("uint64_t[16]")
    assert h.lib.pop_kinds(r, kinds, a, b, c, 16) == 6
    assert h.lib.push_n(r, 9, 2) == 2          # the loss first, then both
    assert h.lib.pop_kinds(r, kinds, a, b, c, 16) == 3
    assert (kinds[0], a[0], b[0], c[0]) == (EventKind.LOSS, 6, 3, LossReason.RING)
    assert [(kinds[i], a[i]) for i in (1, 2)] == [(EventKind.TRADE, 9), (EventKind.TRADE, 10)]


def test_loss_waits_for_room_and_flush_reports_it(h, ring):
    r = ring(2)
    assert [h.lib.push(r, i) for i in range(4)] == [1, 1, 0, 0]
    assert h.lib.flush_loss(r) == 0  # still full: nothing written, nothing lost
    ffi = h.ffi
    kinds, a, b, c = ffi.new("uint8_t[4]"), ffi.new("uint64_t[4]"), ffi.new("uint64_t[4]"), ffi.new("uint64_t[4]")
    assert h.lib.pop_kinds(r, kinds, a, b, c, 1) == 1
    # one slot free: not room for the loss and an event, so the event is dropped too (the loss stays first)
    assert h.lib.push(r, 4) == 0
    assert h.lib.flush_loss(r) == 1
    assert h.lib.pop_kinds(r, kinds, a, b, c, 4) == 2
    assert [(kinds[i], a[i], b[i]) for i in range(2)] == [(EventKind.TRADE, 1, 1), (EventKind.LOSS, 2, 3)]
    st = _stats(h, r)
    assert (st["offered"], st["dropped"], st["loss_events"]) == (5, 3, 1)


def test_slow_consumer_loss_events_account_for_every_missing_record(h, ring):
    r = ring(16)
    n = 100_000
    seen = _run(h, r, n, lossy=True, slow_every=4)
    trades = [a for k, a, _, _ in seen if k == EventKind.TRADE]
    losses = [(a, b) for k, a, b, c in seen if k == EventKind.LOSS and c == LossReason.RING]
    assert len(trades) + len(losses) == len(seen)
    assert trades == sorted(trades) and len(set(trades)) == len(trades)
    # in stream order, each loss event covers exactly the numbers missing before the next delivered record
    expected = 0
    for k, a, b, _ in seen:
        if k == EventKind.LOSS:
            assert a == expected and b > 0
            expected += b
        else:
            assert a == expected
            expected += 1
    assert expected == n
    st = _stats(h, r)
    assert st["dropped"] == sum(b for _, b in losses) > 0
    assert st["loss_events"] == len(losses) and st["queued"] == len(trades) and st["offered"] == n
