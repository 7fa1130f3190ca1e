/*
 * A bounded, lock-free, single-producer / single-consumer ring of event
 * records (rxf_event, rxfeed/events.h): the loop (producer) hands events to
 * one sink thread (consumer) and never waits.
 *
 * The producer's rxf_event_ring_push never blocks: an event that finds the
 * ring full is dropped and counted, and the events dropped in a row are
 * reported to the consumer as one LOSS event (reason RXF_LOSS_RING, first =
 * the number of the first event dropped, count) written ahead of the next
 * event that fits (or by rxf_event_ring_flush_loss). Events are numbered in
 * the order they were offered, from 0, loss events not included.
 *
 * Counters are written by the producer only and read by anyone (a metrics
 * thread) with rxf_event_ring_stats. Capacity is a power of two; head and
 * tail only grow (position % capacity is the slot) and live on their own
 * cache lines. Header-only C11 (stdatomic).
 */
#ifndef RXFEED_EVENT_RING_H
#define RXFEED_EVENT_RING_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rxfeed/events.h"
#include "rxfeed/hugemem.h"

#define RXF_EVENT_RING_MIN 2u
#define RXF_EVENT_RING_MAX (1u << 30)

typedef struct rxf_event_ring_stats {
    uint64_t offered;      /* events given to rxf_event_ring_push */
    uint64_t queued;       /* of them, written into the ring (offered - dropped) */
    uint64_t dropped;      /* of them, dropped: the ring was full */
    uint64_t loss_events;  /* LOSS events written for the drops */
    uint64_t peak;         /* most records waiting at once, as the producer saw
                              them (an upper bound) */
    uint64_t waiting;      /* records waiting now */
    uint64_t capacity;
} rxf_event_ring_stats;

typedef struct rxf_event_ring {
    /* the producer's line */
    _Alignas(64) _Atomic uint64_t head;  /* next position to write */
    uint64_t tail_seen;                  /* producer's last look at tail */
    uint64_t loss_first, loss_count;     /* drops not reported yet */
    _Atomic uint64_t offered, dropped, loss_events, peak;
    /* the consumer's line */
    _Alignas(64) _Atomic uint64_t tail;  /* next position to read */
    uint64_t head_seen;                  /* consumer's last look at head */
    /* read-only after creation */
    _Alignas(64) uint64_t mask;
    rxf_event *slots;
} rxf_event_ring;

/* The memory this process may use, bytes: the machine's, or the cgroup v2
   limit (memory.max of a container) when lower; 0 when unknown. */
static inline uint64_t rxf_er_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");   /* "max" when unlimited */
    if (f) {
        unsigned long long limit;
        if (fscanf(f, "%llu", &limit) == 1 && limit > 0 && (memory == 0 || limit < memory)) memory = limit;
        fclose(f);
    }
    return memory;
}

/* A ring of `capacity` records (a power of two, RXF_EVENT_RING_MIN ..
   RXF_EVENT_RING_MAX), its memory touched (committed) here, not by the
   loop. NULL on a bad capacity, one over half the machine's memory (*why
   says so) or no memory. */
static inline rxf_event_ring *rxf_event_ring_new(uint64_t capacity, const char **why)
{
    if (capacity < RXF_EVENT_RING_MIN || capacity > RXF_EVENT_RING_MAX || (capacity & (capacity - 1))) {
        if (why) *why = "event ring: capacity must be a power of two, 2 .. 2^30";
        return NULL;
    }
    size_t bytes = (size_t)capacity * sizeof(rxf_event);
    uint64_t memory = rxf_er_memory_bytes();
    if (memory && bytes > memory / 2) {
        /* committed below: refuse here rather than be killed for memory */
        if (why) *why = "event ring: capacity * 64 bytes is more than half of this machine's memory";
        return NULL;
    }
    rxf_event_ring *r = aligned_alloc(64, sizeof *r);
    /* from 2 MiB on, as transparent huge pages where the kernel allows them
       (fewer TLB misses on the loop's writes); below, 64-byte slots from malloc's 16-byte
       alignment would straddle cache lines: aligned to 64 */
    rxf_event *slots = bytes >= RXF_HUGE_PAGE ? rxf_huge_alloc(bytes) : aligned_alloc(64, bytes);
    if (!r || !slots) {
        free(r);
        free(slots);
        if (why) *why = "event ring: out of memory";
        return NULL;
    }
    /* Touch every page now: the loop must not take a page fault (and the
       kernel's zeroing of a fresh page) on its first lap of the ring. A
       1M-message day emits 93 MB of events: 22,700 faults, about 7% of the
       loop's time (perf) when left to the first write. */
    memset(slots, 0, bytes);
    memset(r, 0, sizeof *r);
    r->mask = capacity - 1;
    r->slots = slots;
    return r;
}

static inline void rxf_event_ring_free(rxf_event_ring *r)
{
    if (r) {
        free(r->slots);
        free(r);
    }
}

/* ---- producer side (one thread) ---- */

static inline uint64_t rxf_er_load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

static inline void rxf_er_add(_Atomic uint64_t *c, uint64_t by)
{   /* single writer: a relaxed load + store is enough and never a locked op */
    atomic_store_explicit(c, rxf_er_load(c) + by, memory_order_relaxed);
}

/* Free slots as the producer sees them (re-reads tail only when needed). */
static inline uint64_t rxf_er_room(rxf_event_ring *r, uint64_t head, uint64_t want)
{
    uint64_t room = r->mask + 1 - (head - r->tail_seen);
    if (room < want) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        room = r->mask + 1 - (head - r->tail_seen);
    }
    return room;
}

static inline void rxf_er_write(rxf_event_ring *r, uint64_t *head, const rxf_event *e)
{
    r->slots[*head & r->mask] = *e;
    (*head)++;
}

static inline void rxf_er_publish(rxf_event_ring *r, uint64_t head)
{
    atomic_store_explicit(&r->head, head, memory_order_release);
    uint64_t waiting = head - r->tail_seen;
    if (waiting > rxf_er_load(&r->peak)) atomic_store_explicit(&r->peak, waiting, memory_order_relaxed);
}

static inline rxf_event rxf_er_loss_event(const rxf_event_ring *r, const rxf_event *next)
{
    rxf_event loss = rxf_event_make(RXF_EV_LOSS, next ? next->venue : 0, 0, next ? next->seq : 0,
                                    next ? next->ts : 0);
    loss.body.loss.first = r->loss_first;
    loss.body.loss.count = r->loss_count;
    loss.body.loss.reason = RXF_LOSS_RING;
    return loss;
}

/* Write the LOSS event for drops not reported yet, if there is room for it
   (plus `reserve` more slots). 1 when nothing is left to report. */
static inline int rxf_er_report_loss(rxf_event_ring *r, uint64_t *head, const rxf_event *next, uint64_t reserve)
{
    if (r->loss_count == 0) return 1;
    if (rxf_er_room(r, *head, 1 + reserve) < 1 + reserve) return 0;
    rxf_event loss = rxf_er_loss_event(r, next);
    rxf_er_write(r, head, &loss);
    r->loss_count = 0;
    rxf_er_add(&r->loss_events, 1);
    return 1;
}

/* Offer one event. 1: queued; 0: the ring was full, the event is dropped,
   counted, and reported later as a LOSS event. Never waits. */
static inline int rxf_event_ring_push(rxf_event_ring *r, const rxf_event *e)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t number = rxf_er_load(&r->offered);
    rxf_er_add(&r->offered, 1);
    if (!rxf_er_report_loss(r, &head, e, 1) || rxf_er_room(r, head, 1) < 1) {
        if (r->loss_count++ == 0) r->loss_first = number;
        rxf_er_add(&r->dropped, 1);
        return 0;
    }
    rxf_er_write(r, &head, e);
    rxf_er_publish(r, head);
    return 1;
}

/* Offer n events (one feed message's) at once: all queued (n), or, when
   they do not all fit, all dropped, counted and reported (0). Never waits. */
static inline uint32_t rxf_event_ring_push_n(rxf_event_ring *r, const rxf_event *e, uint32_t n)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t number = rxf_er_load(&r->offered);
    rxf_er_add(&r->offered, n);
    if (!rxf_er_report_loss(r, &head, e, n) || rxf_er_room(r, head, n) < n) {
        if (r->loss_count == 0) r->loss_first = number;
        r->loss_count += n;
        rxf_er_add(&r->dropped, n);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) rxf_er_write(r, &head, &e[i]);
    rxf_er_publish(r, head);
    return n;
}

/* Offer one event only if it fits, without counting a drop (0: full, the
   caller keeps it). For producers that may wait, such as tests and tools. */
static inline int rxf_event_ring_try_push(rxf_event_ring *r, const rxf_event *e)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (!rxf_er_report_loss(r, &head, e, 1) || rxf_er_room(r, head, 1) < 1) return 0;
    rxf_er_add(&r->offered, 1);
    rxf_er_write(r, &head, e);
    rxf_er_publish(r, head);
    return 1;
}

/* Offer one event from a producer that may be told to wait (a replay
   backfilling a stream): while *wait is set, wait for room (yielding the
   CPU); once it is clear (any thread may clear it), push and drop when full. */
static inline void rxf_event_ring_offer(rxf_event_ring *r, const rxf_event *e, _Atomic int *wait)
{
    while (atomic_load_explicit(wait, memory_order_relaxed)) {
        if (rxf_event_ring_try_push(r, e)) return;
        sched_yield();
    }
    rxf_event_ring_push(r, e);
}

/* Write the LOSS event of pending drops now (the producer calls it when idle
   and before it stops). 1 when nothing is left to report, 0: still full. */
static inline int rxf_event_ring_flush_loss(rxf_event_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (r->loss_count == 0) return 1;
    if (!rxf_er_report_loss(r, &head, NULL, 0)) return 0;
    rxf_er_publish(r, head);
    return 1;
}

/* ---- consumer side (one thread) ---- */

/* Copy up to `max` waiting records into `out`, in order; how many. */
static inline uint32_t rxf_event_ring_pop(rxf_event_ring *r, rxf_event *out, uint32_t max)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->head_seen - tail < max) r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t n = r->head_seen - tail;
    if (n > max) n = max;
    for (uint64_t i = 0; i < n; i++) out[i] = r->slots[(tail + i) & r->mask];
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return (uint32_t)n;
}

/* ---- anyone ---- */

static inline void rxf_event_ring_stats_get(const rxf_event_ring *r, rxf_event_ring_stats *out)
{
    uint64_t tail = rxf_er_load(&r->tail), head = rxf_er_load(&r->head);
    out->offered = rxf_er_load(&r->offered);
    out->dropped = rxf_er_load(&r->dropped);
    out->queued = out->offered - out->dropped;
    out->loss_events = rxf_er_load(&r->loss_events);
    out->peak = rxf_er_load(&r->peak);
    out->waiting = head >= tail ? head - tail : 0;
    out->capacity = r->mask + 1;
}

#endif
