/* See book.h. */
#include "book.h"
#include "rxfeed/hist.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY (-1)
#define TOMB (-2)
#define NIL 0               /* level slot 0: the tree's sentinel, "no level" */
#define POOL_MAX INT32_MAX  /* order and level slots are int32 */
#define FINGER_STEPS 8      /* levels walked from the best before searching the tree */

/* a is a better price than b on this side (bids: higher, asks: lower) */
#define BETTER(is_ask, a, b) ((is_ask) ? (a) < (b) : (a) > (b))

/* ---- growable arrays: one helper for every pool and output buffer ---- */

/* Double the array at *arrp (from first elements, at most max); 0, or -1 with b->oom set. */
static int grow(rxf_books *b, void *arrp, uint64_t *cap, size_t elem, uint64_t first, uint64_t max) {
    uint64_t ncap = *cap ? *cap * 2 : first;
    if (ncap > max) ncap = max;
    void *old, *na = NULL;
    memcpy(&old, arrp, sizeof old);
    if (ncap > *cap) na = realloc(old, ncap * elem);
    if (!na) { b->oom = 1; return -1; }
    memcpy(arrp, &na, sizeof na);
    *cap = ncap;
    return 0;
}

/* ---- order reference hash ---- */

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static int64_t hash_find(const rxf_books *b, uint64_t ref) {
    uint64_t m = b->hash_cap - 1, i = mix(ref) & m;
    for (;;) {
        int32_t s = b->hash[i];
        if (s == EMPTY) return -1;
        if (s >= 0 && b->orders[s].ref == ref) return (int64_t)i;
        i = (i + 1) & m;
    }
}

/* Rebuild the table without tombstones: twice the size when live orders
   fill more than 35% of it, else the same size (deleted references must not
   make it grow: a day has far more orders than are ever live at once). */
static int hash_rebuild(rxf_books *b) {
    uint64_t ncap = (b->hash_live + 1) * 20 > b->hash_cap * 7 ? b->hash_cap * 2 : b->hash_cap;
    int32_t *nh = malloc(ncap * sizeof(int32_t));
    if (!nh) { b->oom = 1; return -1; }
    for (uint64_t i = 0; i < ncap; i++) nh[i] = EMPTY;
    int32_t *old = b->hash;
    uint64_t ocap = b->hash_cap;
    b->hash = nh;
    b->hash_cap = ncap;
    b->hash_used = 0;
    for (uint64_t i = 0; i < ocap; i++)
        if (old[i] >= 0) {
            uint64_t m = ncap - 1, j = mix(b->orders[old[i]].ref) & m;
            while (nh[j] != EMPTY) j = (j + 1) & m;
            nh[j] = old[i];
            b->hash_used++;
        }
    free(old);
    return 0;
}

/* Room for one more entry (grows the table); 0 or -1 on OOM. */
static inline int hash_reserve(rxf_books *b) {
    return (b->hash_used + 1) * 10 > b->hash_cap * 7 ? hash_rebuild(b) : 0;
}

/* After hash_reserve: cannot fail. */
static void hash_insert(rxf_books *b, uint64_t ref, int32_t slot) {
    uint64_t m = b->hash_cap - 1, i = mix(ref) & m;
    while (b->hash[i] >= 0) i = (i + 1) & m;
    if (b->hash[i] == EMPTY) b->hash_used++;
    b->hash[i] = slot;
    b->hash_live++;
}

/* ---- pools ---- */

static int32_t order_alloc(rxf_books *b) {
    if (b->free_head >= 0) {
        int32_t s = b->free_head;
        b->free_head = b->orders[s].next;
        return s;
    }
    if (b->n_orders == b->cap_orders &&
        grow(b, &b->orders, &b->cap_orders, sizeof(rxf_order), 1u << 16, POOL_MAX) != 0)
        return -1;
    return (int32_t)b->n_orders++;
}

static void order_free(rxf_books *b, int32_t s) {
    b->orders[s].live = 0;
    b->orders[s].next = b->free_head;
    b->free_head = s;
}

/* An empty level at price p (not yet in a tree), NIL on OOM. May move b->lv. */
static int32_t level_alloc(rxf_books *b, uint32_t p) {
    int32_t z = b->lv_free;
    if (z != NIL) b->lv_free = b->lv[z].worse;
    else if (b->n_lv < b->cap_lv || grow(b, &b->lv, &b->cap_lv, sizeof(rxf_level), 4096, POOL_MAX) == 0)
        z = (int32_t)b->n_lv++;
    else
        return NIL;
    rxf_level *l = &b->lv[z];
    memset(l, 0, sizeof(*l));
    l->price = p;
    l->head = l->tail = -1;
    return z;
}

/* ---- red-black tree of levels (CLRS, slot 0 as the sentinel), left = better ---- */

static void rotate(rxf_level *L, rxf_side *sd, int32_t x, int left) {
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

static void insert_fixup(rxf_level *L, rxf_side *sd, int32_t z) {
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
            rotate(L, sd, z, p_left);
            p = L[z].parent;
        }
        L[p].red = 0; L[g].red = 1;
        rotate(L, sd, g, !p_left);
    }
    L[sd->root].red = 0;
}

static void transplant(rxf_level *L, rxf_side *sd, int32_t u, int32_t v) {
    int32_t p = L[u].parent;
    if (p == NIL) sd->root = v;
    else if (u == L[p].left) L[p].left = v;
    else L[p].right = v;
    L[v].parent = p; /* also on the sentinel: delete_fixup reads it */
}

static void delete_fixup(rxf_level *L, rxf_side *sd, int32_t x) {
    while (x != sd->root && !L[x].red) {
        int32_t p = L[x].parent;
        int x_left = x == L[p].left;
        int32_t w = x_left ? L[p].right : L[p].left;
        if (L[w].red) {
            L[w].red = 0; L[p].red = 1;
            rotate(L, sd, p, x_left);
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
            rotate(L, sd, w, !x_left);
            w = x_left ? L[p].right : L[p].left;
            far = x_left ? L[w].right : L[w].left;
        }
        L[w].red = L[p].red; L[p].red = 0; L[far].red = 0;
        rotate(L, sd, p, x_left);
        x = sd->root;
    }
    L[x].red = 0;
}

/* Unlink z from the tree (nodes are relinked, never copied: orders point at them). */
static void tree_delete(rxf_level *L, rxf_side *sd, int32_t z) {
    int32_t y = z, x;
    uint8_t y_red = L[y].red;
    if (L[z].left == NIL) {
        x = L[z].right;
        transplant(L, sd, z, x);
    } else if (L[z].right == NIL) {
        x = L[z].left;
        transplant(L, sd, z, x);
    } else {
        y = L[z].worse; /* the in-order successor: the leftmost of the right subtree */
        y_red = L[y].red;
        x = L[y].right;
        if (L[y].parent == z) L[x].parent = y;
        else {
            transplant(L, sd, y, x);
            L[y].right = L[z].right;
            L[L[y].right].parent = y;
        }
        transplant(L, sd, z, y);
        L[y].left = L[z].left;
        L[L[y].left].parent = y;
        L[y].red = L[z].red;
    }
    if (!y_red) delete_fixup(L, sd, x);
}

/* ---- levels of one side ---- */

/* Hang new level z under parent (as its left/better or right/worse child) and thread it in. */
static void level_link(rxf_books *b, rxf_side *sd, int is_ask, int32_t z, int32_t parent, int left) {
    rxf_level *L = b->lv;
    L[z].parent = parent;
    L[z].red = 1;
    if (parent == NIL) { sd->root = z; L[z].better = L[z].worse = NIL; }
    else if (left) { L[parent].left = z; L[z].worse = parent; L[z].better = L[parent].better; }
    else { L[parent].right = z; L[z].better = parent; L[z].worse = L[parent].worse; }
    if (L[z].better != NIL) L[L[z].better].worse = z; else sd->best = z;
    if (L[z].worse != NIL) L[L[z].worse].better = z; else sd->worst = z;
    insert_fixup(L, sd, z);
    sd->n++;
    /* the depth_n-th best level moves up by one when z lands above it */
    if (!b->depth_n || sd->n < b->depth_n) return;
    if (sd->n == b->depth_n) sd->nth = sd->worst;
    else if (BETTER(is_ask, L[z].price, L[sd->nth].price)) sd->nth = L[sd->nth].better;
}

/* Take an empty level z off its side and back to the pool. */
static void level_remove(rxf_books *b, rxf_side *sd, int is_ask, int32_t z) {
    rxf_level *L = b->lv;
    if (b->depth_n && sd->n > b->depth_n) {
        if (z == sd->nth || BETTER(is_ask, L[z].price, L[sd->nth].price)) sd->nth = L[sd->nth].worse;
    } else
        sd->nth = NIL;
    tree_delete(L, sd, z);
    int32_t bt = L[z].better, wr = L[z].worse;
    if (bt != NIL) L[bt].worse = wr; else sd->best = wr;
    if (wr != NIL) L[wr].better = bt; else sd->worst = bt;
    sd->n--;
    if (b->depth_n && sd->n < b->depth_n) sd->nth = NIL;
    L[z].worse = b->lv_free;
    b->lv_free = z;
}

/* The level at price p, added if absent; NIL on OOM. A short walk from the
   best first (most adds land near the top), else a search from the root. */
static int32_t level_for_price(rxf_books *b, rxf_side *sd, int is_ask, uint32_t p) {
    rxf_level *L = b->lv;
    int32_t worse_nb = sd->best, better_nb = NIL, parent = NIL;
    int left = 0;
    for (int k = 0; worse_nb != NIL && k < FINGER_STEPS; k++) {
        uint32_t q = L[worse_nb].price;
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
    int32_t z = level_alloc(b, p);
    if (z != NIL) level_link(b, sd, is_ask, z, parent, left);
    return z;
}

static inline int in_top_depth(const rxf_books *b, const rxf_side *sd, int is_ask, uint32_t price) {
    return b->depth_n && (sd->n <= b->depth_n || !BETTER(is_ask, b->lv[sd->nth].price, price));
}

/* ---- outputs ---- */

static void check_top(rxf_books *b, uint16_t loc, uint64_t ts) {
    rxf_stock *st = &b->stocks[loc];
    const rxf_level *bl = &b->lv[st->side[0].best], *al = &b->lv[st->side[1].best]; /* the sentinel is all zero */
    uint32_t bp = bl->price, ap = al->price;
    uint64_t bs = bl->shares, as = al->shares;
    uint8_t cr = (st->side[0].n && st->side[1].n) ? (bp > ap ? 1 : bp == ap ? 2 : 0) : 0;
    if (cr && cr != st->crossed) { if (cr == 1) b->c.crossed++; else b->c.locked++; }
    st->crossed = cr;
    if (bp == st->last_bid_px && ap == st->last_ask_px && bs == st->last_bid_sz && as == st->last_ask_sz) return;
    st->last_bid_px = bp; st->last_ask_px = ap; st->last_bid_sz = bs; st->last_ask_sz = as;
    b->c.bbo_changes++;
    if (!b->want_bbo) return;
    if (b->n_bbo == b->cap_bbo && grow(b, &b->bbo, &b->cap_bbo, sizeof(rxf_bbo_event), 4096, UINT32_MAX) != 0)
        return;
    rxf_bbo_event *e = &b->bbo[b->n_bbo++];
    memset(e, 0, sizeof(*e));
    e->timestamp = ts; e->locate = loc;
    e->bid_price = bp; e->bid_shares = bs; e->ask_price = ap; e->ask_shares = as;
}

static void depth_snapshot(rxf_books *b, uint16_t loc, uint64_t ts) {
    size_t rec = sizeof(rxf_depth_header) + 2 * (size_t)b->depth_n * sizeof(rxf_depth_level);
    if (b->n_depth == b->cap_depth && grow(b, &b->depth, &b->cap_depth, rec, 1024, UINT32_MAX) != 0) return;
    uint8_t *p = b->depth + b->n_depth++ * rec;
    memset(p, 0, rec);
    rxf_depth_header *h = (rxf_depth_header *)p;
    h->timestamp = ts; h->locate = loc; h->levels = (uint16_t)b->depth_n;
    rxf_depth_level *out = (rxf_depth_level *)(p + sizeof(*h));
    for (int side = 0; side < 2; side++) {
        int32_t li = b->stocks[loc].side[side].best;
        for (uint32_t i = 0; i < b->depth_n && li != NIL; i++, li = b->lv[li].worse) {
            out[side * b->depth_n + i].price = b->lv[li].price;
            out[side * b->depth_n + i].orders = b->lv[li].orders;
            out[side * b->depth_n + i].shares = b->lv[li].shares;
        }
    }
    b->c.depth_snapshots++;
}

static void trade(rxf_books *b, char type, uint64_t ts, uint16_t loc, uint64_t match, uint64_t ref, uint32_t px,
                  uint32_t shares, char side) {
    if (!b->want_trades) return;
    if (b->n_trades == b->cap_trades &&
        grow(b, &b->trades, &b->cap_trades, sizeof(rxf_trade_event), 4096, UINT32_MAX) != 0)
        return;
    rxf_trade_event *t = &b->trades[b->n_trades++];
    memset(t, 0, sizeof(*t));
    t->timestamp = ts; t->locate = loc; t->match_number = match; t->order_reference_number = ref;
    t->price = px; t->shares = shares; t->type = type; t->side = side;
}

/* Clock mode: remember that loc's top depth changed before the next tick. */
static inline void mark_dirty(rxf_books *b, uint16_t loc) {
    if (b->stocks[loc].dirty) return;
    b->stocks[loc].dirty = 1;
    b->dirty[b->n_dirty++] = loc;
}

static int cmp_locate(const void *x, const void *y) {
    return (int)*(const uint16_t *)x - (int)*(const uint16_t *)y;
}

/* Clock mode: at the first tick a message passes, one snapshot (stamped with
   that tick) of each book whose top changed since the previous one; the
   ticks a time jump skips saw no change, so they cost nothing. */
static inline void clock_tick(rxf_books *b, uint64_t ts) {
    uint64_t every = b->depth_every_ns;
    if (!b->next_clock_ns) b->next_clock_ns = (ts / every + 1) * every;
    if (ts < b->next_clock_ns) return;
    qsort(b->dirty, b->n_dirty, sizeof(uint16_t), cmp_locate);
    for (uint32_t i = 0; i < b->n_dirty; i++) {
        depth_snapshot(b, b->dirty[i], b->next_clock_ns);
        b->stocks[b->dirty[i]].dirty = 0;
    }
    b->n_dirty = 0;
    b->next_clock_ns = (ts / every + 1) * every;
}

/* ---- book verbs ---- */

/* A new order; counted and refused when its side is not B/S, it has no
   shares or its reference is live. */
static void add(rxf_books *b, uint16_t loc, uint64_t ref, char side_c, uint32_t shares, uint32_t px) {
    if (side_c != 'B' && side_c != 'S') { b->c.invalid_side++; return; }
    if (shares == 0) { b->c.zero_shares_add++; return; }
    if (hash_find(b, ref) >= 0) { b->c.duplicate_add++; return; }
    int is_ask = side_c == 'S';
    rxf_side *sd = &b->stocks[loc].side[is_ask];
    int32_t s = hash_reserve(b) == 0 ? order_alloc(b) : -1;
    if (s < 0) return;
    int32_t li = level_for_price(b, sd, is_ask, px);
    if (li == NIL) { order_free(b, s); return; }
    rxf_order *o = &b->orders[s];
    rxf_level *lv = &b->lv[li];
    o->ref = ref; o->price = px; o->shares = shares; o->locate = loc; o->side = (uint8_t)is_ask; o->live = 1;
    o->level = li;
    o->prev = lv->tail; o->next = -1;
    if (lv->tail >= 0) b->orders[lv->tail].next = s; else lv->head = s;
    lv->tail = s;
    lv->orders++;
    lv->shares += shares;
    if (in_top_depth(b, sd, is_ask, px)) b->touched = 1;
    hash_insert(b, ref, s);
    b->c.adds++;
}

/* Take k shares off the order in hash position h (all of it when k >= remaining). */
static void reduce(rxf_books *b, int64_t h, uint32_t k) {
    int32_t s = b->hash[h];
    rxf_order *o = &b->orders[s];
    rxf_side *sd = &b->stocks[o->locate].side[o->side];
    rxf_level *lv = &b->lv[o->level];
    if (in_top_depth(b, sd, o->side, o->price)) b->touched = 1;
    if (k < o->shares) {
        o->shares -= k;
        lv->shares -= k;
        return;
    }
    lv->shares -= o->shares;
    lv->orders--;
    if (o->prev >= 0) b->orders[o->prev].next = o->next; else lv->head = o->next;
    if (o->next >= 0) b->orders[o->next].prev = o->prev; else lv->tail = o->prev;
    if (lv->orders == 0) level_remove(b, sd, o->side, o->level);
    b->hash[h] = TOMB;
    b->hash_live--;
    order_free(b, s);
}

/* The live order a message names, or NULL (counted as unknown); *h its hash slot. */
static rxf_order *known_order(rxf_books *b, uint64_t ref, int64_t *h) {
    *h = hash_find(b, ref);
    if (*h < 0) { b->c.unknown_order++; return NULL; }
    return &b->orders[b->hash[*h]];
}

/* E and C: an execution at the order's price (E) or the printed one (C). Returns the locate, -1 if none. */
static int32_t on_execute(rxf_books *b, const rxf_itch_record *r) {
    int is_e = r->hdr.type == 'E';
    uint64_t ref = is_e ? r->OrderExecuted.order_reference_number : r->OrderExecutedWithPrice.order_reference_number;
    uint32_t k = is_e ? r->OrderExecuted.executed_shares : r->OrderExecutedWithPrice.executed_shares;
    int64_t h;
    rxf_order *o = known_order(b, ref, &h);
    if (!o) return -1;
    uint16_t loc = o->locate;
    if (k > o->shares) b->c.exec_beyond_remaining++;
    trade(b, r->hdr.type, r->hdr.timestamp, loc,
          is_e ? r->OrderExecuted.match_number : r->OrderExecutedWithPrice.match_number, ref,
          is_e ? o->price : r->OrderExecutedWithPrice.execution_price, k < o->shares ? k : o->shares,
          o->side ? 'S' : 'B');
    reduce(b, h, k);
    b->c.executions++;
    return loc;
}

/* X (a partial cancel) and D (a delete: everything left). */
static int32_t on_cancel(rxf_books *b, const rxf_itch_record *r) {
    int is_x = r->hdr.type == 'X';
    int64_t h;
    rxf_order *o = known_order(b, is_x ? r->OrderCancel.order_reference_number
                                       : r->OrderDelete.order_reference_number, &h);
    if (!o) return -1;
    uint16_t loc = o->locate;
    uint32_t k = is_x ? r->OrderCancel.cancelled_shares : UINT32_MAX;
    if (is_x && k > o->shares) b->c.cancel_beyond_remaining++;
    reduce(b, h, k);
    if (is_x) b->c.cancels++; else b->c.deletes++;
    return loc;
}

/* U: the old order leaves; the new one keeps its side and locate, at the back of its level. */
static int32_t on_replace(rxf_books *b, const rxf_itch_record *r) {
    int64_t h;
    rxf_order *o = known_order(b, r->OrderReplace.original_order_reference_number, &h);
    if (!o) return -1;
    uint16_t loc = o->locate;
    char side = o->side ? 'S' : 'B';
    reduce(b, h, UINT32_MAX);
    add(b, loc, r->OrderReplace.new_order_reference_number, side, r->OrderReplace.shares, r->OrderReplace.price);
    b->c.replaces++;
    return loc;
}

/* R: the first directory entry wins, for the symbol and for the locate; a
   later R that contradicts it is counted and ignored (a repeat is not). */
static void on_directory(rxf_books *b, uint16_t loc, const char *name8) {
    uint64_t key;
    memcpy(&key, name8, 8);
    uint32_t bucket = (uint32_t)(mix(key) & (RXF_BOOK_NAME_BUCKETS - 1));
    rxf_stock *st = &b->stocks[loc];
    for (uint32_t i = b->name_head[bucket]; i; i = b->stocks[i - 1].name_next)
        if (memcmp(b->stocks[i - 1].name, name8, 8) == 0) {
            if (i - 1 != loc) b->c.directory_conflict++;
            return;
        }
    if (st->seen) { b->c.directory_conflict++; return; }
    memcpy(st->name, name8, 8);
    st->seen = 1;
    st->name_next = b->name_head[bucket];
    b->name_head[bucket] = (uint32_t)loc + 1;
}

/* The book verbs (A F E C X D U); returns the locate whose book may have changed, -1 if none. */
static inline int32_t update_book(rxf_books *b, const rxf_itch_record *r) {
    uint16_t loc = r->hdr.stock_locate;
    switch (r->hdr.type) {
    case 'A': add(b, loc, r->AddOrder.order_reference_number, r->AddOrder.buy_sell_indicator,
                  r->AddOrder.shares, r->AddOrder.price); return loc;
    case 'F': add(b, loc, r->AddOrderMPID.order_reference_number, r->AddOrderMPID.buy_sell_indicator,
                  r->AddOrderMPID.shares, r->AddOrderMPID.price); return loc;
    case 'E': case 'C': return on_execute(b, r);
    case 'X': case 'D': return on_cancel(b, r);
    case 'U': return on_replace(b, r);
    default: return -1;
    }
}

/* Messages that do not touch a book: trades, state, directory. */
static void on_other(rxf_books *b, const rxf_itch_record *r) {
    uint16_t loc = r->hdr.stock_locate;
    uint64_t ts = r->hdr.timestamp;
    switch (r->hdr.type) {
    case 'P':
        b->c.trades++;
        trade(b, 'P', ts, loc, r->Trade.match_number, r->Trade.order_reference_number, r->Trade.price,
              r->Trade.shares, r->Trade.buy_sell_indicator);
        return;
    case 'Q':
        b->c.cross_trades++;
        trade(b, 'Q', ts, loc, r->CrossTrade.match_number, 0, r->CrossTrade.cross_price,
              (uint32_t)(r->CrossTrade.shares > UINT32_MAX ? UINT32_MAX : r->CrossTrade.shares), ' ');
        return;
    case 'B': b->c.broken_trades++; return;
    case 'H':
        b->stocks[loc].trading_state = r->StockTradingAction.trading_state;
        if (r->StockTradingAction.trading_state == 'H') b->c.halts++;
        return;
    case 'R': on_directory(b, loc, r->StockDirectory.stock); return;
    case 'S': b->system_state = r->SystemEvent.event_code; b->c.system_events++; return;
    default: return;
    }
}

static inline void apply(rxf_books *b, const rxf_itch_record *r) {
    b->touched = 0;
    b->c.messages++;
    if (b->depth_every_ns) clock_tick(b, r->hdr.timestamp);
    int32_t loc = update_book(b, r);
    if (loc < 0) { on_other(b, r); return; }
    check_top(b, (uint16_t)loc, r->hdr.timestamp);
    if (!b->touched) return;
    if (b->depth_every_ns) mark_dirty(b, (uint16_t)loc);
    else depth_snapshot(b, (uint16_t)loc, r->hdr.timestamp);
}

static void on_msg(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    (void)meta;
    apply(ctx, r);
}

static void on_msg_timed(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    (void)meta;
    rxf_books *b = ctx;
    uint64_t c0 = rxf_cycles();
    apply(b, r);
    b->latency_hist[rxf_hist_index(rxf_cycles() - c0)]++;
}

/* ---- life cycle and inspection ---- */

int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n,
                   uint64_t depth_every_ns) {
    memset(b, 0, sizeof(*b));
    b->stocks = calloc(RXF_BOOK_MAX_LOCATES, sizeof(rxf_stock));
    b->name_head = calloc(RXF_BOOK_NAME_BUCKETS, sizeof(uint32_t));
    b->free_head = -1;
    b->hash_cap = 1u << 17;
    b->hash = malloc(b->hash_cap * sizeof(int32_t));
    if (!b->stocks || !b->name_head || !b->hash || grow(b, &b->orders, &b->cap_orders, sizeof(rxf_order), 1u << 16,
                                                        POOL_MAX) != 0 ||
        grow(b, &b->lv, &b->cap_lv, sizeof(rxf_level), 4096, POOL_MAX) != 0)
        return -1;
    memset(&b->lv[NIL], 0, sizeof(rxf_level));
    b->n_lv = 1;
    for (uint64_t i = 0; i < b->hash_cap; i++) b->hash[i] = EMPTY;
    b->want_bbo = want_bbo;
    b->want_trades = want_trades;
    b->depth_n = depth_n;
    b->depth_every_ns = depth_n ? depth_every_ns : 0;
    if (b->depth_every_ns && !(b->dirty = malloc(RXF_BOOK_MAX_LOCATES * sizeof(uint16_t)))) return -1;
    b->table.version = RXF_ITCH_HANDLERS_VERSION;
    b->table.struct_size = sizeof(rxf_itch_handlers);
    b->table.ctx = b;
    if (want_latency && !(b->latency_hist = calloc(RXF_HIST_BUCKETS, sizeof(uint64_t)))) return -1;
    const char *types = "AFECXDUPQBHRS";
    for (const char *t = types; *t; t++) b->table.on[(uint8_t)*t] = want_latency ? on_msg_timed : on_msg;
    return 0;
}

void rxf_books_free(rxf_books *b) {
    free(b->stocks); free(b->name_head); free(b->orders); free(b->hash); free(b->lv); free(b->bbo);
    free(b->trades); free(b->latency_hist); free(b->depth); free(b->dirty);
    memset(b, 0, sizeof(*b));
}

int32_t rxf_books_find_level(const rxf_books *b, uint16_t locate, int side, uint32_t price) {
    const rxf_level *L = b->lv;
    int32_t x = b->stocks[locate].side[side != 0].root;
    while (x != NIL && L[x].price != price) x = BETTER(side != 0, price, L[x].price) ? L[x].left : L[x].right;
    return x;
}

/* Black height of the subtree at x, -1 when a rule is broken; walks in order,
   comparing each node with *cursor (the threads) and advancing it. */
static int check_tree(const rxf_books *b, int is_ask, int32_t x, int32_t parent, int32_t *cursor, int depth) {
    const rxf_level *L = b->lv;
    if (x == NIL) return 1;
    if (depth > 128 || L[x].parent != parent) return -1;
    if (L[x].red && (L[L[x].left].red || L[L[x].right].red)) return -1;
    int hl = check_tree(b, is_ask, L[x].left, x, cursor, depth + 1);
    if (hl < 0 || *cursor != x) return -1;
    *cursor = L[x].worse;
    int hr = check_tree(b, is_ask, L[x].right, x, cursor, depth + 1);
    if (hr != hl) return -1;
    return hl + !L[x].red;
}

/* The threads of one side: strictly worsening prices, FIFOs that add up, n and nth right. */
static const char *check_threads(const rxf_books *b, const rxf_side *sd, int is_ask, uint16_t loc) {
    const rxf_level *L = b->lv;
    uint32_t n = 0;
    int32_t prev = NIL, nth = NIL;
    for (int32_t x = sd->best; x != NIL; prev = x, x = L[x].worse) {
        if (L[x].better != prev) return "a level's better link is wrong";
        if (prev != NIL && !BETTER(is_ask, L[prev].price, L[x].price)) return "levels out of price order";
        uint64_t shares = 0;
        uint32_t orders = 0;
        for (int32_t s = L[x].head; s >= 0; s = b->orders[s].next, orders++) {
            const rxf_order *o = &b->orders[s];
            if (!o->live || o->level != x || o->locate != loc || o->side != is_ask || o->price != L[x].price)
                return "an order in a level's FIFO does not belong to it";
            if (o->shares == 0) return "an order with no shares is on the book";
            shares += o->shares;
        }
        if (orders == 0 || orders != L[x].orders || shares != L[x].shares) return "a level's counts are wrong";
        if (++n == b->depth_n) nth = x;
    }
    if (prev != sd->worst) return "the worst level is wrong";
    if (n != sd->n) return "a side's level count is wrong";
    if (sd->nth != (b->depth_n && n >= b->depth_n ? nth : NIL)) return "the depth boundary is wrong";
    return NULL;
}

const char *rxf_books_check(const rxf_books *b) {
    if (b->lv[NIL].red || b->lv[NIL].price || b->lv[NIL].shares) return "the sentinel level was written";
    for (uint32_t loc = 0; loc < RXF_BOOK_MAX_LOCATES; loc++)
        for (int side = 0; side < 2; side++) {
            const rxf_side *sd = &b->stocks[loc].side[side];
            if (sd->root == NIL && sd->best == NIL && sd->n == 0) continue;
            int32_t cursor = sd->best;
            if (b->lv[sd->root].red || check_tree(b, side, sd->root, NIL, &cursor, 0) < 0 || cursor != NIL)
                return "a level tree breaks a red-black or order rule";
            const char *why = check_threads(b, sd, side, (uint16_t)loc);
            if (why) return why;
        }
    return NULL;
}
