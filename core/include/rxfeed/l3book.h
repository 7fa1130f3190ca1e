/*
 * The L3 book engine, protocol-neutral: orders by id and price levels, the
 * verbs every order-by-order feed maps onto (add / reduce (execute, cancel,
 * delete) / modify = reduce + add / clear), and price levels alone for
 * price-level feeds. Each protocol plugin's books glue their messages onto
 * it (the first-party ones: docs/books.md).
 *
 * Header-only: each including file compiles its own static copy, so the hot
 * path inlines as before, and chooses its types first:
 *   RXF_L3_PRICE  the price type (default int64_t; a feed with 32-bit prices: uint32_t)
 *   RXF_L3_BOOK   the type of a book's index in the includer's table of
 *                 books (default uint32_t; a feed with 16-bit instrument ids: uint16_t)
 * Two copies with different types cannot meet in one file.
 *
 * Orders live in a pool indexed through an open-addressing hash on the order
 * id. Price levels live in a second pool; each side of a book orders its
 * levels in a red-black tree by price (add/remove of a level is O(log n)
 * worst case, however deep the book), threaded best-to-worst (better/worse
 * links) so the best level is O(1) and depth traversal walks in price
 * order. An order keeps the index of its level: executions, cancels and
 * deletes never search. A new level finds its neighbours through the level
 * one tick away (the includer's tick, when set), else by a short walk from
 * the best (most activity is near the top), else by the tree. Orders within a level
 * form a FIFO (doubly linked through the order pool).
 *
 * The engine trusts its caller for the checks a feed needs (side, size,
 * duplicate ids, order known): the glue counts what it refuses.
 */
#ifndef RXFEED_L3BOOK_H
#define RXFEED_L3BOOK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rxfeed/hugemem.h"

#ifndef RXF_L3_PRICE
#define RXF_L3_PRICE int64_t
#endif
#ifndef RXF_L3_BOOK
#define RXF_L3_BOOK uint32_t
#endif

/* Level slot 0 is the tree's nil sentinel: index 0 means "none". */
typedef struct rxf_level {
    RXF_L3_PRICE price;
    uint32_t orders;
    uint64_t shares;
    int32_t head, tail;           /* FIFO of order slots, -1 empty */
    int32_t left, right, parent;  /* red-black tree by price (left = better) */
    int32_t better, worse;        /* neighbours in price order; the free list through worse */
    uint32_t side_id : 31;        /* the rxf_side it is on (its id): its key in the level index */
    uint32_t red : 1;             /* a bit field: with 32-bit prices a level fits 48 bytes */
} rxf_level;

typedef struct rxf_side {
    int32_t root, best, worst;    /* level slots, 0 when the side is empty */
    int32_t nth;                  /* with depth_n: the depth_n-th best level (0 while fewer) */
    uint32_t n;                   /* levels */
    uint32_t id;                  /* key of its levels in the level index; 0 until its first level */
} rxf_side;

typedef struct rxf_order {
    uint64_t ref;
    RXF_L3_PRICE price;
    uint32_t shares;
    RXF_L3_BOOK book;     /* the includer's index of the order's book */
    uint8_t side;         /* 0 bid, 1 ask */
    uint8_t live;
    int32_t prev, next;   /* FIFO within the level; the free list through next */
    int32_t level;        /* level slot */
} rxf_order;

/* One entry of the order index: the id folded to 32 bits, the pool slot (-1 empty). */
typedef struct rxf_l3_entry {
    uint32_t tag;
    int32_t slot;
} rxf_l3_entry;

/* One entry of the level index: a 32-bit tag of (side id, price) -> level slot (-1 empty). */
typedef struct rxf_l3_lv_entry {
    uint32_t tag;
    int32_t level;
} rxf_l3_lv_entry;

typedef struct rxf_l3 {
    rxf_order *orders;            /* pool */
    uint64_t n_orders, cap_orders;
    int32_t free_head;            /* free list through .next */
    rxf_l3_entry *hash;           /* order index (see below), a power of two entries */
    uint64_t hash_cap;            /* entries */
    uint64_t hash_live;           /* live orders */
    uint64_t peak_live;           /* most live orders at once */
    uint64_t hash_grows;          /* times the index doubled */
    rxf_level *lv;                /* level pool; slot 0 is the nil sentinel */
    uint64_t n_lv, cap_lv;
    int32_t lv_free;              /* free list through .worse, 0 empty */
    rxf_l3_lv_entry *lvx;         /* level index, a power of two entries */
    uint64_t lvx_cap, lvx_live;
    uint32_t next_side_id;        /* ids handed to sides so far */
    uint32_t depth_n;             /* > 0: keep each side's depth_n-th best level (nth) */
    RXF_L3_PRICE tick;            /* > 0: the usual price step; a new level looks for a level one tick away */
    int touched;                  /* set by add/reduce when a top-depth_n level changed */
    int oom;
} rxf_l3;

#define EMPTY (-1)
#define NIL 0               /* level slot 0: the tree's sentinel, "no level" */
#define POOL_MAX INT32_MAX  /* order and level slots are int32 */
#define FINGER_STEPS 8      /* levels walked from the best before searching the tree */

/* a is a better price than b on this side (bids: higher, asks: lower) */
#define BETTER(is_ask, a, b) ((is_ask) ? (a) < (b) : (a) > (b))

/* ---- growable arrays: one helper for every pool and output buffer ---- */

/* Pools and indexes come from rxf_huge_alloc (rxfeed/hugemem.h): the
   random reads of an order do not miss the TLB on every one. */

/* Double the array at *arrp (from first elements, at most max); 0, or -1 with *oom set. */
static int rxf_l3_grow(int *oom, void *arrp, uint64_t *cap, size_t elem, uint64_t first, uint64_t max) {
    uint64_t ncap = *cap ? *cap * 2 : first;
    if (ncap > max) ncap = max;
    void *old, *na = NULL;
    memcpy(&old, arrp, sizeof old);
    if (ncap > *cap && ncap * elem < RXF_HUGE_PAGE) na = realloc(old, ncap * elem);
    else if (ncap > *cap && (na = rxf_huge_alloc(ncap * elem)) != NULL) {
        if (old) memcpy(na, old, *cap * elem);
        free(old);
    }
    if (!na) { *oom = 1; return -1; }
    memcpy(arrp, &na, sizeof na);
    *cap = ncap;
    return 0;
}

/* ---- order reference index ----
 *
 * Open addressing with linear probing, 8-byte entries: a 32-bit tag (the
 * id folded to 32 bits) and the order's pool slot. A probe compares tags in
 * the index and touches the pool only for a tag that matches (to confirm the
 * full id), so looking up an id that is absent, as every add does, reads
 * index cache lines only. The home position keeps runs of 8 consecutive ids
 * in 8 consecutive entries, one cache line (feeds that number orders upward
 * add into the same line; runs of 64 made clusters so long that the
 * backward shift of a delete walked most of one) and scatters the runs with a multiplicative mix
 * (ids in any other pattern, random or strided, spread like a hash).
 * Deletes shift the entries that follow back (no tombstones), so the index
 * never fills with deleted ids and needs no rebuild to stay fast; it grows
 * (doubles, one rehash) only when live orders pass 70% of it, or never when
 * pre-sized (rxf_l3_init's expected orders).
 */

static inline uint64_t rxf_l3_mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

#define RXF_L3_RUN 3  /* ids per run kept adjacent in the index (1 << RXF_L3_RUN: one cache line of entries) */

static inline uint32_t rxf_l3_tag(uint64_t ref) { return (uint32_t)ref ^ (uint32_t)(ref >> 32); }

static inline uint64_t rxf_l3_home(uint32_t tag, uint64_t mask) {
    uint64_t run = (uint64_t)(tag >> RXF_L3_RUN) * 0x9E3779B97F4A7C15ULL;
    return ((run >> 20) << RXF_L3_RUN | (tag & ((1u << RXF_L3_RUN) - 1))) & mask;
}

/* The index position of live order ref, or -1. */
static inline int64_t rxf_l3_find(const rxf_l3 *e, uint64_t ref) {
    uint32_t tag = rxf_l3_tag(ref);
    uint64_t m = e->hash_cap - 1, i = rxf_l3_home(tag, m);
    for (;;) {
        rxf_l3_entry x = e->hash[i];
        if (x.slot == EMPTY) return -1;
        if (x.tag == tag && e->orders[x.slot].ref == ref) return (int64_t)i;
        i = (i + 1) & m;
    }
}

/* The empty position where ref would go (ref known absent). */
static inline uint64_t l3_free_pos(const rxf_l3 *e, uint32_t tag) {
    uint64_t m = e->hash_cap - 1, i = rxf_l3_home(tag, m);
    while (e->hash[i].slot != EMPTY) i = (i + 1) & m;
    return i;
}

/* Live order ref's index position (>= 0), or -(free position) - 1 where it would go. */
static inline int64_t rxf_l3_find_or_free(const rxf_l3 *e, uint64_t ref) {
    uint32_t tag = rxf_l3_tag(ref);
    uint64_t m = e->hash_cap - 1, i = rxf_l3_home(tag, m);
    for (;;) {
        rxf_l3_entry x = e->hash[i];
        if (x.slot == EMPTY) return -(int64_t)i - 1;
        if (x.tag == tag && e->orders[x.slot].ref == ref) return (int64_t)i;
        i = (i + 1) & m;
    }
}

/* ---- prefetch hints for a message still ahead (never change anything) ----
 * A glue that can see the ids of the next messages (their wire bytes in the
 * same packet) calls these a few messages early, each stage one step later,
 * so that the cache misses of an update overlap instead of following each
 * other: the index line, then the order, then its level and FIFO neighbours. */

/* A prefetch the compiler keeps: a function doing nothing but prefetches looks
   pure to GCC, which then deletes the call (its result is unused); the empty
   volatile asm that takes the address makes it a side effect. */
#define RXF_PREFETCH(addr, write) do {                          \
        const void *rxf_pf_ = (const void *)(addr);            \
        __builtin_prefetch(rxf_pf_, (write), 3);               \
        __asm__ volatile("" : : "r"(rxf_pf_));                 \
    } while (0)

static inline void rxf_l3_prefetch_index(const rxf_l3 *e, uint64_t ref) {
    RXF_PREFETCH(&e->hash[rxf_l3_home(rxf_l3_tag(ref), e->hash_cap - 1)], 0);
}

/* The slot the index names for ref (tags only, not confirmed), -1 if none in a short probe. */
static inline int32_t l3_slot_hint(const rxf_l3 *e, uint64_t ref) {
    uint32_t tag = rxf_l3_tag(ref);
    uint64_t m = e->hash_cap - 1, i = rxf_l3_home(tag, m);
    for (int k = 0; k < 8; k++, i = (i + 1) & m) {
        rxf_l3_entry x = e->hash[i];
        if (x.slot == EMPTY) return -1;
        if (x.tag == tag) return x.slot;
    }
    return -1;
}

static inline void rxf_l3_prefetch_order(const rxf_l3 *e, uint64_t ref) {
    int32_t s = l3_slot_hint(e, ref);
    if (s >= 0) RXF_PREFETCH(&e->orders[s], 1);
}

static inline void rxf_l3_prefetch_neighbours(const rxf_l3 *e, uint64_t ref) {
    int32_t s = l3_slot_hint(e, ref);
    if (s < 0 || (uint64_t)s >= e->n_orders) return;
    const rxf_order *o = &e->orders[s];
    if ((uint64_t)o->level < e->n_lv) RXF_PREFETCH(&e->lv[o->level], 1);
    if (o->prev >= 0 && (uint64_t)o->prev < e->n_orders) RXF_PREFETCH(&e->orders[o->prev], 1);
    if (o->next >= 0 && (uint64_t)o->next < e->n_orders) RXF_PREFETCH(&e->orders[o->next], 1);
}

/* Twice the index, every live entry moved over; 0 or -1 on OOM (nothing changed). */
static int l3_index_grow(rxf_l3 *e) {
    uint64_t ncap = e->hash_cap * 2;
    if (ncap > ((uint64_t)1 << 32)) { e->oom = 1; return -1; }
    rxf_l3_entry *nh = rxf_huge_alloc(ncap * sizeof(rxf_l3_entry)), *old = e->hash;
    if (!nh) { e->oom = 1; return -1; }
    for (uint64_t i = 0; i < ncap; i++) nh[i].slot = EMPTY;
    uint64_t ocap = e->hash_cap;
    e->hash = nh;
    e->hash_cap = ncap;
    for (uint64_t i = 0; i < ocap; i++)
        if (old[i].slot != EMPTY) e->hash[l3_free_pos(e, old[i].tag)] = old[i];
    free(old);
    e->hash_grows++;
    return 0;
}

/* Room for one more live order (grows the index past 70% full); 0 or -1 on OOM. */
static inline int rxf_l3_reserve(rxf_l3 *e) {
    return (e->hash_live + 1) * 10 > e->hash_cap * 7 ? l3_index_grow(e) : 0;
}

/* Take the entry at position i out, shifting back the entries of its probe run. */
static void l3_index_remove(rxf_l3 *e, uint64_t i) {
    rxf_l3_entry *H = e->hash;
    uint64_t m = e->hash_cap - 1, j = i;
    for (;;) {
        j = (j + 1) & m;
        if (H[j].slot == EMPTY) break;
        uint64_t k = rxf_l3_home(H[j].tag, m);
        /* H[j] may fill the hole at i unless its home lies cyclically in (i, j] */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        H[i] = H[j];
        i = j;
    }
    H[i].slot = EMPTY;
    e->hash_live--;
}

/* ---- pools ---- */

static int32_t l3_order_alloc(rxf_l3 *e) {
    if (e->free_head >= 0) {
        int32_t s = e->free_head;
        e->free_head = e->orders[s].next;
        return s;
    }
    if (e->n_orders == e->cap_orders &&
        rxf_l3_grow(&e->oom, &e->orders, &e->cap_orders, sizeof(rxf_order), 1u << 16, POOL_MAX) != 0)
        return -1;
    return (int32_t)e->n_orders++;
}

static void l3_order_free(rxf_l3 *e, int32_t s) {
    e->orders[s].live = 0;
    e->orders[s].next = e->free_head;
    e->free_head = s;
}

/* An empty level at price p (not yet in a tree), NIL on OOM. May move e->lv. */
static int32_t l3_level_alloc(rxf_l3 *e, RXF_L3_PRICE p) {
    int32_t z = e->lv_free;
    if (z != NIL) e->lv_free = e->lv[z].worse;
    else if (e->n_lv < e->cap_lv || rxf_l3_grow(&e->oom, &e->lv, &e->cap_lv, sizeof(rxf_level), 4096, POOL_MAX) == 0)
        z = (int32_t)e->n_lv++;
    else
        return NIL;
    rxf_level *l = &e->lv[z];
    memset(l, 0, sizeof(*l));
    l->price = p;
    l->head = l->tail = -1;
    return z;
}

/* ---- red-black tree of levels (CLRS, slot 0 as the sentinel), left = better ---- */

static void l3_rotate(rxf_level *L, rxf_side *sd, int32_t x, int left) {
    int32_t y = left ? L[x].right : L[x].left;
    int32_t inner = left ? L[y].left : L[y].right;
    if (left) L[x].right = inner; else L[x].left = inner;
    if (inner != NIL) L[inner].parent = x;
    int32_t p = L[x].parent;
    L[y].parent = p;
    if (p == NIL) sd->root = y;
    else if (x == L[p].left) L[p].left = y;
    else L[p].right = y;
    if (left) L[y].left = x; else L[y].right = x;
    L[x].parent = y;
}

static void l3_insert_fixup(rxf_level *L, rxf_side *sd, int32_t z) {
    while (L[L[z].parent].red) {
        int32_t p = L[z].parent, g = L[p].parent;
        int p_left = p == L[g].left;
        int32_t uncle = p_left ? L[g].right : L[g].left;
        if (L[uncle].red) {
            L[p].red = 0; L[uncle].red = 0; L[g].red = 1;
            z = g;
            continue;
        }
        if (z == (p_left ? L[p].right : L[p].left)) {
            z = p;
            l3_rotate(L, sd, z, p_left);
            p = L[z].parent;
        }
        L[p].red = 0; L[g].red = 1;
        l3_rotate(L, sd, g, !p_left);
    }
    L[sd->root].red = 0;
}

static void l3_transplant(rxf_level *L, rxf_side *sd, int32_t u, int32_t v) {
    int32_t p = L[u].parent;
    if (p == NIL) sd->root = v;
    else if (u == L[p].left) L[p].left = v;
    else L[p].right = v;
    L[v].parent = p; /* also on the sentinel: delete_fixup reads it */
}

static void l3_delete_fixup(rxf_level *L, rxf_side *sd, int32_t x) {
    while (x != sd->root && !L[x].red) {
        int32_t p = L[x].parent;
        int x_left = x == L[p].left;
        int32_t w = x_left ? L[p].right : L[p].left;
        if (L[w].red) {
            L[w].red = 0; L[p].red = 1;
            l3_rotate(L, sd, p, x_left);
            w = x_left ? L[p].right : L[p].left;
        }
        int32_t near = x_left ? L[w].left : L[w].right, far = x_left ? L[w].right : L[w].left;
        if (!L[near].red && !L[far].red) {
            L[w].red = 1;
            x = p;
            continue;
        }
        if (!L[far].red) {
            L[near].red = 0; L[w].red = 1;
            l3_rotate(L, sd, w, !x_left);
            w = x_left ? L[p].right : L[p].left;
            far = x_left ? L[w].right : L[w].left;
        }
        L[w].red = L[p].red; L[p].red = 0; L[far].red = 0;
        l3_rotate(L, sd, p, x_left);
        x = sd->root;
    }
    L[x].red = 0;
}

/* Unlink z from the tree (nodes are relinked, never copied: orders point at them). */
static void l3_tree_delete(rxf_level *L, rxf_side *sd, int32_t z) {
    int32_t y = z, x;
    uint8_t y_red = L[y].red;
    if (L[z].left == NIL) {
        x = L[z].right;
        l3_transplant(L, sd, z, x);
    } else if (L[z].right == NIL) {
        x = L[z].left;
        l3_transplant(L, sd, z, x);
    } else {
        y = L[z].worse; /* the in-order successor: the leftmost of the right subtree */
        y_red = L[y].red;
        x = L[y].right;
        if (L[y].parent == z) L[x].parent = y;
        else {
            l3_transplant(L, sd, y, x);
            L[y].right = L[z].right;
            L[L[y].right].parent = y;
        }
        l3_transplant(L, sd, z, y);
        L[y].left = L[z].left;
        L[L[y].left].parent = y;
        L[y].red = L[z].red;
    }
    if (!y_red) l3_delete_fixup(L, sd, x);
}

/* ---- level index: (side, price) -> level, so an order's price finds its level in one probe ---- */

/* 32 bits of a mix of (side id, price): the entry's tag, and its home position. */
static inline uint32_t l3_lvx_tag(uint32_t side_id, uint64_t price) {
    return (uint32_t)(rxf_l3_mix(price * 0x9E3779B97F4A7C15ULL ^ side_id) >> 32);
}

static inline uint64_t l3_lvx_home(uint32_t tag, uint64_t mask) {
    return ((uint64_t)tag * 0x9E3779B97F4A7C15ULL >> 16) & mask;
}

/* The level at price on the side with this id, NIL if none (a tag match is confirmed on the level). */
static inline int32_t l3_lvx_find(const rxf_l3 *e, uint32_t side_id, uint64_t price) {
    uint32_t tag = l3_lvx_tag(side_id, price);
    uint64_t m = e->lvx_cap - 1, i = l3_lvx_home(tag, m);
    for (;; i = (i + 1) & m) {
        rxf_l3_lv_entry x = e->lvx[i];
        if (x.level < 0) return NIL;
        if (x.tag == tag && (uint64_t)e->lv[x.level].price == price && e->lv[x.level].side_id == side_id)
            return x.level;
    }
}

static inline void l3_lvx_put(rxf_l3_lv_entry *t, uint64_t cap, rxf_l3_lv_entry x) {
    uint64_t m = cap - 1, i = l3_lvx_home(x.tag, m);
    while (t[i].level >= 0) i = (i + 1) & m;
    t[i] = x;
}

/* Prefetch hints for an add at price on sd (see the order prefetches above):
   the level-index line, then (a later message) the level itself, then the
   order at its back. With a tick, also for a new price: the index lines of
   the prices a tick either side, their levels, the levels next to those. */
static inline void l3_prefetch_entry(const rxf_l3 *e, const rxf_side *sd, RXF_L3_PRICE price) {
    RXF_PREFETCH(&e->lvx[l3_lvx_home(l3_lvx_tag(sd->id, (uint64_t)price), e->lvx_cap - 1)], 0);
}

static inline void rxf_l3_prefetch_level_entry(const rxf_l3 *e, const rxf_side *sd, RXF_L3_PRICE price) {
    if (!sd->id) return;
    l3_prefetch_entry(e, sd, price);
    if (!e->tick) return;
    l3_prefetch_entry(e, sd, (RXF_L3_PRICE)(price - e->tick));
    l3_prefetch_entry(e, sd, (RXF_L3_PRICE)(price + e->tick));
}

/* The level a tag names at price on sd (not confirmed), NIL if none in a short probe. */
static inline int32_t l3_level_hint(const rxf_l3 *e, const rxf_side *sd, RXF_L3_PRICE price) {
    if (!sd->id) return NIL;
    uint32_t tag = l3_lvx_tag(sd->id, (uint64_t)price);
    uint64_t m = e->lvx_cap - 1, i = l3_lvx_home(tag, m);
    for (int k = 0; k < 8; k++, i = (i + 1) & m) {
        rxf_l3_lv_entry x = e->lvx[i];
        if (x.level < 0) return NIL;
        if (x.tag == tag) return (uint64_t)x.level < e->n_lv ? x.level : NIL;
    }
    return NIL;
}

static inline void rxf_l3_prefetch_level(const rxf_l3 *e, const rxf_side *sd, RXF_L3_PRICE price) {
    int32_t z = l3_level_hint(e, sd, price);
    if (z != NIL) { RXF_PREFETCH(&e->lv[z], 1); return; }
    if (!e->tick) return;
    for (int k = 0; k < 2; k++) {
        z = l3_level_hint(e, sd, (RXF_L3_PRICE)(k ? price + e->tick : price - e->tick));
        if (z != NIL) RXF_PREFETCH(&e->lv[z], 1);
    }
}

/* ... then the order at the back of that level (an add links behind it); a new price: the neighbours' neighbours. */
static inline void rxf_l3_prefetch_level_tail(const rxf_l3 *e, const rxf_side *sd, int is_ask, RXF_L3_PRICE price) {
    int32_t z = l3_level_hint(e, sd, price);
    if (z != NIL) {
        int32_t t = e->lv[z].tail;
        if (t >= 0 && (uint64_t)t < e->n_orders) RXF_PREFETCH(&e->orders[t], 1);
        return;
    }
    if (!e->tick) return;
    for (int k = 0; k < 2; k++) {
        z = l3_level_hint(e, sd, (RXF_L3_PRICE)(k ? price + e->tick : price - e->tick));
        if (z == NIL) continue;
        /* the level on price's side of z: below price its higher neighbour, above it its lower one */
        int32_t nb = (k ? !is_ask : is_ask) ? e->lv[z].worse : e->lv[z].better;
        if ((uint64_t)nb < e->n_lv) RXF_PREFETCH(&e->lv[nb], 1);
    }
}

/* Level z (price, side id set) into the index (doubling it past 3/4 full); 0 or -1 on OOM. */
static int l3_lvx_insert(rxf_l3 *e, int32_t z) {
    if ((e->lvx_live + 1) * 4 > e->lvx_cap * 3) {
        uint64_t ncap = e->lvx_cap * 2;
        rxf_l3_lv_entry *nt = rxf_huge_alloc(ncap * sizeof(*nt));
        if (!nt) { e->oom = 1; return -1; }
        for (uint64_t i = 0; i < ncap; i++) nt[i].level = -1;
        for (uint64_t i = 0; i < e->lvx_cap; i++)
            if (e->lvx[i].level >= 0) l3_lvx_put(nt, ncap, e->lvx[i]);
        free(e->lvx);
        e->lvx = nt;
        e->lvx_cap = ncap;
    }
    rxf_l3_lv_entry x = {l3_lvx_tag(e->lv[z].side_id, (uint64_t)e->lv[z].price), z};
    l3_lvx_put(e->lvx, e->lvx_cap, x);
    e->lvx_live++;
    return 0;
}

/* Level z out of the index (backward shift, as the order index). */
static void l3_lvx_remove(rxf_l3 *e, int32_t z) {
    rxf_l3_lv_entry *T = e->lvx;
    uint64_t m = e->lvx_cap - 1, i = l3_lvx_home(l3_lvx_tag(e->lv[z].side_id, (uint64_t)e->lv[z].price), m), j;
    while (T[i].level != z) {
        if (T[i].level < 0) return;  /* not indexed (cannot happen) */
        i = (i + 1) & m;
    }
    for (j = i;;) {
        j = (j + 1) & m;
        if (T[j].level < 0) break;
        uint64_t k = l3_lvx_home(T[j].tag, m);
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        T[i] = T[j];
        i = j;
    }
    T[i].level = -1;
    e->lvx_live--;
}

/* ---- levels of one side ---- */

/* Hang new level z under parent (as its left/better or right/worse child) and thread it in. */
static void l3_level_link(rxf_l3 *e, rxf_side *sd, int is_ask, int32_t z, int32_t parent, int left) {
    rxf_level *L = e->lv;
    L[z].parent = parent;
    L[z].red = 1;
    if (parent == NIL) { sd->root = z; L[z].better = L[z].worse = NIL; }
    else if (left) { L[parent].left = z; L[z].worse = parent; L[z].better = L[parent].better; }
    else { L[parent].right = z; L[z].better = parent; L[z].worse = L[parent].worse; }
    if (L[z].better != NIL) L[L[z].better].worse = z; else sd->best = z;
    if (L[z].worse != NIL) L[L[z].worse].better = z; else sd->worst = z;
    l3_insert_fixup(L, sd, z);
    sd->n++;
    /* the depth_n-th best level moves up by one when z lands above it */
    if (!e->depth_n || sd->n < e->depth_n) return;
    if (sd->n == e->depth_n) sd->nth = sd->worst;
    else if (BETTER(is_ask, L[z].price, L[sd->nth].price)) sd->nth = L[sd->nth].better;
}

/* Take an empty level z off its side and back to the pool. */
static void rxf_l3_level_remove(rxf_l3 *e, rxf_side *sd, int is_ask, int32_t z) {
    rxf_level *L = e->lv;
    if (e->depth_n && sd->n > e->depth_n) {
        if (z == sd->nth || BETTER(is_ask, L[z].price, L[sd->nth].price)) sd->nth = L[sd->nth].worse;
    } else
        sd->nth = NIL;
    l3_tree_delete(L, sd, z);
    l3_lvx_remove(e, z);
    int32_t bt = L[z].better, wr = L[z].worse;
    if (bt != NIL) L[bt].worse = wr; else sd->best = wr;
    if (wr != NIL) L[wr].better = bt; else sd->worst = bt;
    sd->n--;
    if (e->depth_n && sd->n < e->depth_n) sd->nth = NIL;
    L[z].worse = e->lv_free;
    e->lv_free = z;
}

/* A new level at p hung under parent (its left/better child when left), indexed; NIL on OOM. */
static int32_t l3_level_new(rxf_l3 *e, rxf_side *sd, int is_ask, RXF_L3_PRICE p, int32_t parent, int left) {
    int32_t z = l3_level_alloc(e, p);
    if (z == NIL) return NIL;
    e->lv[z].side_id = sd->id;
    if (l3_lvx_insert(e, z) != 0) {
        e->lv[z].worse = e->lv_free;
        e->lv_free = z;
        return NIL;
    }
    l3_level_link(e, sd, is_ask, z, parent, left);
    return z;
}

/* The prices one tick worse and one tick better than p on this side; 0 for one past the price range. */
static inline int l3_tick_prices(const rxf_l3 *e, int is_ask, RXF_L3_PRICE p, RXF_L3_PRICE *worse,
                                 RXF_L3_PRICE *better) {
    RXF_L3_PRICE up = (RXF_L3_PRICE)(p + e->tick), down = (RXF_L3_PRICE)(p - e->tick);
    *worse = is_ask ? up : down;
    *better = is_ask ? down : up;
    return e->tick > 0 && up > p && down < p;
}

/* A new level's neighbours in price order without a walk: most new levels
   appear one tick from a level that exists (books are dense near the
   touch). The level one tick worse (else one tick better) is looked up in
   the level index; when its neighbour on p's side lies beyond p, p goes
   between the two. 0 when neither settles it (no level a tick away, or one
   between them: a finer step): the caller walks and searches. */
static inline int l3_tick_neighbours(const rxf_l3 *e, const rxf_side *sd, int is_ask, RXF_L3_PRICE p,
                                     int32_t *better_nb, int32_t *worse_nb) {
    RXF_L3_PRICE wp, bp;
    if (!l3_tick_prices(e, is_ask, p, &wp, &bp)) return 0;
    const rxf_level *L = e->lv;
    int32_t w = l3_lvx_find(e, sd->id, (uint64_t)wp);
    if (w != NIL) {
        int32_t bt = L[w].better;
        if (bt != NIL && !BETTER(is_ask, L[bt].price, p)) return 0;
        *worse_nb = w; *better_nb = bt;
        return 1;
    }
    int32_t b = l3_lvx_find(e, sd->id, (uint64_t)bp);
    if (b == NIL) return 0;
    int32_t wr = L[b].worse;
    if (wr != NIL && !BETTER(is_ask, p, L[wr].price)) return 0;
    *better_nb = b; *worse_nb = wr;
    return 1;
}

/* The level at price p, added if absent; NIL on OOM. Its neighbours from
   a level one tick away, else a short walk from the best (most adds land
   near the top), else a search from the root. */
static int32_t rxf_l3_level_for_price(rxf_l3 *e, rxf_side *sd, int is_ask, RXF_L3_PRICE p) {
    if (!sd->id) sd->id = ++e->next_side_id & 0x7fffffffu;
    int32_t hit = l3_lvx_find(e, sd->id, (uint64_t)p);
    if (hit != NIL) return hit;
    rxf_level *L = e->lv;
    int32_t worse_nb = sd->best, better_nb = NIL, parent = NIL;
    int left = 0;
    if (l3_tick_neighbours(e, sd, is_ask, p, &better_nb, &worse_nb)) {
        /* adjacent in price order: p hangs left of worse_nb if free, else right of better_nb */
        if (worse_nb != NIL && L[worse_nb].left == NIL) { parent = worse_nb; left = 1; }
        else { parent = better_nb; left = 0; }
        return l3_level_new(e, sd, is_ask, p, parent, left);
    }
    for (int k = 0; worse_nb != NIL && k < FINGER_STEPS; k++) {
        RXF_L3_PRICE q = L[worse_nb].price;
        if (q == p) return worse_nb;
        if (BETTER(is_ask, p, q)) break;
        better_nb = worse_nb;
        worse_nb = L[worse_nb].worse;
    }
    if (worse_nb != NIL && !BETTER(is_ask, p, L[worse_nb].price)) {
        /* deeper than the finger: p lies beyond worse_nb */
        for (int32_t x = sd->root; x != NIL; x = left ? L[x].left : L[x].right) {
            if (L[x].price == p) return x;
            parent = x;
            left = BETTER(is_ask, p, L[x].price);
        }
    } else if (worse_nb != NIL && L[worse_nb].left == NIL) {
        parent = worse_nb; left = 1;   /* just above worse_nb */
    } else {
        parent = better_nb; left = 0;  /* just below better_nb (its right child is free), or an empty side */
    }
    return l3_level_new(e, sd, is_ask, p, parent, left);
}

static inline int rxf_l3_in_top_depth(const rxf_l3 *e, const rxf_side *sd, int is_ask, RXF_L3_PRICE price) {
    return e->depth_n && (sd->n <= e->depth_n || !BETTER(is_ask, e->lv[sd->nth].price, price));
}


/* The live order at index position h (from rxf_l3_find). */
static inline rxf_order *rxf_l3_at(const rxf_l3 *e, int64_t h) { return &e->orders[e->hash[h].slot]; }

/* Take k shares off the order in index position h (all of it when k >= remaining). */
static void rxf_l3_reduce(rxf_l3 *e, rxf_side *sd, int64_t h, uint32_t k) {
    int32_t s = e->hash[h].slot;
    rxf_order *o = &e->orders[s];
    rxf_level *lv = &e->lv[o->level];
    if (rxf_l3_in_top_depth(e, sd, o->side, o->price)) e->touched = 1;
    if (k < o->shares) {
        o->shares -= k;
        lv->shares -= k;
        return;
    }
    lv->shares -= o->shares;
    lv->orders--;
    if (o->prev >= 0) e->orders[o->prev].next = o->next; else lv->head = o->next;
    if (o->next >= 0) e->orders[o->next].prev = o->prev; else lv->tail = o->prev;
    if (lv->orders == 0) rxf_l3_level_remove(e, sd, o->side, o->level);
    l3_index_remove(e, (uint64_t)h);
    l3_order_free(e, s);
}

static int32_t rxf_l3_find_level(const rxf_l3 *e, const rxf_side *sd, int side, RXF_L3_PRICE price) {
    (void)side;
    return sd->id ? l3_lvx_find(e, sd->id, (uint64_t)price) : NIL;
}

/* Black height of the subtree at x, -1 when a rule is broken; walks in order,
   comparing each node with *cursor (the threads) and advancing it. */
static int l3_check_tree(const rxf_l3 *e, int is_ask, int32_t x, int32_t parent, int32_t *cursor, int depth) {
    const rxf_level *L = e->lv;
    if (x == NIL) return 1;
    if (depth > 128 || L[x].parent != parent) return -1;
    if (L[x].red && (L[L[x].left].red || L[L[x].right].red)) return -1;
    int hl = l3_check_tree(e, is_ask, L[x].left, x, cursor, depth + 1);
    if (hl < 0 || *cursor != x) return -1;
    *cursor = L[x].worse;
    int hr = l3_check_tree(e, is_ask, L[x].right, x, cursor, depth + 1);
    if (hr != hl) return -1;
    return hl + !L[x].red;
}

/* The threads of one side: strictly worsening prices, FIFOs that add up
   (by_order; else levels without orders, each with a size), n and nth right. */
static const char *l3_check_threads(const rxf_l3 *e, const rxf_side *sd, int is_ask, RXF_L3_BOOK book, int by_order) {
    const rxf_level *L = e->lv;
    uint32_t n = 0;
    int32_t prev = NIL, nth = NIL;
    for (int32_t x = sd->best; x != NIL; prev = x, x = L[x].worse) {
        if (L[x].better != prev) return "a level's better link is wrong";
        if (prev != NIL && !BETTER(is_ask, L[prev].price, L[x].price)) return "levels out of price order";
        uint64_t shares = 0;
        uint32_t orders = 0;
        for (int32_t s = L[x].head; s >= 0; s = e->orders[s].next, orders++) {
            const rxf_order *o = &e->orders[s];
            if (!o->live || o->level != x || o->book != book || o->side != is_ask || o->price != L[x].price)
                return "an order in a level's FIFO does not belong to it";
            if (o->shares == 0) return "an order with no shares is on the book";
            shares += o->shares;
        }
        if (by_order ? orders == 0 || orders != L[x].orders || shares != L[x].shares
                     : L[x].orders != 0 || L[x].head != -1 || L[x].shares == 0)
            return "a level's counts are wrong";
        if (++n == e->depth_n) nth = x;
    }
    if (prev != sd->worst) return "the worst level is wrong";
    if (n != sd->n) return "a side's level count is wrong";
    if (sd->nth != (e->depth_n && n >= e->depth_n ? nth : NIL)) return "the depth boundary is wrong";
    return NULL;
}


/* ---- orders ---- */

#define RXF_L3_DUPLICATE 1  /* rxf_l3_add: ref is live already (nothing changed) */

/* A new order at the back of its level (the caller checked side and size);
   0, RXF_L3_DUPLICATE when ref is live, or -1 on OOM (nothing changed). One
   index search finds a live ref or the free position the new entry takes. */
static int rxf_l3_add(rxf_l3 *e, rxf_side *sd, RXF_L3_BOOK book, uint64_t ref, int is_ask, uint32_t shares,
                      RXF_L3_PRICE px) {
    if (rxf_l3_reserve(e) != 0) return -1;  /* the index can only move here: search after it */
    int64_t at = rxf_l3_find_or_free(e, ref);
    if (at >= 0) return RXF_L3_DUPLICATE;
    int32_t s = l3_order_alloc(e);
    if (s < 0) return -1;
    int32_t li = rxf_l3_level_for_price(e, sd, is_ask, px);
    if (li == NIL) { l3_order_free(e, s); return -1; }
    rxf_order *o = &e->orders[s];
    rxf_level *lv = &e->lv[li];
    o->ref = ref; o->price = px; o->shares = shares; o->book = book; o->side = (uint8_t)is_ask; o->live = 1;
    o->level = li;
    o->prev = lv->tail; o->next = -1;
    if (lv->tail >= 0) e->orders[lv->tail].next = s; else lv->head = s;
    lv->tail = s;
    lv->orders++;
    lv->shares += shares;
    if (rxf_l3_in_top_depth(e, sd, is_ask, px)) e->touched = 1;
    rxf_l3_entry *x = &e->hash[-at - 1];  /* levels live in their own index: this position is still free */
    x->tag = rxf_l3_tag(ref);
    x->slot = s;
    if (++e->hash_live > e->peak_live) e->peak_live = e->hash_live;
    return 0;
}

/* The live order ref, or NULL; *h its hash slot (for rxf_l3_reduce). */
static inline rxf_order *rxf_l3_order(rxf_l3 *e, uint64_t ref, int64_t *h) {
    *h = rxf_l3_find(e, ref);
    return *h < 0 ? NULL : rxf_l3_at(e, *h);
}

/* Every order of one side off the book (a clear); the side ends empty. */
static void rxf_l3_clear_side(rxf_l3 *e, rxf_side *sd, int is_ask) {
    while (sd->best != NIL) {
        int32_t s = e->lv[sd->best].head;
        int64_t h = s >= 0 ? rxf_l3_find(e, e->orders[s].ref) : -1;
        if (h >= 0) rxf_l3_reduce(e, sd, h, UINT32_MAX);
        else rxf_l3_level_remove(e, sd, is_ask, sd->best); /* a level without orders */
    }
}

/* ---- levels without orders (price-level feeds) ---- */

/* Set the level at px to size (0 removes it); 0, or -1 on OOM. */
static int rxf_l3_set_level(rxf_l3 *e, rxf_side *sd, int is_ask, RXF_L3_PRICE px, uint64_t size) {
    if (size == 0) {
        int32_t z = rxf_l3_find_level(e, sd, is_ask, px);
        if (z != NIL) {
            if (rxf_l3_in_top_depth(e, sd, is_ask, px)) e->touched = 1;
            rxf_l3_level_remove(e, sd, is_ask, z);
        }
        return 0;
    }
    int32_t z = rxf_l3_level_for_price(e, sd, is_ask, px);
    if (z == NIL) return -1;
    e->lv[z].shares = size;
    if (rxf_l3_in_top_depth(e, sd, is_ask, px)) e->touched = 1;
    return 0;
}

/* Every level of one side off (price-level books). */
static void rxf_l3_clear_levels(rxf_l3 *e, rxf_side *sd, int is_ask) {
    while (sd->best != NIL) rxf_l3_level_remove(e, sd, is_ask, sd->best);
}

/* ---- life cycle and checks ---- */

/* Empty books; expected_orders > 0 sizes the order pool and index for that
   many live orders at once, so they never grow below it (0: start small). */
static int rxf_l3_init_sized(rxf_l3 *e, uint32_t depth_n, uint64_t expected_orders) {
    memset(e, 0, sizeof(*e));
    e->free_head = -1;
    e->depth_n = depth_n;
    if (expected_orders > POOL_MAX) expected_orders = POOL_MAX;
    e->hash_cap = 1u << 17;
    while (e->hash_cap * 7 < expected_orders * 10) e->hash_cap *= 2;
    e->hash = rxf_huge_alloc(e->hash_cap * sizeof(rxf_l3_entry));
    uint64_t first = expected_orders > (1u << 16) ? expected_orders : 1u << 16;
    if (!e->hash || rxf_l3_grow(&e->oom, &e->orders, &e->cap_orders, sizeof(rxf_order), first, POOL_MAX) != 0 ||
        rxf_l3_grow(&e->oom, &e->lv, &e->cap_lv, sizeof(rxf_level), 4096, POOL_MAX) != 0)
        return -1;
    memset(&e->lv[NIL], 0, sizeof(rxf_level));
    e->n_lv = 1;
    e->lvx_cap = 4096;
    if (!(e->lvx = malloc(e->lvx_cap * sizeof(rxf_l3_lv_entry)))) return -1;
    for (uint64_t i = 0; i < e->lvx_cap; i++) e->lvx[i].level = -1;
    for (uint64_t i = 0; i < e->hash_cap; i++) e->hash[i].slot = EMPTY;
    return 0;
}

static int rxf_l3_init(rxf_l3 *e, uint32_t depth_n) { return rxf_l3_init_sized(e, depth_n, 0); }

/* Bytes of memory the engine has written (its pools up to their high-water
   marks and the whole index): what live orders cost, untouched capacity aside. */
static uint64_t rxf_l3_bytes_used(const rxf_l3 *e) {
    return e->n_orders * sizeof(rxf_order) + e->hash_cap * sizeof(rxf_l3_entry) + e->n_lv * sizeof(rxf_level) +
           e->lvx_cap * sizeof(rxf_l3_lv_entry);
}

static void rxf_l3_free(rxf_l3 *e) {
    free(e->orders); free(e->hash); free(e->lv); free(e->lvx);
    memset(e, 0, sizeof(*e));
}

/* One side's structure checked; NULL when sound, else what is wrong (static text). */
static const char *rxf_l3_check_side(const rxf_l3 *e, const rxf_side *sd, int is_ask, RXF_L3_BOOK book,
                                     int by_order) {
    if (e->lv[NIL].red || e->lv[NIL].price || e->lv[NIL].shares) return "the sentinel level was written";
    if (sd->root == NIL && sd->best == NIL && sd->n == 0) return NULL;
    int32_t cursor = sd->best;
    if (e->lv[sd->root].red || l3_check_tree(e, is_ask, sd->root, NIL, &cursor, 0) < 0 || cursor != NIL)
        return "a level tree breaks a red-black or order rule";
    return l3_check_threads(e, sd, is_ask, book, by_order);
}

#endif
