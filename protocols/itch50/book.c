/* See book.h. ITCH 5.0 glue on the L3 engine (rxfeed/l3book.h, included by book.h). */
#include "book.h"
#include "rxfeed/hist.h"

#include <stdlib.h>
#include <string.h>

/* the engine's growable-array helper, for the output buffers too */
#define grow(b, arrp, cap, elem, first, max) rxf_l3_grow(&(b)->l3.oom, arrp, cap, elem, first, max)
/* ---- outputs ---- */

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
    if (!b->want_bbo) return;
    if (b->n_bbo == b->cap_bbo && grow(b, &b->bbo, &b->cap_bbo, sizeof(rxf_bbo_event), 4096, UINT32_MAX) != 0)
        return;
    rxf_bbo_event *e = &b->bbo[b->n_bbo++];
    memset(e, 0, sizeof(*e));
    e->timestamp = ts; e->locate = loc;
    e->bid_price = bp; e->bid_shares = bs; e->ask_price = ap; e->ask_shares = as;
}

static void depth_snapshot(rxf_books *b, uint16_t loc, uint64_t ts) {
    size_t rec = sizeof(rxf_depth_header) + 2 * (size_t)b->l3.depth_n * sizeof(rxf_depth_level);
    if (b->n_depth == b->cap_depth && grow(b, &b->depth, &b->cap_depth, rec, 1024, UINT32_MAX) != 0) return;
    uint8_t *p = b->depth + b->n_depth++ * rec;
    memset(p, 0, rec);
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

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint64_t be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

/* The message after p's (p at a length prefix, whole inside end), NULL if none is whole. */
static inline const uint8_t *la_next(const uint8_t *p, const uint8_t *end) {
    if (!p) return NULL;
    const uint8_t *q = p + 2 + be16(p);
    size_t left = (size_t)(end - q);
    return left >= 2 && left - 2 >= be16(q) ? q : NULL;
}

/* The order reference of the message at p, 0 when its type names none (or it is short). */
static inline uint64_t la_ref(const uint8_t *p) {
    uint16_t n = be16(p);
    switch (p[2]) {
    case 'A': case 'F': case 'E': case 'C': case 'X': case 'D': case 'U': return n >= 19 ? be64(p + 2 + 11) : 0;
    default: return 0;
    }
}

/* One stage's hint for the message at p. */
static inline void la_hint(const rxf_books *b, const uint8_t *p, int stage) {
    uint64_t ref = la_ref(p);
    if (!ref) return;
    const uint8_t *m = p + 2;
    const rxf_stock *st = &b->stocks[be16(m + 1)];
    if (m[0] == 'A' || m[0] == 'F') {  /* the reference's index line; the book, its level-index line, its level */
        if (be16(p) < 36) return;
        const rxf_side *sd = &st->side[m[19] == 'S'];
        uint32_t px = (uint32_t)m[32] << 24 | (uint32_t)m[33] << 16 | (uint32_t)m[34] << 8 | m[35];
        if (stage == LA_INDEX) {
            rxf_l3_prefetch_index(&b->l3, ref);
            RXF_PREFETCH(st, 1);
        } else if (stage == LA_ORDER)
            rxf_l3_prefetch_level_entry(&b->l3, sd, px);
        else if (stage == LA_NEAR)
            rxf_l3_prefetch_level(&b->l3, sd, px);
        else
            rxf_l3_prefetch_level_tail(&b->l3, sd, px);
        return;
    }
    if (stage == LA_INDEX) {
        rxf_l3_prefetch_index(&b->l3, ref);
        RXF_PREFETCH(st, 1);
        if (m[0] == 'U' && be16(p) >= 27) rxf_l3_prefetch_index(&b->l3, be64(m + 19));
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
        (size_t)(pk->data + pk->len - raw) < raw_len || be16(raw - 2) != raw_len)
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

/* Before applying the message at meta: hints for the ones ahead, cursors one step on. */
static inline void look_ahead(rxf_books *b, const rxf_itch_meta *meta) {
    const rxf_packet *pk = meta->packet;
    if (meta->raw != b->la_expect || !pk || pk->data != b->la_data || pk->data + pk->len != b->la_end) {
        if (!la_reset(b, pk, meta->raw, meta->raw_len)) return;
    }
    b->la_expect = meta->raw + meta->raw_len + 2;
    static const int stage[LA_STAGES] = {LA_TAIL, LA_NEAR, LA_ORDER, LA_INDEX};
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
    if (rxf_l3_find(&b->l3, ref) >= 0) { b->c.duplicate_add++; return; }
    int is_ask = side_c == 'S';
    if (rxf_l3_add(&b->l3, &b->stocks[loc].side[is_ask], loc, ref, is_ask, shares, px) == 0) b->c.adds++;
}

/* Take k shares off the order in hash position h (all of it when k >= remaining). */
static inline void reduce(rxf_books *b, int64_t h, uint32_t k) {
    const rxf_order *o = rxf_l3_at(&b->l3, h);
    rxf_l3_reduce(&b->l3, &b->stocks[o->book].side[o->side], h, k);
}

/* The live order a message names, or NULL (counted as unknown); *h its hash slot. */
static rxf_order *known_order(rxf_books *b, uint64_t ref, int64_t *h) {
    rxf_order *o = rxf_l3_order(&b->l3, ref, h);
    if (!o) b->c.unknown_order++;
    return o;
}

/* E and C: an execution at the order's price (E) or the printed one (C). Returns the locate, -1 if none. */
static int32_t on_execute(rxf_books *b, const rxf_itch_record *r) {
    int is_e = r->hdr.type == 'E';
    uint64_t ref = is_e ? r->OrderExecuted.order_reference_number : r->OrderExecutedWithPrice.order_reference_number;
    uint32_t k = is_e ? r->OrderExecuted.executed_shares : r->OrderExecutedWithPrice.executed_shares;
    int64_t h;
    rxf_order *o = known_order(b, ref, &h);
    if (!o) return -1;
    uint16_t loc = o->book;
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
    uint16_t loc = o->book;
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
    uint16_t loc = o->book;
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
    uint32_t bucket = (uint32_t)(rxf_l3_mix(key) & (RXF_BOOK_NAME_BUCKETS - 1));
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
    b->l3.touched = 0;
    b->c.messages++;
    if (b->depth_every_ns) clock_tick(b, r->hdr.timestamp);
    int32_t loc = update_book(b, r);
    if (loc < 0) { on_other(b, r); return; }
    check_top(b, (uint16_t)loc, r->hdr.timestamp);
    if (!b->l3.touched) return;
    if (b->depth_every_ns) mark_dirty(b, (uint16_t)loc);
    else depth_snapshot(b, (uint16_t)loc, r->hdr.timestamp);
}

static void on_msg(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    rxf_books *b = ctx;
    if (b->lookahead && meta) look_ahead(b, meta);
    apply(b, r);
}

static void on_msg_timed(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    rxf_books *b = ctx;
    uint64_t c0 = rxf_cycles();
    if (b->lookahead && meta) look_ahead(b, meta);
    apply(b, r);
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
    b->want_bbo = want_bbo;
    b->want_trades = want_trades;
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
    rxf_l3_free(&b->l3);
    free(b->stocks); free(b->name_head); free(b->bbo);
    free(b->trades); free(b->latency_hist); free(b->depth); free(b->dirty);
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
