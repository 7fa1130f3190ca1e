/* Seeded fault injection around a backend table: see faults.h. */
#include "faults.h"
#include "rxfeed/clock.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- PRNG: splitmix64, one decision stream and one parameter stream per kind ---- */

uint64_t rxf_faults_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- arena: a byte ring; blocks are freed in any order, space comes back in order ---- */

typedef struct arena_hdr {
    uint32_t size; /* whole block, header included, multiple of 8 */
    uint32_t used; /* 0: free (or padding at the end of the ring) */
} arena_hdr;

typedef struct arena {
    uint8_t *buf;
    size_t cap, head, tail, used;
} arena;

static uint8_t *arena_put(arena *a, size_t at, size_t size)
{
    arena_hdr *h = (arena_hdr *)(a->buf + at);
    h->size = (uint32_t)size;
    h->used = 1;
    a->head = at + size == a->cap ? 0 : at + size;
    a->used += size;
    return a->buf + at + sizeof(arena_hdr);
}

/* n bytes, or NULL when the ring has no contiguous room. */
static uint8_t *arena_alloc(arena *a, size_t n)
{
    size_t size = (sizeof(arena_hdr) + n + 7u) & ~(size_t)7u;
    if (size > a->cap || size > UINT32_MAX)
        return NULL;
    if (a->used == 0)
        a->head = a->tail = 0;
    else if (a->head == a->tail)
        return NULL; /* full */
    if (a->head >= a->tail) {
        if (a->cap - a->head >= size)
            return arena_put(a, a->head, size);
        if (a->tail < size)
            return NULL;
        if (a->head < a->cap) { /* pad to the end of the ring, start again at 0 */
            arena_hdr *pad = (arena_hdr *)(a->buf + a->head);
            pad->size = (uint32_t)(a->cap - a->head);
            pad->used = 0;
            a->used += a->cap - a->head;
        }
        return arena_put(a, 0, size);
    }
    return a->tail - a->head >= size ? arena_put(a, a->head, size) : NULL;
}

static void arena_free(arena *a, uint8_t *p)
{
    ((arena_hdr *)(p - sizeof(arena_hdr)))->used = 0;
    while (a->used > 0) {
        arena_hdr *h = (arena_hdr *)(a->buf + a->tail);
        if (h->used)
            break;
        a->used -= h->size;
        a->tail += h->size;
        if (a->tail == a->cap)
            a->tail = 0;
    }
    if (a->used == 0)
        a->head = a->tail = 0;
}

/* ---- the wrapper ---- */

typedef struct held_pkt {
    rxf_packet pkt;
    uint8_t *block; /* arena copy the packet points into                     */
    uint64_t due;   /* reorder: inner packet index; delay: fault-clock ns    */
    uint64_t order; /* when it was held (ties, end-of-source order)          */
    int is_delay;
} held_pkt;

typedef struct out_pkt {
    rxf_packet pkt;
    uint8_t *block; /* arena block to free once handed back; NULL: inner memory */
} out_pkt;

struct rxf_faults {
    rxf_backend_ops inner;
    rxf_faults_cfg cfg;
    uint64_t threshold[RXF_FAULT_NKINDS];
    uint64_t decide[RXF_FAULT_NKINDS], param[RXF_FAULT_NKINDS]; /* PRNG states */
    rxf_faults_stats stats;
    arena arena;
    rxf_packet *in;          /* the inner burst                               */
    uint32_t in_n;           /* its packets not yet released to the inner     */
    held_pkt *held;          /* compact array, held_n used                    */
    uint32_t held_n, *due_idx;
    uint64_t hold_order, next_reorder_due, next_delay_due;
    out_pkt *fifo;           /* ordered output that did not fit the caller's burst */
    uint32_t fifo_cap, fifo_head, fifo_n, fifo_inner;
    rxf_packet *out;         /* the caller's burst being filled               */
    uint32_t out_n, out_max;
    uint8_t **lent;          /* arena blocks of the burst handed out          */
    uint32_t lent_n;
    int outstanding;         /* a burst handed out and not yet released       */
    int inner_end;           /* 0, RXF_EOF or RXF_ERROR from the inner        */
    int seen_first;
    uint64_t first_t, last_t, last_mono;
    const char *error;
};

static uint64_t mono_ns(void)
{
    return rxf_clock_ns(CLOCK_MONOTONIC);
}

static int fires(rxf_faults *f, int kind)
{
    if (f->cfg.rate[kind] <= 0.0)
        return 0;
    uint64_t x = rxf_faults_next(&f->decide[kind]); /* drawn for every packet: streams stay aligned */
    return f->cfg.rate[kind] >= 1.0 || x < f->threshold[kind];
}

static uint64_t param(rxf_faults *f, int kind, uint64_t bound)
{
    return bound ? rxf_faults_next(&f->param[kind]) % bound : 0;
}

/* ---- output: the caller's burst first, then the ordered overflow queue ---- */

static void emit(rxf_faults *f, const rxf_packet *pkt, uint8_t *block)
{
    if (f->fifo_n == 0 && f->out_n < f->out_max) {
        f->out[f->out_n++] = *pkt;
        if (block)
            f->lent[f->lent_n++] = block;
        f->stats.delivered++;
        return;
    }
    /* the queue is sized for every emission one inner burst can cause */
    out_pkt *o = &f->fifo[(f->fifo_head + f->fifo_n++) % f->fifo_cap];
    o->pkt = *pkt;
    o->block = block;
    f->fifo_inner += block == NULL;
}

static void drain_fifo(rxf_faults *f)
{
    while (f->fifo_n > 0 && f->out_n < f->out_max) {
        out_pkt *o = &f->fifo[f->fifo_head];
        f->fifo_head = (f->fifo_head + 1) % f->fifo_cap;
        f->fifo_n--;
        f->fifo_inner -= o->block == NULL;
        f->out[f->out_n++] = o->pkt;
        if (o->block)
            f->lent[f->lent_n++] = o->block;
        f->stats.delivered++;
    }
}

/* ---- held packets ---- */

static uint8_t *copy_of(rxf_faults *f, const rxf_packet *pkt)
{
    uint8_t *block = arena_alloc(&f->arena, pkt->len);
    if (block && pkt->len)
        memcpy(block, pkt->data, pkt->len);
    return block;
}

static int hold(rxf_faults *f, const rxf_packet *pkt, uint8_t *block, uint64_t due, int is_delay)
{
    if (f->held_n + f->fifo_n >= f->cfg.hold_max)
        return -1;
    if (block == NULL && (block = copy_of(f, pkt)) == NULL)
        return -1;
    held_pkt *h = &f->held[f->held_n++];
    h->pkt = *pkt;
    h->pkt.data = block;
    h->block = block;
    h->due = due;
    h->order = f->hold_order++;
    h->is_delay = is_delay;
    if (is_delay && due < f->next_delay_due)
        f->next_delay_due = due;
    if (!is_delay && due < f->next_reorder_due)
        f->next_reorder_due = due;
    if (f->held_n + f->fifo_n > f->stats.held_peak)
        f->stats.held_peak = f->held_n + f->fifo_n;
    return 0;
}

static int held_before(const held_pkt *a, const held_pkt *b, int by_due)
{
    if (by_due && a->due != b->due)
        return a->due < b->due;
    return a->order < b->order;
}

/* Emit the held packets of one kind whose due <= now (all when flush), in
   due order (ties and flush: the order they were held). */
static void release_due(rxf_faults *f, int is_delay, uint64_t now, uint64_t stamp, int flush)
{
    uint32_t n = 0, i, j;
    uint64_t next = UINT64_MAX;
    for (i = 0; i < f->held_n; i++) {
        held_pkt *h = &f->held[i];
        if (!flush && h->is_delay != is_delay)
            continue;
        if (flush || h->due <= now)
            f->due_idx[n++] = i;
        else if (h->due < next)
            next = h->due;
    }
    for (i = 1; i < n; i++) /* insertion sort: a handful at a time */
        for (j = i; j > 0 && held_before(&f->held[f->due_idx[j]], &f->held[f->due_idx[j - 1]], !flush); j--) {
            uint32_t t = f->due_idx[j];
            f->due_idx[j] = f->due_idx[j - 1];
            f->due_idx[j - 1] = t;
        }
    for (i = 0; i < n; i++) {
        held_pkt *h = &f->held[f->due_idx[i]];
        if (h->pkt.rx_ts_ns)  /* it arrives now: its time is when it comes out */
            h->pkt.rx_ts_ns = h->is_delay ? h->due : (stamp > h->pkt.rx_ts_ns ? stamp : h->pkt.rx_ts_ns);
        emit(f, &h->pkt, h->block);
        h->block = NULL;
    }
    for (i = 0, j = 0; i < f->held_n; i++) /* compact, keeping the rest */
        if (f->held[i].block)
            f->held[j++] = f->held[i];
    f->held_n = j;
    if (is_delay || flush)
        f->next_delay_due = flush ? UINT64_MAX : next;
    if (!is_delay || flush)
        f->next_reorder_due = flush ? UINT64_MAX : next;
}

/* ---- one inner packet ---- */

/* The fault clock: the packet's own time, or (no timestamp) the last time
   plus the monotonic time since. */
static uint64_t packet_time(rxf_faults *f, const rxf_packet *p)
{
    /* the monotonic clock only when the packet has no time, or delays need
       it for idle polls */
    uint64_t mono = p->rx_ts_ns == 0 || f->cfg.rate[RXF_FAULT_DELAY] > 0.0 ? mono_ns() : 0;
    uint64_t t = p->rx_ts_ns ? p->rx_ts_ns : f->last_t + (f->last_mono ? mono - f->last_mono : 0);
    f->last_t = t;
    f->last_mono = mono;
    if (!f->seen_first) {
        f->seen_first = 1;
        f->first_t = t;
    }
    return t;
}

static int kill_now(rxf_faults *f, uint64_t index, uint64_t t)
{
    if (!f->stats.killed &&
        ((f->cfg.kill_after_packets >= 0 && index >= (uint64_t)f->cfg.kill_after_packets) ||
         (f->cfg.kill_after_ns >= 0 && t >= f->first_t && t - f->first_t >= (uint64_t)f->cfg.kill_after_ns)))
        f->stats.killed = 1;
    return (int)f->stats.killed;
}

/* Flip 1..3 consecutive bytes (wrapping) of a copy, each by a non-zero
   mask, so the copy always differs; never the inner backend's memory. */
static uint8_t *corrupt(rxf_faults *f, rxf_packet *pkt)
{
    uint8_t *block = copy_of(f, pkt);
    if (block == NULL)
        return NULL;
    uint64_t flips = 1 + param(f, RXF_FAULT_CORRUPT, 3);
    uint64_t at = param(f, RXF_FAULT_CORRUPT, pkt->len);
    if (flips > pkt->len)
        flips = pkt->len;
    for (uint64_t k = 0; k < flips; k++)
        block[(at + k) % pkt->len] ^= (uint8_t)(1 + param(f, RXF_FAULT_CORRUPT, 255));
    pkt->data = block;
    return block;
}

/* The packet's own faults after drop: truncate, corrupt, duplicate, then hold
   (reorder, else delay) or pass. */
static void shape(rxf_faults *f, const rxf_packet *in, const int *hit, uint64_t index, uint64_t t)
{
    rxf_packet pkt = *in, dup;
    uint8_t *block = NULL, *dup_block = NULL;
    if (hit[RXF_FAULT_TRUNCATE] && pkt.len > 0) {
        pkt.len = (uint32_t)param(f, RXF_FAULT_TRUNCATE, pkt.len); /* 0..len-1 */
        f->stats.truncated++;
    }
    if (hit[RXF_FAULT_CORRUPT] && pkt.len > 0) {
        if ((block = corrupt(f, &pkt)) != NULL)
            f->stats.corrupted++;
        else
            f->stats.no_room++;
    }
    if (hit[RXF_FAULT_DUPLICATE]) {
        dup = pkt;
        if ((dup_block = copy_of(f, &pkt)) != NULL) {
            dup.data = dup_block;
            f->stats.duplicated++;
        } else
            f->stats.no_room++;
    }
    int held = 0;
    if (hit[RXF_FAULT_REORDER] || hit[RXF_FAULT_DELAY]) {
        int is_delay = !hit[RXF_FAULT_REORDER];
        uint64_t due = is_delay ? t + f->cfg.delay_ns : index + 1 + param(f, RXF_FAULT_REORDER, f->cfg.reorder_max);
        held = hold(f, &pkt, block, due, is_delay) == 0;
        if (held)
            (*(is_delay ? &f->stats.delayed : &f->stats.reordered))++;
        else
            f->stats.no_room++;
    }
    if (!held)
        emit(f, &pkt, block);
    if (dup_block)
        emit(f, &dup, dup_block);
}

static void process(rxf_faults *f, const rxf_packet *p)
{
    uint64_t index = f->stats.inner++;
    uint64_t t = packet_time(f, p);
    int hit[RXF_FAULT_NKINDS];
    for (int k = 0; k < RXF_FAULT_NKINDS; k++)
        hit[k] = fires(f, k);
    if (p->flags & RXF_PKT_SOURCE_RESET) {
        /* a replay's new pass: the last pass ends here (everything held comes
           out first), and the packet carrying the restart is not lost or moved */
        release_due(f, 0, 0, t, 1);
        hit[RXF_FAULT_DROP] = hit[RXF_FAULT_REORDER] = hit[RXF_FAULT_DELAY] = 0;
    }
    if (t >= f->next_delay_due) /* delayed packets due before this one arrives */
        release_due(f, 1, t, t, 0);
    if (kill_now(f, index, t))
        f->stats.killed_after++;
    else if (hit[RXF_FAULT_DROP])
        f->stats.dropped++;
    else
        shape(f, p, hit, index, t);
    if (index >= f->next_reorder_due) /* reordered packets overtaken by enough others */
        release_due(f, 0, index, t, 0);
}

/* ---- the table ---- */

static void release_inner(rxf_faults *f)
{
    if (f->in_n && f->inner.release)
        f->inner.release(f->inner.ctx, f->in, f->in_n);
    f->in_n = 0;
}

static void faults_release(void *ctx, rxf_packet *pkts, uint32_t n)
{
    rxf_faults *f = ctx;
    (void)pkts;
    (void)n;
    for (uint32_t i = 0; i < f->lent_n; i++)
        arena_free(&f->arena, f->lent[i]);
    f->lent_n = 0;
    f->outstanding = 0;
    if (f->fifo_inner == 0) /* nothing queued still points into the inner burst */
        release_inner(f);
}

/* One pull from the inner backend; returns 1 to try again (all swallowed). */
static int pull(rxf_faults *f)
{
    uint32_t room = f->out_max - f->out_n;
    uint32_t want = f->cfg.rate[RXF_FAULT_DUPLICATE] > 0.0 && room > 1 ? room / 2 : room;
    int n = f->inner.rx_burst(f->inner.ctx, f->in, want);
    if (n > 0) {
        f->in_n = (uint32_t)n > want ? want : (uint32_t)n;
        for (uint32_t i = 0; i < f->in_n; i++)
            process(f, &f->in[i]);
        if (f->out_n > 0 || f->fifo_n > 0)
            return 0;
        release_inner(f);
        return 1;
    }
    if (n == 0) { /* idle: the fault clock runs on */
        if (f->seen_first && f->next_delay_due != UINT64_MAX) {
            uint64_t now = f->last_t + (mono_ns() - f->last_mono);
            release_due(f, 1, now, now, 0);
        }
        return 0;
    }
    f->inner_end = n == RXF_EOF ? RXF_EOF : RXF_ERROR;
    release_due(f, 0, 0, f->last_t, 1); /* nothing held is lost at the end */
    return 0;
}

static int faults_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max)
{
    rxf_faults *f = ctx;
    if (f->outstanding) /* a caller that did not release: do it now */
        faults_release(f, NULL, 0);
    if (max == 0)
        return 0;
    f->out = pkts;
    f->out_n = 0;
    f->out_max = max > RXF_FAULTS_MAX_BURST ? RXF_FAULTS_MAX_BURST : max;
    drain_fifo(f);
    for (int tries = 0; f->fifo_n == 0 && f->out_n < f->out_max && f->in_n == 0 && !f->inner_end && tries < 16;
         tries++)
        if (!pull(f))
            break;
    drain_fifo(f);
    f->out = NULL;
    if (f->out_n > 0) {
        f->outstanding = 1;
        return (int)f->out_n;
    }
    if (f->inner_end && f->fifo_n == 0 && f->held_n == 0)
        return f->inner_end;
    return 0;
}

static const char *faults_last_error(void *ctx)
{
    rxf_faults *f = ctx;
    if (f->error)
        return f->error;
    return f->inner.last_error ? f->inner.last_error(f->inner.ctx) : "the inner backend failed";
}

/* ---- life cycle ---- */

static const char *check_cfg(const rxf_faults_cfg *cfg)
{
    for (int k = 0; k < RXF_FAULT_NKINDS; k++)
        if (!(cfg->rate[k] >= 0.0 && cfg->rate[k] <= 1.0))
            return "faults: a rate is not in 0..1";
    if (cfg->reorder_max < 1)
        return "faults: reorder distance must be at least 1";
    if (cfg->hold_max < 1 || cfg->arena_bytes < 4096)
        return "faults: hold_max must be >= 1 and arena_bytes >= 4096";
    return NULL;
}

rxf_faults *rxf_faults_new(const rxf_backend_ops *inner, const rxf_faults_cfg *cfg, const char **why)
{
    if ((*why = check_cfg(cfg)) != NULL)
        return NULL;
    *why = "faults: out of memory";
    rxf_faults *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->inner = *inner;
    f->cfg = *cfg;
    f->fifo_cap = 2 * RXF_FAULTS_MAX_BURST + cfg->hold_max;
    f->arena.cap = (size_t)(cfg->arena_bytes & ~(uint64_t)7);
    f->arena.buf = malloc(f->arena.cap);
    f->in = calloc(RXF_FAULTS_MAX_BURST, sizeof *f->in);
    f->held = calloc(cfg->hold_max, sizeof *f->held);
    f->due_idx = calloc(cfg->hold_max, sizeof *f->due_idx);
    f->fifo = calloc(f->fifo_cap, sizeof *f->fifo);
    f->lent = calloc(RXF_FAULTS_MAX_BURST, sizeof *f->lent);
    if (!f->arena.buf || !f->in || !f->held || !f->due_idx || !f->fifo || !f->lent) {
        rxf_faults_free(f);
        return NULL;
    }
    uint64_t s = cfg->seed;
    for (int k = 0; k < RXF_FAULT_NKINDS; k++) {
        f->decide[k] = rxf_faults_next(&s);
        f->param[k] = rxf_faults_next(&s);
        f->threshold[k] = cfg->rate[k] >= 1.0 ? UINT64_MAX : (uint64_t)(cfg->rate[k] * 18446744073709551616.0);
    }
    f->next_reorder_due = f->next_delay_due = UINT64_MAX;
    *why = NULL;
    return f;
}

void rxf_faults_close(rxf_faults *f)
{
    if (f->outstanding)
        faults_release(f, NULL, 0);
    f->fifo_n = f->fifo_head = f->fifo_inner = 0;
    f->held_n = 0;
    f->arena.used = f->arena.head = f->arena.tail = 0;
    release_inner(f);
    if (!f->inner_end)
        f->inner_end = RXF_EOF;
}

void rxf_faults_free(rxf_faults *f)
{
    if (f == NULL)
        return;
    rxf_faults_close(f);
    free(f->arena.buf);
    free(f->in);
    free(f->held);
    free(f->due_idx);
    free(f->fifo);
    free(f->lent);
    free(f);
}

void rxf_faults_ops(rxf_faults *f, rxf_backend_ops *ops)
{
    ops->abi_version = RXF_ABI_VERSION;
    ops->struct_size = sizeof(rxf_backend_ops);
    ops->ctx = f;
    ops->rx_burst = faults_rx_burst;
    ops->release = faults_release;
    ops->last_error = faults_last_error;
}

const rxf_faults_stats *rxf_faults_get_stats(const rxf_faults *f) { return &f->stats; }

uint64_t rxf_faults_held(const rxf_faults *f) { return (uint64_t)f->held_n + f->fifo_n; }
