# cython: language_level=3, boundscheck=False, wraparound=False
"""Full-depth books for every stock locate (C, see book.c), attached to the
ITCH decoder as a C handler table: ``decoder.add_handlers(books)``."""
from libc.stdlib cimport calloc, free
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from itch50_handlers cimport RXF_ITCH_HANDLERS_CAPSULE

cdef extern from "rxfeed/hist.h":
    enum: RXF_HIST_BUCKETS
    uint64_t rxf_hist_value(uint32_t i)

import operator

import numpy as np

from rxfeed.book_outputs import record_loss

#: Stock locates are u16 in ITCH 5.0.
N_LOCATES = 65536
_SIDES = {"B": 0, "S": 1}

#: One BBO change (``books.take_bbo()``); prices in Price(4) units, 0 = empty side.
BBO_DTYPE = np.dtype({"names": ["timestamp", "bid_price", "ask_price", "bid_shares", "ask_shares", "locate"],
                      "formats": ["<u8", "<u4", "<u4", "<u8", "<u8", "<u2"],
                      "offsets": [0, 8, 12, 16, 24, 32], "itemsize": 40})
#: One trade (E, C, P, Q) (``books.take_trades()``).
TRADE_DTYPE = np.dtype({"names": ["timestamp", "match_number", "order_reference_number", "price", "shares",
                                  "locate", "type", "side"],
                        "formats": ["<u8", "<u8", "<u8", "<u4", "<u4", "<u2", "S1", "S1"],
                        "offsets": [0, 8, 16, 24, 28, 32, 34, 35], "itemsize": 40})


cdef class OrderBooks:
    """Every symbol's book. ``books["AAPL"]`` or ``books[locate]`` is a :class:`Book`.

    :param bbo: record every top-of-book change (``take_bbo()``).
    :param trades: record every trade (``take_trades()``).
    :param latency: time every book update with the cycle counter (``latency()``).
    :param depth: N > 0: a depth-N snapshot each time a message changes one of
        a book's top N levels (``take_depth()``).
    :param depth_every_ns: with ``depth``, snapshots on a clock instead (message
        time, each multiple of this many ns): at each tick, one snapshot of every
        book whose top N changed since the previous tick (a time jump over many
        ticks gives one, stamped with the first tick passed).
    :param prefetch: look ahead in each packet and prefetch what the next
        messages will touch (docs/books.md); False only to measure it.
    :param expected_orders: size the order pool and index for this many live
        orders at once (they never grow, so never pause to rehash, below it);
        0 starts small and grows by doubling.
    """

    def __cinit__(self, bint bbo=False, bint trades=False, bint latency=False, unsigned int depth=0,
                  unsigned long long depth_every_ns=0, unsigned long long expected_orders=0, bint prefetch=True):
        if depth > 1000:
            raise ValueError("depth must be <= 1000")
        if depth_every_ns and not depth:
            raise ValueError("depth_every_ns needs depth=N")
        self.lost_ranges = []
        self.lost_messages = 0
        self.b = <rxf_books *>calloc(1, sizeof(rxf_books))
        if self.b == NULL or rxf_books_init(self.b, bbo, trades, latency, depth, depth_every_ns,
                                                   expected_orders) != 0:
            raise MemoryError()
        self.b.lookahead = prefetch

    def __dealloc__(self):
        if self.b != NULL:
            rxf_books_free(self.b)
            free(self.b)

    def capsule(self):
        return PyCapsule_New(&self.b.table, RXF_ITCH_HANDLERS_CAPSULE, NULL)

    def mark_lost(self, event) -> None:
        """Messages ``event["first"]`` .. ``+ event["count"]`` of the feed were
        declared lost (a ``gap`` event): the books may be wrong from here on
        and say so (:attr:`suspect`). The first 1000 ranges are kept. With
        events on, a ``LOSS`` (feed) event carries the range."""
        self.lost_messages += record_loss(self.lost_ranges, event)
        rxf_books_emit_loss(self.b, event["first"], event["count"])

    def emit_events(self, ring, unsigned int venue=1, bint wait=False) -> None:
        """Emit what the books do as normalised events (``rxfeed.events``)
        into ``ring`` (an :class:`rxfeed.events.EventRing`; ``None`` stops):
        order adds / modifies / deletes, BBO changes, trades, trading states,
        symbol definitions (R), feed losses. ``venue``: the events' venue id.
        ``wait``: a full ring is waited for instead of dropping (a replay that
        backfills a stream; a live feed never waits). Set before the run or
        between runs, from the thread that runs the loop."""
        if venue > 0xFFFF:
            raise ValueError(f"venue {venue}: a venue id is u16")
        if ring is None:
            rxf_books_set_events(self.b, NULL, 0, 0)
            self._event_ring = None
            return
        cdef void *p = PyCapsule_GetPointer(ring.capsule(), b"rxfeed.event_ring")
        self._event_ring = ring
        rxf_books_set_events(self.b, <rxf_event_ring *>p, venue, wait)

    def stop_waiting(self) -> None:
        """Stop waiting on a full ring (any thread): from now on a full ring drops and counts."""
        rxf_books_stop_waiting(self.b)

    @property
    def suspect(self) -> bool:
        """True once a range of the feed was lost: an order of that range
        may be missing or stale in the books."""
        return self.lost_messages > 0

    def counters(self) -> dict:
        c = self.b.c
        return {"suspect": self.suspect, "lost_messages": self.lost_messages,
                "lost_ranges": [list(r) for r in self.lost_ranges[:100]], "messages": c.messages, "adds": c.adds, "executions": c.executions, "cancels": c.cancels,
                "deletes": c.deletes, "replaces": c.replaces, "trades": c.trades, "cross_trades": c.cross_trades,
                "broken_trades": c.broken_trades, "halts": c.halts, "bbo_changes": c.bbo_changes,
                "depth_snapshots": c.depth_snapshots,
                "integrity": {"unknown_order": c.unknown_order, "exec_beyond_remaining": c.exec_beyond_remaining,
                              "cancel_beyond_remaining": c.cancel_beyond_remaining,
                              "duplicate_add": c.duplicate_add, "invalid_side": c.invalid_side,
                              "zero_shares_add": c.zero_shares_add, "directory_conflict": c.directory_conflict,
                              "crossed": c.crossed, "locked": c.locked, "out_of_memory": self.b.l3.oom}}

    def latency(self) -> dict:
        """Percentiles (ns) of the time each message took to update the books;
        ``over_20us``: how many updates took 20 µs or more (the issue's max target)."""
        if self.b.latency_hist == NULL:
            raise ValueError("OrderBooks(latency=True) was not asked for")
        from rxfeed import _runloop

        out = _runloop.histogram_summary(<unsigned long long[:RXF_HIST_BUCKETS]>self.b.latency_hist,
                                         "one ITCH message applied to the books (rdtsc)")
        out["over_20us"] = self._updates_over(20_000 * _runloop.cycles_per_ns())
        return out

    cdef unsigned long long _updates_over(self, double cycles):
        """Updates whose histogram bucket starts at or above ``cycles``."""
        cdef unsigned long long n = 0
        cdef unsigned int i
        for i in range(RXF_HIST_BUCKETS):
            if rxf_hist_value(i) >= cycles:
                n += self.b.latency_hist[i]
        return n

    @property
    def system_state(self) -> str:
        return chr(<unsigned char>self.b.system_state) if self.b.system_state else ""

    def symbols(self) -> dict:
        """``{symbol: locate}`` for every locate named by an R message (the first
        entry wins; contradicting R messages are counted as ``directory_conflict``)."""
        out = {}
        cdef int i
        for i in range(N_LOCATES):
            if self.b.stocks[i].seen:
                out[self.b.stocks[i].name[:8].decode("latin-1").rstrip()] = i
        return out

    def __getitem__(self, key):
        if isinstance(key, str):
            locs = self.symbols()
            if key not in locs:
                raise KeyError(f"no stock directory (R) message named {key!r}")
            key = locs[key]
        try:
            return Book(self, key)
        except IndexError as exc:
            raise KeyError(str(exc)) from None

    cdef rxf_side *_side(self, object loc, int side) except NULL:
        if side != 0 and side != 1:
            raise ValueError(f"side must be 0 (bid) or 1 (ask), not {side}")
        return &self.b.stocks[check_locate(loc)].side[side]

    def _levels(self, loc, int side, int n):
        """``[(price, shares, orders), ...]`` best first, ``n`` levels (all when < 0)."""
        cdef rxf_side *sd = self._side(loc, side)
        cdef int32_t i = sd.best
        cdef int k = 0
        out = []
        while i != 0 and (n < 0 or k < n):
            out.append((self.b.l3.lv[i].price, self.b.l3.lv[i].shares, self.b.l3.lv[i].orders))
            i = self.b.l3.lv[i].worse
            k += 1
        return out

    def _queue(self, loc, int side, unsigned int price):
        """The FIFO at ``price``: ``[(order_reference_number, shares), ...]``."""
        self._side(loc, side)
        cdef int32_t li = rxf_books_find_level(self.b, <uint16_t>check_locate(loc), side, price)
        cdef int32_t s = self.b.l3.lv[li].head if li else -1
        out = []
        while s >= 0:
            out.append((self.b.l3.orders[s].ref, self.b.l3.orders[s].shares))
            s = self.b.l3.orders[s].next
        return out

    def _state(self, loc):
        cdef char st = self.b.stocks[check_locate(loc)].trading_state
        return chr(<unsigned char>st) if st else ""

    def _capacity(self) -> dict:
        """Slots allocated: order pool, order-reference hash, level pool."""
        return {"orders": self.b.l3.cap_orders, "hash": self.b.l3.hash_cap, "levels": self.b.l3.cap_lv}

    def memory(self) -> dict:
        """What the order and level structures hold: live orders now and at
        their peak, bytes written (pools to their high-water marks, the whole
        order index), bytes per live order at the peak, times the index grew."""
        peak = self.b.l3.peak_live
        used = rxf_books_bytes_used(self.b)
        return {"live_orders": self.b.l3.hash_live, "peak_live_orders": peak, "bytes": used,
                "bytes_per_peak_live_order": used / peak if peak else 0.0, "index_grows": self.b.l3.hash_grows}

    @property
    def _tick(self) -> int:
        """The price step a new level looks one step either side of for its
        neighbours (100: a cent); 0 turns that off (only to test and measure it)."""
        return self.b.l3.tick

    @_tick.setter
    def _tick(self, unsigned int tick):
        self.b.l3.tick = tick

    def _check(self) -> str:
        """Every book's structure checked (red-black rules, price order, FIFO sums): "" when sound."""
        cdef const char *why = rxf_books_check(self.b)
        return why.decode() if why != NULL else ""

    def take_bbo(self):
        """Top-of-book changes so far (numpy, :data:`BBO_DTYPE`); the buffer is emptied."""
        return take_rows(&self.b.bbo, BBO_DTYPE)

    def take_trades(self):
        """Trades so far (numpy, :data:`TRADE_DTYPE`); the buffer is emptied."""
        return take_rows(&self.b.trades, TRADE_DTYPE)

    def take_depth(self):
        """Depth snapshots so far (numpy; fields ``timestamp``, ``locate``, and
        ``bid_price``/``bid_shares``/``bid_orders``/``ask_...`` arrays of N,
        best first, 0 past the book's end); the buffer is emptied."""
        cdef uint32_t n = self.b.l3.depth_n
        if n == 0:
            raise ValueError("OrderBooks(depth=N) was not asked for")
        lvl = np.dtype([("price", "<u4"), ("orders", "<u4"), ("shares", "<u8")])
        dt = np.dtype([("timestamp", "<u8"), ("locate", "<u2"), ("levels", "<u2"), ("_pad", "<u4"),
                       ("bid", lvl, (n,)), ("ask", lvl, (n,))])
        return take_rows(&self.b.depth, dt)

    def final_bbo(self) -> dict:
        """``{symbol: {bid_price, bid_shares, ask_price, ask_shares}}`` for every named locate."""
        out = {}
        for sym, loc in self.symbols().items():
            bk = Book(self, loc)
            (bp, bs), (ap, as_) = bk.bbo()
            out[sym] = {"bid_price": bp, "bid_shares": bs, "ask_price": ap, "ask_shares": as_}
        return out


cdef object take_rows(rxf_rows *rows, dtype):
    """Every row of an output table as a numpy array of ``dtype`` (one copy); the table is emptied."""
    if rows.rec != dtype.itemsize:
        raise AssertionError(f"row size {rows.rec} != dtype {dtype.itemsize}")
    arr = np.empty(rows.n, dtype)
    cdef uint8_t[::1] dst = arr.view(np.uint8) if rows.n else None
    if rows.n:
        rxf_rows_take(rows, &dst[0])
    return arr


def check_locate(loc) -> int:
    """``loc`` as an int in 0..65535, else IndexError."""
    i = operator.index(loc)
    if not 0 <= i < N_LOCATES:
        raise IndexError(f"locate {loc} out of range 0..{N_LOCATES - 1}")
    return i


def side_index(side) -> int:
    """0 for ``"B"``, 1 for ``"S"``, else ValueError."""
    if side not in _SIDES:
        raise ValueError(f"side must be 'B' or 'S', not {side!r}")
    return _SIDES[side]


class Book:
    """One symbol's book (a view: it reads the live C structures)."""

    def __init__(self, books, locate):
        self._books = books
        self.locate = check_locate(locate)

    def bbo(self):
        """``((bid_price, bid_shares), (ask_price, ask_shares))``; ``(0, 0)`` for an empty side."""
        b = self._books._levels(self.locate, 0, 1)
        a = self._books._levels(self.locate, 1, 1)
        return ((b[0][0], b[0][1]) if b else (0, 0)), ((a[0][0], a[0][1]) if a else (0, 0))

    def depth(self, n=10):
        """``{"bids": [(price, shares, orders), ...], "asks": [...]}``, best first, ``n`` levels."""
        return {"bids": self._books._levels(self.locate, 0, n), "asks": self._books._levels(self.locate, 1, n)}

    def levels(self, side):
        """Every level of ``side`` (``"B"``/``"S"``), best first."""
        return iter(self._books._levels(self.locate, side_index(side), -1))

    def queue(self, side, price):
        """The FIFO at a price: ``[(order_reference_number, shares), ...]``, first in line first."""
        return self._books._queue(self.locate, side_index(side), price)

    @property
    def trading_state(self):
        return self._books._state(self.locate)
