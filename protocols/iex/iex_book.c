/* See iex_book.h. IEX TOPS, DEEP and DEEP+ glue on the L3 engine (rxfeed/l3book.h). */
#include "iex_book.h"
#include "rxfeed/hist.h"

#include <stdlib.h>
#include <string.h>

#define grow(b, arrp, cap, elem, first, max) rxf_l3_grow(&(b)->l3.oom, arrp, cap, elem, first, max)

static const char FEED_SIDE_CODE[2] = {'8', '5'};

/* ---- events: what the books did, as normalised records (rxfeed/events.h) ----
 *
 * With an event ring set, each change the books make becomes one event, in
 * the order made. The latest event of a message is held back and pushed
 * when the next one comes, or flagged RXF_EVF_LAST when the message ends, so
 * that every message's events end with one LAST (memory stays constant
 * however many orders a Clear Book removes). DEEP's levels come out when the
 * event that holds them completes, all stamped with the completing
 * message's sequence: one atomic group. Events report what the books did:
 * refused or unknown messages emit nothing. Symbol ids are the books'
 * symbol index + 1 (0 means "none" in events); prices are Price(4). */

/* One event into the ring: dropped and counted when full, unless the books
   wait for room (a replay backfilling a stream) and until waiting is turned off. */
static void ev_push(rxf_iex_books *b, const rxf_event *e) {
    rxf_event_ring_offer(b->events, e, &b->events_wait);
}

/* A new event of the current message (the one held before it pushed); its body is zero. */
static rxf_event *ev_new(rxf_iex_books *b, uint8_t kind, uint32_t sym) {
    if (b->has_held) ev_push(b, &b->held);
    b->held = rxf_event_make(kind, b->venue, sym + 1, b->ev_seq, b->ev_ts);
    b->has_held = 1;
    return &b->held;
}

/* The end of a message (of a DEEP event): its last event flagged and pushed. */
static void ev_flush(rxf_iex_books *b) {
    if (!b->has_held) return;
    b->held.flags |= RXF_EVF_LAST;
    ev_push(b, &b->held);
    b->has_held = 0;
}

static void ev_order(rxf_iex_books *b, uint8_t kind, uint32_t sym, int is_ask, int64_t px, uint64_t qty,
                     uint64_t id) {
    rxf_event *e = ev_new(b, kind, sym);
    e->side = is_ask ? RXF_SIDE_ASK : RXF_SIDE_BID;
    e->body.order = (rxf_ev_order){.price = px, .qty = qty, .order_id = id,
                                   .new_order_id = kind == RXF_EV_ORDER_MODIFY ? id : 0};
}

/* IEX Trading Status codes: H halted, P paused (order acceptance), O order acceptance (no trading), T trading. */
static enum rxf_trading_state ev_stock_state(char c) {
    switch (c) {
    case 'H': return RXF_STATE_HALTED;
    case 'P': return RXF_STATE_PAUSED;
    case 'O': return RXF_STATE_QUOTING;
    case 'T': return RXF_STATE_TRADING;
    default: return RXF_STATE_UNKNOWN;
    }
}

/* IEX System Event codes: R start of regular market hours; M, E, C ends; O, S before the open. */
static enum rxf_trading_state ev_system_state(char c) {
    switch (c) {
    case 'R': return RXF_STATE_TRADING;
    case 'M': case 'E': case 'C': return RXF_STATE_CLOSED;
    default: return RXF_STATE_UNKNOWN;
    }
}

/* sym < 0: the whole venue (symbol 0). */
static void ev_status(rxf_iex_books *b, int64_t sym, enum rxf_trading_state state, char code, const char *reason4) {
    rxf_event *e = ev_new(b, RXF_EV_STATUS, (uint32_t)sym);
    if (sym < 0) e->symbol = 0;
    e->body.status.state = state;
    e->body.status.venue_code = (uint8_t)code;
    if (reason4) memcpy(e->body.status.reason, reason4, 4);
}

void rxf_iex_books_set_events(rxf_iex_books *b, rxf_event_ring *ring, uint16_t venue, int wait) {
    b->events = ring;
    b->venue = venue;
    b->has_held = 0;
    atomic_store(&b->events_wait, ring && wait);
}

void rxf_iex_books_stop_waiting(rxf_iex_books *b) { atomic_store(&b->events_wait, 0); }

void rxf_iex_books_emit_loss(rxf_iex_books *b, uint64_t first, uint64_t count) {
    if (!b->events) return;
    ev_flush(b);  /* nothing is held between messages; a declared loss never splits one */
    rxf_event e = rxf_event_feed_loss(b->venue, first, count, b->ev_ts);
    ev_push(b, &e);
}

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
    if (b->events) {
        rxf_event *e = ev_new(b, RXF_EV_SYMBOL, s);
        memset(e->body.symbol.name, ' ', sizeof e->body.symbol.name);
        memcpy(e->body.symbol.name, symbol8, 8);
        e->body.symbol.price_decimals = 4;
    }
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
    if (b->events) {
        rxf_event *ev = ev_new(b, RXF_EV_BBO, sym);
        ev->body.bbo = (rxf_ev_bbo){.bid_price = t.bid_price, .bid_qty = t.bid_size, .ask_price = t.ask_price,
                                    .ask_qty = t.ask_size};
    }
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
    if (b->events) {
        rxf_event *e = ev_new(b, RXF_EV_TRADE, sym);
        e->side = side == '8' ? RXF_SIDE_BID : side == '5' ? RXF_SIDE_ASK : RXF_SIDE_NONE;
        e->body.trade = (rxf_ev_trade){.price = r->price, .qty = r->size, .order_id = (uint64_t)order_id,
                                       .match_id = (uint64_t)r->trade_id};
    }
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
        rxf_side *sd = &b->stocks[u->book].deep[u->side];
        int had = u->size == 0 && b->events && rxf_l3_find_level(&b->l3, sd, u->side, u->price) != NIL;
        if (rxf_l3_set_level(&b->l3, sd, u->side, u->price, u->size) == 0 && b->events && (u->size || had)) {
            rxf_event *e = ev_new(b, RXF_EV_LEVEL, u->book);  /* removing an absent level did nothing */
            e->side = u->side ? RXF_SIDE_ASK : RXF_SIDE_BID;
            e->body.level.price = u->price;
            e->body.level.qty = u->size;
        }
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

/* Take k shares off the order in hash position h (all of it when k >= remaining): MODIFY or DELETE. */
static inline void reduce(rxf_iex_books *b, int64_t h, uint32_t k) {
    const rxf_order *o = rxf_l3_at(&b->l3, h);
    if (b->events)  /* before: the order's slot is freed when nothing is left */
        ev_order(b, k >= o->shares ? RXF_EV_ORDER_DELETE : RXF_EV_ORDER_MODIFY, o->book, o->side, o->price,
                 k >= o->shares ? 0 : o->shares - k, o->ref);
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
                   a->price) == 0) {
        b->c.adds++;
        if (b->events) ev_order(b, RXF_EV_ORDER_ADD, (uint32_t)sym, is_ask, a->price, a->size, (uint64_t)a->order_id);
    }
    return sym;
}

/* A modify that sends the order to the back of its (new) level. A consumer
   of events keeps an ORDER_MODIFY's place when price and side stay and the
   size does not go up: then it is told DELETE + ADD, else one MODIFY. */
static void moved(rxf_iex_books *b, int64_t h, const rxf_iex_OrderModify *m) {
    const rxf_order *o = rxf_l3_at(&b->l3, h);
    uint32_t sym = o->book;
    int is_ask = o->side;
    uint64_t id = (uint64_t)m->order_id_reference;
    int as_modify = m->price != o->price || m->size > o->shares;
    if (b->events && !as_modify) ev_order(b, RXF_EV_ORDER_DELETE, sym, is_ask, o->price, 0, id);
    int64_t old_px = o->price;
    rxf_l3_reduce(&b->l3, &b->stocks[sym].plus[is_ask], h, UINT32_MAX);
    int r = rxf_l3_add(&b->l3, &b->stocks[sym].plus[is_ask], sym, id, is_ask, m->size, m->price);
    if (!b->events) return;
    if (r == 0) ev_order(b, as_modify ? RXF_EV_ORDER_MODIFY : RXF_EV_ORDER_ADD, sym, is_ask, m->price, m->size, id);
    else if (as_modify) ev_order(b, RXF_EV_ORDER_DELETE, sym, is_ask, old_px, 0, id);  /* out of memory: gone */
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
    b->c.modifies++;
    if ((m->modify_flags & 1) && m->price == o->price && m->size <= o->shares) {
        b->c.priority_kept++;
        if (m->size < o->shares) reduce(b, h, o->shares - m->size);
        return sym;
    }
    if (m->modify_flags & 1) b->c.modify_priority_conflict++;  /* kept priority claimed for a price or size up */
    moved(b, h, m);
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

/* Every order of one DEEP+ side off, best level first, each in time order (one DELETE each). */
static void clear_side(rxf_iex_books *b, rxf_side *sd, int is_ask) {
    while (sd->best != NIL) {
        int32_t s = b->l3.lv[sd->best].head;
        int64_t h = s >= 0 ? rxf_l3_find(&b->l3, b->l3.orders[s].ref) : -1;
        if (h < 0) break;  /* a level without orders: rxf_l3_clear_side removes it */
        reduce(b, h, UINT32_MAX);
    }
    rxf_l3_clear_side(&b->l3, sd, is_ask);
}

static int64_t on_clear(rxf_iex_books *b, const rxf_iex_ClearBook *c) {
    int64_t sym = symbol_index(b, c->symbol);
    if (sym < 0) return -1;
    for (int side = 0; side < 2; side++) clear_side(b, &b->stocks[sym].plus[side], side);
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
        if (b->events)
            ev_status(b, sym, ev_stock_state(r->TradingStatus.trading_status), r->TradingStatus.trading_status,
                      r->TradingStatus.reason);
        return;
    case 'O':
        if ((sym = symbol_index(b, r->OperationalHaltStatus.symbol)) < 0) return;
        b->stocks[sym].operational_halt = r->OperationalHaltStatus.operational_halt_status;
        if (r->OperationalHaltStatus.operational_halt_status == 'O') b->c.operational_halts++;
        if (b->events)  /* 'O': halted; 'N': back to the last Trading Status's state */
            ev_status(b, sym, r->OperationalHaltStatus.operational_halt_status == 'O'
                                  ? RXF_STATE_HALTED : ev_stock_state(b->stocks[sym].trading_status),
                      r->OperationalHaltStatus.operational_halt_status, NULL);
        return;
    case 'D': symbol_index(b, r->SecurityDirectory.symbol); return;
    case 'S':
        b->system_event = r->SystemEvent.system_event;
        b->c.system_events++;
        if (b->events) ev_status(b, -1, ev_system_state(b->system_event), b->system_event, NULL);
        return;
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

static inline void apply_message(rxf_iex_books *b, const rxf_iex_record *r, const rxf_iex_meta *meta) {
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

/* One message; with events on, stamped with its IEX-TP sequence (else the books' message count) and flushed. */
static inline void apply(rxf_iex_books *b, const rxf_iex_record *r, const rxf_iex_meta *meta) {
    if (__builtin_expect(b->events != NULL, 0)) {
        b->ev_seq = meta->sequence ? meta->sequence : b->c.messages + 1;
        b->ev_ts = (uint64_t)r->hdr.timestamp;
        apply_message(b, r, meta);
        ev_flush(b);
        return;
    }
    apply_message(b, r, meta);
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
