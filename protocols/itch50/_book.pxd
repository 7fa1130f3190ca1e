from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from itch50_handlers cimport rxf_itch_handlers

cdef extern from "book.h" nogil:
    # the L3 engine's types (rxfeed/l3book.h) as book.h instantiates them for ITCH
    ctypedef struct rxf_level:
        uint32_t price
        uint32_t orders
        uint64_t shares
        int32_t head, tail
        int32_t worse
    ctypedef struct rxf_side:
        int32_t best
        uint32_t n
    ctypedef struct rxf_stock:
        rxf_side side[2]
        char name[8]
        char trading_state
        uint8_t seen
        uint8_t crossed
    ctypedef struct rxf_order:
        uint64_t ref
        uint32_t price
        uint32_t shares
        int32_t next
    ctypedef struct rxf_l3:
        rxf_order *orders
        uint64_t n_orders, cap_orders
        uint64_t hash_cap, hash_live, peak_live, hash_grows
        uint64_t n_lv
        rxf_level *lv
        uint64_t cap_lv
        uint32_t depth_n
        uint32_t tick
        int oom
    ctypedef struct rxf_book_counters:
        uint64_t messages, adds, executions, cancels, deletes, replaces, trades, cross_trades, broken_trades
        uint64_t unknown_order, exec_beyond_remaining, cancel_beyond_remaining, duplicate_add
        uint64_t invalid_side, zero_shares_add, directory_conflict
        uint64_t crossed, locked, halts, system_events
        uint64_t bbo_changes, depth_snapshots
    ctypedef struct rxf_bbo_event:
        pass
    ctypedef struct rxf_trade_event:
        pass
    ctypedef struct rxf_rows:
        uint32_t rec
        uint64_t n
    ctypedef struct rxf_books:
        rxf_itch_handlers table
        rxf_stock *stocks
        rxf_l3 l3
        rxf_book_counters c
        char system_state
        rxf_rows bbo
        rxf_rows trades
        uint64_t *latency_hist
        uint64_t depth_every_ns
        rxf_rows depth
        int lookahead
    int rxf_books_init(rxf_books *b, int want_bbo, int want_trades, int want_latency, uint32_t depth_n,
                       uint64_t depth_every_ns, uint64_t expected_orders)
    uint64_t rxf_books_bytes_used(const rxf_books *b)
    void rxf_books_free(rxf_books *b)
    int32_t rxf_books_find_level(const rxf_books *b, uint16_t locate, int side, uint32_t price)
    const char *rxf_books_check(const rxf_books *b)
    void rxf_rows_take(rxf_rows *r, uint8_t *dst)
    ctypedef struct rxf_event_ring:
        pass
    void rxf_books_set_events(rxf_books *b, rxf_event_ring *ring, uint16_t venue, int wait)
    void rxf_books_stop_waiting(rxf_books *b)
    void rxf_books_emit_loss(rxf_books *b, uint64_t first, uint64_t count)


cdef class OrderBooks:
    cdef rxf_books *b
    cdef public list lost_ranges
    cdef public unsigned long long lost_messages
    cdef object _event_ring
    cdef rxf_side *_side(self, object loc, int side) except NULL
    cdef unsigned long long _updates_over(self, double cycles)
