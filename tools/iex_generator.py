"""Deterministic, book-consistent synthetic IEX days: DEEP+, DEEP and TOPS over IEX-TP.

One simulation of order books per symbol drives all three feeds, step by
step (:func:`iex_steps`): DEEP+ carries every order (Add Order, Order Modify,
Order Delete, Order Executed, non-displayed Trade, Trade Break, Clear Book);
DEEP carries, for each step that changes a book, the Price Level Updates of
the levels it changed (their sizes after the step, Event Flags 1 on the last
one only: one atomic batch per step), so DEEP is exactly the aggregation of
DEEP+ at every batch end; TOPS carries a Quote Update whenever a symbol's top
of book (or its halted / pre-post-market flags) changes. Trades, breaks,
official prices, auctions and the administrative messages follow the day:
system events, a directory and trading state per symbol, an opening,
a trading halt with Clear Book, an operational halt, a short sale price
test, retail liquidity indicators, the close. Books never cross: bids stay
below and asks above each symbol's fixed mid.

Every message is packed with :mod:`struct` from the spec tables of
``protocols/iex/spec.py`` (byte order and field kinds are the spec's).
:func:`iextp_segments` frames messages into IEX-TP segments (heartbeats
after a second of silence, an optional new session id and an optional
sequence reset within a session); :func:`generate_iex` writes pcap or
pcapng with the ITCH generator's writers.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rxfeed.protocols.iex import spec
from rxfeed.tools.generator import DAY_EPOCH_NS, DEFAULT_SYMBOLS, _Counter, udp_frame, write_pcap, write_pcapng

#: Feed names (as ``generate_iex`` takes them) -> spec tables.
FEEDS: dict[str, spec.Feed] = {"deep+": spec.DEEP_PLUS, "deep": spec.DEEP, "tops": spec.TOPS}
#: Synthetic multicast destinations per feed (administratively scoped, not IEX's).
DEFAULT_DESTINATIONS = {"tops": ("239.100.0.3", 10003), "deep": ("239.100.0.4", 10004),
                        "deep+": ("239.100.0.5", 10005)}
DEFAULT_SESSION_ID = 1_000_001
IEXTP_HEADER = struct.Struct("<BBHIIHHqqq")
_SECOND = 1_000_000_000
#: Times of the day, ns since the POSIX epoch (UTC; New York is UTC-5 on DAY_EPOCH_NS's date).
START_OF_MESSAGES = DAY_EPOCH_NS + 12 * 3600 * _SECOND
START_OF_SYSTEM_HOURS = DAY_EPOCH_NS + 13 * 3600 * _SECOND
REGULAR_OPEN = DAY_EPOCH_NS + (14 * 3600 + 1800) * _SECOND
REGULAR_HOURS_NS = 23_400 * _SECOND
TICK = 100  # $0.01 in Price units (4 implied decimals)
BUY, SELL = "8", "5"  # Side / Price Level Update type bytes
Q_HALTED, Q_PRE_POST = 0x80, 0x40  # Quote Update flags
SALE_ISO, SALE_FORM_T, SALE_ODD_LOT = 0x80, 0x40, 0x20  # Sale Condition flags
MAX_FILLS = 8  # executions of one incoming order
#: The most messages a random step writes to one feed (a sweep in DEEP: 8 trades, 3 levels).
ACTIVITY_BOUND = MAX_FILLS + 3


class Packer:
    """``struct`` packers of one feed's messages, laid out from its spec table."""

    def __init__(self, feed: spec.Feed) -> None:
        order = "<" if feed.byte_order == "little" else ">"
        self.feed = feed
        self._layouts: dict[str, tuple[struct.Struct, tuple[spec.Field, ...]]] = {}
        for m in feed.messages:
            codes = "".join(self._code(feed.kind(f), f) for f in m.fields)
            layout = struct.Struct(order + codes)
            assert layout.size == m.length, m.name
            self._layouts[m.type] = (layout, m.fields[1:])

    @staticmethod
    def _code(kind: spec.Kind, field: spec.Field) -> str:
        """The struct code of a field, from its kind (text: bytes; else size and sign)."""
        if kind.text:
            return f"{field.size}s"
        code = {1: "B", 4: "I", 8: "Q"}[field.size]
        return code.lower() if kind.signed else code

    def pack(self, type_: str, **values: object) -> bytes:
        """Message ``type_`` with field values by name (text as ``str``; ``reserved`` defaults to 0)."""
        layout, fields = self._layouts[type_]
        args: list[object] = [type_.encode()]
        for f in fields:
            v = values.pop(f.name, 0 if f.name == "reserved" else None)
            if v is None:
                raise ValueError(f"{self.feed.name} {type_}: no value for {f.name}")
            args.append(v.encode().ljust(f.size) if isinstance(v, str) else v)
        if values:
            raise ValueError(f"{self.feed.name} {type_}: unknown fields {sorted(values)}")
        return layout.pack(*args)


def message_timestamp(msg: bytes) -> int:
    """An IEX message's Timestamp (offset 2, every type)."""
    return int.from_bytes(msg[2:10], "little", signed=True)


@dataclass
class _Symbol:
    name: str
    mid: int
    levels: tuple[dict[int, dict[int, None]], dict[int, dict[int, None]]]  # per side: price -> FIFO of order ids
    sizes: tuple[dict[int, int], dict[int, int]]  # per side: price -> displayed size
    status: str = "T"  # Trading Status
    op_halted: bool = False
    last_quote: tuple[int, ...] = ()
    last_trade: int = 0

    @property
    def active(self) -> bool:
        return self.status == "T" and not self.op_halted

    def top(self) -> tuple[int, int, int, int]:
        """(bid size, bid price, ask price, ask size); an empty side is 0, 0."""
        bids, asks = self.sizes
        bp = max(bids) if bids else 0
        ap = min(asks) if asks else 0
        return bids.get(bp, 0), bp, ap, asks.get(ap, 0)


class _Day:
    """One simulated day: books, clock and what each step writes to each feed."""

    def __init__(self, n_messages: int, symbols: int, seed: int, feeds: Iterable[str]) -> None:
        self.rng = random.Random(seed)
        self.packers = {f: Packer(FEEDS[f]) for f in feeds}
        self.render = [(key, f) for key, f in (("+", "deep+"), ("d", "deep"), ("t", "tops")) if f in self.packers]
        self.symbols = [_Symbol((DEFAULT_SYMBOLS[i] if i < len(DEFAULT_SYMBOLS) else f"S{i:04d}"),
                                self.rng.randrange(10, 300) * 10_000, ({}, {}), ({}, {}))
                        for i in range(symbols)]
        self.orders: dict[int, list] = {}  # id -> [symbol index, side index (0 buy, 1 sell), size, price]
        self.ids: list[int] = []
        self.pos: dict[int, int] = {}
        self.next_id, self.next_trade = 5_000_001, 1
        self.trades: list[tuple[int, int, int, int, int]] = []  # (symbol, flags, size, price, trade id)
        self.ts = START_OF_MESSAGES
        self.regular = False
        self.n_pre = max(1, n_messages // 10)
        self.dt_pre = (REGULAR_OPEN - START_OF_SYSTEM_HOURS) // (self.n_pre + 1)
        self.dt = max(1, REGULAR_HOURS_NS // max(1, n_messages))
        self.schedule = self._schedule(n_messages)
        self.out: dict[str, list[bytes]] = {}

    # --- output -------------------------------------------------------------
    def emit(self, feeds: str, type_: str, **values: object) -> None:
        """Pack one message for each of ``feeds`` ("+" DEEP+, "d" DEEP, "t" TOPS) this day renders."""
        for key, name in self.render:
            if key in feeds:
                self.out[name].append(self.packers[name].pack(type_, timestamp=self.ts, **values))

    def sym_emit(self, feeds: str, type_: str, i: int, **values: object) -> None:
        if any(key in feeds for key, _ in self.render):
            self.emit(feeds, type_, symbol=self.symbols[i].name, **values)

    def publish(self, i: int, changed: dict[tuple[int, int], None]) -> None:
        """DEEP: one atomic batch of the changed levels; TOPS: the quote if it changed."""
        s = self.symbols[i]
        for n, (side, price) in enumerate(changed):
            self.sym_emit("d", SELL if side else BUY, i, event_flags=int(n == len(changed) - 1),
                          size=s.sizes[side].get(price, 0), price=price)
        self.quote(i)

    def quote(self, i: int, force: bool = False) -> None:
        s = self.symbols[i]
        flags = (0 if s.active else Q_HALTED) | (0 if self.regular else Q_PRE_POST)
        q = (flags, *s.top())
        if force or q != s.last_quote:
            s.last_quote = q
            self.sym_emit("t", "Q", i, flags=flags, bid_size=q[1], bid_price=q[2], ask_price=q[3], ask_size=q[4])

    # --- book ---------------------------------------------------------------
    def place(self, oid: int, i: int, side: int, size: int, price: int) -> None:
        self.orders[oid] = [i, side, size, price]
        self.pos[oid] = len(self.ids)
        self.ids.append(oid)
        s = self.symbols[i]
        s.levels[side].setdefault(price, {})[oid] = None
        s.sizes[side][price] = s.sizes[side].get(price, 0) + size

    def take(self, oid: int, size: int) -> None:
        """Remove ``size`` shares of an order (all of them: the order goes)."""
        o = self.orders[oid]
        i, side, _, price = o
        s = self.symbols[i]
        o[2] -= size
        s.sizes[side][price] -= size
        if o[2] > 0:
            return
        del self.orders[oid]
        at, last = self.pos.pop(oid), self.ids.pop()
        if last != oid:
            self.ids[at], self.pos[last] = last, at
        del s.levels[side][price][oid]
        if not s.levels[side][price]:
            del s.levels[side][price], s.sizes[side][price]

    def new_price(self, i: int, side: int) -> int:
        k = 1 + int(self.rng.random() * self.rng.random() * 20)
        return self.symbols[i].mid + (k if side else -k) * TICK

    def new_size(self) -> int:
        return self.rng.randrange(1, 100) if self.rng.random() < 0.05 else 100 * self.rng.randrange(1, 11)

    def sale_flags(self, size: int) -> int:
        return ((0 if self.regular else SALE_FORM_T) | (SALE_ODD_LOT if size < 100 else 0)
                | (SALE_ISO if self.rng.random() < 0.05 else 0))

    # --- order book steps ---------------------------------------------------
    def add(self, i: int) -> None:
        side = self.rng.randrange(2)
        size, price, oid = self.new_size(), self.new_price(i, side), self.next_id
        self.next_id += 1
        self.sym_emit("+", "a", i, side=SELL if side else BUY, order_id=oid, size=size, price=price)
        self.place(oid, i, side, size, price)
        self.publish(i, {(side, price): None})

    def modify(self, oid: int) -> None:
        """A smaller size at the same price keeps priority; anything else goes to the back of the queue."""
        i, side, size, price = self.orders[oid]
        if size > 1 and self.rng.random() < 0.5:
            new_size, new_price, keep = self.rng.randrange(1, size), price, 1
        else:
            new_size, new_price, keep = self.new_size(), self.new_price(i, side), 0
        self.sym_emit("+", "M", i, modify_flags=keep, order_id_reference=oid, size=new_size, price=new_price)
        if keep:
            self.take(oid, size - new_size)
        else:
            self.take(oid, size)
            self.place(oid, i, side, new_size, new_price)
        self.publish(i, {(side, price): None, (side, new_price): None})

    def delete(self, oid: int) -> None:
        i, side, size, price = self.orders[oid]
        self.sym_emit("+", "R", i, order_id_reference=oid)
        self.take(oid, size)
        self.publish(i, {(side, price): None})

    def trade(self, i: int, size: int, price: int, flags: int, feeds: str) -> None:
        """A Trade Report (DEEP, TOPS; DEEP+ "+" for a non-displayed Trade) with a new trade id."""
        self.sym_emit(feeds, "T", i, sale_condition_flags=flags, size=size, price=price, trade_id=self.next_trade)
        self.trades.append((i, flags, size, price, self.next_trade))
        self.symbols[i].last_trade = price
        self.next_trade += 1

    def sweep(self, oid: int) -> None:
        """An incoming order takes the resting side of ``oid``'s book from its best price, up to 3 levels."""
        i, side = self.orders[oid][:2]
        s, left = self.symbols[i], self.new_size() * self.rng.randrange(1, 4)
        changed: dict[tuple[int, int], None] = {}
        fills = 0
        while left and s.levels[side] and len(changed) < 3 and fills < MAX_FILLS:
            price = (min if side else max)(s.levels[side])
            changed[(side, price)] = None
            while left and price in s.levels[side] and fills < MAX_FILLS:
                fills += 1
                first = next(iter(s.levels[side][price]))
                fill = min(left, self.orders[first][2])
                flags = self.sale_flags(fill)
                self.sym_emit("+", "L", i, sale_condition_flags=flags, order_id_reference=first, size=fill,
                              price=price, trade_id=self.next_trade)
                self.trade(i, fill, price, flags, "dt")
                self.take(first, fill)
                left -= fill
        self.publish(i, changed)

    def hidden_trade(self, i: int) -> None:
        size = self.new_size()
        self.trade(i, size, self.symbols[i].mid, self.sale_flags(size), "+dt")

    def trade_break(self) -> None:
        if self.trades:
            i, flags, size, price, tid = self.trades[-1 - self.rng.randrange(min(32, len(self.trades)))]
            self.sym_emit("+dt", "B", i, sale_condition_flags=flags, size=size, price=price, trade_id=tid)

    def clear_book(self, i: int) -> None:
        s = self.symbols[i]
        changed = {(side, p): None for side in (0, 1) for p in s.levels[side]}
        self.sym_emit("+", "C", i)
        for side, price in changed:
            for oid in list(s.levels[side].get(price, ())):
                self.take(oid, self.orders[oid][2])
        self.publish(i, changed)

    def active_symbol(self) -> int | None:
        """A random symbol, or the next active one after it (halts are few and short)."""
        n = len(self.symbols)
        start = self.rng.randrange(n)
        return next(((start + k) % n for k in range(n) if self.symbols[(start + k) % n].active), None)

    def activity(self) -> None:
        """One random step on an active symbol's book, or a message that leaves the books alone."""
        r = self.rng.random()
        oid = self.ids[self.rng.randrange(len(self.ids))] if self.ids else 0
        if oid and not self.symbols[self.orders[oid][0]].active:
            oid = 0
        if r < 0.40 or not oid or len(self.ids) < 8 * len(self.symbols):
            i = self.active_symbol()
            if i is not None and r < 0.92:
                self.add(i)
            elif i is not None:
                self.hidden_trade(i)
        elif r < 0.64:
            self.delete(oid)
        elif r < 0.78:
            self.modify(oid)
        elif r < 0.92:
            self.sweep(oid)
        elif r < 0.985:
            self.hidden_trade(self.orders[oid][0])
        elif r < 0.992:
            self.trade_break()
        else:
            self.sym_emit("+dt", "I", self.orders[oid][0], retail_liquidity_indicator=self.rng.choice(" ABC"))

    # --- the day's administrative events ---------------------------------------
    def preamble(self) -> None:
        """Start of messages and system hours; directory and trading state of every symbol."""
        self.emit("+dt", "S", system_event="O")
        for i, s in enumerate(self.symbols):
            self.sym_emit("+dt", "D", i, flags=0x20 if i % 5 == 4 else 0, round_lot_size=100,
                          adjusted_poc_price=s.mid, luld_tier=1 + i % 2)
            self.sym_emit("+dt", "H", i, trading_status="T", reason="")
            self.sym_emit("+dt", "O", i, operational_halt_status="N")
            self.sym_emit("+dt", "P", i, short_sale_price_test_status=0, detail=" ")
            self.sym_emit("+dt", "I", i, retail_liquidity_indicator=" ")
        self.ts = START_OF_SYSTEM_HOURS
        self.emit("+dt", "S", system_event="S")

    def auction(self, i: int, kind: str) -> None:
        s = self.symbols[i]
        when = (REGULAR_OPEN if kind == "O" else self.ts) // _SECOND  # Scheduled Auction Time, s
        self.sym_emit("dt", "A", i, auction_type=kind, paired_shares=100 * self.rng.randrange(1, 100),
                      reference_price=s.mid, indicative_clearing_price=s.mid, imbalance_shares=0,
                      imbalance_side="N", extension_number=0, scheduled_auction_time=when,
                      auction_book_clearing_price=s.mid, collar_reference_price=s.mid,
                      lower_auction_collar=s.mid * 9 // 10, upper_auction_collar=s.mid * 11 // 10)

    def open(self) -> None:
        for i in range(len(self.symbols)):
            self.auction(i, "O")
        self.ts = max(self.ts + 1, REGULAR_OPEN)
        self.regular = True
        self.emit("+dt", "S", system_event="R")
        for i, s in enumerate(self.symbols):
            self.sym_emit("+d", "E", i, security_event="O")
            self.sym_emit("dt", "X", i, price_type="Q", official_price=s.mid)
            self.quote(i)

    def halt(self, i: int) -> None:
        """A trading halt (news pending): the book is cleared."""
        self.symbols[i].status = "H"
        self.sym_emit("+dt", "H", i, trading_status="H", reason="T1")
        self.clear_book(i)

    def release(self, i: int) -> None:
        """Halt released into an order acceptance period, with a halt auction."""
        self.symbols[i].status = "O"
        self.sym_emit("+dt", "H", i, trading_status="O", reason="T2")
        self.auction(i, "H")
        self.quote(i)

    def resume(self, i: int) -> None:
        self.symbols[i].status = "T"
        self.sym_emit("+dt", "H", i, trading_status="T", reason="")
        self.quote(i)

    def operational_halt(self, i: int, halted: bool) -> None:
        self.symbols[i].op_halted = halted
        self.sym_emit("+dt", "O", i, operational_halt_status="O" if halted else "N")
        self.quote(i)

    def short_sale_test(self, i: int) -> None:
        """Short sale price test activated by an intraday price drop."""
        self.sym_emit("+dt", "P", i, short_sale_price_test_status=1, detail="A")

    def _schedule(self, n: int) -> dict[int, tuple[Callable[..., None], tuple[object, ...]]]:
        """Step index -> (method, arguments): the day's fixed events."""
        last, other, pause = len(self.symbols) - 1, 1 % len(self.symbols), max(2, n // 50)
        return {self.n_pre: (self.open, ()), n // 4: (self.short_sale_test, (last,)),
                n // 2: (self.halt, (0,)), n // 2 + pause: (self.release, (0,)),
                n // 2 + 2 * pause: (self.resume, (0,)),
                6 * n // 10: (self.operational_halt, (other, True)),
                6 * n // 10 + pause: (self.operational_halt, (other, False))}

    def close(self) -> None:
        """The closing auction, end of regular hours, closing events and prices, end of the day."""
        for i in range(len(self.symbols)):
            self.auction(i, "C")
        self.ts += 1000
        self.regular = False
        self.emit("+dt", "S", system_event="M")
        for i, s in enumerate(self.symbols):
            self.quote(i, force=True)
            self.sym_emit("+d", "E", i, security_event="C")
            self.sym_emit("dt", "X", i, price_type="M", official_price=s.last_trade or s.mid)
        for code in "EC":
            self.ts += 1000
            self.emit("+dt", "S", system_event=code)

    def bound(self, index: int) -> int:
        """The most messages step ``index`` can write to any one feed (known before it runs)."""
        if index == 0:
            return 2 + 5 * len(self.symbols)
        event = self.schedule.get(index, (None, ()))[0]
        if event == self.open:
            return 3 * len(self.symbols) + 1
        if event == self.halt:
            return 2 + sum(len(side) for side in self.symbols[0].levels)
        return ACTIVITY_BOUND

    def step(self, index: int) -> dict[str, list[bytes]]:
        """Step ``index`` of the day (0: the preamble): every feed's messages, one timestamp."""
        self.out = {f: [] for f in self.packers}
        if index == 0:
            self.preamble()
            return self.out
        self.ts += 1 + int(self.rng.random() * 2 * (self.dt if self.regular else self.dt_pre))
        event = self.schedule.get(index)
        if event is None:
            self.activity()
        else:
            event[0](*event[1])
        return self.out

    def closing(self) -> dict[str, list[bytes]]:
        self.out = {f: [] for f in self.packers}
        self.close()
        return self.out


def tail_length(feed: str, symbols: int) -> int:
    """How many messages :meth:`_Day.close` writes to ``feed``."""
    return {"deep+": 3 + symbols, "deep": 3 + 3 * symbols, "tops": 3 + 3 * symbols}[feed]


def _check(n_messages: int, symbols: int) -> None:
    if not 1 <= symbols <= 4096:
        raise ValueError("symbols must be in 1..4096")
    need = 2 + 5 * symbols + max(tail_length(f, symbols) for f in FEEDS) + 32
    if n_messages < need:
        raise ValueError(f"n_messages must be at least {need} for {symbols} symbols")


def iex_steps(n_messages: int = 100_000, symbols: int = 8, seed: int = 1,
              feeds: Iterable[str] = tuple(FEEDS)) -> Iterator[dict[str, list[bytes]]]:
    """The day step by step, every feed from the same books: ``{feed: [messages]}``.

    Step 0 is the preamble; then one order book or administrative event per
    step, each with its own, later timestamp, without end (the caller stops;
    :func:`iex_messages` closes the day). ``n_messages`` sets the pace and
    the schedule (opening at step n/10, a halt with Clear Book at n/2, ...).
    """
    _check(n_messages, symbols)
    day = _Day(n_messages, symbols, seed, feeds)
    index = 0
    while True:
        yield day.step(index)
        index += 1


def iex_messages(feed: str = "deep", n_messages: int = 100_000, symbols: int = 8, seed: int = 1) -> Iterator[bytes]:
    """Exactly ``n_messages`` encoded messages of ``feed`` ("deep+", "deep", "tops"), deterministic by seed.

    The steps of :func:`iex_steps` while the most the next one can write fits,
    then Retail Liquidity Indicator messages to fill (a step is never cut: a
    DEEP batch stays whole), then the close. The same seed and ``n_messages``
    give the same books in every feed; each feed stops at its own step.
    """
    if feed not in FEEDS:
        raise ValueError(f"unknown IEX feed {feed!r} ({', '.join(FEEDS)})")
    _check(n_messages, symbols)
    day = _Day(n_messages, symbols, seed, (feed,))
    budget, count, index = n_messages - tail_length(feed, symbols), 0, 0
    while count + day.bound(index) <= budget:
        out = day.step(index)[feed]
        yield from out
        count += len(out)
        index += 1
    day.out = {feed: []}
    for k in range(budget - count):
        day.ts += 1
        day.sym_emit("+dt", "I", k % symbols, retail_liquidity_indicator=" ")
    yield from day.out[feed]
    yield from day.closing()[feed]


@dataclass
class _Stream:
    """The sender's IEX-TP position: session id, next sequence number, stream offset."""

    protocol_id: int
    channel: int
    session: int
    seq: int = 1
    offset: int = 0

    def segment(self, blocks: list[bytes], send_time: int) -> bytes:
        """One segment of ``blocks`` (a heartbeat when empty); advances the position."""
        payload = b"".join(blocks)
        header = IEXTP_HEADER.pack(1, 0, self.protocol_id, self.channel, self.session, len(payload), len(blocks),
                                   self.offset, self.seq, send_time)
        self.seq += len(blocks)
        self.offset += len(payload)
        return header + payload


def iextp_segments(messages: Iterable[bytes], feed: str = "deep", session_id: int = DEFAULT_SESSION_ID,
                   channel: int = 1, max_frame: int = 1500, max_delay_ns: int = 1_000_000,
                   heartbeat_ns: int | None = _SECOND, new_session_at: int | None = None,
                   reset_at: int | None = None) -> Iterator[tuple[int, bytes]]:
    """IEX-TP segments of ``messages``: yields ``(send time ns, segment)``.

    A segment holds the messages of at most ``max_delay_ns`` (from its first
    message's timestamp) whose Ethernet/IPv4/UDP frame fits ``max_frame``
    bytes; it is sent at its last message's timestamp. After ``heartbeat_ns``
    without messages a heartbeat (message count 0, the next sequence number
    and stream offset) is sent, every ``heartbeat_ns`` (None: never). At
    message index ``new_session_at`` the session id becomes ``session_id + 1``
    and at ``reset_at`` the sequence restarts at 1 in the same session (not
    in the specification; iextp.h counts it as a restart): both start a new
    segment at sequence 1, stream offset 0.
    """
    stream = _Stream(FEEDS[feed].message_protocol_id, channel, session_id)
    budget = max_frame - 14 - 20 - 8 - IEXTP_HEADER.size
    blocks: list[bytes] = []
    size = first_ts = last_ts = 0
    sent = None
    for index, m in enumerate(messages):
        ts = message_timestamp(m)
        if blocks and (size + 2 + len(m) > budget or ts - first_ts > max_delay_ns or index in (new_session_at,
                                                                                                reset_at)):
            yield last_ts, stream.segment(blocks, last_ts)
            sent, blocks, size = last_ts, [], 0
        if index == new_session_at:
            stream = _Stream(stream.protocol_id, channel, stream.session + 1)
        elif index == reset_at:
            stream.seq, stream.offset = 1, 0
        if not blocks:
            while heartbeat_ns and sent is not None and ts - sent > heartbeat_ns:
                sent += heartbeat_ns
                yield sent, stream.segment([], sent)
            first_ts = ts
        blocks.append(len(m).to_bytes(2, "little") + m)
        size += 2 + len(m)
        last_ts = ts
    if blocks:
        yield last_ts, stream.segment(blocks, last_ts)


def _index(fraction: float | None, n_messages: int) -> int | None:
    return None if fraction is None else int(fraction * n_messages)


def generate_iex(path: str | Path, feed: str = "deep", n_messages: int = 100_000, symbols: int = 8, seed: int = 1,
                 fmt: str | None = None, session_change_at: float | None = 0.5, reset_at: float | None = None,
                 heartbeat_ns: int | None = _SECOND) -> int:
    """Write a synthetic IEX day of ``feed`` as IEX-TP over UDP multicast to ``path``; returns messages.

    The format comes from ``fmt`` or the name (``*.pcapng``, else pcap; a
    trailing ``.gz`` compresses). ``session_change_at`` and ``reset_at`` are
    fractions of the day's messages at which a new session id starts, or the
    sequence restarts at 1 in the session (None: not at all).
    """
    p = str(path)
    compress = p.endswith(".gz")
    base = p[:-3] if compress else p
    fmt = fmt or ("pcapng" if base.endswith(".pcapng") else "pcap")
    writer = {"pcap": write_pcap, "pcapng": write_pcapng}.get(fmt)
    if writer is None:
        raise ValueError(f"unknown format {fmt!r} (pcap, pcapng)")
    counted = _Counter(iex_messages(feed, n_messages, symbols, seed))
    segments = iextp_segments(counted, feed, heartbeat_ns=heartbeat_ns, new_session_at=_index(session_change_at,
                              n_messages), reset_at=_index(reset_at, n_messages))
    group, port = DEFAULT_DESTINATIONS[feed]
    frames = ((ts, udp_frame(seg, group, port, ident=i)) for i, (ts, seg) in enumerate(segments))
    writer(path, frames, compress=compress)
    return counted.n
