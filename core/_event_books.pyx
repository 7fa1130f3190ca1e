# cython: language_level=3, boundscheck=False, wraparound=False
"""Order books rebuilt from normalised event records, in C (rxfeed/event_books.h):
the consumer side of event distribution. ``rxfeed.event_books`` is the public name."""
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int64_t, uint64_t
from rxfeed_buffers cimport buffer_bytes

import threading

import numpy as np

from rxfeed.events import EVENT_DTYPE, EVENT_SIZE, EVENT_VERSION, KIND_DTYPES, EventError, EventKind, TradingState

#: One (venue, symbol) pair of :meth:`EventBooks.take_changed` (the C ``rxf_evb_key``).
CHANGED_DTYPE = np.dtype({"names": ["venue", "symbol"], "formats": ["<u2", "<u4"], "offsets": [0, 4],
                          "itemsize": 8})

_KIND_NAMES = {RXF_EVB_EMPTY: "empty", RXF_EVB_ORDERS: "orders", RXF_EVB_LEVELS: "levels"}
_SIDES = {"B": 0, "S": 1, b"B": 0, b"S": 1}
_EVENT_DTYPES = (EVENT_DTYPE, *KIND_DTYPES.values())
_COUNTER_NAMES = ("events", "changed", "adds", "modifies", "modify_kept_place", "modify_moved", "modify_deletes",
                  "deletes", "levels_set", "levels_removed", "symbols", "statuses", "losses", "snapshots_loaded",
                  "refused", "unknown_order", "duplicate_add", "duplicate_new_id", "bad_side", "zero_qty",
                  "too_large", "no_symbol", "wrong_book_kind", "too_many_venues", "too_many_books", "oom",
                  "level_ignored", "unknown_level", "symbol_mismatch")


def _records(events) -> np.ndarray:
    """``events`` as a C-contiguous 1-D :data:`EVENT_DTYPE` array: a numpy array of
    ``EVENT_DTYPE`` or of a ``KIND_DTYPES`` dtype, or bytes-like holding whole records.
    Not copied unless its memory is not 8-byte aligned (C reads the records as structs)."""
    if isinstance(events, np.ndarray):
        if events.dtype not in _EVENT_DTYPES:
            raise TypeError(f"events: an array of rxfeed.events.EVENT_DTYPE, not of {events.dtype}")
        if events.ndim != 1 or not events.flags.c_contiguous:
            raise ValueError("events: a 1-D C-contiguous array")
        records = events.view(EVENT_DTYPE)
    elif isinstance(events, (bytes, bytearray, memoryview)):
        if memoryview(events).nbytes % EVENT_SIZE:
            raise EventError(f"{memoryview(events).nbytes} bytes is not a whole number of {EVENT_SIZE}-byte events")
        records = np.frombuffer(events, dtype=EVENT_DTYPE)
    else:
        raise TypeError(f"events: a numpy array or bytes-like, not {type(events).__name__}")
    return records if records.ctypes.data % 8 == 0 else records.copy()


def _bad_record(records: np.ndarray, i: int, what: str, why: str) -> EventError:
    """The error naming record ``i`` of ``records``, in the words of :func:`rxfeed.events.check_events`."""
    version, kind = int(records["version"][i]), int(records["kind"][i])
    if version != EVENT_VERSION:
        return EventError(f"{what} {i}: version {version}, this reader knows {EVENT_VERSION}")
    if why == "unknown event kind":
        return EventError(f"{what} {i}: unknown kind {kind}")
    return EventError(f"{what} {i} ({EventKind(kind).name}): {why}")


cdef const rxf_event *_ptr(const uint8_t[::1] raw):
    return <const rxf_event *>&raw[0] if raw.shape[0] else NULL


def _side(side) -> int:
    try:
        return _SIDES[side]
    except (KeyError, TypeError):
        raise ValueError(f"side must be 'B' or 'S', not {side!r}") from None


def _text(raw: bytes) -> str:
    return raw.rstrip(b" \0").decode("latin-1")


cdef class EventBooks:
    """Order books rebuilt from event records (``rxfeed.events``), for every
    (venue, symbol) the records name: by-order books from ORDER_ADD /
    ORDER_MODIFY / ORDER_DELETE, by-level books from LEVEL. The apply loop is
    C without the GIL; the object may be shared between threads (a lock).
    docs/distribution.md ("Rebuilding books from events") says what each kind does."""

    def __cinit__(self, *args, **kwargs):
        # *args: a __cinit__ without arguments is called through a path that
        # UBSan flags in Cython's generated code (a zero offset to NULL);
        # __init__ refuses arguments
        self.b = rxf_evb_new()
        if self.b == NULL:
            raise MemoryError()
        self._lock = threading.Lock()

    def __init__(self) -> None:
        pass

    def __dealloc__(self):
        rxf_evb_free(self.b)

    cdef int64_t _book(self, uint16_t venue, uint32_t symbol):
        return rxf_evb_find(self.b, venue, symbol)

    cdef rxf_evb_info _info(self, uint32_t book):
        cdef rxf_evb_info info
        rxf_evb_book_info(self.b, book, &info)
        return info

    def apply(self, events) -> int:
        """Apply a batch of records (a C-contiguous :data:`~rxfeed.events.EVENT_DTYPE`
        array, or bytes-like of whole records). The whole batch is checked first:
        :class:`~rxfeed.events.EventError` names the first record of another version
        or an unknown kind, and nothing is applied. Returns how many records changed
        a book (the others were refused, or change no book: see :meth:`counters`)."""
        records = _records(events)
        cdef const uint8_t[::1] raw = records.view(np.uint8)
        cdef const rxf_event *ev = _ptr(raw)
        cdef uint64_t n = records.shape[0], changed
        cdef const char *why = NULL
        cdef int64_t bad
        with nogil:
            bad = rxf_evb_check(ev, n, &why)
        if bad >= 0:
            raise _bad_record(records, bad, "event", why.decode())
        with self._lock:
            with nogil:
                changed = rxf_evb_apply(self.b, ev, n)
        return changed

    def _levels(self, int64_t book, int side, n) -> list:
        cdef rxf_evb_info info = self._info(<uint32_t>book)
        cdef uint32_t want = info.levels[side] if n is None else min(<uint64_t>n, info.levels[side])
        cdef rxf_evb_level_row *rows = <rxf_evb_level_row *>malloc((want or 1) * sizeof(rxf_evb_level_row))
        if rows == NULL:
            raise MemoryError()
        try:
            want = rxf_evb_levels(self.b, <uint32_t>book, side, want, rows)
            return [(rows[i].price, rows[i].qty, rows[i].orders) for i in range(want)]
        finally:
            free(rows)

    def depth(self, uint16_t venue, uint32_t symbol, n=None) -> dict:
        """``{"bids": [(price, qty, orders), ...], "asks": [...]}``, best level first,
        at most ``n`` levels a side (None: all). ``orders`` is 0 in a by-level book.
        An unknown book is empty."""
        if n is not None and n < 0:
            raise ValueError(f"n must be >= 0 or None, not {n}")
        with self._lock:
            book = self._book(venue, symbol)
            if book < 0:
                return {"bids": [], "asks": []}
            return {"bids": self._levels(book, 0, n), "asks": self._levels(book, 1, n)}

    def bbo(self, uint16_t venue, uint32_t symbol) -> tuple:
        """``(bid_price, bid_qty, ask_price, ask_qty)`` of the best levels; 0, 0 for an empty side."""
        top = self.depth(venue, symbol, 1)
        bid = top["bids"][0][:2] if top["bids"] else (0, 0)
        ask = top["asks"][0][:2] if top["asks"] else (0, 0)
        return (*bid, *ask)

    def queue(self, uint16_t venue, uint32_t symbol, side, int64_t price) -> list:
        """The orders at ``price`` on ``side`` ('B' or 'S') in FIFO order: ``[(order_id, qty), ...]``
        (empty for a by-level book or a price with no level)."""
        cdef int s = _side(side)
        cdef uint64_t n
        cdef rxf_evb_queue_row *rows
        with self._lock:
            book = self._book(venue, symbol)
            if book < 0:
                return []
            n = rxf_evb_queue(self.b, <uint32_t>book, s, price, 0, NULL)
            rows = <rxf_evb_queue_row *>malloc((n or 1) * sizeof(rxf_evb_queue_row))
            if rows == NULL:
                raise MemoryError()
            try:
                n = rxf_evb_queue(self.b, <uint32_t>book, s, price, n, rows)
                return [(rows[i].order_id, rows[i].qty) for i in range(n)]
            finally:
                free(rows)

    cdef object _symbol_of(self, uint32_t book):
        """(name, price_decimals) of the book's SYMBOL record, or None."""
        cdef rxf_evb_info info = self._info(book)
        if not info.has_symbol:
            return None
        rec = np.frombuffer(buffer_bytes(&info.symbol_ev, sizeof(rxf_event)), dtype=KIND_DTYPES[EventKind.SYMBOL])
        return _text(bytes(rec["name"][0])), int(rec["price_decimals"][0])

    cdef object _state_of(self, uint32_t book):
        cdef rxf_evb_info info = self._info(book)
        if not info.has_status:
            return None
        rec = np.frombuffer(buffer_bytes(&info.status_ev, sizeof(rxf_event)), dtype=KIND_DTYPES[EventKind.STATUS])
        state = int(rec["state"][0])
        try:
            return TradingState(state)
        except ValueError:  # a state this version does not name
            return state

    def books(self) -> list:
        """Every (venue, symbol) with any state (orders, levels, a name, a trading
        state, a suspect flag), in the order they were first named."""
        cdef uint32_t k
        cdef rxf_evb_info info
        out = []
        with self._lock:
            for k in range(rxf_evb_n_books(self.b)):
                info = self._info(k)
                out.append((info.venue, info.symbol))
        return out

    def symbols(self) -> dict:
        """``{(venue, symbol): name}`` of every SYMBOL record seen (spaces and NULs stripped)."""
        cdef uint32_t k
        cdef rxf_evb_info info
        out = {}
        with self._lock:
            for k in range(rxf_evb_n_books(self.b)):
                info = self._info(k)
                if info.has_symbol:
                    out[(info.venue, info.symbol)] = self._symbol_of(k)[0]
        return out

    def symbol_info(self, uint16_t venue, uint32_t symbol):
        """``(name, price_decimals)`` from the last SYMBOL record of (venue, symbol), or None."""
        with self._lock:
            book = self._book(venue, symbol)
            return None if book < 0 else self._symbol_of(<uint32_t>book)

    def state(self, uint16_t venue, uint32_t symbol):
        """The trading state of the last STATUS record of (venue, symbol) (symbol 0: the
        venue's), a :class:`~rxfeed.events.TradingState` (an int if the code is not one), or None."""
        with self._lock:
            book = self._book(venue, symbol)
            return None if book < 0 else self._state_of(<uint32_t>book)

    def kind(self, uint16_t venue, uint32_t symbol):
        """"orders" (a by-order book), "levels" (by-level), "empty" (neither yet), None (unknown book)."""
        with self._lock:
            book = self._book(venue, symbol)
            return None if book < 0 else _KIND_NAMES[self._info(<uint32_t>book).kind]

    def suspect(self, uint16_t venue, uint32_t symbol) -> bool:
        """Whether a LOSS named the book (or its venue, symbol 0) since it was created or last loaded."""
        with self._lock:
            book = self._book(venue, symbol)
            return book >= 0 and bool(self._info(<uint32_t>book).suspect)

    def snapshot(self, uint16_t venue, uint32_t symbol) -> np.ndarray:
        """The book as records (:data:`~rxfeed.events.EVENT_DTYPE`): its SYMBOL record if
        known, its STATUS if known, then ORDER_ADD records (bids best to worst, then asks,
        FIFO within a level) or LEVEL records. Loading them into an empty book rebuilds
        identical queues (:meth:`load_snapshot`). Empty for an unknown book."""
        cdef uint64_t n
        cdef uint8_t[::1] raw
        with self._lock:
            book = self._book(venue, symbol)
            if book < 0:
                return np.zeros(0, dtype=EVENT_DTYPE)
            n = rxf_evb_snapshot(self.b, <uint32_t>book, NULL, 0)
            out = np.zeros(n, dtype=EVENT_DTYPE)
            if n:
                raw = out.view(np.uint8)
                rxf_evb_snapshot(self.b, <uint32_t>book, <rxf_event *>&raw[0], n)
            return out

    def load_snapshot(self, uint16_t venue, uint32_t symbol, events) -> None:
        """Replace the book (venue, symbol) by a snapshot (records as :meth:`apply` takes
        them): every record of that venue and symbol, SYMBOL / STATUS (at most one each)
        and ORDER_ADD or LEVEL records (not both), no order id or level twice, no order
        id live in another book of the venue. Anything else raises
        :class:`~rxfeed.events.EventError` and leaves the book as it was. The book's
        suspect flag is then the snapshot's (its records' SUSPECT flag)."""
        records = _records(events)
        cdef const uint8_t[::1] raw = records.view(np.uint8)
        cdef const rxf_event *ev = _ptr(raw)
        cdef uint64_t n = records.shape[0]
        cdef const char *why = NULL
        cdef int64_t bad
        cdef int rc
        with self._lock:
            with nogil:
                bad = rxf_evb_load_check(self.b, venue, symbol, ev, n, &why)
            if bad >= 0:
                raise _bad_record(records, bad, "snapshot record", why.decode())
            with nogil:
                rc = rxf_evb_load(self.b, venue, symbol, ev, n)
        if rc != 0:
            raise MemoryError(f"load_snapshot: out of memory, or more than {RXF_EVB_MAX_VENUES} venues "
                              f"or {RXF_EVB_MAX_BOOKS} books")

    def take_changed(self) -> np.ndarray:
        """The (venue, symbol) pairs (:data:`CHANGED_DTYPE`) of the books changed since the
        previous call (each once, in the order they first changed), for periodic snapshots."""
        cdef uint8_t[::1] raw
        cdef uint64_t n
        with self._lock:
            n = rxf_evb_n_changed(self.b)
            out = np.zeros(n, dtype=CHANGED_DTYPE)
            if n:
                raw = out.view(np.uint8)
                rxf_evb_take_changed(self.b, <rxf_evb_key *>&raw[0], n)
            return out

    def counters(self) -> dict:
        """Records applied (``events``), per kind (``by_kind``), what they did
        (``adds``, ``modifies``, ...), what was refused (``refused``: the sum of
        ``unknown_order``, ``duplicate_add``, ...) and what was only counted
        (``level_ignored``, ``unknown_level``, ``symbol_mismatch``)."""
        cdef rxf_evb_counters c
        cdef dict every
        with self._lock:
            c = rxf_evb_counters_get(self.b)[0]
        every = c  # the struct's fields by name
        out = {name: every[name] for name in _COUNTER_NAMES}
        out["by_kind"] = {k.name.lower(): c.by_kind[int(k)] for k in EventKind}
        return out

    def check(self):
        """None when every book's structure is sound (price order, trees, FIFO counts,
        the symbol tables), else what is wrong."""
        cdef const char *why
        with self._lock:
            why = rxf_evb_check_books(self.b)
        return None if why == NULL else why.decode()

