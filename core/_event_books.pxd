from libc.stdint cimport uint8_t, uint16_t, uint32_t, int64_t, uint64_t

cdef extern from "rxfeed/events.h" nogil:
    ctypedef struct rxf_event:
        uint8_t version
        uint8_t kind
    enum: RXF_EV_KIND_MAX

cdef extern from "rxfeed/event_books.h" nogil:
    enum: RXF_EVB_MAX_VENUES
    enum: RXF_EVB_MAX_BOOKS
    enum: RXF_EVB_EMPTY
    enum: RXF_EVB_ORDERS
    enum: RXF_EVB_LEVELS
    ctypedef struct rxf_evb:
        pass
    ctypedef struct rxf_evb_counters:
        uint64_t events
        uint64_t by_kind[10]  # RXF_EV_KIND_MAX + 1 (Cython wants a literal); read by kind, so a larger C array is fine
        uint64_t changed
        uint64_t adds, modifies, modify_kept_place, modify_moved, modify_deletes, deletes
        uint64_t levels_set, levels_removed, symbols, statuses, losses, snapshots_loaded
        uint64_t refused, unknown_order, duplicate_add, duplicate_new_id, bad_side, zero_qty, too_large
        uint64_t no_symbol, wrong_book_kind, too_many_venues, too_many_books, oom
        uint64_t level_ignored, unknown_level, symbol_mismatch
    ctypedef struct rxf_evb_info:
        uint16_t venue
        uint32_t symbol
        uint8_t kind
        uint8_t suspect, has_symbol, has_status
        uint32_t levels[2]
        uint64_t seq, ts
        rxf_event symbol_ev
        rxf_event status_ev
    ctypedef struct rxf_evb_level_row:
        int64_t price
        uint64_t qty
        uint64_t orders
    ctypedef struct rxf_evb_queue_row:
        uint64_t order_id
        uint64_t qty
    ctypedef struct rxf_evb_key:
        uint16_t venue
        uint32_t symbol

    rxf_evb *rxf_evb_new()
    void rxf_evb_free(rxf_evb *b)
    int64_t rxf_evb_check(const rxf_event *ev, uint64_t n, const char **why)
    uint64_t rxf_evb_apply(rxf_evb *b, const rxf_event *ev, uint64_t n)
    const rxf_evb_counters *rxf_evb_counters_get(const rxf_evb *b)
    int64_t rxf_evb_find(const rxf_evb *b, uint16_t venue, uint32_t symbol)
    uint32_t rxf_evb_n_books(const rxf_evb *b)
    void rxf_evb_book_info(const rxf_evb *b, uint32_t book, rxf_evb_info *out)
    uint32_t rxf_evb_levels(const rxf_evb *b, uint32_t book, int side, uint32_t max, rxf_evb_level_row *out)
    uint64_t rxf_evb_queue(const rxf_evb *b, uint32_t book, int side, int64_t price, uint64_t max,
                           rxf_evb_queue_row *out)
    uint64_t rxf_evb_snapshot(const rxf_evb *b, uint32_t book, rxf_event *out, uint64_t cap)
    int64_t rxf_evb_load_check(const rxf_evb *b, uint16_t venue, uint32_t symbol, const rxf_event *ev, uint64_t n,
                               const char **why)
    int rxf_evb_load(rxf_evb *b, uint16_t venue, uint32_t symbol, const rxf_event *ev, uint64_t n)
    uint64_t rxf_evb_take_changed(rxf_evb *b, rxf_evb_key *out, uint64_t cap)
    uint64_t rxf_evb_n_changed(const rxf_evb *b)
    const char *rxf_evb_check_books(const rxf_evb *b)


cdef class EventBooks:
    cdef rxf_evb *b
    cdef object _lock
    cdef int64_t _book(self, uint16_t venue, uint32_t symbol)
    cdef rxf_evb_info _info(self, uint32_t book)
    cdef object _symbol_of(self, uint32_t book)
    cdef object _state_of(self, uint32_t book)
