/*
 * Full-depth (L3) order books for every stock locate, fed by the ITCH 5.0
 * decoder's C handler table. No Python on this path.
 *
 * Orders live in a pool indexed through an open-addressing hash on the order
 * reference number. Price levels live in a second pool; each (locate, side)
 * orders its levels in a red-black tree by price (add/remove of a level is
 * O(log n) worst case, however deep the book), threaded best-to-worst
 * (better/worse links) so the best level is O(1) and depth traversal walks
 * in price order. An order keeps the index of its level: executions,
 * cancels and deletes never search. New levels are found by a short walk
 * from the best (most activity is near the top), then by the tree. Orders
 * within a level form a FIFO (doubly linked through the order pool).
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

#define RXF_BOOK_MAX_LOCATES 65536

/* Level slot 0 is the tree's nil sentinel: index 0 means "none". */
typedef struct rxf_level {
    uint32_t price;
    uint32_t orders;
    uint64_t shares;
    int32_t head, tail;           /* FIFO of order slots, -1 empty */
    int32_t left, right, parent;  /* red-black tree by price (left = better) */
    int32_t better, worse;        /* neighbours in price order; the free list through worse */
    uint8_t red;
    uint8_t _pad[3];
} rxf_level;

typedef struct rxf_side {
    int32_t root, best, worst;    /* level slots, 0 when the side is empty */
    int32_t nth;                  /* with depth_n: the depth_n-th best level (0 while fewer) */
    uint32_t n;                   /* levels */
} rxf_side;

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

typedef struct rxf_order {
    uint64_t ref;
    uint32_t price;
    uint32_t shares;
    uint16_t locate;
    uint8_t side;
    uint8_t live;
    int32_t prev, next;   /* FIFO within the level; the free list through next */
    int32_t level;        /* level slot */
} rxf_order;

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

typedef struct rxf_books {
    rxf_itch_handlers table;
    rxf_stock *stocks;            /* RXF_BOOK_MAX_LOCATES */
    rxf_order *orders;            /* pool */
    uint64_t n_orders, cap_orders;
    int32_t free_head;            /* free list through .next */
    int32_t *hash;                /* ref -> slot, -1 empty, -2 tombstone */
    uint64_t hash_cap, hash_used; /* slots, slots not EMPTY (live or tombstone) */
    uint64_t hash_live;           /* live orders */
    rxf_level *lv;                /* level pool; slot 0 is the nil sentinel */
    uint64_t n_lv, cap_lv;
    int32_t lv_free;              /* free list through .worse, 0 empty */
    uint32_t *name_head;          /* RXF_BOOK_NAME_BUCKETS: first locate + 1 of each name hash chain */
    rxf_book_counters c;
    char system_state;            /* last S event code */
    int want_bbo, want_trades;
    rxf_bbo_event *bbo; uint64_t n_bbo, cap_bbo;
    rxf_trade_event *trades; uint64_t n_trades, cap_trades;
    int oom;
    uint64_t *latency_hist;       /* RXF_HIST_BUCKETS cycle counts per message, or NULL */
    uint32_t depth_n;             /* > 0: a depth snapshot whenever a message changes the top depth_n levels */
    uint8_t *depth; uint64_t n_depth, cap_depth; /* snapshots, each rxf_depth_header + 2*depth_n levels */
    int touched;                  /* set by add/reduce when a top-depth_n level changed */
    uint64_t depth_every_ns;      /* > 0: snapshots on a clock (message time) instead of on change */
    uint64_t next_clock_ns;
    uint16_t *dirty;              /* clock mode: locates changed since the last tick */
    uint32_t n_dirty;
} rxf_books;

/* want_latency: time every book update with the cycle counter (rxfeed/hist.h). */
/* depth_every_ns > 0 (with depth_n): snapshots on a clock instead of on change. */
int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n,
                   uint64_t depth_every_ns);
void rxf_books_free(rxf_books *b);
/* Level slot of price on (locate, side), 0 if none (O(log n)). */
int32_t rxf_books_find_level(const rxf_books *b, uint16_t locate, int side, uint32_t price);
/* Check every book's structure; NULL when sound, else what is wrong (static text). */
const char *rxf_books_check(const rxf_books *b);

#endif
