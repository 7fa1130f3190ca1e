/*
 * Full-depth (L3) order books for every stock locate, fed by the ITCH 5.0
 * decoder's C handler table. No Python on this path.
 *
 * Orders and levels are the protocol-neutral L3 engine's (rxfeed/l3book.h:
 * an order-id hash, red-black trees of levels threaded best-to-worst, FIFOs
 * per level); this file maps ITCH's verbs onto it and keeps what is ITCH's:
 * stock locates, the stock directory, trading states, outputs.
 *
 * Integrity is measured: references to unknown orders, executions or
 * cancels beyond the remaining shares, crossed and locked books, adds with
 * an invalid side or no shares, and stock-directory conflicts are counted,
 * never fatal; the book stays usable.
 */
#ifndef RXF_ITCH50_BOOK_H
#define RXF_ITCH50_BOOK_H

#include <stdint.h>
#include "itch50_handlers.h"
#include "rxfeed/event_ring.h"

/* the L3 engine with ITCH's types: Price(4) u32, books indexed by stock locate */
#define RXF_L3_PRICE uint32_t
#define RXF_L3_BOOK uint16_t
#include "rxfeed/l3book.h"

#define RXF_BOOK_MAX_LOCATES 65536

typedef struct rxf_stock {
    rxf_side side[2];     /* 0 bid, 1 ask */
    char name[8];
    char trading_state;   /* H: 'H' halted, 'P' paused, 'Q' quotation only, 'T' trading */
    uint8_t seen;         /* named by a stock directory (R) message */
    uint8_t crossed;      /* 1 crossed, 2 locked, 0 neither (after the last message) */
    uint8_t dirty;        /* clock mode: top depth_n changed since the last tick */
    uint32_t name_next;   /* next locate + 1 in this name's hash chain, 0 at the end */
    uint32_t last_bid_px, last_ask_px;
    uint64_t last_bid_sz, last_ask_sz;
} rxf_stock;

typedef struct rxf_bbo_event {
    uint64_t timestamp;
    uint32_t bid_price, ask_price;   /* 0: empty side */
    uint64_t bid_shares, ask_shares;
    uint16_t locate;
    uint16_t _pad[3];
} rxf_bbo_event;

typedef struct rxf_trade_event {
    uint64_t timestamp, match_number, order_reference_number;
    uint32_t price, shares;
    uint16_t locate;
    char type, side;
    uint16_t _pad[2];
} rxf_trade_event;

/* depth snapshot: header then depth_n bid levels then depth_n ask levels */
typedef struct rxf_depth_level { uint32_t price, orders; uint64_t shares; } rxf_depth_level;
typedef struct rxf_depth_header { uint64_t timestamp; uint16_t locate, levels; uint32_t _pad; } rxf_depth_header;

typedef struct rxf_book_counters {
    uint64_t messages, adds, executions, cancels, deletes, replaces, trades, cross_trades, broken_trades;
    uint64_t unknown_order, exec_beyond_remaining, cancel_beyond_remaining, duplicate_add;
    uint64_t invalid_side, zero_shares_add, directory_conflict;
    uint64_t crossed, locked, halts, system_events;
    uint64_t bbo_changes, depth_snapshots;
} rxf_book_counters;

#define RXF_BOOK_NAME_BUCKETS 65536

/* An output table (BBO changes, trades, depth snapshots) in fixed-size
   chunks: appending a row never moves the rows already written (no doubling
   realloc of tens of MB inside the message loop, a multi-ms stall), a full
   chunk only adds one more; take_*() copies the chunks out in order. */
#define RXF_ROWS_CHUNK_BYTES (1u << 20)
typedef struct rxf_rows {
    uint8_t **chunk;              /* n_chunks chunks of per_chunk rows each (the last one partly filled) */
    uint32_t n_chunks, cap_chunks;
    uint32_t rec, per_chunk;      /* bytes per row, rows per chunk */
    uint64_t n;                   /* rows */
    uint8_t *next;                /* where the next row goes; NULL when the last chunk is full (or none yet) */
    uint8_t *chunk_end;
} rxf_rows;

typedef struct rxf_books {
    rxf_itch_handlers table;
    rxf_stock *stocks;            /* RXF_BOOK_MAX_LOCATES */
    rxf_l3 l3;                    /* orders and levels (depth_n: the top levels watched, see below) */
    uint32_t *name_head;          /* RXF_BOOK_NAME_BUCKETS: first locate + 1 of each name hash chain */
    rxf_book_counters c;
    char system_state;            /* last S event code */
    int want_bbo, want_trades;
    rxf_rows bbo;                 /* rxf_bbo_event rows */
    rxf_rows trades;              /* rxf_trade_event rows */
    uint64_t *latency_hist;       /* RXF_HIST_BUCKETS cycle counts per message, or NULL */
    /* l3.depth_n > 0: a depth snapshot whenever a message changes the top depth_n levels */
    rxf_rows depth;               /* snapshots, each rxf_depth_header + 2*depth_n levels */
    uint64_t depth_every_ns;      /* > 0: snapshots on a clock (message time) instead of on change */
    uint64_t next_clock_ns;
    uint16_t *dirty;              /* clock mode: locates changed since the last tick */
    uint32_t n_dirty;
    /* look-ahead prefetch (book.c): cursors LA_TAIL .. LA_INDEX messages on in the packet */
    int lookahead;                /* 1 (the default): on */
    const uint8_t *la_cur[4], *la_data, *la_end;
    const uint8_t *la_expect;     /* the wire bytes of the message that keeps the cursors in step */
    /* normalised events (rxfeed/events.h) into an SPSC ring, or events == NULL: none (book.c "events") */
    rxf_event_ring *events;
    uint16_t venue;               /* the events' venue id */
    _Atomic int events_wait;      /* 1: a full ring is waited for (replay backfill), 0: dropped and counted */
    uint32_t n_pend;              /* events of the message being applied, pushed after it */
    uint64_t ev_seq, ev_ts;       /* that message's feed sequence and timestamp */
    rxf_event pend[4];
} rxf_books;

/* want_latency: time every book update with the cycle counter (rxfeed/hist.h). */
/* depth_every_ns > 0 (with depth_n): snapshots on a clock instead of on change. */
/* expected_orders > 0: the order pool and index sized for that many live orders (no growth below it). */
int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n,
                   uint64_t depth_every_ns, uint64_t expected_orders);
/* Emit normalised events into ring (NULL: stop) for venue; wait: a full ring is waited for instead of dropping. */
void rxf_books_set_events(rxf_books *b, rxf_event_ring *ring, uint16_t venue, int wait);
/* Any thread: a full ring is dropped from now on (a waiting push gives up). */
void rxf_books_stop_waiting(rxf_books *b);
/* Push a LOSS (feed) event for messages first .. first + count - 1 (the loop's thread only). */
void rxf_books_emit_loss(rxf_books *b, uint64_t first, uint64_t count);
/* Bytes the order and level structures have written (rxf_l3_bytes_used). */
uint64_t rxf_books_bytes_used(const rxf_books *b);
void rxf_books_free(rxf_books *b);
/* Level slot of price on (locate, side), 0 if none (O(log n)). */
int32_t rxf_books_find_level(const rxf_books *b, uint16_t locate, int side, uint32_t price);
/* Copy every row of r, in order, to dst (r->n * r->rec bytes), and empty r. */
void rxf_rows_take(rxf_rows *r, uint8_t *dst);
/* Check every book's structure; NULL when sound, else what is wrong (static text). */
const char *rxf_books_check(const rxf_books *b);

#endif
