/*
 * Order books rebuilt from normalised events (rxfeed/events.h): the consumer
 * side of event distribution, used by a publisher (for its snapshots) and by
 * every remote consumer. No Python per event.
 *
 * One L3 engine (rxfeed/l3book.h) per venue (order ids are unique within a
 * venue), books keyed by (venue, symbol). A book is by-order (ORDER_ADD /
 * ORDER_MODIFY / ORDER_DELETE: queues of orders) or by-level (LEVEL: level
 * totals only) while it holds anything; an empty book takes either. Bad
 * records are counted and refused, never fatal.
 * docs/distribution.md ("Rebuilding books from events") is the reference.
 *
 * Not thread-safe: one thread at a time (the Python wrapper holds a lock).
 */
#ifndef RXFEED_EVENT_BOOKS_H
#define RXFEED_EVENT_BOOKS_H

#include <stdint.h>
#include "rxfeed/events.h"

#define RXF_EVB_MAX_VENUES 256u        /* venues with a book at once; more are refused (counted) */
#define RXF_EVB_MAX_BOOKS (1u << 20)   /* books in all venues; more are refused (counted) */

/* What a book holds (rxf_evb_book_info.kind): orders or levels, never both. */
enum rxf_evb_kind {
    RXF_EVB_EMPTY = 0,    /* no order and no level (it takes the kind of the first it accepts) */
    RXF_EVB_ORDERS = 1,   /* by-order: orders in FIFO queues per level */
    RXF_EVB_LEVELS = 2    /* by-level: level totals */
};

typedef struct rxf_evb rxf_evb;

typedef struct rxf_evb_counters {
    uint64_t events;                           /* records applied (every kind) */
    uint64_t by_kind[RXF_EV_KIND_MAX + 1];     /* records per kind (index: the kind) */
    uint64_t changed;                          /* records that changed a book */
    uint64_t adds, modifies, modify_kept_place, modify_moved, modify_deletes, deletes;
    uint64_t levels_set, levels_removed, symbols, statuses, losses, snapshots_loaded;
    /* refused: the record changed nothing (each also counted in refused) */
    uint64_t refused, unknown_order, duplicate_add, duplicate_new_id, bad_side, zero_qty, too_large;
    uint64_t no_symbol, wrong_book_kind, too_many_venues, too_many_books, oom;
    /* counted only */
    uint64_t level_ignored;    /* LEVEL on a book holding orders (a feed with orders may send both) */
    uint64_t unknown_level;    /* LEVEL qty 0 for a level that is not there */
    uint64_t symbol_mismatch;  /* ORDER_MODIFY / ORDER_DELETE naming another symbol than its order's (applied) */
} rxf_evb_counters;

typedef struct rxf_evb_info {
    uint16_t venue;
    uint32_t symbol;
    uint8_t kind;              /* enum rxf_evb_kind */
    uint8_t suspect;           /* a LOSS named it (or its venue) since it was last loaded */
    uint8_t has_symbol, has_status;
    uint32_t levels[2];        /* levels per side, 0 bid 1 ask */
    uint64_t seq, ts;          /* of the last record that changed its orders or levels */
    rxf_event symbol_ev;       /* the last SYMBOL (when has_symbol) */
    rxf_event status_ev;       /* the last STATUS (when has_status) */
} rxf_evb_info;

typedef struct rxf_evb_level_row { int64_t price; uint64_t qty; uint64_t orders; } rxf_evb_level_row;
typedef struct rxf_evb_queue_row { uint64_t order_id; uint64_t qty; } rxf_evb_queue_row;
typedef struct rxf_evb_key { uint16_t venue; uint16_t _pad; uint32_t symbol; } rxf_evb_key;

rxf_evb *rxf_evb_new(void);
void rxf_evb_free(rxf_evb *b);

/* The index of the first record this version cannot read (rxf_event_check), or -1; *why what is wrong. */
int64_t rxf_evb_check(const rxf_event *ev, uint64_t n, const char **why);
/* Apply n records (checked first by the caller); returns how many changed a book. */
uint64_t rxf_evb_apply(rxf_evb *b, const rxf_event *ev, uint64_t n);

const rxf_evb_counters *rxf_evb_counters_get(const rxf_evb *b);
/* The book of (venue, symbol), or -1. Book indices are dense, 0 .. rxf_evb_n_books - 1, never reused. */
int64_t rxf_evb_find(const rxf_evb *b, uint16_t venue, uint32_t symbol);
uint32_t rxf_evb_n_books(const rxf_evb *b);
void rxf_evb_book_info(const rxf_evb *b, uint32_t book, rxf_evb_info *out);
/* Up to max levels of one side (0 bid, 1 ask), best first; returns how many written. */
uint32_t rxf_evb_levels(const rxf_evb *b, uint32_t book, int side, uint32_t max, rxf_evb_level_row *out);
/* Orders at (side, price) in FIFO order, up to max written; returns how many there are. */
uint64_t rxf_evb_queue(const rxf_evb *b, uint32_t book, int side, int64_t price, uint64_t max,
                       rxf_evb_queue_row *out);
/* The book as records (SYMBOL, STATUS, then ORDER_ADD or LEVEL records), up to cap written;
   returns how many there are. */
uint64_t rxf_evb_snapshot(const rxf_evb *b, uint32_t book, rxf_event *out, uint64_t cap);
/* The first record of a snapshot that cannot replace book (venue, symbol), or -1; *why what is wrong. */
int64_t rxf_evb_load_check(const rxf_evb *b, uint16_t venue, uint32_t symbol, const rxf_event *ev, uint64_t n,
                           const char **why);
/* Replace book (venue, symbol) by a snapshot that passed rxf_evb_load_check; 0, or -1 (out of
   memory, or too many books or venues). */
int rxf_evb_load(rxf_evb *b, uint16_t venue, uint32_t symbol, const rxf_event *ev, uint64_t n);
/* Books changed since the last take (each once), up to cap moved to out; returns how many were moved. */
uint64_t rxf_evb_take_changed(rxf_evb *b, rxf_evb_key *out, uint64_t cap);
uint64_t rxf_evb_n_changed(const rxf_evb *b);
/* Every book's structure checked; NULL when sound, else what is wrong (static text). */
const char *rxf_evb_check_books(const rxf_evb *b);

#endif
