/* See book.h. */
#include "book.h"
#include "rxfeed/hist.h"

#include <stdlib.h>
#include <string.h>

#define EMPTY (-1)
#define TOMB (-2)

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static int hash_grow(rxf_books *b);

static int64_t hash_find(const rxf_books *b, uint64_t ref) {
    uint64_t m = b->hash_cap - 1, i = mix(ref) & m;
    for (;;) {
        int32_t s = b->hash[i];
        if (s == EMPTY) return -1;
        if (s >= 0 && b->orders[s].ref == ref) return (int64_t)i;
        i = (i + 1) & m;
    }
}

static int hash_put(rxf_books *b, uint64_t ref, int32_t slot) {
    if ((b->hash_used + 1) * 10 > b->hash_cap * 7 && hash_grow(b) != 0) return -1;
    uint64_t m = b->hash_cap - 1, i = mix(ref) & m;
    while (b->hash[i] >= 0) i = (i + 1) & m;
    if (b->hash[i] == EMPTY) b->hash_used++;
    b->hash[i] = slot;
    return 0;
}

static int hash_grow(rxf_books *b) {
    uint64_t ncap = b->hash_cap * 2;
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

static int32_t order_alloc(rxf_books *b) {
    if (b->free_head >= 0) {
        int32_t s = b->free_head;
        b->free_head = b->orders[s].next;
        return s;
    }
    if (b->n_orders == b->cap_orders) {
        uint32_t ncap = b->cap_orders * 2;
        rxf_order *no = realloc(b->orders, (size_t)ncap * sizeof(rxf_order));
        if (!no) { b->oom = 1; return -1; }
        b->orders = no;
        b->cap_orders = ncap;
    }
    return (int32_t)b->n_orders++;
}

/* Level index of price p on side s (inserted empty if absent), -1 on OOM. */
static int32_t level_at(rxf_books *b, rxf_side *sd, int is_ask, uint32_t p, int create) {
    int32_t i = (int32_t)sd->n - 1;
    /* lv[i] is better than lv[i-1]; walk down from the best */
    while (i >= 0 && (is_ask ? sd->lv[i].price < p : sd->lv[i].price > p)) i--;
    if (i >= 0 && sd->lv[i].price == p) return i;
    if (!create) return -1;
    if (sd->n == sd->cap) {
        uint32_t ncap = sd->cap ? sd->cap * 2 : 16;
        rxf_level *nl = realloc(sd->lv, (size_t)ncap * sizeof(rxf_level));
        if (!nl) { b->oom = 1; return -1; }
        sd->lv = nl;
        sd->cap = ncap;
    }
    int32_t at = i + 1;
    memmove(&sd->lv[at + 1], &sd->lv[at], (size_t)(sd->n - (uint32_t)at) * sizeof(rxf_level));
    sd->n++;
    sd->lv[at].price = p;
    sd->lv[at].orders = 0;
    sd->lv[at].shares = 0;
    sd->lv[at].head = sd->lv[at].tail = -1;
    return at;
}

static void check_top(rxf_books *b, uint16_t loc, uint64_t ts) {
    rxf_stock *st = &b->stocks[loc];
    rxf_side *bid = &st->side[0], *ask = &st->side[1];
    uint32_t bp = bid->n ? bid->lv[bid->n - 1].price : 0, ap = ask->n ? ask->lv[ask->n - 1].price : 0;
    uint64_t bs = bid->n ? bid->lv[bid->n - 1].shares : 0, as = ask->n ? ask->lv[ask->n - 1].shares : 0;
    uint8_t cr = (bid->n && ask->n) ? (bp > ap ? 1 : bp == ap ? 2 : 0) : 0;
    if (cr && cr != st->crossed) { if (cr == 1) b->c.crossed++; else b->c.locked++; }
    st->crossed = cr;
    if (bp == st->last_bid_px && ap == st->last_ask_px && bs == st->last_bid_sz && as == st->last_ask_sz) return;
    st->last_bid_px = bp; st->last_ask_px = ap; st->last_bid_sz = bs; st->last_ask_sz = as;
    b->c.bbo_changes++;
    if (!b->want_bbo) return;
    if (b->n_bbo == b->cap_bbo) {
        uint64_t ncap = b->cap_bbo ? b->cap_bbo * 2 : 4096;
        rxf_bbo_event *ne = realloc(b->bbo, ncap * sizeof(rxf_bbo_event));
        if (!ne) { b->oom = 1; return; }
        b->bbo = ne;
        b->cap_bbo = ncap;
    }
    rxf_bbo_event *e = &b->bbo[b->n_bbo++];
    memset(e, 0, sizeof(*e));
    e->timestamp = ts; e->locate = loc;
    e->bid_price = bp; e->bid_shares = bs; e->ask_price = ap; e->ask_shares = as;
}

static void depth_snapshot(rxf_books *b, uint16_t loc, uint64_t ts) {
    size_t rec = sizeof(rxf_depth_header) + 2 * (size_t)b->depth_n * sizeof(rxf_depth_level);
    if (b->n_depth == b->cap_depth) {
        uint64_t ncap = b->cap_depth ? b->cap_depth * 2 : 1024;
        uint8_t *nd = realloc(b->depth, ncap * rec);
        if (!nd) { b->oom = 1; return; }
        b->depth = nd;
        b->cap_depth = ncap;
    }
    uint8_t *p = b->depth + b->n_depth++ * rec;
    memset(p, 0, rec);
    rxf_depth_header *h = (rxf_depth_header *)p;
    h->timestamp = ts; h->locate = loc; h->levels = (uint16_t)b->depth_n;
    rxf_depth_level *out = (rxf_depth_level *)(p + sizeof(*h));
    for (int side = 0; side < 2; side++) {
        rxf_side *sd = &b->stocks[loc].side[side];
        for (uint32_t i = 0; i < b->depth_n && i < sd->n; i++) {
            rxf_level *lv = &sd->lv[sd->n - 1 - i];
            out[side * b->depth_n + i].price = lv->price;
            out[side * b->depth_n + i].orders = lv->orders;
            out[side * b->depth_n + i].shares = lv->shares;
        }
    }
    b->c.depth_snapshots++;
}

static void trade(rxf_books *b, char type, uint64_t ts, uint16_t loc, uint64_t match, uint64_t ref, uint32_t px,
                  uint32_t shares, char side) {
    if (!b->want_trades) return;
    if (b->n_trades == b->cap_trades) {
        uint64_t ncap = b->cap_trades ? b->cap_trades * 2 : 4096;
        rxf_trade_event *ne = realloc(b->trades, ncap * sizeof(rxf_trade_event));
        if (!ne) { b->oom = 1; return; }
        b->trades = ne;
        b->cap_trades = ncap;
    }
    rxf_trade_event *t = &b->trades[b->n_trades++];
    memset(t, 0, sizeof(*t));
    t->timestamp = ts; t->locate = loc; t->match_number = match; t->order_reference_number = ref;
    t->price = px; t->shares = shares; t->type = type; t->side = side;
}

static void add(rxf_books *b, uint16_t loc, uint64_t ref, char side_c, uint32_t shares, uint32_t px) {
    if (hash_find(b, ref) >= 0) { b->c.duplicate_add++; return; }
    int is_ask = side_c == 'S';
    rxf_side *sd = &b->stocks[loc].side[is_ask];
    int32_t li = level_at(b, sd, is_ask, px, 1);
    int32_t s = li < 0 ? -1 : order_alloc(b);
    if (s < 0) return;
    rxf_order *o = &b->orders[s];
    o->ref = ref; o->price = px; o->shares = shares; o->locate = loc; o->side = (uint8_t)is_ask; o->live = 1;
    rxf_level *lv = &sd->lv[li];
    o->prev = lv->tail; o->next = -1;
    if (lv->tail >= 0) b->orders[lv->tail].next = s; else lv->head = s;
    lv->tail = s;
    lv->orders++;
    lv->shares += shares;
    if (b->depth_n && sd->n - (uint32_t)li <= b->depth_n) b->touched = 1;
    if (hash_put(b, ref, s) != 0) return;
    b->c.adds++;
}

/* Take k shares off the order in hash position h (all of it when k >= remaining). */
static void reduce(rxf_books *b, int64_t h, uint32_t k) {
    int32_t s = b->hash[h];
    rxf_order *o = &b->orders[s];
    rxf_side *sd = &b->stocks[o->locate].side[o->side];
    int32_t li = level_at(b, sd, o->side, o->price, 0);
    if (li < 0) return; /* cannot happen: every live order sits on a level */
    rxf_level *lv = &sd->lv[li];
    if (b->depth_n && sd->n - (uint32_t)li <= b->depth_n) b->touched = 1;
    if (k < o->shares) {
        o->shares -= k;
        lv->shares -= k;
        return;
    }
    lv->shares -= o->shares;
    lv->orders--;
    if (o->prev >= 0) b->orders[o->prev].next = o->next; else lv->head = o->next;
    if (o->next >= 0) b->orders[o->next].prev = o->prev; else lv->tail = o->prev;
    if (lv->orders == 0) {
        memmove(&sd->lv[li], &sd->lv[li + 1], (size_t)(sd->n - (uint32_t)li - 1) * sizeof(rxf_level));
        sd->n--;
    }
    o->live = 0;
    b->hash[h] = TOMB;
    o->next = b->free_head;
    b->free_head = s;
}

static inline void apply(rxf_books *b, const rxf_itch_record *r) {
    b->touched = 0;
    uint16_t loc = r->hdr.stock_locate;
    uint64_t ts = r->hdr.timestamp;
    int64_t h;
    b->c.messages++;
    switch (r->hdr.type) {
    case 'A': add(b, loc, r->AddOrder.order_reference_number, r->AddOrder.buy_sell_indicator,
                  r->AddOrder.shares, r->AddOrder.price); break;
    case 'F': add(b, loc, r->AddOrderMPID.order_reference_number, r->AddOrderMPID.buy_sell_indicator,
                  r->AddOrderMPID.shares, r->AddOrderMPID.price); break;
    case 'E': case 'C': {
        uint64_t ref = r->hdr.type == 'E' ? r->OrderExecuted.order_reference_number
                                          : r->OrderExecutedWithPrice.order_reference_number;
        uint32_t k = r->hdr.type == 'E' ? r->OrderExecuted.executed_shares : r->OrderExecutedWithPrice.executed_shares;
        h = hash_find(b, ref);
        if (h < 0) { b->c.unknown_order++; return; }
        rxf_order *o = &b->orders[b->hash[h]];
        loc = o->locate;
        if (k > o->shares) b->c.exec_beyond_remaining++;
        uint32_t px = r->hdr.type == 'E' ? o->price : r->OrderExecutedWithPrice.execution_price;
        trade(b, r->hdr.type, ts, loc, r->hdr.type == 'E' ? r->OrderExecuted.match_number
                                                          : r->OrderExecutedWithPrice.match_number,
              ref, px, k < o->shares ? k : o->shares, o->side ? 'S' : 'B');
        reduce(b, h, k);
        b->c.executions++;
        break;
    }
    case 'X':
        h = hash_find(b, r->OrderCancel.order_reference_number);
        if (h < 0) { b->c.unknown_order++; return; }
        loc = b->orders[b->hash[h]].locate;
        if (r->OrderCancel.cancelled_shares > b->orders[b->hash[h]].shares) b->c.cancel_beyond_remaining++;
        reduce(b, h, r->OrderCancel.cancelled_shares);
        b->c.cancels++;
        break;
    case 'D':
        h = hash_find(b, r->OrderDelete.order_reference_number);
        if (h < 0) { b->c.unknown_order++; return; }
        loc = b->orders[b->hash[h]].locate;
        reduce(b, h, UINT32_MAX);
        b->c.deletes++;
        break;
    case 'U': {
        h = hash_find(b, r->OrderReplace.original_order_reference_number);
        if (h < 0) { b->c.unknown_order++; return; }
        rxf_order *o = &b->orders[b->hash[h]];
        char side = o->side ? 'S' : 'B';
        loc = o->locate; /* replace keeps the side, loses priority */
        reduce(b, h, UINT32_MAX);
        add(b, loc, r->OrderReplace.new_order_reference_number, side, r->OrderReplace.shares, r->OrderReplace.price);
        b->c.replaces++;
        break;
    }
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
    case 'R':
        memcpy(b->stocks[loc].name, r->StockDirectory.stock, 8);
        b->stocks[loc].seen = 1;
        return;
    case 'S': b->system_state = r->SystemEvent.event_code; b->c.system_events++; return;
    default: return;
    }
    check_top(b, loc, ts);
    if (b->touched && !b->depth_every_ns) depth_snapshot(b, loc, ts);
}

/* Clock mode: when message time passes the next tick, snapshot every named book. */
static inline void clock_tick(rxf_books *b, uint64_t ts) {
    if (!b->next_clock_ns) b->next_clock_ns = (ts / b->depth_every_ns + 1) * b->depth_every_ns;
    while (ts >= b->next_clock_ns) {
        for (uint32_t loc = 0; loc < RXF_BOOK_MAX_LOCATES; loc++)
            if (b->stocks[loc].seen) depth_snapshot(b, (uint16_t)loc, b->next_clock_ns);
        b->next_clock_ns += b->depth_every_ns;
    }
}

static void on_msg(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    (void)meta;
    rxf_books *b = ctx;
    if (b->depth_every_ns) clock_tick(b, r->hdr.timestamp);
    apply(b, r);
}

static void on_msg_timed(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *meta) {
    (void)meta;
    rxf_books *b = ctx;
    uint64_t c0 = rxf_cycles();
    if (b->depth_every_ns) clock_tick(b, r->hdr.timestamp);
    apply(b, r);
    b->latency_hist[rxf_hist_index(rxf_cycles() - c0)]++;
}

int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n) {
    memset(b, 0, sizeof(*b));
    b->stocks = calloc(RXF_BOOK_MAX_LOCATES, sizeof(rxf_stock));
    b->cap_orders = 1u << 16;
    b->orders = malloc((size_t)b->cap_orders * sizeof(rxf_order));
    b->hash_cap = 1u << 17;
    b->hash = malloc(b->hash_cap * sizeof(int32_t));
    if (!b->stocks || !b->orders || !b->hash) return -1;
    for (uint64_t i = 0; i < b->hash_cap; i++) b->hash[i] = EMPTY;
    b->free_head = -1;
    b->want_bbo = want_bbo;
    b->want_trades = want_trades;
    b->depth_n = depth_n;
    b->table.version = RXF_ITCH_HANDLERS_VERSION;
    b->table.struct_size = sizeof(rxf_itch_handlers);
    b->table.ctx = b;
    if (want_latency && !(b->latency_hist = calloc(RXF_HIST_BUCKETS, sizeof(uint64_t)))) return -1;
    const char *types = "AFECXDUPQBHRS";
    for (const char *t = types; *t; t++) b->table.on[(uint8_t)*t] = want_latency ? on_msg_timed : on_msg;
    return 0;
}

void rxf_books_free(rxf_books *b) {
    if (b->stocks)
        for (uint32_t i = 0; i < RXF_BOOK_MAX_LOCATES; i++) { free(b->stocks[i].side[0].lv); free(b->stocks[i].side[1].lv); }
    free(b->stocks); free(b->orders); free(b->hash); free(b->bbo); free(b->trades); free(b->latency_hist); free(b->depth);
    memset(b, 0, sizeof(*b));
}
