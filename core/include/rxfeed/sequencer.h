/*
 * Sequencer: every sequence number delivered exactly once, strictly in order,
 * from blocks that arrive out of order, twice, on several lines, or never.
 *
 * Protocol-neutral: a block is "messages [first, first + count) and their
 * bytes" as a transport (a session layer) frames them; the sequencer never
 * reads the bytes. It hands a block back to the transport with `skip`, the
 * number of leading messages already delivered, and the transport walks the
 * rest with its own framing.
 *
 *   offer(block)   first <= next < end: delivered (skip = next - first), then
 *                  every held block that now continues the sequence.
 *                  end <= next: nothing new; a copy from another line than the
 *                  one that delivered those messages first is *redundant*
 *                  (A/B arbitration), from the same line a *duplicate*.
 *                  first > next: a gap opens; the block is copied into the
 *                  reorder buffer (bounded in bytes and blocks) and waits.
 *   a block with no messages (heartbeat, end of session) marks where the
 *                  sequence has reached: ahead of `next` it opens the hole
 *                  before it and is passed on in its place.
 *   tick(now)      a gap open for max_wait_ns is declared lost: one loss event
 *                  with the exact range, then delivery goes on.
 *   flush(now)     end of input: every open gap is declared lost, everything
 *                  held is delivered.
 * A full reorder buffer declares the oldest gap lost at once (reason FULL).
 * Every hole that opens ends filled or lost, exactly once:
 * gaps_opened == gaps_filled + lost_ranges + gap_open.
 *
 * Per line (up to RXF_SEQ_MAX_LINES): packets, first arrivals, copies, gaps
 * on that line alone, last arrival time.
 *
 * Time is what the caller passes (ns, any monotonic clock). Memory: one
 * allocation at init (max_blocks slots of slot_size bytes), none per block.
 */
#ifndef RXFEED_SEQUENCER_H
#define RXFEED_SEQUENCER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RXF_SEQ_MAX_LINES 16u
#define RXF_SEQ_RECENT 1024u

/* why a range was declared lost */
#define RXF_SEQ_LOST_TIMEOUT 1 /* not filled within max_wait_ns     */
#define RXF_SEQ_LOST_FULL 2    /* the reorder buffer had no room    */
#define RXF_SEQ_LOST_END 3     /* the input ended with the gap open */

typedef struct rxf_seq_block {
    uint64_t first;      /* sequence number of the first message   */
    uint32_t count;      /* messages in the block                  */
    uint32_t len;        /* bytes                                  */
    const uint8_t *data; /* the transport's bytes (copied if held) */
    uint64_t rx_ns;      /* arrival time                           */
    uint32_t line;       /* which line it came on (< MAX_LINES)    */
} rxf_seq_block;

typedef struct rxf_seq_callbacks {
    void *user;
    /* deliver messages [skip, count) of b; b->data is valid for the call */
    void (*deliver)(void *user, const rxf_seq_block *b, uint32_t skip);
    /* [first, first + count) will never be delivered */
    void (*lost)(void *user, uint64_t first, uint64_t count, int why, uint64_t now_ns);
    /* a gap opened (or grew): [first, first + count) is missing (NULL: none) */
    void (*gap)(void *user, uint64_t first, uint64_t count, uint64_t now_ns);
} rxf_seq_callbacks;

typedef struct rxf_seq_line_stats {
    uint64_t packets, first_arrivals, copies, gaps, gap_messages;
    uint64_t last_rx_ns, next_seq; /* next_seq: after the last block on this line */
} rxf_seq_line_stats;

typedef struct rxf_seq_held {
    uint64_t first, rx_ns;
    uint64_t since_ns;   /* when it was held: the hole before it is known since then */
    uint32_t count, len, slot, line;
} rxf_seq_held;

typedef struct rxf_sequencer {
    rxf_seq_callbacks cb;
    uint64_t next;          /* next sequence number to deliver (0: not started) */
    uint64_t max_wait_ns;   /* a gap waits this long before it is declared lost */
    uint32_t slot_size, max_blocks;
    uint64_t max_bytes;
    uint8_t *arena;         /* max_blocks * slot_size */
    uint32_t *free_slots;   /* stack of free slot indices */
    uint32_t n_free;
    rxf_seq_held *held;     /* sorted by first, then by count descending */
    uint32_t n_held;
    uint64_t held_bytes;
    uint64_t gap_since_ns;  /* when the current first gap opened */
    uint32_t gap_open;      /* the first hole is waiting (opened, not yet filled or lost) */
    /* the last RXF_SEQ_RECENT delivered blocks (first sequence, line), in
       sequence order: tells a copy from another line (redundant) from one
       the same line sent twice (duplicate) */
    uint64_t recent_first[RXF_SEQ_RECENT];
    uint32_t recent_line[RXF_SEQ_RECENT];
    uint32_t recent_head, n_recent;
    /* counters */
    uint64_t blocks, delivered_blocks, delivered_messages, duplicates, redundant;
    uint64_t duplicate_messages, redundant_messages; /* in the blocks counted above (nothing-new copies) */
    uint64_t overlap_messages; /* messages skipped at the head of blocks delivered in part */
    uint64_t held_total, held_peak_blocks, held_peak_bytes, too_large;
    uint64_t gaps_opened, gaps_filled, lost_ranges, lost_messages, lost_by_why[4];
    rxf_seq_line_stats lines[RXF_SEQ_MAX_LINES];
} rxf_sequencer;

/* 0, or -1 when out of memory / bad sizes. next_seq 0: start at the first block seen. */
static inline int rxf_seq_init(rxf_sequencer *s, const rxf_seq_callbacks *cb, uint64_t next_seq,
                               uint32_t max_blocks, uint32_t slot_size, uint64_t max_bytes,
                               uint64_t max_wait_ns) {
    memset(s, 0, sizeof *s);
    s->cb = *cb;
    s->next = next_seq;
    s->max_wait_ns = max_wait_ns;
    s->max_blocks = max_blocks;
    s->slot_size = slot_size;
    s->max_bytes = max_bytes;
    if (max_blocks == 0)
        return 0; /* no reorder buffer: every gap is lost at once */
    if (slot_size == 0 || (uint64_t)max_blocks * slot_size > ((uint64_t)1 << 40))
        return -1;
    s->arena = (uint8_t *)malloc((size_t)max_blocks * slot_size);
    s->free_slots = (uint32_t *)malloc(sizeof(uint32_t) * max_blocks);
    s->held = (rxf_seq_held *)malloc(sizeof(rxf_seq_held) * max_blocks);
    if (!s->arena || !s->free_slots || !s->held) {
        free(s->arena); free(s->free_slots); free(s->held);
        s->arena = NULL; s->free_slots = NULL; s->held = NULL;
        return -1;
    }
    for (uint32_t i = 0; i < max_blocks; i++)
        s->free_slots[i] = max_blocks - 1 - i;
    s->n_free = max_blocks;
    return 0;
}

static inline void rxf_seq_destroy(rxf_sequencer *s) {
    free(s->arena); free(s->free_slots); free(s->held);
    s->arena = NULL; s->free_slots = NULL; s->held = NULL;
    s->n_held = s->n_free = 0;
}

static inline rxf_seq_line_stats *rxf_seq_line(rxf_sequencer *s, uint32_t line) {
    return &s->lines[line < RXF_SEQ_MAX_LINES ? line : RXF_SEQ_MAX_LINES - 1];
}

/* The line that delivered `seq` first, if it is among the recent blocks;
   RXF_SEQ_MAX_LINES when too old to tell. */
static inline uint32_t rxf_seq_owner(const rxf_sequencer *s, uint64_t seq) {
    uint32_t lo = 0, hi = s->n_recent; /* binary search over the ring, oldest first */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        uint32_t at = (s->recent_head + RXF_SEQ_RECENT - s->n_recent + mid) % RXF_SEQ_RECENT;
        if (s->recent_first[at] <= seq) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0)
        return RXF_SEQ_MAX_LINES;
    return s->recent_line[(s->recent_head + RXF_SEQ_RECENT - s->n_recent + lo - 1) % RXF_SEQ_RECENT];
}

static inline void rxf_seq_emit(rxf_sequencer *s, const rxf_seq_block *b, uint32_t skip) {
    s->delivered_blocks++;
    s->delivered_messages += b->count - skip;
    s->overlap_messages += skip; /* repeats at the head of a partly new block */
    s->recent_first[s->recent_head] = b->first + skip;
    s->recent_line[s->recent_head] = b->line;
    s->recent_head = (s->recent_head + 1) % RXF_SEQ_RECENT;
    if (s->n_recent < RXF_SEQ_RECENT) s->n_recent++;
    s->cb.deliver(s->cb.user, b, skip);
    s->next = b->first + b->count;
}

/* A hole became the first one. It has been waiting since the block after it
   was held (a later hole behind a lost one is not given a fresh window). */
static inline void rxf_seq_open_gap(rxf_sequencer *s, uint64_t now_ns) {
    s->gaps_opened++;
    s->gap_open = 1;
    s->gap_since_ns = s->held[0].since_ns < now_ns ? s->held[0].since_ns : now_ns;
    if (s->cb.gap)
        s->cb.gap(s->cb.user, s->next, s->held[0].first - s->next, now_ns);
}

static inline void rxf_seq_declare_lost(rxf_sequencer *s, uint64_t upto, int why, uint64_t now_ns) {
    if (upto <= s->next)
        return;
    if (s->gap_open)
        s->gap_open = 0; /* the waiting hole ends lost */
    else
        s->gaps_opened++; /* a hole that could not wait: opened and lost at once */
    s->lost_ranges++;
    s->lost_messages += upto - s->next;
    s->lost_by_why[why & 3]++;
    if (s->cb.lost)
        s->cb.lost(s->cb.user, s->next, upto - s->next, why, now_ns);
    s->next = upto;
}

static inline void rxf_seq_pop_held(rxf_sequencer *s) {
    rxf_seq_held h = s->held[0];
    memmove(&s->held[0], &s->held[1], sizeof(rxf_seq_held) * (s->n_held - 1));
    s->n_held--;
    s->held_bytes -= h.len;
    s->free_slots[s->n_free++] = h.slot;
}

/* Deliver held blocks that continue the sequence; a hole after them opens. */
static inline void rxf_seq_drain(rxf_sequencer *s, uint64_t now_ns) {
    while (s->n_held && s->held[0].first <= s->next) {
        rxf_seq_held h = s->held[0];
        if (h.count == 0) { /* a marker (heartbeat, end of session): passed on in its place */
            rxf_seq_block b = {h.first, 0, h.len, s->arena + (size_t)h.slot * s->slot_size, h.rx_ns, h.line};
            s->cb.deliver(s->cb.user, &b, 0);
        } else if (h.first + h.count > s->next) {
            rxf_seq_block b = {h.first, h.count, h.len, s->arena + (size_t)h.slot * s->slot_size, h.rx_ns, h.line};
            rxf_seq_emit(s, &b, (uint32_t)(s->next - h.first));
        } else {
            s->redundant++; /* everything in it came meanwhile */
        }
        rxf_seq_pop_held(s);
    }
    if (s->n_held)
        rxf_seq_open_gap(s, now_ns);
}

/* Declare the first hole lost and deliver what follows it, until a hole. */
static inline void rxf_seq_give_up_first_gap(rxf_sequencer *s, int why, uint64_t now_ns) {
    if (!s->n_held)
        return;
    rxf_seq_declare_lost(s, s->held[0].first, why, now_ns);
    rxf_seq_drain(s, now_ns);
}

static inline int rxf_seq_hold(rxf_sequencer *s, const rxf_seq_block *b, uint64_t now_ns) {
    uint32_t i, pos;
    if (b->len > s->slot_size) { /* cannot be held: give up the holes before it */
        s->too_large++;
        while (s->n_held && s->held[0].first < b->first)
            rxf_seq_give_up_first_gap(s, RXF_SEQ_LOST_FULL, now_ns);
        return -1;
    }
    for (i = 0; i < s->n_held; i++) { /* already held (a copy)? a marker is a copy of a marker only */
        const rxf_seq_held *h = &s->held[i];
        if (b->count == 0 ? h->count == 0 && h->first == b->first
                          : h->first <= b->first && b->first + b->count <= h->first + h->count)
            return 1;
    }
    while (s->n_free == 0 || s->held_bytes + b->len > s->max_bytes) { /* no room: give up holes */
        if (!s->n_held)
            return -1; /* a buffer too small for even one block */
        if (b->first < s->held[0].first) { /* this block is the head: give up the hole before it */
            rxf_seq_declare_lost(s, b->first, RXF_SEQ_LOST_FULL, now_ns);
            return 2;
        }
        rxf_seq_give_up_first_gap(s, RXF_SEQ_LOST_FULL, now_ns);
        if (b->first <= s->next)
            return 2; /* giving up made it deliverable */
    }
    for (pos = s->n_held; pos > 0 && s->held[pos - 1].first > b->first; pos--)
        ;
    memmove(&s->held[pos + 1], &s->held[pos], sizeof(rxf_seq_held) * (s->n_held - pos));
    rxf_seq_held h = {b->first, b->rx_ns, now_ns, b->count, b->len, s->free_slots[--s->n_free], b->line};
    memcpy(s->arena + (size_t)h.slot * s->slot_size, b->data, b->len);
    s->held[pos] = h;
    s->n_held++;
    s->held_bytes += b->len;
    s->held_total++;
    if (s->n_held > s->held_peak_blocks) s->held_peak_blocks = s->n_held;
    if (s->held_bytes > s->held_peak_bytes) s->held_peak_bytes = s->held_bytes;
    return 0;
}

/* A block without messages (a heartbeat, an end of session) says that every
   sequence before `first` exists. Behind or at the position it is passed on
   at once; ahead of it, the hole before it is known from now on: the block
   waits in the buffer as a marker and is passed on in its place. */
static inline void rxf_seq_marker(rxf_sequencer *s, const rxf_seq_block *b, uint64_t now_ns) {
    if (s->next == 0 || b->first <= s->next) {
        s->cb.deliver(s->cb.user, b, 0);
        return;
    }
    int r = rxf_seq_hold(s, b, now_ns);
    if (r == 1)
        return; /* the hole is known already */
    if (r == 0) {
        if (!s->gap_open)
            rxf_seq_open_gap(s, now_ns);
        return;
    }
    if (b->first > s->next) /* no room to wait: the hole is lost */
        rxf_seq_declare_lost(s, b->first, RXF_SEQ_LOST_FULL, now_ns);
    s->cb.deliver(s->cb.user, b, 0);
}

/* One block from a transport. */
static inline void rxf_seq_offer(rxf_sequencer *s, const rxf_seq_block *b, uint64_t now_ns) {
    rxf_seq_line_stats *ln = rxf_seq_line(s, b->line);
    uint64_t end = b->first + b->count;
    s->blocks++;
    ln->packets++;
    ln->last_rx_ns = b->rx_ns ? b->rx_ns : now_ns;
    if (ln->next_seq && b->first > ln->next_seq) {
        ln->gaps++;
        ln->gap_messages += b->first - ln->next_seq;
    }
    if (end > ln->next_seq)
        ln->next_seq = end;
    if (b->count == 0) {
        rxf_seq_marker(s, b, now_ns);
        return;
    }
    if (s->next == 0)
        s->next = b->first; /* the first block starts the sequence */
    if (end <= s->next) { /* nothing new */
        ln->copies++;
        if (rxf_seq_owner(s, end - 1) == b->line) { s->duplicates++; s->duplicate_messages += b->count; }
        else { s->redundant++; s->redundant_messages += b->count; }
        return;
    }
    if (b->first > s->next) { /* a hole before this block */
        int r = rxf_seq_hold(s, b, now_ns);
        if (r == 1) { /* a copy of a held block */
            ln->copies++;
            s->redundant++;
            return;
        }
        ln->first_arrivals++;
        if (r == 0) {
            if (!s->gap_open)
                rxf_seq_open_gap(s, now_ns);
            return;
        }
        if (b->first > s->next) /* it cannot wait (no room, too large): the hole is lost */
            rxf_seq_declare_lost(s, b->first, RXF_SEQ_LOST_FULL, now_ns);
        if (end <= s->next)
            return; /* giving up holes delivered all of it meanwhile */
    } else {
        ln->first_arrivals++;
    }
    rxf_seq_emit(s, b, (uint32_t)(s->next - b->first)); /* continues the sequence */
    if (s->n_held && s->held[0].first <= s->next) {
        if (s->gap_open) {
            s->gaps_filled++;
            s->gap_open = 0;
        }
        rxf_seq_drain(s, now_ns);
    } else if (s->n_held && !s->gap_open) {
        rxf_seq_open_gap(s, now_ns); /* the hole before the held blocks waits from now */
    }
}

/* Time passes: a gap open too long is declared lost. */
static inline void rxf_seq_tick(rxf_sequencer *s, uint64_t now_ns) {
    while (s->n_held && now_ns >= s->gap_since_ns && now_ns - s->gap_since_ns >= s->max_wait_ns)
        rxf_seq_give_up_first_gap(s, RXF_SEQ_LOST_TIMEOUT, now_ns);
}

/* End of input: every hole lost, everything held delivered. */
static inline void rxf_seq_flush(rxf_sequencer *s, uint64_t now_ns) {
    while (s->n_held)
        rxf_seq_give_up_first_gap(s, RXF_SEQ_LOST_END, now_ns);
}

#endif /* RXFEED_SEQUENCER_H */
