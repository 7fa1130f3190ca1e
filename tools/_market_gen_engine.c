/* The full-market day generator's state machine; see _market_gen_engine.h
 * and rxfeed/tools/market_generator.py for the model. */
#include "_market_gen_engine.h"
#include "rxfeed/net.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

#ifdef MG_USE_PYMEM
#include <Python.h>
#define MG_MALLOC PyMem_RawMalloc
#define MG_REALLOC PyMem_RawRealloc
#define MG_FREE PyMem_RawFree
#else
#include <stdlib.h>
#define MG_MALLOC malloc
#define MG_REALLOC realloc
#define MG_FREE free
#endif

#define NIL UINT32_MAX
#define TICK 100u                                  /* one cent in ITCH price units */
#define OPEN_NS ((int64_t)(9 * 3600 + 1800) * 1000000000LL)
#define CLOSE_NS ((int64_t)16 * 3600 * 1000000000LL)
#define SESSION_S 23400.0
#define GROWTH 0.045                               /* live orders >= this share of the activity */
#define MAX_FAIR 4.0e7                             /* ticks: prices stay within a u32 */

/* The activity mix, cumulative, in this order: A F | E C | X D U | P I B. */
static const double MIX[10] = {0.428, 0.020, 0.035, 0.004, 0.040, 0.385, 0.068, 0.010, 0.0098, 0.0002};
enum { C_A, C_F, C_E, C_C, C_X, C_D, C_U, C_P, C_I, C_B };

typedef struct { uint64_t s[4]; int has_spare; double spare; } mg_rng;
typedef struct { uint64_t ref; uint32_t shares, level, next, prev, live_pos, key; } mg_order;   /* key: 2 * symbol + side */
typedef struct { uint32_t price, key, head, tail, heap_pos; } mg_level;
typedef struct { uint32_t rank, level; } mg_entry;
typedef struct { uint64_t key; uint32_t level, unused; } mg_slot;   /* key 0: an empty slot */
typedef struct { mg_entry *e; uint32_t n, cap; } mg_heap;
typedef struct { double fair, vol, widen; int64_t last_ts; double half; } mg_symbol;
/* one activity message's random draws (independent of the state, so drawn ahead) */
typedef struct {
    double r, normal, u1, u2;
    int64_t step;
    uint32_t sym, lot, depth;
    uint32_t pick;   /* the live order a cancel or replace takes: u1 * live orders, fixed 2 messages ahead */
} mg_draw;

#define AHEAD 4   /* draws made ahead, so the state they will touch is prefetched */

struct mg_market {
    mg_rng rng;
    uint32_t nsym;
    uint64_t n_messages, emitted, body_end, max_live, seen, match, next_ref, peak_live;
    int64_t ts;
    uint32_t track;
    double cum[10], mean_step, factor, root, inv_lot, inv_depth;   /* inv_*: 1 / log(1 - p) of geometric draws */
    uint8_t *names;                 /* 8 bytes per symbol */
    double *zcum;                   /* Zipf cumulative weights */
    uint32_t *zguide;               /* guide table: first symbol of each 1/nsym bucket */
    mg_symbol *sym;
    mg_heap *heaps;                 /* per key = 2 * symbol + side (0 bid, 1 ask) */
    mg_order *orders; uint32_t orders_cap, orders_used, order_free;
    uint32_t *live; uint32_t live_n, live_cap;
    mg_level *levels; uint32_t levels_cap, levels_used, level_free, levels_n;
    mg_slot *hash; uint32_t hmask, hcount;
    uint64_t by_type[26];
    mg_draw ahead[AHEAD]; uint32_t ahead_at; int primed;
};

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---------------- */

static uint64_t splitmix_next(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_u64(mg_rng *r) {
    uint64_t *s = r->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl64(s[3], 45);
    return out;
}

/* uniform in [0, 1) */
static inline double rng_uniform(mg_rng *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }
/* uniform in (0, 1], safe for log() */
static inline double rng_open(mg_rng *r) { return (double)((rng_u64(r) >> 11) + 1) * 0x1.0p-53; }

static double rng_normal(mg_rng *r) {
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double rad = sqrt(-2.0 * log(rng_open(r))), ang = 6.283185307179586 * rng_uniform(r);
    r->spare = rad * sin(ang);
    r->has_spare = 1;
    return rad * cos(ang);
}

/* geometric on 1, 2, ... with success probability p; inv_log = 1 / log(1 - p) */
static inline uint32_t rng_geometric(mg_rng *r, double inv_log) {
    double k = floor(log(rng_open(r)) * inv_log);
    return 1u + (k < 1e6 ? (uint32_t)k : 1000000u);
}

/* ---- growable arrays --------------------------------------------------------- */

/* Ask for transparent huge pages on a big array: its accesses are random, and
 * with 4 KiB pages nearly each one is a TLB miss. A hint; errors are ignored. */
static void advise_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + bytes) & ~(page - 1);
    if (bytes >= (4u << 20) && hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p; (void)bytes;
#endif
}

/* make room for `need` elements: growth by half, so that at most a third of a
 * big array is slack */
static int grow(void **p, uint32_t *cap, size_t elem, uint32_t need) {
    if (need <= *cap) return 0;
    uint64_t c = *cap ? *cap : 8;
    while (c < need) c += c / 2;
    if (c > UINT32_MAX - 1) return -1;
    void *q = MG_REALLOC(*p, (size_t)c * elem);
    if (!q) return -1;
    advise_huge(q, (size_t)c * elem);
    *p = q;
    *cap = (uint32_t)c;
    return 0;
}

/* ---- (key, price) -> level: linear probing, backward-shift deletion ------------ */

static inline uint64_t hpack(uint32_t key, uint32_t price) { return ((uint64_t)(key + 1) << 32) | price; }
static inline uint32_t hslot(const mg_market *m, uint64_t k) {
    return (uint32_t)((k * 0x9E3779B97F4A7C15ULL) >> 32) & m->hmask;
}

static uint32_t hash_find(const mg_market *m, uint32_t key, uint32_t price) {
    uint64_t k = hpack(key, price);
    for (uint32_t i = hslot(m, k);; i = (i + 1) & m->hmask) {
        if (m->hash[i].key == k) return m->hash[i].level;
        if (m->hash[i].key == 0) return NIL;
    }
}

static void hash_put(mg_market *m, uint64_t k, uint32_t v) {
    uint32_t i = hslot(m, k);
    while (m->hash[i].key) i = (i + 1) & m->hmask;
    m->hash[i] = (mg_slot){k, v, 0};
}

static int hash_resize(mg_market *m, uint32_t slots) {
    mg_slot *old = m->hash, *fresh = MG_MALLOC((size_t)slots * sizeof *fresh);
    uint32_t n = old ? m->hmask + 1 : 0;
    if (!fresh) return -1;
    advise_huge(fresh, (size_t)slots * sizeof *fresh);
    memset(fresh, 0, (size_t)slots * sizeof *fresh);
    m->hash = fresh;
    m->hmask = slots - 1;
    for (uint32_t i = 0; i < n; i++)
        if (old[i].key) hash_put(m, old[i].key, old[i].level);
    MG_FREE(old);
    return 0;
}

static int hash_insert(mg_market *m, uint32_t key, uint32_t price, uint32_t level) {
    if ((uint64_t)(m->hcount + 1) * 2 > (uint64_t)m->hmask + 1) {
        if (m->hmask >= (1u << 30) || hash_resize(m, (m->hmask + 1) * 2)) return -1;
    }
    hash_put(m, hpack(key, price), level);
    m->hcount++;
    return 0;
}

static void hash_delete(mg_market *m, uint32_t key, uint32_t price) {
    uint64_t k = hpack(key, price);
    uint32_t i = hslot(m, k);
    while (m->hash[i].key != k) i = (i + 1) & m->hmask;   /* present: the caller holds its level */
    for (uint32_t j = i;;) {
        j = (j + 1) & m->hmask;
        if (m->hash[j].key == 0) break;
        uint32_t home = hslot(m, m->hash[j].key);
        if (((j - home) & m->hmask) >= ((j - i) & m->hmask)) {
            m->hash[i] = m->hash[j];
            i = j;
        }
    }
    m->hash[i].key = 0;
    m->hcount--;
}

/* ---- per (symbol, side) heaps of level prices: the best price on top ------------- */

static inline void heap_set(mg_market *m, mg_heap *h, uint32_t pos, mg_entry e) {
    h->e[pos] = e;
    m->levels[e.level].heap_pos = pos;
}

static void heap_sift(mg_market *m, mg_heap *h, uint32_t pos) {
    mg_entry e = h->e[pos];
    while (pos > 0 && h->e[(pos - 1) / 2].rank > e.rank) {
        heap_set(m, h, pos, h->e[(pos - 1) / 2]);
        pos = (pos - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->e[c + 1].rank < h->e[c].rank) c++;
        if (h->e[c].rank >= e.rank) break;
        heap_set(m, h, pos, h->e[c]);
        pos = c;
    }
    heap_set(m, h, pos, e);
}

static int heap_push(mg_market *m, mg_heap *h, uint32_t rank, uint32_t level) {
    if (grow((void **)&h->e, &h->cap, sizeof *h->e, h->n + 1)) return -1;
    h->e[h->n] = (mg_entry){rank, level};
    h->n++;
    heap_sift(m, h, h->n - 1);
    return 0;
}

static void heap_remove(mg_market *m, mg_heap *h, uint32_t pos) {
    h->n--;
    if (pos < h->n) {
        h->e[pos] = h->e[h->n];
        heap_sift(m, h, pos);
    }
}

/* best price (ticks) of key, 0 when that side is empty */
static inline uint32_t best(const mg_market *m, uint32_t key) {
    const mg_heap *h = &m->heaps[key];
    return h->n ? ((key & 1) ? h->e[0].rank : UINT32_MAX - h->e[0].rank) : 0;   /* the rank is the price */
}

/* ---- orders and levels --------------------------------------------------------- */

static uint32_t level_get(mg_market *m, uint32_t key, uint32_t price) {
    uint32_t lv = hash_find(m, key, price);
    if (lv != NIL) return lv;
    if (m->level_free != NIL) {
        lv = m->level_free;
        m->level_free = m->levels[lv].head;
    } else {
        if (grow((void **)&m->levels, &m->levels_cap, sizeof *m->levels, m->levels_used + 1)) return NIL;
        lv = m->levels_used++;
    }
    m->levels[lv] = (mg_level){price, key, NIL, NIL, 0};
    if (hash_insert(m, key, price, lv) ||
        heap_push(m, &m->heaps[key], (key & 1) ? price : UINT32_MAX - price, lv)) return NIL;
    m->levels_n++;
    return lv;
}

static void level_drop(mg_market *m, uint32_t lv) {
    mg_level *l = &m->levels[lv];
    heap_remove(m, &m->heaps[l->key], l->heap_pos);
    hash_delete(m, l->key, l->price);
    l->head = m->level_free;
    m->level_free = lv;
    m->levels_n--;
}

/* a new live order at the back of its level's queue; -1 when out of memory */
static int place(mg_market *m, uint64_t ref, uint32_t key, uint32_t shares, uint32_t price) {
    uint32_t lv = level_get(m, key, price), o;
    if (lv == NIL || grow((void **)&m->live, &m->live_cap, sizeof *m->live, m->live_n + 1)) return -1;
    if (m->order_free != NIL) {
        o = m->order_free;
        m->order_free = m->orders[o].next;
    } else {
        if (grow((void **)&m->orders, &m->orders_cap, sizeof *m->orders, m->orders_used + 1)) return -1;
        o = m->orders_used++;
    }
    mg_level *l = &m->levels[lv];
    m->orders[o] = (mg_order){ref, shares, lv, NIL, l->tail, m->live_n, key};
    if (l->tail != NIL) m->orders[l->tail].next = o; else l->head = o;
    l->tail = o;
    m->live[m->live_n++] = o;
    if (m->live_n > m->peak_live) m->peak_live = m->live_n;
    return 0;
}

static void order_remove(mg_market *m, uint32_t o) {
    mg_order *x = &m->orders[o];
    if (x->prev != NIL && x->next != NIL) {      /* inside its queue: the level is untouched */
        m->orders[x->prev].next = x->next;
        m->orders[x->next].prev = x->prev;
    } else {
        mg_level *l = &m->levels[x->level];
        if (x->prev != NIL) m->orders[x->prev].next = x->next; else l->head = x->next;
        if (x->next != NIL) m->orders[x->next].prev = x->prev; else l->tail = x->prev;
        if (l->head == NIL) level_drop(m, x->level);
    }
    uint32_t last = m->live[--m->live_n];
    if (last != o) {
        m->live[x->live_pos] = last;
        m->orders[last].live_pos = x->live_pos;
    }
    x->next = m->order_free;
    m->order_free = o;
}

/* ---- prices -------------------------------------------------------------------- */

static inline double intraday(int64_t ts) {
    double x = (double)(ts - OPEN_NS) / (double)(CLOSE_NS - OPEN_NS) * 2.0 - 1.0;
    return 1.0 + 1.5 * x * x;
}

/* move symbol s's fair price for the time since its last move, and its spread */
static void walk(mg_market *m, uint32_t s, double normal, double u) {
    mg_symbol *y = &m->sym[s];
    double dt = (double)(m->ts - y->last_ts) * 1e-9;
    y->last_ts = m->ts;
    double f = y->fair + normal * y->vol * m->factor * sqrt(dt > 0 ? dt : 0);
    y->fair = f < 50.0 ? 50.0 : f > MAX_FAIR ? MAX_FAIR : f;
    double w = y->widen + 0.05 * (1.0 - y->widen) + 0.25 * (u - 0.5);
    y->widen = w < 0.5 ? 0.5 : w > 4.0 ? 4.0 : w;
}

/* a new order's price: around the fair price, never crossing or locking */
static uint32_t price_for(const mg_market *m, uint32_t s, int side, uint32_t depth) {
    const mg_symbol *y = &m->sym[s];
    double off = y->half * y->widen * m->root + depth;
    if (side == 0) {
        double f = y->fair - off;
        uint32_t p = f < 1.0 ? 1 : (uint32_t)f, ask = best(m, 2 * s + 1);
        if (ask && p >= ask) p = ask - 1;
        return p ? p : 1;
    }
    uint32_t p = (uint32_t)(y->fair + off + 0.999), bid = best(m, 2 * s);
    return bid && p <= bid ? bid + 1 : p;
}

/* ---- encoding ------------------------------------------------------------------- */

static inline uint8_t *put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; return p + 2; }
static inline uint8_t *put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
    return p + 4;
}
static inline uint8_t *put64(uint8_t *p, uint64_t v) { return put32(put32(p, (uint32_t)(v >> 32)), (uint32_t)v); }
static inline uint8_t *putn(uint8_t *p, const void *s, size_t n) { memcpy(p, s, n); return p + n; }

/* length prefix and header of a message of `size` bytes; returns the field start */
static inline uint8_t *header(mg_market *m, uint8_t *out, uint32_t size, char type, uint32_t locate) {
    out = put16(out, size);
    *out++ = (uint8_t)type;
    out = put16(put16(out, locate), m->track);
    out = put16(out, (uint32_t)((uint64_t)m->ts >> 32));
    m->by_type[type - 'A']++;
    return put32(out, (uint32_t)m->ts);
}

static inline const uint8_t *name(const mg_market *m, uint32_t s) { return m->names + 8 * (size_t)s; }

static size_t put_system(mg_market *m, uint8_t *out, char code) {
    uint8_t *p = header(m, out, 12, 'S', 0);
    *p++ = (uint8_t)code;
    return (size_t)(p - out);
}

static size_t put_directory(mg_market *m, uint8_t *out, uint32_t s) {
    uint8_t *p = putn(header(m, out, 39, 'R', s + 1), name(m, s), 8);
    p = put32(putn(p, "QN", 2), 100);
    p = put32(putn(p, "NCZ PN 1N", 9), 0);
    *p++ = 'N';
    return (size_t)(p - out);
}

static size_t put_trading(mg_market *m, uint8_t *out, uint32_t s) {
    uint8_t *p = putn(header(m, out, 25, 'H', s + 1), name(m, s), 8);
    return (size_t)(putn(p, "T     ", 6) - out);
}

/* ---- messages ------------------------------------------------------------------- */

/* A (or F with attribution): a new order around the symbol's fair price */
static size_t msg_add(mg_market *m, uint8_t *out, const mg_draw *d, int attributed) {
    int side = d->u1 < 0.5 ? 0 : 1;
    uint32_t price = price_for(m, d->sym, side, d->depth);
    uint64_t ref = m->next_ref++;
    if (place(m, ref, 2 * d->sym + (uint32_t)side, d->lot, price)) return 0;
    uint8_t *p = put64(header(m, out, attributed ? 40 : 36, attributed ? 'F' : 'A', d->sym + 1), ref);
    *p++ = side ? 'S' : 'B';
    p = put32(putn(put32(p, d->lot), name(m, d->sym), 8), price * TICK);
    if (attributed) p = putn(p, "RXFD", 4);
    return (size_t)(p - out);
}

/* E or C of the first order at the best price of the side the fair price
 * has moved through (either side when it sits inside the spread); an add
 * when the symbol's book is empty */
static size_t msg_execute(mg_market *m, uint8_t *out, const mg_draw *d) {
    uint32_t s = d->sym, bid = best(m, 2 * s), ask = best(m, 2 * s + 1), key;
    double fair = m->sym[s].fair;
    if (ask && (fair >= ask || !bid || (fair > bid && d->u1 < 0.5))) key = 2 * s + 1;
    else if (bid) key = 2 * s;
    else return msg_add(m, out, d, 0);
    uint32_t price = key == 2 * s ? bid : ask, o = m->levels[m->heaps[key].e[0].level].head;
    mg_order *x = &m->orders[o];
    uint32_t q = d->lot > x->shares ? x->shares : d->lot;
    uint64_t ref = x->ref;
    m->match++;
    int printable = d->r >= m->cum[C_E];
    uint8_t *p = put64(header(m, out, printable ? 36 : 31, printable ? 'C' : 'E', s + 1), ref);
    p = put64(put32(p, q), m->match);
    if (printable) { *p++ = 'Y'; p = put32(p, price * TICK); }
    x->shares -= q;
    if (x->shares == 0) order_remove(m, o);
    return (size_t)(p - out);
}

/* X, D or U of a live order picked at random (deep ones included) */
static size_t msg_modify(mg_market *m, uint8_t *out, const mg_draw *d) {
    uint32_t o = m->live[d->pick < m->live_n ? d->pick : (uint32_t)(d->u1 * m->live_n)];
    mg_order *x = &m->orders[o];
    uint64_t ref = x->ref;
    uint32_t qty = x->shares, key = x->key, s = key >> 1;
    if (d->r < m->cum[C_X] && qty > 1) {   /* partial cancel (an odd lot when down to one lot) */
        uint32_t q = d->lot < qty ? d->lot : qty / 2;
        x->shares -= q;
        return (size_t)(put32(put64(header(m, out, 23, 'X', s + 1), ref), q) - out);
    }
    order_remove(m, o);
    if (d->r < m->cum[C_D])                /* delete, or a cancel of a one-share order */
        return (size_t)(put64(header(m, out, 19, 'D', s + 1), ref) - out);
    uint32_t price = price_for(m, s, (int)(key & 1), d->depth);   /* replace: back of a queue */
    uint64_t fresh = m->next_ref++;
    if (place(m, fresh, key, d->lot, price)) return 0;
    uint8_t *p = put64(put64(header(m, out, 35, 'U', s + 1), ref), fresh);
    return (size_t)(put32(put32(p, d->lot), price * TICK) - out);
}

/* P, I or B: a non-displayed trade, an imbalance, a rare broken trade */
static size_t msg_off_book(mg_market *m, uint8_t *out, const mg_draw *d) {
    uint32_t s = d->sym, px = (uint32_t)m->sym[s].fair * TICK;
    uint8_t side = d->u1 < 0.5 ? 'B' : 'S', *p;
    if (d->r < m->cum[C_P]) {
        m->match++;
        p = put64(header(m, out, 44, 'P', s + 1), 0);
        *p++ = side;
        p = put64(put32(putn(put32(p, d->lot), name(m, s), 8), px), m->match);
    } else if (d->r < m->cum[C_I]) {
        p = put64(put64(header(m, out, 50, 'I', s + 1), 10ULL * d->lot), d->lot);
        *p++ = side;
        p = put32(put32(put32(putn(p, name(m, s), 8), px + TICK), px - TICK), px);
        p = putn(p, "C ", 2);
    } else {
        uint64_t broken = (uint64_t)(d->u1 * (double)m->match);
        p = put64(header(m, out, 19, 'B', s + 1), broken ? broken : 1);
    }
    return (size_t)(p - out);
}

static uint32_t zipf_pick(const mg_market *m, double u) {
    uint32_t i = m->zguide[(uint32_t)(u * m->nsym)];
    while (m->zcum[i] <= u && i + 1 < m->nsym) i++;
    return i;
}

static void draw(mg_market *m, mg_draw *d) {
    mg_rng *g = &m->rng;
    d->step = 1 + (int64_t)(-log(rng_open(g)) * (m->mean_step - 1.0));
    d->r = rng_uniform(g);
    d->sym = zipf_pick(m, rng_uniform(g));
    d->normal = rng_normal(g);
    d->u1 = rng_uniform(g);
    d->u2 = rng_uniform(g);
    d->lot = 100 * rng_geometric(g, m->inv_lot);
    d->depth = rng_uniform(g) < 0.12 ? 5 + (uint32_t)(rng_uniform(g) * 145) : rng_geometric(g, m->inv_depth) - 1;
}

/* Prefetch what the coming messages will touch: a random live order is three
 * dependent cache misses (live list, order, its level and neighbours), so
 * each is started a message or two before it is needed; the live order a
 * message will pick is fixed two messages ahead (its index stays uniform).
 * The rest are hints. */
static void prefetch_ahead(mg_market *m) {
    const double *c = m->cum;
    const mg_draw *far = &m->ahead[(m->ahead_at + AHEAD - 1) % AHEAD];
    mg_draw *mid = &m->ahead[(m->ahead_at + 1) % AHEAD];
    const mg_draw *near = &m->ahead[m->ahead_at];
    uint32_t n = m->live_n;
    if (!n) return;
    if (far->r >= c[C_C] && far->r < c[C_U]) __builtin_prefetch(&m->live[(uint32_t)(far->u1 * n)]);
    mid->pick = (uint32_t)(mid->u1 * n);
    if (mid->r >= c[C_C] && mid->r < c[C_U]) {
        __builtin_prefetch(&m->orders[m->live[mid->pick]]);
    } else {
        __builtin_prefetch(&m->heaps[2 * mid->sym]);
        __builtin_prefetch(&m->sym[mid->sym]);
    }
    if (near->r >= c[C_C] && near->r < c[C_U] && near->pick < n) {
        const mg_order *x = &m->orders[m->live[near->pick]];
        if (x->prev == NIL || x->next == NIL) __builtin_prefetch(&m->levels[x->level]);
        if (x->prev != NIL) __builtin_prefetch(&m->orders[x->prev]);
        if (x->next != NIL) __builtin_prefetch(&m->orders[x->next]);
    } else if (near->r >= c[C_F] && near->r < c[C_C]) {   /* an execution: the best levels' first orders */
        const mg_heap *b = &m->heaps[2 * near->sym];
        if (b[0].n) __builtin_prefetch(&m->levels[b[0].e[0].level]);
        if (b[1].n) __builtin_prefetch(&m->levels[b[1].e[0].level]);
    } else {                                              /* an add: the heads of the heaps, the level's slot */
        const mg_heap *b = &m->heaps[2 * near->sym];
        __builtin_prefetch(b[0].e);
        __builtin_prefetch(b[1].e);
        const mg_symbol *y = &m->sym[near->sym];
        double off = y->half * y->widen * m->root + near->depth, f = near->u1 < 0.5 ? y->fair - off : y->fair + off + 0.999;
        uint32_t side = near->u1 < 0.5 ? 0 : 1, guess = f < 1.0 ? 1 : (uint32_t)f;
        __builtin_prefetch(&m->hash[hslot(m, hpack(2 * near->sym + side, guess))]);
    }
}

/* the next activity message: draws, then the live-order growth line or cap */
static size_t activity(mg_market *m, uint8_t *out) {
    const double *c = m->cum;
    if (!m->primed) {
        for (int k = 0; k < AHEAD; k++) {
            draw(m, &m->ahead[k]);
            m->ahead[k].pick = UINT32_MAX;
        }
        m->primed = 1;
    }
    mg_draw d = m->ahead[m->ahead_at];
    draw(m, &m->ahead[m->ahead_at]);
    m->ahead[m->ahead_at].pick = UINT32_MAX;
    m->ahead_at = (m->ahead_at + 1) % AHEAD;
    prefetch_ahead(m);
    m->ts += d.step;
    m->track = (m->track + 1) & 0xFFFF;
    m->factor = intraday(m->ts);
    m->root = sqrt(m->factor);
    uint32_t live = m->live_n;
    m->seen++;
    if (m->max_live && live >= m->max_live) {
        if (d.r < c[C_F]) d.r = c[C_X] + (d.r / c[C_F]) * (c[C_D] - c[C_X]);   /* at the cap an add is a delete */
    } else if (d.r >= c[C_X] && d.r < c[C_D] && live < GROWTH * (double)m->seen) {
        d.r = (d.r - c[C_X]) / (c[C_D] - c[C_X]) * c[C_A];                      /* behind the line a delete is an add */
    }
    if (d.r < c[C_F] || (live < 64 && d.r < c[C_U])) {
        walk(m, d.sym, d.normal, d.u2);
        return msg_add(m, out, &d, d.r >= c[C_A] && d.r < c[C_F]);
    }
    if (d.r < c[C_C]) {
        walk(m, d.sym, d.normal, d.u2);
        return msg_execute(m, out, &d);
    }
    if (d.r < c[C_U]) return msg_modify(m, out, &d);
    return msg_off_book(m, out, &d);
}

/* the message at position m->emitted: preamble, activity or the closing events */
static size_t next_message(mg_market *m, uint8_t *out) {
    uint64_t i = m->emitted, head = 3 + 2 * (uint64_t)m->nsym;
    if (i >= head && i < m->body_end) return activity(m, out);
    m->track = (m->track + 1) & 0xFFFF;
    if (i < head) {
        if (i == head - 1) m->ts = OPEN_NS;
        m->ts += 1000;
        if (i < 2) return put_system(m, out, i == 0 ? 'O' : 'S');
        if (i == head - 1) return put_system(m, out, 'Q');
        return (i & 1) ? put_trading(m, out, (uint32_t)((i - 2) / 2)) : put_directory(m, out, (uint32_t)((i - 2) / 2));
    }
    int k = (int)(i - m->body_end);            /* 0, 1, 2: end of market hours, of system hours, of messages */
    m->ts += 1000;
    if (k == 0 && m->ts < CLOSE_NS) m->ts = CLOSE_NS;
    return put_system(m, out, "MEC"[k]);
}

size_t mg_fill(mg_market *m, uint8_t *out, size_t cap, uint64_t max_msgs, uint64_t *msgs) {
    size_t used = 0;
    uint64_t k = 0;
    while (k < max_msgs && m->emitted < m->n_messages && cap - used >= 64) {
        size_t w = next_message(m, out + used);
        if (w == 0) break;                    /* out of memory: the caller sees a short day */
        used += w;
        m->emitted++;
        k++;
    }
    *msgs = k;
    return used;
}

/* ---- set-up ---------------------------------------------------------------------- */

uint64_t mg_min_messages(uint32_t symbols) { return 3 + 2 * (uint64_t)symbols + 3 + 64; }

static int setup_symbols(mg_market *m, double zipf) {
    uint32_t n = m->nsym;
    double total = 0;
    for (uint32_t i = 0; i < n; i++) total += pow((double)(i + 1), -zipf);
    double acc = 0;
    for (uint32_t i = 0, j = 0; i < n; i++) {
        acc += pow((double)(i + 1), -zipf);
        m->zcum[i] = i + 1 == n ? 1.0 : acc / total;
        while (j < n && (double)j / n < m->zcum[i]) m->zguide[j++] = i;
    }
    uint32_t bucket = n / 8 ? n / 8 : 1;
    for (uint32_t i = 0; i < n; i++) {
        mg_symbol *y = &m->sym[i];
        double price = exp(log(5.0) + rng_uniform(&m->rng) * (log(600.0) - log(5.0)));
        y->fair = price * 100;
        y->vol = (0.01 + 0.03 * rng_uniform(&m->rng)) * price * 100 / sqrt(SESSION_S);
        y->half = 1 + (i / bucket < 6 ? i / bucket : 6);
        y->widen = 1.0;
        y->last_ts = OPEN_NS;
    }
    return 0;
}

mg_market *mg_new(uint32_t symbols, uint64_t n_messages, uint64_t seed, double zipf, uint64_t max_live,
                  const uint8_t *names) {
    if (symbols < 1 || symbols > 65535 || n_messages < mg_min_messages(symbols) || (max_live && max_live < 64) ||
        !(zipf >= 0 && zipf <= 10) || n_messages > (1ULL << 40))
        return NULL;
    mg_market *m = MG_MALLOC(sizeof *m);
    if (!m) return NULL;
    memset(m, 0, sizeof *m);
    m->nsym = symbols;
    m->n_messages = n_messages;
    m->body_end = n_messages - 3;
    m->max_live = max_live;
    m->next_ref = 1;
    m->ts = 4LL * 3600 * 1000000000LL;
    m->order_free = m->level_free = NIL;
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) m->rng.s[i] = splitmix_next(&sm);
    double acc = 0;
    for (int i = 0; i < 10; i++) m->cum[i] = (acc += MIX[i]);
    m->cum[9] = 1.0;
    m->inv_lot = 1.0 / log(1.0 - 0.35);
    m->inv_depth = 1.0 / log(1.0 - 0.45);
    uint64_t body = n_messages - 6 - 2 * (uint64_t)symbols;
    m->mean_step = 0.95 * (double)(CLOSE_NS - OPEN_NS) / (double)body;
    if (m->mean_step < 2.0) m->mean_step = 2.0;
    m->names = MG_MALLOC(8 * (size_t)symbols);
    m->zcum = MG_MALLOC(sizeof(double) * symbols);
    m->zguide = MG_MALLOC(sizeof(uint32_t) * symbols);
    m->sym = MG_MALLOC(sizeof(mg_symbol) * symbols);
    m->heaps = MG_MALLOC(sizeof(mg_heap) * 2 * (size_t)symbols);
    if (!m->names || !m->zcum || !m->zguide || !m->sym || !m->heaps || hash_resize(m, 1024)) {
        mg_free(m);
        return NULL;
    }
    memset(m->heaps, 0, sizeof(mg_heap) * 2 * (size_t)symbols);
    memcpy(m->names, names, 8 * (size_t)symbols);
    setup_symbols(m, zipf);
    return m;
}

void mg_free(mg_market *m) {
    if (!m) return;
    if (m->heaps)
        for (uint32_t k = 0; k < 2 * m->nsym; k++) MG_FREE(m->heaps[k].e);
    MG_FREE(m->heaps); MG_FREE(m->sym); MG_FREE(m->zguide); MG_FREE(m->zcum); MG_FREE(m->names);
    MG_FREE(m->orders); MG_FREE(m->live); MG_FREE(m->levels); MG_FREE(m->hash);
    MG_FREE(m);
}

void mg_get_stats(const mg_market *m, mg_stats *s) {
    uint64_t heap_bytes = 0;
    for (uint32_t k = 0; k < 2 * m->nsym; k++) heap_bytes += (uint64_t)m->heaps[k].cap * sizeof(mg_entry);
    s->emitted = m->emitted;
    s->live = m->live_n;
    s->peak_live = m->peak_live;
    s->levels = m->levels_n;
    s->state_bytes = sizeof *m + heap_bytes + (uint64_t)m->orders_cap * sizeof(mg_order) +
                     (uint64_t)m->live_cap * 4 + (uint64_t)m->levels_cap * sizeof(mg_level) +
                     ((uint64_t)m->hmask + 1) * sizeof(mg_slot) +
                     (uint64_t)m->nsym * (8 + sizeof(double) + 4 + sizeof(mg_symbol) + 2 * sizeof(mg_heap));
    memcpy(s->by_type, m->by_type, sizeof s->by_type);
}

/* ---- MoldUDP64 datagrams in UDP / IPv4 / Ethernet frames ---------------------------- */

#define MOLD_BUDGET (1500 - 14 - 20 - 8 - 20)

static inline uint8_t *le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

/* one record: u64 capture time (ns since the epoch) and u32 frame length,
 * little-endian, then the frame (patched header template, mold header, block) */
static uint8_t *mold_record(mg_mold *p, uint8_t *out, uint16_t count) {
    uint32_t payload = 20 + p->used, frame = 42 + payload;
    uint64_t ts = p->epoch_ns + p->first_ts;
    out = le32(le32(le32(out, (uint32_t)ts), (uint32_t)(ts >> 32)), frame);
    uint8_t *f = out;
    memcpy(f, p->frame_hdr, 42);
    put16(f + 16, 28 + payload);
    put16(f + 18, (uint32_t)(p->datagrams & 0xFFFF));
    put16(f + 24, 0);
    put16(f + 24, rxf_net_csum(f + 14, 20));
    put16(f + 38, 8 + payload);
    out = put16(put64(putn(f + 42, p->session, 10), p->seq), count);
    out = putn(out, p->block, p->used);
    p->datagrams++;
    return out;
}

size_t mg_mold_bound(size_t len) { return len + len / 8 + 4 * MG_MOLD_MAX_RECORD; }

size_t mg_mold_pack(mg_mold *p, const uint8_t *in, size_t len, uint8_t *out, size_t cap, int end) {
    if (cap < mg_mold_bound(len)) return (size_t)-1;
    uint8_t *o = out;
    for (size_t at = 0; at < len;) {
        if (len - at < 2) return (size_t)-1;
        uint32_t n = (uint32_t)in[at] << 8 | in[at + 1];
        if (n < 11 || n > MOLD_BUDGET - 2 || len - at - 2 < n) return (size_t)-1;
        if (p->count && p->used + 2 + n > MOLD_BUDGET) {
            o = mold_record(p, o, (uint16_t)p->count);
            p->seq += p->count;
            p->count = p->used = 0;
        }
        if (!p->count) {
            const uint8_t *t = in + at + 2 + 5;
            p->first_ts = (uint64_t)t[0] << 40 | (uint64_t)t[1] << 32 | (uint64_t)t[2] << 24 | (uint64_t)t[3] << 16 |
                          (uint64_t)t[4] << 8 | t[5];
        }
        memcpy(p->block + p->used, in + at, 2 + n);
        p->used += 2 + n;
        p->count++;
        at += 2 + n;
    }
    if (end) {
        if (p->count) {
            o = mold_record(p, o, (uint16_t)p->count);
            p->seq += p->count;
            p->count = p->used = 0;
        }
        o = mold_record(p, o, 0xFFFF);
    }
    return (size_t)(o - out);
}
