/* See book.h. ITCH 5.0 glue on the L3 engine (rxfeed/l3book.h, included by book.h). */
#include "book.h"
#include "rxfeed/hist.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- outputs ---- */

static void rows_init(rxf_rows *r, uint32_t rec) {
    memset(r, 0, sizeof(*r));
    r->rec = rec;
    r->per_chunk = RXF_ROWS_CHUNK_BYTES / rec ? RXF_ROWS_CHUNK_BYTES / rec : 1;
}

/* A new chunk for r (cold path: once every per_chunk rows); 0, or -1 on OOM (*oom set). */
static __attribute__((noinline)) int rows_new_chunk(rxf_rows *r, int *oom) {
    if (r->n_chunks == r->cap_chunks) {
        uint64_t cap = r->cap_chunks;
        if (rxf_l3_grow(oom, &r->chunk, &cap, sizeof(uint8_t *), 64, UINT32_MAX) != 0) return -1;
        r->cap_chunks = (uint32_t)cap;
    }
    uint8_t *c = malloc((size_t)r->per_chunk * r->rec);
    if (!c) { *oom = 1; return -1; }
    r->chunk[r->n_chunks++] = c;
    r->next = c;
    r->chunk_end = c + (size_t)r->per_chunk * r->rec;
    return 0;
}

/* Room for one more row of r (the caller writes every byte of it), NULL on OOM. */
static inline uint8_t *rows_append(rxf_rows *r, int *oom) {
    if (__builtin_expect(r->next == r->chunk_end, 0) && rows_new_chunk(r, oom) != 0) return NULL;
    uint8_t *p = r->next;
    r->next += r->rec;
    r->n++;
    return p;
}

static void rows_free(rxf_rows *r) {
    for (uint32_t i = 0; i < r->n_chunks; i++) free(r->chunk[i]);
    free(r->chunk);
    uint32_t rec = r->rec;
    rows_init(r, rec);
}

void rxf_rows_take(rxf_rows *r, uint8_t *dst) {
    uint64_t left = r->n;
    size_t full = (size_t)r->per_chunk * r->rec;
    for (uint32_t i = 0; i < r->n_chunks && left; i++) {
        uint64_t k = left < r->per_chunk ? left : r->per_chunk;
        memcpy(dst, r->chunk[i], (size_t)k * r->rec);
        dst += full;
        left -= k;
    }
    rows_free(r);
}

/* ---- events: what the books did, as normalised records (rxfeed/events.h) ----
 *
 * With an event ring set, each message's changes are staged (at most four:
 * U deletes, adds and moves the top) and pushed after it, the last one
 * flagged RXF_EVF_LAST: a consumer applies a message's events as one change.
 * Events report what the books did, not what the message asked: a refused
 * add, an unknown reference or a conflicting directory entry emits nothing.
 * Symbol ids are stock locates; prices are Price(4) integers. */

#define EV_PEND_MAX 4

static inline rxf_event *ev_new(rxf_books *b, uint8_t kind, uint16_t loc) {
    rxf_event *e = &b->pend[b->n_pend < EV_PEND_MAX ? b->n_pend++ : EV_PEND_MAX - 1];
    *e = rxf_event_make(kind, b->venue, loc, b->ev_seq, b->ev_ts);
    return e;
}

static inline void ev_order(rxf_books *b, uint8_t kind, uint16_t loc, int is_ask, uint32_t px, uint32_t qty,
                            uint64_t ref) {
    rxf_event *e = ev_new(b, kind, loc);
    e->side = is_ask ? RXF_SIDE_ASK : RXF_SIDE_BID;
    e->body.order.price = px;
    e->body.order.qty = qty;
    e->body.order.order_id = ref;
    if (kind == RXF_EV_ORDER_MODIFY) e->body.order.new_order_id = ref;
}

/* One event into the ring: dropped and counted when full, unless the books
   wait for room (a replay backfilling a stream) and until waiting is turned off. */
static void ev_push(rxf_books *b, const rxf_event *e) {
    rxf_event_ring_offer(b->events, e, &b->events_wait);
}

static __attribute__((noinline)) void ev_flush(rxf_books *b) {
    b->pend[b->n_pend - 1].flags |= RXF_EVF_LAST;
    if (atomic_load_explicit(&b->events_wait, memory_order_relaxed))
        for (uint32_t i = 0; i < b->n_pend; i++) ev_push(b, &b->pend[i]);
    else
        rxf_event_ring_push_n(b->events, b->pend, b->n_pend);  /* the message's events, all or none */
    b->n_pend = 0;
}

static enum rxf_trading_state ev_stock_state(char c) {
    switch (c) {
    case 'H': return RXF_STATE_HALTED;
    case 'P': return RXF_STATE_PAUSED;
    case 'Q': return RXF_STATE_QUOTING;
    case 'T': return RXF_STATE_TRADING;
    default: return RXF_STATE_UNKNOWN;
    }
}

static enum rxf_trading_state ev_system_state(char c) {
    switch (c) {
    case 'Q': return RXF_STATE_TRADING;   /* start of market hours */
    case 'M': case 'E': case 'C': return RXF_STATE_CLOSED;  /* end of market hours, of system hours, of messages */
    default: return RXF_STATE_UNKNOWN;    /* O, S: before the open */
    }
}

static void ev_status(rxf_books *b, uint16_t loc, enum rxf_trading_state state, char code, const char *reason,
                      size_t reason_len) {
    rxf_event *e = ev_new(b, RXF_EV_STATUS, loc);
    e->body.status.state = state;
    e->body.status.venue_code = (uint8_t)code;
    if (reason) memcpy(e->body.status.reason, reason, reason_len);
}

static void ev_symbol(rxf_books *b, uint16_t loc, const char *name8) {
    rxf_event *e = ev_new(b, RXF_EV_SYMBOL, loc);
    memset(e->body.symbol.name, ' ', sizeof e->body.symbol.name);
    memcpy(e->body.symbol.name, name8, 8);
    e->body.symbol.price_decimals = 4;
}

void rxf_books_set_events(rxf_books *b, rxf_event_ring *ring, uint16_t venue, int wait) {
    b->events = ring;
    b->venue = venue;
    b->n_pend = 0;
    atomic_store(&b->events_wait, ring && wait);
}

void rxf_books_stop_waiting(rxf_books *b) { atomic_store(&b->events_wait, 0); }

void rxf_books_emit_loss(rxf_books *b, uint64_t first, uint64_t count) {
    if (!b->events) return;
    rxf_event e = rxf_event_feed_loss(b->venue, first, count, b->ev_ts);
    ev_push(b, &e);
}

static void check_top(rxf_books *b, uint16_t loc, uint64_t ts) {
    rxf_stock *st = &b->stocks[loc];
    const rxf_level *bl = &b->l3.lv[st->side[0].best], *al = &b->l3.lv[st->side[1].best]; /* the sentinel is all zero */
    uint32_t bp = bl->price, ap = al->price;
    uint64_t bs = bl->shares, as = al->shares;
    uint8_t cr = (st->side[0].n && st->side[1].n) ? (bp > ap ? 1 : bp == ap ? 2 : 0) : 0;
    if (cr && cr != st->crossed) { if (cr == 1) b->c.crossed++; else b->c.locked++; }
    st->crossed = cr;
    if (bp == st->last_bid_px && ap == st->last_ask_px && bs == st->last_bid_sz && as == st->last_ask_sz) return;
    st->last_bid_px = bp; st->last_ask_px = ap; st->last_bid_sz = bs; st->last_ask_sz = as;
    b->c.bbo_changes++;
    if (b->events) {
        rxf_event *ev = ev_new(b, RXF_EV_BBO, loc);
        ev->body.bbo = (rxf_ev_bbo){.bid_price = bp, .bid_qty = bs, .ask_price = ap, .ask_qty = as};
    }
    if (!b->want_bbo) return;
    rxf_bbo_event *e = (rxf_bbo_event *)rows_append(&b->bbo, &b->l3.oom);
    if (!e) return;
    *e = (rxf_bbo_event){.timestamp = ts, .locate = loc, .bid_price = bp, .bid_shares = bs,
                         .ask_price = ap, .ask_shares = as};
}

static void depth_snapshot(rxf_books *b, uint16_t loc, uint64_t ts) {
    uint8_t *p = rows_append(&b->depth, &b->l3.oom);
    if (!p) return;
    memset(p, 0, b->depth.rec);
    rxf_depth_header *h = (rxf_depth_header *)p;
    h->timestamp = ts; h->locate = loc; h->levels = (uint16_t)b->l3.depth_n;
    rxf_depth_level *out = (rxf_depth_level *)(p + sizeof(*h));
    for (int side = 0; side < 2; side++) {
        int32_t li = b->stocks[loc].side[side].best;
        for (uint32_t i = 0; i < b->l3.depth_n && li != NIL; i++, li = b->l3.lv[li].worse) {
            out[side * b->l3.depth_n + i].price = b->l3.lv[li].price;
            out[side * b->l3.depth_n + i].orders = b->l3.lv[li].orders;
            out[side * b->l3.depth_n + i].shares = b->l3.lv[li].shares;
        }
    }
    b->c.depth_snapshots++;
}

static void trade(rxf_books *b, char type, uint64_t ts, uint16_t loc, uint64_t match, uint64_t ref, uint32_t px,
                  uint32_t shares, char side) {
    if (b->events) {
        rxf_event *e = ev_new(b, RXF_EV_TRADE, loc);
        e->side = side == 'B' || side == 'S' ? (uint8_t)side : RXF_SIDE_NONE;
        e->body.trade = (rxf_ev_trade){.price = px, .qty = shares, .order_id = ref, .match_id = match};
    }
    if (!b->want_trades) return;
    rxf_trade_event *t = (rxf_trade_event *)rows_append(&b->trades, &b->l3.oom);
    if (!t) return;
    *t = (rxf_trade_event){.timestamp = ts, .locate = loc, .match_number = match, .order_reference_number = ref,
                           .price = px, .shares = shares, .type = type, .side = side};
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

/* ---- look-ahead: prefetch for the messages still ahead in the packet ----
 *
 * The decoder hands the books one message at a time, but the packet (a
 * datagram, or a chunk of a NASDAQ file) holds the next ones already. When
 * the message's wire bytes sit in its packet behind their u16 length (the
 * framing of both MoldUDP64 and the NASDAQ file), four cursors walk the same
 * packet a fixed number of messages ahead and prefetch what those messages
 * will touch: the index line of their order reference and their book, then
 * the order, then its level and FIFO neighbours (an add: the level-index
 * line, the level, the order it will queue behind). The misses of successive messages then
 * overlap instead of following one another. Only hints: every read stays in
 * the packet, the books change only through the message itself. */

#define LA_INDEX 16  /* messages ahead: fetch the index line of the reference, the book */
#define LA_ORDER 8   /* ... the order (an add: its level-index line) */
#define LA_NEAR 4    /* ... the order's level and FIFO neighbours (an add: its level) */
#define LA_TAIL 2    /* ... an add: the order at the back of its level */
#define LA_STAGES 4
#define LA_BYTES 384 /* packet bytes prefetched ahead of the farthest cursor (~12 messages) */

/* Every type that names an order carries its reference where AddOrder does, so
   the look-ahead reads it through AddOrder's accessor whatever the type. */
#define LA_REF_OFFSET offsetof(rxf_itch_wire_AddOrder, order_reference_number)
_Static_assert(offsetof(rxf_itch_wire_AddOrderMPID, order_reference_number) == LA_REF_OFFSET, "F ref");
_Static_assert(offsetof(rxf_itch_wire_OrderExecuted, order_reference_number) == LA_REF_OFFSET, "E ref");
_Static_assert(offsetof(rxf_itch_wire_OrderExecutedWithPrice, order_reference_number) == LA_REF_OFFSET, "C ref");
_Static_assert(offsetof(rxf_itch_wire_OrderCancel, order_reference_number) == LA_REF_OFFSET, "X ref");
_Static_assert(offsetof(rxf_itch_wire_OrderDelete, order_reference_number) == LA_REF_OFFSET, "D ref");
_Static_assert(offsetof(rxf_itch_wire_OrderReplace, original_order_reference_number) == LA_REF_OFFSET, "U ref");
_Static_assert(offsetof(rxf_itch_wire_AddOrderMPID, price) == offsetof(rxf_itch_wire_AddOrder, price), "F price");
_Static_assert(offsetof(rxf_itch_wire_AddOrderMPID, buy_sell_indicator) ==
               offsetof(rxf_itch_wire_AddOrder, buy_sell_indicator), "F side");

/* The message after p's (p at a length prefix, whole inside end), NULL if none is whole. */
static inline const uint8_t *la_next(const uint8_t *p, const uint8_t *end) {
    if (!p) return NULL;
    const uint8_t *q = p + 2 + rxf_be16(p);
    size_t left = (size_t)(end - q);
    return left >= 2 && left - 2 >= rxf_be16(q) ? q : NULL;
}

/* The order reference of the message at p, 0 when its type names none (or it is short). */
static inline uint64_t la_ref(const uint8_t *p) {
    if (rxf_be16(p) < LA_REF_OFFSET + 8) return 0;  /* too short for a reference; an empty message has no type byte to read */
    switch (p[2]) {
    case 'A': case 'F': case 'E': case 'C': case 'X': case 'D': case 'U': return itch_add_order_order_reference_number(p + 2);
    default: return 0;
    }
}

/* One stage's hint for the message at p. */
static inline void la_hint(const rxf_books *b, const uint8_t *p, int stage) {
    uint64_t ref = la_ref(p);
    if (!ref) return;
    const uint8_t *m = p + 2;
    const rxf_stock *st = &b->stocks[itch_header_stock_locate(m)];
    if (m[0] == 'A' || m[0] == 'F') {  /* the reference's index line; the book, its level-index line, its level */
        if (rxf_be16(p) < sizeof(rxf_itch_wire_AddOrder)) return;
        int ask = itch_add_order_buy_sell_indicator(m) == 'S';
        const rxf_side *sd = &st->side[ask];
        uint32_t px = itch_add_order_price(m);
        if (stage == LA_INDEX) {
            rxf_l3_prefetch_index(&b->l3, ref);
            RXF_PREFETCH(st, 1);
        } else if (stage == LA_ORDER)
            rxf_l3_prefetch_level_entry(&b->l3, sd, px);
        else if (stage == LA_NEAR)
            rxf_l3_prefetch_level(&b->l3, sd, px);
        else
            rxf_l3_prefetch_level_tail(&b->l3, sd, ask, px);
        return;
    }
    if (stage == LA_INDEX) {
        rxf_l3_prefetch_index(&b->l3, ref);
        RXF_PREFETCH(st, 1);
        if (m[0] == 'U' && rxf_be16(p) >= offsetof(rxf_itch_wire_OrderReplace, new_order_reference_number) + 8)
            rxf_l3_prefetch_index(&b->l3, itch_order_replace_new_order_reference_number(m));
    } else if (stage == LA_ORDER)
        rxf_l3_prefetch_order(&b->l3, ref);
    else if (stage == LA_NEAR)
        rxf_l3_prefetch_neighbours(&b->l3, ref);
}

/* Cursors set for the message at raw in packet pk; 0 when its bytes are not framed there. */
static int la_reset(rxf_books *b, const rxf_packet *pk, const uint8_t *raw, uint32_t raw_len) {
    for (int k = 0; k < LA_STAGES; k++) b->la_cur[k] = NULL;
    b->la_expect = NULL;
    if (!pk || !pk->data || raw < pk->data + 2 || raw > pk->data + pk->len ||
        (size_t)(pk->data + pk->len - raw) < raw_len || rxf_be16(raw - 2) != raw_len)
        return 0;
    b->la_data = pk->data;
    b->la_end = pk->data + pk->len;
    const uint8_t *p = raw - 2;
    static const int ahead[LA_STAGES] = {LA_TAIL, LA_NEAR, LA_ORDER, LA_INDEX};
    for (int k = 0, at = 0; k < LA_STAGES; k++) {
        for (; p && at < ahead[k]; at++) p = la_next(p, b->la_end);
        b->la_cur[k] = p;
    }
    return 1;
}

/* Before applying the message m (len bytes, in meta's packet): hints for the ones ahead, cursors one step on. */
static inline void look_ahead(rxf_books *b, const uint8_t *m, uint32_t len, const rxf_itch_meta *meta) {
    const rxf_packet *pk = meta->packet;
    if (m != b->la_expect || !pk || pk->data != b->la_data || pk->data + pk->len != b->la_end) {
        if (!la_reset(b, pk, m, len)) return;
    }
    b->la_expect = m + len + 2;
    static const int stage[LA_STAGES] = {LA_TAIL, LA_NEAR, LA_ORDER, LA_INDEX};
    /* the packet bytes themselves, further on than the farthest cursor reads */
    const uint8_t *far = b->la_cur[LA_STAGES - 1];
    if (far && b->la_end - far > LA_BYTES) RXF_PREFETCH(far + LA_BYTES, 0);
    for (int k = 0; k < LA_STAGES; k++) {
        const uint8_t *c = b->la_cur[k];
        if (!c) continue;
        la_hint(b, c, stage[k]);
        b->la_cur[k] = la_next(c, b->la_end);
    }
}

/* ---- book verbs ---- */

/* A new order; counted and refused when its side is not B/S, it has no
   shares or its reference is live. */
static void add(rxf_books *b, uint16_t loc, uint64_t ref, char side_c, uint32_t shares, uint32_t px) {
    if (side_c != 'B' && side_c != 'S') { b->c.invalid_side++; return; }
    if (shares == 0) { b->c.zero_shares_add++; return; }
    int is_ask = side_c == 'S';
    int r = rxf_l3_add(&b->l3, &b->stocks[loc].side[is_ask], loc, ref, is_ask, shares, px);
    if (r == 0) {
        b->c.adds++;
        if (b->events) ev_order(b, RXF_EV_ORDER_ADD, loc, is_ask, px, shares, ref);
    }
    else if (r == RXF_L3_DUPLICATE) b->c.duplicate_add++;
}

/* Take k shares off the order in hash position h (all of it when k >= remaining). */
static inline void reduce(rxf_books *b, int64_t h, uint32_t k) {
    const rxf_order *o = rxf_l3_at(&b->l3, h);
    if (b->events)  /* before: the order's slot is freed when nothing is left */
        ev_order(b, k >= o->shares ? RXF_EV_ORDER_DELETE : RXF_EV_ORDER_MODIFY, o->book, o->side, o->price,
                 k >= o->shares ? 0 : o->shares - k, o->ref);
    rxf_l3_reduce(&b->l3, &b->stocks[o->book].side[o->side], h, k);
}

/* The live order a message names, or NULL (counted as unknown); *h its hash slot. */
static rxf_order *known_order(rxf_books *b, uint64_t ref, int64_t *h) {
    rxf_order *o = rxf_l3_order(&b->l3, ref, h);
    if (!o) b->c.unknown_order++;
    return o;
}

/* The book verbs read the message's wire bytes (a wire handler: no decode,
   no record); the decoder checked its length against its type. */

/* E and C: an execution at the order's price (E) or the printed one (C). Returns the locate, -1 if none. */
static int32_t on_execute(rxf_books *b, const uint8_t *m) {
    int is_e = m[0] == 'E';
    uint64_t ref = itch_order_executed_order_reference_number(m);   /* E and C share the first fields */
    uint32_t k = itch_order_executed_executed_shares(m);
    int64_t h;
    rxf_order *o = known_order(b, ref, &h);
    if (!o) return -1;
    uint16_t loc = o->book;
    if (k > o->shares) b->c.exec_beyond_remaining++;
    if (b->want_trades || b->events)
        trade(b, (char)m[0], itch_header_timestamp(m), loc, itch_order_executed_match_number(m), ref,
              is_e ? o->price : itch_order_executed_with_price_execution_price(m), k < o->shares ? k : o->shares,
              o->side ? 'S' : 'B');
    reduce(b, h, k);
    b->c.executions++;
    return loc;
}

/* X (a partial cancel) and D (a delete: everything left). */
static int32_t on_cancel(rxf_books *b, const uint8_t *m) {
    int is_x = m[0] == 'X';
    int64_t h;
    rxf_order *o = known_order(b, itch_order_delete_order_reference_number(m), &h);  /* X and D share it */
    if (!o) return -1;
    uint16_t loc = o->book;
    uint32_t k = is_x ? itch_order_cancel_cancelled_shares(m) : UINT32_MAX;
    if (is_x && k > o->shares) b->c.cancel_beyond_remaining++;
    reduce(b, h, k);
    if (is_x) b->c.cancels++; else b->c.deletes++;
    return loc;
}

/* U: the old order leaves; the new one keeps its side and locate, at the back of its level. */
static int32_t on_replace(rxf_books *b, const uint8_t *m) {
    int64_t h;
    rxf_order *o = known_order(b, itch_order_replace_original_order_reference_number(m), &h);
    if (!o) return -1;
    uint16_t loc = o->book;
    char side = o->side ? 'S' : 'B';
    reduce(b, h, UINT32_MAX);
    add(b, loc, itch_order_replace_new_order_reference_number(m), side, itch_order_replace_shares(m),
        itch_order_replace_price(m));
    b->c.replaces++;
    return loc;
}

/* R: the first directory entry wins, for the symbol and for the locate; a
   later R that contradicts it is counted and ignored (a repeat is not). */
static void on_directory(rxf_books *b, uint16_t loc, const char *name8) {
    uint64_t key;
    memcpy(&key, name8, 8);
    uint32_t bucket = (uint32_t)(rxf_l3_mix(key) & (RXF_BOOK_NAME_BUCKETS - 1));
    rxf_stock *st = &b->stocks[loc];
    for (uint32_t i = b->name_head[bucket]; i; i = b->stocks[i - 1].name_next)
        if (memcmp(b->stocks[i - 1].name, name8, 8) == 0) {
            if (i - 1 != loc) b->c.directory_conflict++;
            return;
        }
    if (st->seen) { b->c.directory_conflict++; return; }
    if (b->events) ev_symbol(b, loc, name8);
    memcpy(st->name, name8, 8);
    st->seen = 1;
    st->name_next = b->name_head[bucket];
    b->name_head[bucket] = (uint32_t)loc + 1;
}

/* The book verbs (A F E C X D U); returns the locate whose book may have changed, -1 if none. */
static inline int32_t update_book(rxf_books *b, const uint8_t *m) {
    uint16_t loc = itch_header_stock_locate(m);
    switch (m[0]) {
    case 'A': case 'F':  /* F is A with an MPID after the same fields */
        add(b, loc, itch_add_order_order_reference_number(m), itch_add_order_buy_sell_indicator(m),
            itch_add_order_shares(m), itch_add_order_price(m));
        return loc;
    case 'E': case 'C': return on_execute(b, m);
    case 'X': case 'D': return on_cancel(b, m);
    case 'U': return on_replace(b, m);
    default: return -1;
    }
}

/* Messages that do not touch a book: trades, state, directory. */
static void on_other(rxf_books *b, const uint8_t *m) {
    uint16_t loc = itch_header_stock_locate(m);
    switch (m[0]) {
    case 'P':
        b->c.trades++;
        trade(b, 'P', itch_header_timestamp(m), loc, itch_trade_match_number(m), itch_trade_order_reference_number(m),
              itch_trade_price(m), itch_trade_shares(m), itch_trade_buy_sell_indicator(m));
        return;
    case 'Q': {
        b->c.cross_trades++;
        uint64_t shares = itch_cross_trade_shares(m);
        trade(b, 'Q', itch_header_timestamp(m), loc, itch_cross_trade_match_number(m), 0,
              itch_cross_trade_cross_price(m), (uint32_t)(shares > UINT32_MAX ? UINT32_MAX : shares), ' ');
        return;
    }
    case 'B': b->c.broken_trades++; return;
    case 'H':
        b->stocks[loc].trading_state = itch_stock_trading_action_trading_state(m);
        if (b->stocks[loc].trading_state == 'H') b->c.halts++;
        if (b->events)
            ev_status(b, loc, ev_stock_state(b->stocks[loc].trading_state), b->stocks[loc].trading_state,
                      itch_stock_trading_action_reason(m), 4);
        return;
    case 'R': on_directory(b, loc, itch_stock_directory_stock(m)); return;
    case 'S':
        b->system_state = itch_system_event_event_code(m);
        b->c.system_events++;
        if (b->events) ev_status(b, 0, ev_system_state(b->system_state), b->system_state, NULL, 0);
        return;
    default: return;
    }
}

static inline void apply_message(rxf_books *b, const uint8_t *m) {
    b->l3.touched = 0;
    b->c.messages++;
    if (b->depth_every_ns) clock_tick(b, itch_header_timestamp(m));
    int32_t loc = update_book(b, m);
    if (loc < 0) { on_other(b, m); return; }
    uint64_t ts = itch_header_timestamp(m);
    check_top(b, (uint16_t)loc, ts);
    if (!b->l3.touched) return;
    if (b->depth_every_ns) mark_dirty(b, (uint16_t)loc);
    else depth_snapshot(b, (uint16_t)loc, ts);
}

/* One message; with events on, stamped with its sequence (MoldUDP64's, else the books' message count) and pushed. */
static inline void apply(rxf_books *b, const uint8_t *m, const rxf_itch_meta *meta) {
    if (__builtin_expect(b->events != NULL, 0)) {
        b->ev_seq = meta && meta->has_sequence ? meta->sequence : b->c.messages + 1;
        b->ev_ts = itch_header_timestamp(m);
        apply_message(b, m);
        if (b->n_pend) ev_flush(b);
        return;
    }
    apply_message(b, m);
}

/* The wire handler of every type the books read: one call per message. */
static void on_wire(void *ctx, const uint8_t *m, uint32_t len, const rxf_itch_meta *meta) {
    rxf_books *b = ctx;
    if (b->lookahead && meta) look_ahead(b, m, len, meta);
    apply(b, m, meta);
}

static void on_wire_timed(void *ctx, const uint8_t *m, uint32_t len, const rxf_itch_meta *meta) {
    rxf_books *b = ctx;
    uint64_t c0 = rxf_cycles();
    if (b->lookahead && meta) look_ahead(b, m, len, meta);
    apply(b, m, meta);
    b->latency_hist[rxf_hist_index(rxf_cycles() - c0)]++;
}

/* ---- life cycle and inspection ---- */

int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n,
                   uint64_t depth_every_ns, uint64_t expected_orders) {
    memset(b, 0, sizeof(*b));
    b->stocks = calloc(RXF_BOOK_MAX_LOCATES, sizeof(rxf_stock));
    b->name_head = calloc(RXF_BOOK_NAME_BUCKETS, sizeof(uint32_t));
    if (rxf_l3_init_sized(&b->l3, depth_n, expected_orders) != 0 || !b->stocks || !b->name_head) return -1;
    b->lookahead = 1;
    b->l3.tick = 100;  /* a cent in Price(4): a new level looks for one a cent away (l3book.h) */
    b->want_bbo = want_bbo;
    b->want_trades = want_trades;
    rows_init(&b->bbo, sizeof(rxf_bbo_event));
    rows_init(&b->trades, sizeof(rxf_trade_event));
    rows_init(&b->depth, sizeof(rxf_depth_header) + 2 * depth_n * sizeof(rxf_depth_level));
    b->depth_every_ns = depth_n ? depth_every_ns : 0;
    if (b->depth_every_ns && !(b->dirty = malloc(RXF_BOOK_MAX_LOCATES * sizeof(uint16_t)))) return -1;
    b->table.version = RXF_ITCH_HANDLERS_VERSION;
    b->table.struct_size = sizeof(rxf_itch_handlers);
    b->table.ctx = b;
    if (want_latency && !(b->latency_hist = calloc(RXF_HIST_BUCKETS, sizeof(uint64_t)))) return -1;
    const char *types = "AFECXDUPQBHRS";
    for (const char *t = types; *t; t++) b->table.wire[(uint8_t)*t] = want_latency ? on_wire_timed : on_wire;
    return 0;
}

void rxf_books_free(rxf_books *b) {
    rxf_l3_free(&b->l3);
    free(b->stocks); free(b->name_head);
    rows_free(&b->bbo); rows_free(&b->trades); rows_free(&b->depth);
    free(b->latency_hist); free(b->dirty);
    memset(b, 0, sizeof(*b));
}

int32_t rxf_books_find_level(const rxf_books *b, uint16_t locate, int side, uint32_t price) {
    return rxf_l3_find_level(&b->l3, &b->stocks[locate].side[side != 0], side != 0, price);
}

uint64_t rxf_books_bytes_used(const rxf_books *b) { return rxf_l3_bytes_used(&b->l3); }

const char *rxf_books_check(const rxf_books *b) {
    for (uint32_t loc = 0; loc < RXF_BOOK_MAX_LOCATES; loc++)
        for (int side = 0; side < 2; side++) {
            const char *why = rxf_l3_check_side(&b->l3, &b->stocks[loc].side[side], side, (uint16_t)loc, 1);
            if (why) return why;
        }
    return NULL;
}
