# cython: language_level=3, boundscheck=False, wraparound=False
"""IEX books for every symbol (C, see iex_book.c): DEEP price levels, DEEP+
orders, TOPS top of book, attached to an IEX decoder as a C handler table
(``decoder.add_handlers(books)``: the capsule of :meth:`IexBooks.capsule`)."""
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_GetPointer
from _iex_records cimport rxf_iex_record, RXF_IEX_UNKNOWN_TYPE, RXF_IEX_BAD_LENGTH
from _iex_decode cimport decode_feed
from iex_handlers cimport RXF_IEX_HANDLERS_CAPSULE, rxf_iex_meta

cdef extern from "rxfeed/hist.h":
    enum: RXF_HIST_BUCKETS

import numpy as np

from rxfeed_buffers cimport buffer_bytes
from rxfeed.book_outputs import record_loss, take_records

#: Feed names (as the generator takes them) -> IEX-TP message protocol ids.
PROTOCOLS = {"tops": 0x8003, "deep": 0x8004, "deep+": 0x8005}
_FEED_OF_PROTOCOL = {0x8003: RXF_IEX_BOOK_TOPS, 0x8004: RXF_IEX_BOOK_DEEP, 0x8005: RXF_IEX_BOOK_PLUS}
_NAME_OF_PROTOCOL = {v: k for k, v in PROTOCOLS.items()}
_SIDES = {"B": 0, "S": 1, "8": 0, "5": 1, 0: 0, 1: 1}


def side_index(side) -> int:
    """0 for a bid side ("B", "8" or 0), 1 for an ask side ("S", "5" or 1), else ValueError."""
    try:
        return _SIDES[side]
    except (KeyError, TypeError):
        raise ValueError(f"side must be 'B'/'8'/0 or 'S'/'5'/1, not {side!r}") from None

#: One top-of-book change (``books.take_bbo()``); prices in Price units (4 decimals), 0 = empty side.
BBO_DTYPE = np.dtype({"names": ["timestamp", "bid_price", "ask_price", "bid_size", "ask_size", "symbol",
                                "protocol_id"],
                      "formats": ["<i8", "<i8", "<i8", "<u8", "<u8", "<u4", "<u2"],
                      "offsets": [0, 8, 16, 24, 32, 40, 44], "itemsize": 48})
#: One trade (``books.take_trades()``): 'T' Trade Report / Trade, 'L' DEEP+ Order Executed.
TRADE_DTYPE = np.dtype({"names": ["timestamp", "price", "trade_id", "order_id", "size", "symbol", "protocol_id",
                                  "type", "sale_condition_flags", "side"],
                        "formats": ["<i8", "<i8", "<i8", "<i8", "<u4", "<u4", "<u2", "S1", "u1", "S1"],
                        "offsets": [0, 8, 16, 24, 32, 36, 40, 42, 43, 44], "itemsize": 48})


def protocol_id(feed) -> int:
    """The IEX-TP message protocol id of ``feed``: ``"tops"``, ``"deep"``,
    ``"deep+"`` (any case) or the id itself; else ValueError."""
    if isinstance(feed, str) and feed.lower() in PROTOCOLS:
        return PROTOCOLS[feed.lower()]
    if isinstance(feed, int) and feed in _NAME_OF_PROTOCOL:
        return feed
    raise ValueError(f"not an IEX feed: {feed!r} (one of {', '.join(PROTOCOLS)} or their protocol ids)")


def _symbol8(symbol: str) -> bytes:
    """The 8 wire bytes of a symbol (latin-1, as :meth:`IexBooks.symbols` names them)."""
    try:
        raw = symbol.encode("latin-1")
    except UnicodeEncodeError:
        raw = b"too long to be a symbol"
    if len(raw) > 8:
        raise KeyError(f"not an IEX symbol: {symbol!r}")
    return raw.ljust(8, b" ")


cdef class IexBooks:
    """Every symbol's IEX books. ``books["AAPL"]`` is an :class:`IexBook` of
    the feed these books last took a message of; ``books.book("AAPL", "deep")``
    names the feed.

    :param bbo: record every top-of-book change (``take_bbo()``).
    :param trades: record every trade (``take_trades()``).
    :param latency: time every message with the cycle counter (``latency()``).
    :param depth: depth snapshots are not kept by IEX books yet: 0 only
        (the option exists so that callers of ITCH's books get a clear error).
    """

    #: IEX types that change a book or print a trade (every feed's): only these fill the buffers
    book_types = "85QaMRLCT"

    def __cinit__(self, bint bbo=False, bint trades=False, bint latency=False, unsigned int depth=0):
        if depth:
            raise ValueError("IexBooks keep no depth snapshots (depth=0; rxfeed convert --depth 0)")
        self.lost_ranges = []
        self.lost_messages = 0
        self.b = <rxf_iex_books *>calloc(1, sizeof(rxf_iex_books))
        if self.b == NULL or rxf_iex_books_init(self.b, bbo, trades, latency) != 0:
            raise MemoryError()

    def __dealloc__(self):
        if self.b != NULL:
            rxf_iex_books_free(self.b)
            free(self.b)

    def capsule(self):
        """The C handler table (``rxf_iex_handlers``) as a capsule named
        ``RXF_IEX_HANDLERS_CAPSULE``, for an IEX decoder's ``add_handlers``."""
        return PyCapsule_New(&self.b.table, RXF_IEX_HANDLERS_CAPSULE, NULL)

    def feed_raw(self, feed, messages, claim=None) -> None:
        """Decode ``messages`` (message bytes, without IEX-TP framing) of
        ``feed`` with the generated decoders and call the handler table as a
        decoder would, the meta's ``event_end`` 0 only for a DEEP Price Level
        Update without the event-complete flag. A test and tool path, one
        Python call per message: not the hot path (the decoder is).
        Messages that do not decode are counted (``unknown_type``, ``bad_length``).
        ``claim``: another protocol id for the meta (a mislabelled message, for tests)."""
        cdef uint16_t proto = protocol_id(feed)
        cdef int fid = _FEED_OF_PROTOCOL[proto]  # RXF_IEX_BOOK_*: 0 TOPS, 1 DEEP, 2 DEEP+, as decode_feed's
        cdef rxf_iex_record rec
        cdef rxf_iex_meta meta
        cdef const uint8_t *p
        cdef uint32_t n
        cdef int status
        cdef bytes msg
        memset(&meta, 0, sizeof(meta))
        meta.protocol_id = proto if claim is None else claim
        meta.channel_id = 1
        for raw in messages:
            msg = raw  # TypeError for anything but bytes
            p = msg
            n = <uint32_t>len(msg)
            meta.raw = p
            meta.raw_len = n
            meta.sequence += 1
            status = decode_feed(fid, p, n, &rec)
            if status == RXF_IEX_UNKNOWN_TYPE:
                self.b.c.unknown_type += 1
                continue
            if status == RXF_IEX_BAD_LENGTH:
                self.b.c.bad_length += 1
                continue
            meta.event_end = not (proto == 0x8004 and (p[0] == ord('8') or p[0] == ord('5')) and not (p[1] & 1))
            if self.b.table.on[p[0]] != NULL:
                self.b.table.on[p[0]](self.b.table.ctx, &rec, &meta)

    def mark_lost(self, event) -> None:
        """Messages ``event["first"]`` .. ``+ event["count"]`` of the feed were
        declared lost (a ``gap`` event): the books may be wrong from here on
        and say so (:attr:`suspect`). The first 1000 ranges are kept. With
        events on, a ``LOSS`` (feed) event carries the range."""
        self.lost_messages += record_loss(self.lost_ranges, event)
        rxf_iex_books_emit_loss(self.b, event["first"], event["count"])

    def emit_events(self, ring, unsigned int venue=1, bint wait=False) -> None:
        """Emit what the books do as normalised events (``rxfeed.events``)
        into ``ring`` (an :class:`rxfeed.events.EventRing`; ``None`` stops):
        DEEP levels, DEEP+ order adds / modifies / deletes, BBO changes,
        trades, trading states, symbols (the first time seen), feed losses
        (docs/protocols/iex.md "IEX events"). ``venue``: the events' venue id. ``wait``:
        a full ring is waited for instead of dropping (a replay that backfills
        a stream; a live feed never waits). Set before the run or between
        runs, from the thread that runs the loop."""
        if venue > 0xFFFF:
            raise ValueError(f"venue {venue}: a venue id is u16")
        if ring is None:
            rxf_iex_books_set_events(self.b, NULL, 0, 0)
            self._event_ring = None
            return
        cdef void *p = PyCapsule_GetPointer(ring.capsule(), b"rxfeed.event_ring")
        self._event_ring = ring
        rxf_iex_books_set_events(self.b, <rxf_event_ring *>p, venue, wait)

    def stop_waiting(self) -> None:
        """Stop waiting on a full ring (any thread): from now on a full ring drops and counts."""
        rxf_iex_books_stop_waiting(self.b)

    @property
    def suspect(self) -> bool:
        """True once a range of the feed was lost: a level or order of that
        range may be missing or stale in the books."""
        return self.lost_messages > 0

    def counters(self) -> dict:
        c = self.b.c
        return {"suspect": self.suspect, "lost_messages": self.lost_messages,
                "lost_ranges": [list(r) for r in self.lost_ranges[:100]], "messages": c.messages,
                "symbols": self.b.n_stocks, "price_level_updates": c.price_level_updates,
                "events_applied": c.events_applied, "staged": self.b.n_staged, "quotes": c.quotes,
                "adds": c.adds, "modifies": c.modifies, "priority_kept": c.priority_kept, "deletes": c.deletes,
                "executions": c.executions, "clears": c.clears, "trades": c.trades,
                "trade_breaks": c.trade_breaks, "trading_status": c.trading_status, "halts": c.halts,
                "operational_halts": c.operational_halts, "system_events": c.system_events,
                "bbo_changes": c.bbo_changes, "depth_snapshots": 0,
                "integrity": {"unknown_order": c.unknown_order, "duplicate_add": c.duplicate_add,
                              "invalid_side": c.invalid_side, "zero_size": c.zero_size, "bad_price": c.bad_price,
                              "exec_beyond_remaining": c.exec_beyond_remaining,
                              "symbol_mismatch": c.symbol_mismatch,
                              "modify_priority_conflict": c.modify_priority_conflict,
                              "wrong_feed": c.wrong_feed, "unknown_protocol": c.unknown_protocol,
                              "too_many_symbols": c.too_many_symbols, "staged_overflow": c.staged_overflow,
                              "crossed": c.crossed, "locked": c.locked, "unknown_type": c.unknown_type,
                              "bad_length": c.bad_length, "out_of_memory": self.b.l3.oom}}

    def latency(self) -> dict:
        """Percentiles (ns) of the time each message took to update the books."""
        if self.b.latency_hist == NULL:
            raise ValueError("IexBooks(latency=True) was not asked for")
        from rxfeed import _runloop

        return _runloop.histogram_summary(<unsigned long long[:RXF_HIST_BUCKETS]>self.b.latency_hist,
                                          "one IEX message applied to the books (rdtsc)")

    @property
    def system_event(self) -> str:
        """The last System Event code ('O', 'S', 'R', 'M', 'E', 'C'), "" before any."""
        return chr(<unsigned char>self.b.system_event) if self.b.system_event else ""

    def symbols(self) -> dict:
        """``{symbol: index}`` of every symbol seen, in the order first seen."""
        return {self.b.stocks[i].symbol[:8].decode("latin-1").rstrip(" "): i for i in range(self.b.n_stocks)}

    def _index(self, symbol) -> int:
        if isinstance(symbol, int):
            if not 0 <= symbol < self.b.n_stocks:
                raise KeyError(f"no symbol index {symbol}")
            return symbol
        cdef bytes key = _symbol8(symbol)
        cdef int64_t i = rxf_iex_books_symbol(self.b, key)
        if i < 0:
            raise KeyError(f"no IEX message named {symbol!r}")
        return i

    def book(self, symbol, feed) -> "IexBook":
        """The book of ``symbol`` (or its index) in ``feed`` (``"tops"``, ``"deep"``, ``"deep+"``)."""
        return IexBook(self, self._index(symbol), _NAME_OF_PROTOCOL[protocol_id(feed)])

    def __getitem__(self, symbol) -> "IexBook":
        feed = _NAME_OF_PROTOCOL.get(self.b.last_protocol, "deep")
        return self.book(symbol, feed)

    cdef const rxf_side *_side(self, object symbol, int feed, int side) except NULL:
        return rxf_iex_books_side(self.b, self._index(symbol), feed, side)

    def _levels(self, symbol, feed, side, int n=-1):
        """``[(price, size), ...]`` (DEEP+: ``(price, size, orders)``) best first, ``n`` levels (all when < 0)."""
        cdef int f = _FEED_OF_PROTOCOL[protocol_id(feed)]
        cdef int s = side_index(side)
        cdef rxf_iex_top t
        if f == RXF_IEX_BOOK_TOPS:
            t = self.b.stocks[self._index(symbol)].tops
            px, sz = (t.ask_price, t.ask_size) if s else (t.bid_price, t.bid_size)
            return [(px, sz)] if sz and n != 0 else []
        cdef const rxf_side *sd = self._side(symbol, f, s)
        cdef int32_t i = sd.best
        cdef int k = 0
        cdef const rxf_level *lv
        out = []
        while i != 0 and (n < 0 or k < n):
            lv = &self.b.l3.lv[i]
            if f == RXF_IEX_BOOK_PLUS:
                out.append((lv.price, lv.shares, lv.orders))
            else:
                out.append((lv.price, lv.shares))
            i = lv.worse
            k += 1
        return out

    def _queue(self, symbol, side, int64_t price):
        """DEEP+: the orders at ``price``, first in line first: ``[(order_id, size), ...]``."""
        cdef int s = side_index(side)
        cdef const rxf_side *sd = self._side(symbol, RXF_IEX_BOOK_PLUS, s)
        cdef int32_t li = rxf_l3_find_level(&self.b.l3, sd, s, price)
        cdef int32_t o = self.b.l3.lv[li].head if li else -1
        out = []
        while o >= 0:
            out.append((self.b.l3.orders[o].ref, self.b.l3.orders[o].shares))
            o = self.b.l3.orders[o].next
        return out

    def _status(self, symbol) -> dict:
        cdef const rxf_iex_stock *st = &self.b.stocks[self._index(symbol)]
        return {"trading_status": chr(<unsigned char>st.trading_status) if st.trading_status else "",
                "operational_halt": chr(<unsigned char>st.operational_halt) if st.operational_halt else "",
                "quote_flags": st.quote_flags}

    def _check(self) -> str:
        """Every book's structure checked (red-black rules, price order, FIFO sums, symbol table): "" when sound."""
        cdef const char *why = rxf_iex_books_check(self.b)
        return why.decode() if why != NULL else ""

    def take_bbo(self):
        """Top-of-book changes so far (numpy, :data:`BBO_DTYPE`); the buffer is emptied."""
        arr = take_records(buffer_bytes(self.b.bbo, self.b.n_bbo * BBO_DTYPE.itemsize), BBO_DTYPE)
        self.b.n_bbo = 0
        return arr

    def take_trades(self):
        """Trades so far (numpy, :data:`TRADE_DTYPE`); the buffer is emptied."""
        arr = take_records(buffer_bytes(self.b.trades, self.b.n_trades * TRADE_DTYPE.itemsize), TRADE_DTYPE)
        self.b.n_trades = 0
        return arr

    def final_bbo(self) -> dict:
        """``{symbol: {bid_price, bid_shares, ask_price, ask_shares}}`` of every
        symbol, in the feed of ``books[symbol]`` (0 for an empty side)."""
        out = {}
        for sym in self.symbols():
            bk = self[sym]
            bid, ask = bk.best_bid or (0, 0), bk.best_ask or (0, 0)
            out[sym] = {"bid_price": bid[0], "bid_shares": bid[1], "ask_price": ask[0], "ask_shares": ask[1]}
        return out


class IexBook:
    """One symbol's book in one feed (a view: it reads the live C structures).
    Prices in Price units (4 implied decimals), sizes in shares."""

    def __init__(self, books: IexBooks, index: int, feed: str) -> None:
        self._books = books
        self.index = index
        self.feed = feed

    def bids(self, n: int = -1) -> list:
        """Bid levels, best first: ``(price, size)``, DEEP+ ``(price, size, orders)``; ``n`` of them (all: -1)."""
        return self._books._levels(self.index, self.feed, 0, n)

    def asks(self, n: int = -1) -> list:
        """Ask levels, best first, as :meth:`bids`."""
        return self._books._levels(self.index, self.feed, 1, n)

    def depth(self, n: int = 10) -> dict:
        """``{"bids": [(price, size, orders), ...], "asks": [...]}``, best first, ``n``
        levels, as ITCH's ``Book.depth`` (orders 0 where the feed has none: DEEP, TOPS)."""
        return {side: [(lv[0], lv[1], lv[2] if len(lv) > 2 else 0) for lv in levels(n)]
                for side, levels in (("bids", self.bids), ("asks", self.asks))}

    @property
    def best_bid(self):
        """The best bid level, None when the side is empty."""
        top = self.bids(1)
        return top[0] if top else None

    @property
    def best_ask(self):
        """The best ask level, None when the side is empty."""
        top = self.asks(1)
        return top[0] if top else None

    def queue(self, side, price: int) -> list:
        """DEEP+: ``[(order_id, size), ...]`` at ``price`` on ``side`` ("B"/"S" or "8"/"5"), first in line first."""
        if self.feed != "deep+":
            raise ValueError(f"{self.feed} books have no orders")
        return self._books._queue(self.index, side, price)

    @property
    def status(self) -> dict:
        """``trading_status`` (last H), ``operational_halt`` (last O), ``quote_flags`` (last Q)."""
        return self._books._status(self.index)
