"""Full-market synthetic ITCH 5.0 days: thousands of symbols, a market that moves.

:func:`generate_market_messages` streams a book-consistent day shaped like a
TotalView day, unlike the small fixed-price days of :mod:`.generator` (whose
output it leaves untouched; it reuses its encoders and writers):

- symbol activity follows a Zipf law (weight ``1/rank``), so a few symbols
  carry most of the traffic;
- each symbol has a latent fair price doing a random walk in time, with a
  U-shaped intraday volatility (high at the open and the close); orders are
  placed around it, so the best bid and offer move through the day;
- each symbol's spread multiplier wanders (mean-reverting), so spreads widen
  and tighten; most orders rest near the touch, some deep in the book;
- executions (E, C) hit the first order at the best price of the side the
  fair price has moved through; cancels (X, D) and replaces (U) pick a live
  order at random, so orders are cancelled deep in the book too;
- the mix is A/D dominant, U and X common, E/C less, B rare, with F, P and I;
  adds outnumber removals by a few percent, so live orders grow with the day
  (a delete becomes an add while live orders are below 4.5% of the messages
  so far: 2.2M+ live orders at 50M messages), unless ``max_live_orders``
  (at least 64) caps them.

Every message is consistent with the book so far: executions and cancels
reference live orders and never exceed their remaining shares, replaces
reference live orders and keep their side, order reference numbers are unique
and increasing, timestamps strictly increase, and no book is ever crossed or
locked. Random draws come in numpy batches from one seeded generator, so a
day is deterministic for a seed; memory is O(live orders), not O(messages).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rxfeed.protocols.itch50.reference import STRUCTS

from .generator import DEFAULT_SYMBOLS, _Counter, _ts_pack, frames_for, write_nasdaq, write_pcap, write_pcapng

#: The big day of issue 13: 8,000 symbols, 50M messages.
MARKET_SYMBOLS = 8_000
MARKET_MESSAGES = 50_000_000
_BATCH = 1 << 13
_TICK = 100                    # one cent in ITCH price units (1e-4 $)
_OPEN_NS = (9 * 3600 + 1800) * 10**9
_CLOSE_NS = 16 * 3600 * 10**9
_SESSION_S = (_CLOSE_NS - _OPEN_NS) / 1e9

#: Cumulative thresholds of the activity mix, in this order:
#: A, F (adds); E, C (executions); X, D, U (cancels, replaces); P, I, B (off-book).
_MIX = {"A": 0.428, "F": 0.020, "E": 0.035, "C": 0.004, "X": 0.040, "D": 0.385, "U": 0.068,
        "P": 0.010, "I": 0.0098, "B": 0.0002}
_KEYS = tuple(_MIX)
_CUM = tuple(float(x) for x in np.cumsum([_MIX[k] for k in _KEYS]))
_ADD_END, _EXEC_END, _MOD_END = _CUM[1], _CUM[3], _CUM[6]
#: Live orders grow by at least this fraction of the activity messages (2.2M at 50M).
_GROWTH = 0.045


def _symbol_name(i: int) -> bytes:
    """Well-known names first, then S0016, S0017, ... (8 bytes, space padded)."""
    return (DEFAULT_SYMBOLS[i] if i < len(DEFAULT_SYMBOLS) else f"S{i:04d}").encode().ljust(8)


def _intraday(ts: np.ndarray) -> np.ndarray:
    """U-shaped intraday factor: 2.5 at the open and the close, 1 at midday."""
    x = (ts - _OPEN_NS) / (_CLOSE_NS - _OPEN_NS) * 2.0 - 1.0
    return 1.0 + 1.5 * x * x


class _Draws:
    """Batches of seeded random draws, handed out as Python lists."""

    def __init__(self, rng: np.random.Generator, cum_weights: np.ndarray, mean_step: float) -> None:
        self.rng, self.cum, self.mean_step = rng, cum_weights, mean_step

    def batch(self, ts: int, track: int) -> tuple[list, ...]:
        """One batch of per-message draws after the clock ``ts`` and tracking
        number ``track``: action, symbol, normal, two uniforms, lot, depth,
        timestamp, tracking number, timestamp halves, intraday factor and its root."""
        rng, n = self.rng, _BATCH
        action = rng.random(n).tolist()
        symbol = np.searchsorted(self.cum, rng.random(n), side="right").tolist()
        normal = rng.standard_normal(n).tolist()
        u1 = rng.random(n).tolist()
        u2 = rng.random(n).tolist()
        lot = (100 * rng.geometric(0.35, n)).tolist()
        deep = rng.random(n) < 0.12
        depth = np.where(deep, rng.integers(5, 150, n), rng.geometric(0.45, n) - 1).tolist()
        stamps = ts + np.cumsum((1 + rng.exponential(self.mean_step - 1, n)).astype(np.int64))
        tracks = ((track + 1 + np.arange(n)) & 0xFFFF).tolist()
        factor = _intraday(stamps)
        return (action, symbol, normal, u1, u2, lot, depth, stamps.tolist(), tracks, (stamps >> 32).tolist(),
                (stamps & 0xFFFFFFFF).tolist(), factor.tolist(), np.sqrt(factor).tolist())


class _Market:
    """The state of the market day: per-symbol fair prices and spreads, every
    live order, and per (symbol, side) the FIFO queue of each price level with
    a lazy heap of level prices for the best price."""

    def __init__(self, symbols: int, seed: int, max_live: int | None) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = symbols
        self.names = [_symbol_name(i) for i in range(symbols)]
        price = np.exp(self.rng.uniform(math.log(5), math.log(600), symbols))
        self.fair = (price * 100).tolist()                                # in ticks
        vol_day = self.rng.uniform(0.01, 0.04, symbols) * price * 100     # daily sigma in ticks
        self.vol = (vol_day / math.sqrt(_SESSION_S)).tolist()              # per sqrt(second)
        rank = np.arange(symbols)
        self.half = (1 + np.minimum(6, rank // max(1, symbols // 8))).tolist()  # base half-spread
        self.widen = [1.0] * symbols
        self.last_ts = [_OPEN_NS] * symbols
        # orders: ref -> [symbol, side, shares, price, index in refs]
        self.orders: dict[int, list] = {}
        self.refs: list[int] = []
        self.levels: list[dict[int, dict[int, None]]] = [{} for _ in range(2 * symbols)]
        self.heaps: list[list[int]] = [[] for _ in range(2 * symbols)]   # bids negated
        self.in_heap: list[set[int]] = [set() for _ in range(2 * symbols)]
        self.next_ref = 1
        self.match = 0
        self.track = 0
        self.ts = 4 * 3600 * 10**9
        self.factor = self.root = 1.0     # the intraday volatility factor now, and its square root
        self.max_live = max_live
        self.peak_live = 0
        self.seen = 0

    # -- book state -----------------------------------------------------
    def best(self, key: int) -> int:
        """Best price (ticks) of ``key`` = 2*symbol+side, 0 if that side is empty."""
        heap, levels = self.heaps[key], self.levels[key]
        while heap:
            p = -heap[0] if key & 1 == 0 else heap[0]
            if p in levels:
                return p
            heapq.heappop(heap)
            self.in_heap[key].discard(p)
        return 0

    def place(self, ref: int, sym: int, side: int, shares: int, price: int) -> None:
        key = 2 * sym + side
        self.orders[ref] = [sym, side, shares, price, len(self.refs)]
        self.refs.append(ref)
        levels = self.levels[key]
        level = levels.get(price)
        if level is None:
            level = levels[price] = {}
            if price not in self.in_heap[key]:
                self.in_heap[key].add(price)
                heapq.heappush(self.heaps[key], -price if side == 0 else price)
        level[ref] = None
        if len(self.refs) > self.peak_live:
            self.peak_live = len(self.refs)

    def remove(self, ref: int) -> None:
        sym, side, _, price, i = self.orders.pop(ref)
        last = self.refs.pop()
        if last != ref:
            self.refs[i] = last
            self.orders[last][4] = i
        levels = self.levels[2 * sym + side]
        level = levels[price]
        del level[ref]
        if not level:
            del levels[price]

    # -- prices ---------------------------------------------------------
    def walk(self, sym: int, normal: float, u: float) -> None:
        """Move the symbol's fair price for the time since its last move, and its spread."""
        dt = (self.ts - self.last_ts[sym]) * 1e-9
        self.last_ts[sym] = self.ts
        f = self.fair[sym] + normal * self.vol[sym] * self.factor * math.sqrt(dt)
        self.fair[sym] = f if f > 50.0 else 50.0
        w = self.widen[sym] + 0.05 * (1.0 - self.widen[sym]) + 0.25 * (u - 0.5)
        self.widen[sym] = 0.5 if w < 0.5 else 4.0 if w > 4.0 else w

    def price_for(self, sym: int, side: int, depth: int) -> int:
        """A new order's price: around the fair price, never crossing or locking."""
        off = self.half[sym] * self.widen[sym] * self.root + depth
        if side == 0:
            p = int(self.fair[sym] - off)
            ask = self.best(2 * sym + 1)
            if ask and p >= ask:
                p = ask - 1
            return p if p > 0 else 1
        p = int(self.fair[sym] + off + 0.999)
        bid = self.best(2 * sym)
        return bid + 1 if bid and p <= bid else p

    # -- messages -------------------------------------------------------
    def add(self, r: float, sym: int, u: float, lot: int, depth: int, th: int, tl: int) -> bytes:
        """A (or F with attribution): a new order around the symbol's fair price."""
        side = 0 if u < 0.5 else 1
        price = self.price_for(sym, side, depth)
        ref, loc = self.next_ref, sym + 1
        self.next_ref += 1
        self.place(ref, sym, side, lot, price)
        bs = b"B" if side == 0 else b"S"
        if r < _CUM[0]:
            return _A(b"A", loc, self.track, th, tl, ref, bs, lot, self.names[sym], price * _TICK)
        return _F(b"F", loc, self.track, th, tl, ref, bs, lot, self.names[sym], price * _TICK, b"RXFD")

    def execute(self, r: float, sym: int, u: float, lot: int, th: int, tl: int) -> bytes | None:
        """E or C of the first order at the best price of the side the fair
        price has moved through (either side when it sits inside the spread);
        None when that symbol's book is empty."""
        bid, ask = self.best(2 * sym), self.best(2 * sym + 1)
        fair = self.fair[sym]
        if ask and (fair >= ask or not bid or (fair > bid and u < 0.5)):
            key, price = 2 * sym + 1, ask
        elif bid:
            key, price = 2 * sym, bid
        else:
            return None
        ref = next(iter(self.levels[key][price]))
        o = self.orders[ref]
        q = o[2] if lot > o[2] else lot
        self.match += 1
        if r < _CUM[2]:
            msg = _E(b"E", sym + 1, self.track, th, tl, ref, q, self.match)
        else:
            msg = _C(b"C", sym + 1, self.track, th, tl, ref, q, self.match, b"Y", price * _TICK)
        o[2] -= q
        if o[2] == 0:
            self.remove(ref)
        return msg

    def modify(self, r: float, u: float, lot: int, depth: int, th: int, tl: int) -> bytes:
        """X, D or U of a live order picked at random (deep ones included)."""
        ref = self.refs[int(u * len(self.refs))]
        o = self.orders[ref]
        sym, side, qty = o[0], o[1], o[2]
        if r < _CUM[4] and qty > 1:     # partial cancel (an odd lot when the order is down to one lot)
            q = lot if lot < qty else qty // 2
            o[2] -= q
            return _X(b"X", sym + 1, self.track, th, tl, ref, q)
        if r < _CUM[5]:                 # delete, or a cancel of a one-share order
            self.remove(ref)
            return _D(b"D", sym + 1, self.track, th, tl, ref)
        self.remove(ref)                # replace: new reference, price and size; back of the queue
        price = self.price_for(sym, side, depth)
        new = self.next_ref
        self.next_ref += 1
        self.place(new, sym, side, lot, price)
        return _U(b"U", sym + 1, self.track, th, tl, ref, new, lot, price * _TICK)

    def off_book(self, r: float, sym: int, u: float, lot: int, th: int, tl: int) -> bytes:
        """P, I or B: a non-displayed trade, an imbalance, a rare broken trade."""
        loc, name, px = sym + 1, self.names[sym], int(self.fair[sym]) * _TICK
        if r < _CUM[7]:
            self.match += 1
            return _P(b"P", loc, self.track, th, tl, 0, b"B" if u < 0.5 else b"S", lot, name, px, self.match)
        if r < _CUM[8]:
            return _I(b"I", loc, self.track, th, tl, 10 * lot, lot, b"B" if u < 0.5 else b"S", name,
                      px + _TICK, px - _TICK, px, b"C", b" ")
        return _B(b"B", loc, self.track, th, tl, max(1, int(u * self.match)))

    def activity(self, r: float, sym: int, normal: float, u1: float, u2: float, lot: int, depth: int,
                 ts: int, track: int, th: int, tl: int, factor: float, root: float) -> bytes:
        """The next message, at ``ts`` (``th``, ``tl``: its halves) with tracking number ``track``."""
        self.ts, self.track, self.factor, self.root = ts, track, factor, root
        live = len(self.refs)
        self.seen += 1
        if self.max_live is not None and live >= self.max_live:
            if r < _ADD_END:
                r = _CUM[4] + (r / _ADD_END) * (_CUM[5] - _CUM[4])   # at the cap an add becomes a delete
        elif _CUM[4] <= r < _CUM[5] and live < _GROWTH * self.seen:
            r = (r - _CUM[4]) / (_CUM[5] - _CUM[4]) * _CUM[0]         # behind the growth line a delete becomes an add
        if r < _ADD_END or (live < 64 and r < _MOD_END):
            self.walk(sym, normal, u2)
            return self.add(r if r < _ADD_END else 0.0, sym, u1, lot, depth, th, tl)
        if r < _EXEC_END:
            self.walk(sym, normal, u2)
            msg = self.execute(r, sym, u1, lot, th, tl)
            return msg if msg is not None else self.add(0.0, sym, u1, lot, depth, th, tl)
        if r < _MOD_END:
            return self.modify(r, u1, lot, depth, th, tl)
        return self.off_book(r, sym, u1, lot, th, tl)


_A, _F, _E, _C, _X, _D, _U, _P, _I, _B = (STRUCTS[k].pack for k in "AFECXDUPIB")


def _preamble(m: _Market) -> Iterator[bytes]:
    """Start of messages and of system hours, then a directory (R) and a
    trading action (H) per symbol."""
    S = STRUCTS

    def hdr(t: bytes, loc: int) -> tuple:
        m.track = (m.track + 1) & 0xFFFF
        m.ts += 1000
        return (t, loc, m.track) + _ts_pack(m.ts)

    yield S["S"].pack(*hdr(b"S", 0), b"O")
    yield S["S"].pack(*hdr(b"S", 0), b"S")
    for i, name in enumerate(m.names):
        yield S["R"].pack(*hdr(b"R", i + 1), name, b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N", b" ", b"1",
                          b"N", 0, b"N")
        yield S["H"].pack(*hdr(b"H", i + 1), name, b"T", b" ", b"    ")
    m.ts = _OPEN_NS
    yield S["S"].pack(*hdr(b"S", 0), b"Q")


def _zipf_cumulative(symbols: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, symbols + 1) ** exponent
    c = np.cumsum(w)
    return c / c[-1]


def generate_market_messages(n_messages: int = MARKET_MESSAGES, symbols: int = MARKET_SYMBOLS, seed: int = 1,
                             zipf: float = 1.0, max_live_orders: int | None = None,
                             stats: dict[str, int] | None = None) -> Iterator[bytes]:
    """Yield a full-market day of ``n_messages`` encoded ITCH 5.0 messages
    (deterministic for a seed). ``stats``, if given, receives ``peak_live``
    and ``live`` (live orders at the peak and at the end) when the day ends."""
    if not 1 <= symbols <= 65_535:
        raise ValueError("symbols must be in 1..65535 (the stock locate is 16 bits)")
    head = 3 + 2 * symbols
    if n_messages < head + 3 + 64:
        raise ValueError(f"n_messages must be at least {head + 3 + 64} for {symbols} symbols")
    m = _Market(symbols, seed, max_live_orders)
    yield from _preamble(m)
    body = n_messages - head - 3
    draws = _Draws(m.rng, _zipf_cumulative(symbols, zipf), max(2.0, 0.95 * (_CLOSE_NS - _OPEN_NS) / body))
    activity = m.activity
    left = body
    while left:
        cols = draws.batch(m.ts, m.track)
        k = min(left, _BATCH)
        for args in zip(*(c[:k] if k < _BATCH else c for c in cols)):
            yield activity(*args)
        left -= k
    for code in (b"M", b"E", b"C"):
        m.ts = max(m.ts + 1000, _CLOSE_NS if code == b"M" else 0)
        m.track = (m.track + 1) & 0xFFFF
        yield STRUCTS["S"].pack(b"S", 0, m.track, *_ts_pack(m.ts), code)
    if stats is not None:
        stats.update(peak_live=m.peak_live, live=len(m.refs))


def generate_market(path: str | Path, n_messages: int = MARKET_MESSAGES, symbols: int = MARKET_SYMBOLS,
                    seed: int = 1, fmt: str | None = None, **options: Any) -> int:
    """Write a full-market day to ``path`` (NASDAQ file framing, or MoldUDP64
    in pcap/pcapng, from ``fmt`` or the name; ``.gz`` compresses). Returns messages."""
    p = str(path)
    compress = p.endswith(".gz")
    base = p[:-3] if compress else p
    fmt = fmt or ("pcapng" if base.endswith(".pcapng") else "pcap" if base.endswith(".pcap") else "nasdaq")
    msgs = generate_market_messages(n_messages, symbols, seed, **options)
    if fmt == "nasdaq":
        return write_nasdaq(path, msgs, compress)
    writers = {"pcap": write_pcap, "pcapng": write_pcapng}
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r} (nasdaq, pcap, pcapng)")
    counted = _Counter(msgs)
    writers[fmt](path, frames_for(counted), compress=compress)
    return counted.n
