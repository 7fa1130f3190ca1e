from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t, int64_t
from _iex_records cimport rxf_iex_record
from iex_handlers cimport rxf_iex_handlers

cdef extern from "iex_book.h" nogil:
    ctypedef struct rxf_level:
        int64_t price
        uint32_t orders
        uint64_t shares
        int32_t head
        int32_t worse
    ctypedef struct rxf_side:
        int32_t best
        uint32_t n
    ctypedef struct rxf_order:
        uint64_t ref
        uint32_t shares
        int32_t next
    ctypedef struct rxf_l3:
        rxf_order *orders
        uint64_t cap_orders
        uint64_t hash_cap
        rxf_level *lv
        uint64_t cap_lv
        int oom
    ctypedef struct rxf_iex_top:
        int64_t bid_price, ask_price
        uint64_t bid_size, ask_size
    ctypedef struct rxf_iex_stock:
        rxf_iex_top tops
        char symbol[8]
        char trading_status
        char operational_halt
        uint8_t quote_flags
    ctypedef struct rxf_iex_book_counters:
        uint64_t messages, price_level_updates, events_applied, quotes
        uint64_t adds, modifies, priority_kept, deletes, executions, clears
        uint64_t trades, trade_breaks, trading_status, halts, operational_halts, system_events, bbo_changes
        uint64_t unknown_order, duplicate_add, invalid_side, zero_size, bad_price, exec_beyond_remaining
        uint64_t symbol_mismatch, modify_priority_conflict, wrong_feed, unknown_protocol, too_many_symbols
        uint64_t staged_overflow, crossed, locked
        uint64_t unknown_type, bad_length
    ctypedef struct rxf_iex_bbo_event:
        pass
    ctypedef struct rxf_iex_trade_event:
        pass
    ctypedef struct rxf_iex_books:
        rxf_iex_handlers table
        rxf_iex_stock *stocks
        uint32_t n_stocks
        rxf_l3 l3
        uint32_t n_staged
        rxf_iex_book_counters c
        char system_event
        uint16_t last_protocol
        rxf_iex_bbo_event *bbo
        uint64_t n_bbo
        rxf_iex_trade_event *trades
        uint64_t n_trades
        uint64_t *latency_hist
    enum: RXF_IEX_BOOK_TOPS
    enum: RXF_IEX_BOOK_DEEP
    enum: RXF_IEX_BOOK_PLUS
    int rxf_iex_books_init(rxf_iex_books *b, int want_bbo, int want_trades, int want_latency)
    void rxf_iex_books_free(rxf_iex_books *b)
    int64_t rxf_iex_books_symbol(const rxf_iex_books *b, const char *symbol8)
    const rxf_side *rxf_iex_books_side(const rxf_iex_books *b, uint32_t sym, int feed, int side)
    const char *rxf_iex_books_check(const rxf_iex_books *b)
    int32_t rxf_l3_find_level(const rxf_l3 *e, const rxf_side *sd, int side, int64_t price)
    ctypedef struct rxf_event_ring:
        pass
    void rxf_iex_books_set_events(rxf_iex_books *b, rxf_event_ring *ring, uint16_t venue, int wait)
    void rxf_iex_books_stop_waiting(rxf_iex_books *b)
    void rxf_iex_books_emit_loss(rxf_iex_books *b, uint64_t first, uint64_t count)


cdef class IexBooks:
    cdef rxf_iex_books *b
    cdef public list lost_ranges
    cdef public unsigned long long lost_messages
    cdef object _event_ring
    cdef const rxf_side *_side(self, object symbol, int feed, int side) except NULL
