/*
 * IEX books for every symbol, fed through the IEX C handler table
 * (iex_handlers.h) by the decoder of any of the three feeds; meta->protocol_id
 * says which. No Python on this path. One IexBooks keeps, per symbol:
 *
 *  - DEEP: price levels from Price Level Updates ('8' buy, '5' sell; size 0
 *    removes the level). The updates of one event are staged and applied
 *    together when the update that completes the event (meta->event_end)
 *    arrives, so a book is never observable half-updated.
 *  - DEEP+: orders by id on the protocol-neutral L3 engine (rxfeed/l3book.h):
 *    Add Order, Order Modify, Order Delete, Order Executed, Clear Book.
 *  - TOPS: the top of book of the last Quote Update.
 *
 * Symbols get dense indices in the order they are first seen (an
 * open-addressing hash on the 8 symbol bytes; the table grows). Bad input
 * (unknown order ids, no size, bad sides or prices, messages of another
 * feed, symbols past RXF_IEX_MAX_SYMBOLS) is counted, never fatal.
 *
 * With an event ring set (rxf_iex_books_set_events), what the books do comes
 * out as normalised events (rxfeed/events.h; iex_book.c "events").
 */
#ifndef RXF_IEX_BOOK_H
#define RXF_IEX_BOOK_H

#include <stdint.h>
#include "iex_handlers.h"
#include "rxfeed/event_ring.h"

/* the L3 engine with IEX's types: Price 8-byte signed, books indexed by symbol index */
#define RXF_L3_PRICE int64_t
#define RXF_L3_BOOK uint32_t
#include "rxfeed/l3book.h"

#define RXF_IEX_MAX_SYMBOLS (1u << 18)
#define RXF_IEX_STAGE_CAP 4096   /* price level updates of one DEEP event held at most */

enum { RXF_IEX_BOOK_TOPS = 0, RXF_IEX_BOOK_DEEP = 1, RXF_IEX_BOOK_PLUS = 2, RXF_IEX_BOOK_FEEDS = 3 };

/* A top of book; 0 price and size for an empty side. */
typedef struct rxf_iex_top {
    int64_t bid_price, ask_price;
    uint64_t bid_size, ask_size;
} rxf_iex_top;

typedef struct rxf_iex_stock {
    rxf_side deep[2];                    /* DEEP: levels without orders; 0 bid, 1 ask */
    rxf_side plus[2];                    /* DEEP+: orders                            */
    rxf_iex_top tops;                    /* TOPS: the last Quote Update              */
    rxf_iex_top last[RXF_IEX_BOOK_FEEDS];/* the top each feed last reported (BBO)    */
    char symbol[8];
    char trading_status;                 /* last H: 'H' 'O' 'P' 'T', 0 none yet      */
    char operational_halt;               /* last O: 'O' halted, 'N' not, 0 none yet  */
    uint8_t quote_flags;                 /* last Quote Update's flags                */
    uint8_t crossed[RXF_IEX_BOOK_FEEDS]; /* 1 crossed, 2 locked, 0 neither           */
} rxf_iex_stock;

/* One DEEP price level update held until its event completes. */
typedef struct rxf_iex_staged {
    int64_t price;
    uint32_t book, size;
    uint8_t side;
    uint8_t _pad[7];
} rxf_iex_staged;

typedef struct rxf_iex_bbo_event {
    int64_t timestamp;
    int64_t bid_price, ask_price;    /* 0: empty side */
    uint64_t bid_size, ask_size;
    uint32_t symbol;                 /* symbol index */
    uint16_t protocol_id;            /* the feed whose book it is */
    uint16_t _pad;
} rxf_iex_bbo_event;

typedef struct rxf_iex_trade_event {
    int64_t timestamp, price, trade_id, order_id;  /* order_id: DEEP+ Order Executed, else 0 */
    uint32_t size, symbol;
    uint16_t protocol_id;
    char type;                       /* 'T' trade (report), 'L' order executed */
    uint8_t sale_condition_flags;
    char side;                       /* 'L': the resting order's side '8'/'5'; else ' ' */
    uint8_t _pad[3];
} rxf_iex_trade_event;

/* BBO_DTYPE and TRADE_DTYPE of _iex_book.pyx read these layouts */
_Static_assert(sizeof(rxf_iex_bbo_event) == 48, "rxf_iex_bbo_event size");
_Static_assert(sizeof(rxf_iex_trade_event) == 48, "rxf_iex_trade_event size");

typedef struct rxf_iex_book_counters {
    uint64_t messages, price_level_updates, events_applied, quotes;
    uint64_t adds, modifies, priority_kept, deletes, executions, clears;
    uint64_t trades, trade_breaks, trading_status, halts, operational_halts, system_events, bbo_changes;
    /* integrity: counted and refused (or, for the last group, only counted) */
    uint64_t unknown_order, duplicate_add, invalid_side, zero_size, bad_price, exec_beyond_remaining;
    uint64_t symbol_mismatch, modify_priority_conflict, wrong_feed, unknown_protocol, too_many_symbols;
    uint64_t staged_overflow, crossed, locked;
    uint64_t unknown_type, bad_length;   /* feed_raw's decoding (the test path) */
} rxf_iex_book_counters;

typedef struct rxf_iex_books {
    rxf_iex_handlers table;
    rxf_iex_stock *stocks; uint32_t n_stocks, cap_stocks;
    uint32_t *sym_hash; uint32_t sym_cap;  /* symbol index + 1, 0 empty; power of two */
    rxf_l3 l3;                             /* DEEP+ orders, DEEP and DEEP+ levels */
    rxf_iex_staged *staged; uint32_t n_staged;  /* RXF_IEX_STAGE_CAP */
    int64_t staged_ts;
    rxf_iex_book_counters c;
    char system_event;                     /* last S */
    uint16_t last_protocol;                /* protocol id of the last message taken */
    int want_bbo, want_trades;
    rxf_iex_bbo_event *bbo; uint64_t n_bbo, cap_bbo;
    rxf_iex_trade_event *trades; uint64_t n_trades, cap_trades;
    uint64_t *latency_hist;                /* RXF_HIST_BUCKETS cycle counts per message, or NULL */
    /* normalised events (rxfeed/events.h) into an SPSC ring, or events == NULL: none (iex_book.c "events") */
    rxf_event_ring *events;
    uint16_t venue;                        /* the events' venue id */
    _Atomic int events_wait;               /* 1: a full ring is waited for (replay backfill), 0: dropped and counted */
    int has_held;                          /* held: the message's latest event, pushed when the next one */
    rxf_event held;                        /* comes or, flagged LAST, when the message (DEEP: event) ends */
    uint64_t ev_seq, ev_ts;                /* the message's IEX-TP sequence and timestamp */
} rxf_iex_books;

int rxf_iex_books_init(rxf_iex_books *b, int want_bbo, int want_trades, int want_latency);
void rxf_iex_books_free(rxf_iex_books *b);
/* Index of an 8-byte (space padded) symbol, -1 when never seen. */
int64_t rxf_iex_books_symbol(const rxf_iex_books *b, const char *symbol8);
/* The side (0 bid, 1 ask) of a symbol's DEEP (feed 1) or DEEP+ (feed 2) book. */
const rxf_side *rxf_iex_books_side(const rxf_iex_books *b, uint32_t sym, int feed, int side);
/* Every book's structure checked; NULL when sound, else what is wrong (static text). */
const char *rxf_iex_books_check(const rxf_iex_books *b);
/* Emit normalised events into ring (NULL: stop) for venue; wait: a full ring is waited for instead of dropping. */
void rxf_iex_books_set_events(rxf_iex_books *b, rxf_event_ring *ring, uint16_t venue, int wait);
/* A waiting producer stops waiting (any thread): from now on a full ring drops and counts. */
void rxf_iex_books_stop_waiting(rxf_iex_books *b);
/* Push a LOSS (feed) event for messages first .. first + count - 1 (the loop's thread only). */
void rxf_iex_books_emit_loss(rxf_iex_books *b, uint64_t first, uint64_t count);

#endif
