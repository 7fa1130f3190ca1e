/* See iex_book.h. IEX TOPS, DEEP and DEEP+ glue on the L3 engine (rxfeed/l3book.h). */
#include "iex_book.h"
#include "rxfeed/hist.h"

#include <stdlib.h>
#include <string.h>

#define grow(b, arrp, cap, elem, first, max) rxf_l3_grow(&(b)->l3.oom, arrp, cap, elem, first, max)

static const char FEED_SIDE_CODE[2] = {'8', '5'};

/* ---- symbols: 8 bytes -> dense index ---- */

static inline uint64_t sym_key(const char *symbol8) {
    uint64_t k;
    memcpy(&k, symbol8, 8);
    return k;
}

static int64_t sym_find(const rxf_iex_books *b, uint64_t key) {
    uint32_t m = b->sym_cap - 1, i = (uint32_t)(rxf_l3_mix(key) & m);
    for (;;) {
        uint32_t e = b->sym_hash[i];
        if (e == 0) return -(int64_t)i - 1;  /* absent: -(free slot) - 1 */
        if (sym_key(b->stocks[e - 1].symbol) == key) return e - 1;
        i = (i + 1) & m;
    }
}

/* Twice the table; 0 or -1 on OOM. */
static int sym_rehash(rxf_iex_books *b) {
    uint32_t ncap = b->sym_cap * 2, m = ncap - 1;
    uint32_t *nh = calloc(ncap, sizeof(uint32_t));
    if (!nh) { b->l3.oom = 1; return -1; }
    for (uint32_t s = 0; s < b->n_stocks; s++) {
        uint32_t i = (uint32_t)(rxf_l3_mix(sym_key(b->stocks[s].symbol)) & m);
        while (nh[i]) i = (i + 1) & m;
        nh[i] = s + 1;
    }
    free(b->sym_hash);
    b->sym_hash = nh;
    b->sym_cap = ncap;
    return 0;
}

/* A new, empty stock for symbol8; its index, or -1 (counted). May move b->stocks. */
static int64_t sym_insert(rxf_iex_books *b, const char *symbol8) {
    if (b->n_stocks >= RXF_IEX_MAX_SYMBOLS) { b->c.too_many_symbols++; return -1; }
    if (b->n_stocks == b->cap_stocks) {
        uint64_t cap = b->cap_stocks;
        if (grow(b, &b->stocks, &cap, sizeof(rxf_iex_stock), 256, RXF_IEX_MAX_SYMBOLS) != 0) return -1;
        b->cap_stocks = (uint32_t)cap;
    }
    if ((b->n_stocks + 1) * 2 > b->sym_cap && sym_rehash(b) != 0) return -1;
    uint32_t s = b->n_stocks++;
    memset(&b->stocks[s], 0, sizeof(rxf_iex_stock));
    memcpy(b->stocks[s].symbol, symbol8, 8);
    int64_t slot = sym_find(b, sym_key(symbol8));  /* not there yet: the free slot, after the rehash */
    b->sym_hash[-slot - 1] = s + 1;
    return s;
}

/* The index of symbol8, added when new; -1 when it cannot be (counted). */
static inline int64_t symbol_index(rxf_iex_books *b, const char *symbol8) {
    int64_t i = sym_find(b, sym_key(symbol8));
    return i >= 0 ? i : sym_insert(b, symbol8);
}

/* ---- outputs ---- */

static rxf_iex_top feed_top(const rxf_iex_books *b, const rxf_iex_stock *st, int feed) {
    if (feed == RXF_IEX_BOOK_TOPS) return st->tops;
    const rxf_side *sd = feed == RXF_IEX_BOOK_DEEP ? st->deep : st->plus;
    const rxf_level *bl = &b->l3.lv[sd[0].best], *al = &b->l3.lv[sd[1].best]; /* the sentinel is all zero */
    rxf_iex_top t = {bl->price, al->price, bl->shares, al->shares};
    return t;
}

static const uint16_t FEED_PROTOCOL[RXF_IEX_BOOK_FEEDS] = {RXF_IEX_PROTO_TOPS, RXF_IEX_PROTO_DEEP,
                                                           RXF_IEX_PROTO_DEEP_PLUS};

/* After a complete change of sym's book of feed: crossed/locked counted, a BBO event if the top moved. */
static void check_top(rxf_iex_books *b, uint32_t sym, int feed, int64_t ts) {
    rxf_iex_stock *st = &b->stocks[sym];
    rxf_iex_top t = feed_top(b, st, feed), *last = &st->last[feed];
    uint8_t cr = (t.bid_size && t.ask_size) ? (t.bid_price > t.ask_price ? 1 : t.bid_price == t.ask_price ? 2 : 0) : 0;
    if (cr && cr != st->crossed[feed]) { if (cr == 1) b->c.crossed++; else b->c.locked++; }
    st->crossed[feed] = cr;
    if (memcmp(&t, last, sizeof t) == 0) return;
    *last = t;
    b->c.bbo_changes++;
    if (!b->want_bbo) return;
    if (b->n_bbo == b->cap_bbo && grow(b, &b->bbo, &b->cap_bbo, sizeof(rxf_iex_bbo_event), 4096, UINT32_MAX) != 0)
        return;
    rxf_iex_bbo_event *e = &b->bbo[b->n_bbo++];
    memset(e, 0, sizeof(*e));
    e->timestamp = ts; e->symbol = sym; e->protocol_id = FEED_PROTOCOL[feed];
    e->bid_price = t.bid_price; e->ask_price = t.ask_price; e->bid_size = t.bid_size; e->ask_size = t.ask_size;
}

static void trade(rxf_iex_books *b, const rxf_iex_TradeReport *r, uint32_t sym, uint16_t proto, char type,
                  int64_t order_id, char side) {
    if (!b->want_trades) return;
    if (b->n_trades == b->cap_trades &&
        grow(b, &b->trades, &b->cap_trades, sizeof(rxf_iex_trade_event), 4096, UINT32_MAX) != 0)
        return;
    rxf_iex_trade_event *t = &b->trades[b->n_trades++];
    memset(t, 0, sizeof(*t));
    t->timestamp = r->timestamp; t->price = r->price; t->trade_id = r->trade_id; t->order_id = order_id;
    t->size = r->size; t->symbol = sym; t->protocol_id = proto; t->type = type;
    t->sale_condition_flags = r->sale_condition_flags; t->side = side;
}

/* ---- DEEP: price levels, one event at a time ---- */

/* Every staged update onto the books, then each touched book's top checked. */
static void apply_staged(rxf_iex_books *b) {
    for (uint32_t i = 0; i < b->n_staged; i++) {
        const rxf_iex_staged *u = &b->staged[i];
        rxf_l3_set_level(&b->l3, &b->stocks[u->book].deep[u->side], u->side, u->price, u->size);
    }
    for (uint32_t i = 0; i < b->n_staged; i++) check_top(b, b->staged[i].book, RXF_IEX_BOOK_DEEP, b->staged_ts);
    if (b->n_staged) b->c.events_applied++;
    b->n_staged = 0;
}

/* '8' / '5': staged; the update that completes its event applies the whole event. */
static void on_price_level(rxf_iex_books *b, const rxf_iex_record *r, const rxf_iex_meta *meta) {
    const rxf_iex_PriceLevelUpdateBuy *u = &r->PriceLevelUpdateBuy;  /* the sell one has the same layout */
    b->c.price_level_updates++;
    int64_t sym = symbol_index(b, u->symbol);
    if (sym >= 0 && u->price <= 0) b->c.bad_price++;
    else if (sym >= 0) {
        if (b->n_staged == RXF_IEX_STAGE_CAP) { b->c.staged_overflow++; apply_staged(b); }
        rxf_iex_staged *s = &b->staged[b->n_staged++];
        s->price = u->price; s->book = (uint32_t)sym; s->size = u->size; s->side = u->message_type == '5';
    }
    b->staged_ts = u->timestamp;
    if (meta->event_end) apply_staged(b);
}

/* ---- DEEP+: orders ---- */

/* The order a message names, or NULL (counted); *h its hash slot; a symbol that is not the order's counted. */
static rxf_order *named_order(rxf_iex_books *b, int64_t id, const char *symbol8, int64_t *h) {
    rxf_order *o = rxf_l3_order(&b->l3, (uint64_t)id, h);
    if (!o) { b->c.unknown_order++; return NULL; }
    if (memcmp(b->stocks[o->book].symbol, symbol8, 8) != 0) b->c.symbol_mismatch++;
    return o;
}

static inline void reduce(rxf_iex_books *b, int64_t h, uint32_t k) {
    const rxf_order *o = rxf_l3_at(&b->l3, h);
    rxf_l3_reduce(&b->l3, &b->stocks[o->book].plus[o->side], h, k);
}

/* 'a': refused (counted) with a bad side, no size, a price <= 0 or a live id. Returns the symbol, -1. */
static int64_t on_add(rxf_iex_books *b, const rxf_iex_AddOrder *a) {
    if (a->side != '8' && a->side != '5') { b->c.invalid_side++; return -1; }
    if (a->size == 0) { b->c.zero_size++; return -1; }
    if (a->price <= 0) { b->c.bad_price++; return -1; }
    /* before symbol_index, which would register the symbol of a refused add */
    if (rxf_l3_find(&b->l3, (uint64_t)a->order_id) >= 0) { b->c.duplicate_add++; return -1; }
    int64_t sym = symbol_index(b, a->symbol);
    if (sym < 0) return -1;
    int is_ask = a->side == '5';
    if (rxf_l3_add(&b->l3, &b->stocks[sym].plus[is_ask], (uint32_t)sym, (uint64_t)a->order_id, is_ask, a->size,
                   a->price) == 0)
        b->c.adds++;
    return sym;
}

/* 'M': a new size and price. Priority is kept (the order stays in place)
   when the flag says so and it is a smaller size at the same price; else
   the order goes to the back of its new level. */
static int64_t on_modify(rxf_iex_books *b, const rxf_iex_OrderModify *m) {
    int64_t h;
    rxf_order *o = named_order(b, m->order_id_reference, m->symbol, &h);
    if (!o) return -1;
    if (m->size == 0) { b->c.zero_size++; return -1; }
    if (m->price <= 0) { b->c.bad_price++; return -1; }
    uint32_t sym = o->book;
    int is_ask = o->side;
    b->c.modifies++;
    if ((m->modify_flags & 1) && m->price == o->price && m->size <= o->shares) {
        b->c.priority_kept++;
        if (m->size < o->shares) reduce(b, h, o->shares - m->size);
        return sym;
    }
    if (m->modify_flags & 1) b->c.modify_priority_conflict++;  /* kept priority claimed for a price or size up */
    reduce(b, h, UINT32_MAX);
    rxf_l3_add(&b->l3, &b->stocks[sym].plus[is_ask], sym, (uint64_t)m->order_id_reference, is_ask, m->size,
               m->price);
    return sym;
}

static int64_t on_delete(rxf_iex_books *b, const rxf_iex_OrderDelete *d) {
    int64_t h;
    rxf_order *o = named_order(b, d->order_id_reference, d->symbol, &h);
    if (!o) return -1;
    uint32_t sym = o->book;
    reduce(b, h, UINT32_MAX);
    b->c.deletes++;
    return sym;
}

/* 'L': the order loses the size executed (all of it: off the book); a trade at the message's price. */
static int64_t on_executed(rxf_iex_books *b, const rxf_iex_OrderExecuted *x) {
    int64_t h;
    rxf_order *o = named_order(b, x->order_id_reference, x->symbol, &h);
    if (!o) return -1;
    if (x->size == 0) { b->c.zero_size++; return -1; }
    uint32_t sym = o->book;
    if (x->size > o->shares) b->c.exec_beyond_remaining++;
    rxf_iex_TradeReport t = {.timestamp = x->timestamp, .price = x->price, .trade_id = x->trade_id,
                             .size = x->size < o->shares ? x->size : o->shares,
                             .sale_condition_flags = x->sale_condition_flags};
    trade(b, &t, sym, RXF_IEX_PROTO_DEEP_PLUS, 'L', x->order_id_reference, FEED_SIDE_CODE[o->side]);
    reduce(b, h, x->size);
    b->c.executions++;
    return sym;
}

static int64_t on_clear(rxf_iex_books *b, const rxf_iex_ClearBook *c) {
    int64_t sym = symbol_index(b, c->symbol);
    if (sym < 0) return -1;
    for (int side = 0; side < 2; side++) rxf_l3_clear_side(&b->l3, &b->stocks[sym].plus[side], side);
    b->c.clears++;
    return sym;
}

/* ---- TOPS ---- */

static int64_t on_quote(rxf_iex_books *b, const rxf_iex_QuoteUpdate *q) {
    if (q->bid_price < 0 || q->ask_price < 0) { b->c.bad_price++; return -1; }
    int64_t sym = symbol_index(b, q->symbol);
    if (sym < 0) return -1;
    rxf_iex_stock *st = &b->stocks[sym];
    st->tops.bid_price = q->bid_size ? q->bid_price : 0;
    st->tops.bid_size = q->bid_price ? q->bid_size : 0;
    st->tops.ask_price = q->ask_size ? q->ask_price : 0;
    st->tops.ask_size = q->ask_price ? q->ask_size : 0;
    st->quote_flags = q->flags;
    b->c.quotes++;
    return sym;
}

/* ---- every feed ---- */

/* Messages that change no book: trades, breaks, states, directory, system events. */
static void on_other(rxf_iex_books *b, const rxf_iex_record *r, uint16_t proto) {
    int64_t sym;
    switch (r->hdr.message_type) {
    case 'T':
        if ((sym = symbol_index(b, r->TradeReport.symbol)) < 0) return;
        b->c.trades++;
        trade(b, &r->TradeReport, (uint32_t)sym, proto, 'T', 0, ' ');
        return;
    case 'B': b->c.trade_breaks++; return;
    case 'H':
        if ((sym = symbol_index(b, r->TradingStatus.symbol)) < 0) return;
        b->stocks[sym].trading_status = r->TradingStatus.trading_status;
        b->c.trading_status++;
        if (r->TradingStatus.trading_status == 'H') b->c.halts++;
        return;
    case 'O':
        if ((sym = symbol_index(b, r->OperationalHaltStatus.symbol)) < 0) return;
        b->stocks[sym].operational_halt = r->OperationalHaltStatus.operational_halt_status;
        if (r->OperationalHaltStatus.operational_halt_status == 'O') b->c.operational_halts++;
        return;
    case 'D': symbol_index(b, r->SecurityDirectory.symbol); return;
    case 'S': b->system_event = r->SystemEvent.system_event; b->c.system_events++; return;
    default: return;
    }
}

/* The feed's book a type changes (RXF_IEX_BOOK_*), -1 for none; wrong-feed types counted. */
static int book_of(rxf_iex_books *b, char type, uint16_t proto) {
    int want;
    switch (type) {
    case 'Q': want = RXF_IEX_BOOK_TOPS; break;
    case '8': case '5': want = RXF_IEX_BOOK_DEEP; break;
    case 'a': case 'M': case 'R': case 'L': case 'C': want = RXF_IEX_BOOK_PLUS; break;
    default: return -1;
    }
    if (FEED_PROTOCOL[want] != proto) { b->c.wrong_feed++; return -2; }
    return want;
}

static inline void apply(rxf_iex_books *b, const rxf_iex_record *r, const rxf_iex_meta *meta) {
    uint16_t proto = meta->protocol_id;
    b->c.messages++;
    if (proto < RXF_IEX_PROTO_TOPS || proto > RXF_IEX_PROTO_DEEP_PLUS) { b->c.unknown_protocol++; return; }
    b->last_protocol = proto;
    int feed = book_of(b, r->hdr.message_type, proto);
    if (feed == -1) { on_other(b, r, proto); return; }
    if (feed < 0) return;  /* a type of another feed (counted) */
    if (feed == RXF_IEX_BOOK_DEEP) { on_price_level(b, r, meta); return; }
    int64_t sym = -1;
    switch (r->hdr.message_type) {
    case 'Q': sym = on_quote(b, &r->QuoteUpdate); break;
    case 'a': sym = on_add(b, &r->AddOrder); break;
    case 'M': sym = on_modify(b, &r->OrderModify); break;
    case 'R': sym = on_delete(b, &r->OrderDelete); break;
    case 'L': sym = on_executed(b, &r->OrderExecuted); break;
    case 'C': sym = on_clear(b, &r->ClearBook); break;
    default: return;
    }
    if (sym >= 0) check_top(b, (uint32_t)sym, feed, r->hdr.timestamp);
}

static void on_msg(void *ctx, const rxf_iex_record *r, const rxf_iex_meta *meta) {
    apply(ctx, r, meta);
}

static void on_msg_timed(void *ctx, const rxf_iex_record *r, const rxf_iex_meta *meta) {
    rxf_iex_books *b = ctx;
    uint64_t c0 = rxf_cycles();
    apply(b, r, meta);
    b->latency_hist[rxf_hist_index(rxf_cycles() - c0)]++;
}

/* ---- life cycle and inspection ---- */

int rxf_iex_books_init(rxf_iex_books *b, int want_bbo, int want_trades, int want_latency) {
    memset(b, 0, sizeof(*b));
    if (rxf_l3_init(&b->l3, 0) != 0) return -1;
    b->sym_cap = 1024;
    b->sym_hash = calloc(b->sym_cap, sizeof(uint32_t));
    b->staged = malloc(RXF_IEX_STAGE_CAP * sizeof(rxf_iex_staged));
    if (!b->sym_hash || !b->staged) return -1;
    if (want_latency && !(b->latency_hist = calloc(RXF_HIST_BUCKETS, sizeof(uint64_t)))) return -1;
    b->want_bbo = want_bbo;
    b->want_trades = want_trades;
    b->table.version = RXF_IEX_HANDLERS_VERSION;
    b->table.struct_size = sizeof(rxf_iex_handlers);
    b->table.ctx = b;
    for (const char *t = "QT85aMRLCBHODS"; *t; t++) b->table.on[(uint8_t)*t] = want_latency ? on_msg_timed : on_msg;
    return 0;
}

void rxf_iex_books_free(rxf_iex_books *b) {
    rxf_l3_free(&b->l3);
    free(b->stocks); free(b->sym_hash); free(b->staged); free(b->bbo); free(b->trades); free(b->latency_hist);
    memset(b, 0, sizeof(*b));
}

int64_t rxf_iex_books_symbol(const rxf_iex_books *b, const char *symbol8) {
    int64_t i = sym_find(b, sym_key(symbol8));
    return i >= 0 ? i : -1;
}

const rxf_side *rxf_iex_books_side(const rxf_iex_books *b, uint32_t sym, int feed, int side) {
    const rxf_iex_stock *st = &b->stocks[sym];
    return feed == RXF_IEX_BOOK_DEEP ? &st->deep[side != 0] : &st->plus[side != 0];
}

const char *rxf_iex_books_check(const rxf_iex_books *b) {
    for (uint32_t s = 0; s < b->n_stocks; s++) {
        if (rxf_iex_books_symbol(b, b->stocks[s].symbol) != s) return "the symbol table is wrong";
        for (int side = 0; side < 2; side++) {
            const char *why = rxf_l3_check_side(&b->l3, &b->stocks[s].deep[side], side, s, 0);
            if (!why) why = rxf_l3_check_side(&b->l3, &b->stocks[s].plus[side], side, s, 1);
            if (why) return why;
        }
    }
    return NULL;
}
