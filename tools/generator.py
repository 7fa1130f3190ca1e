"""Deterministic, book-consistent synthetic ITCH 5.0 days.

:func:`generate_messages` yields encoded messages: a system-event lifecycle,
a directory (R) and trading state (H, Y, L) per symbol, at least one of every
ITCH 5.0 type, then a seeded mix of order-book activity in which every
referenced order is live, executions hit the first order in line at the best
price and never exceed the remaining shares, cancels never exceed them either, and bids stay below and asks above each symbol's mid (no crossed
books). Writers put the same day into NASDAQ file framing, or into MoldUDP64
datagrams (frames of at most 1,500 bytes) in pcap or pcapng.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from rxfeed.protocols.itch50.reference import STRUCTS

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "NFLX",
                   "QCOM", "ADBE", "CSCO", "PEP", "COST", "AVGO")
DEFAULT_GROUP = "233.54.12.111"
DEFAULT_PORT = 26477
DEFAULT_SESSION = b"RXFEED0001"
#: 2019-12-30 00:00:00 UTC: the date the synthetic day is stamped with in captures.
DAY_EPOCH_NS = 1577664000 * 1_000_000_000
_MOLD_HDR = struct.Struct(">10sQH")


def _ts_pack(ts: int) -> tuple[int, int]:
    return ts >> 32, ts & 0xFFFFFFFF


#: Cumulative probabilities of the activity mix: A, F, E, C, X, D, U, P, I, Q, B.
_MIX = (0.36, 0.04, 0.10, 0.02, 0.08, 0.26, 0.08, 0.03, 0.015, 0.0025, 0.0025)
_CUM = tuple(sum(_MIX[:i + 1]) for i in range(len(_MIX)))


class _Day:
    """The state of one synthetic day: symbols, clock, live orders and the
    FIFO queue of every (symbol, side, price), so each message it writes is
    consistent with the book so far."""

    def __init__(self, symbols: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n_symbols = symbols
        self.names = [(DEFAULT_SYMBOLS[i] if i < len(DEFAULT_SYMBOLS) else f"S{i:04d}").encode().ljust(8)
                      for i in range(symbols)]
        self.mids = [self.rng.randrange(100, 3000) * 10000 for _ in range(symbols)]
        self.ts = 4 * 3600 * 10**9
        self.track = 0
        # live orders: ref -> [locate index, side, shares, price]; refs is a
        # list with swap-remove for O(1) random choice; per (symbol, side,
        # price) an insertion-ordered dict is the FIFO queue, so executions
        # hit the first order at the best price, as a matching engine would
        self.orders: dict[int, list] = {}
        self.refs: list[int] = []
        self.pos: dict[int, int] = {}
        self.book: list[list[dict[int, dict[int, None]]]] = [[{}, {}] for _ in range(symbols)]
        self.next_ref = 1
        self.match = 0

    def hdr(self, t: str, loc: int) -> tuple:
        self.track = (self.track + 1) & 0xFFFF
        return (t.encode(), loc, self.track) + _ts_pack(self.ts)

    def sysev(self, code: bytes) -> bytes:
        return STRUCTS["S"].pack(*self.hdr("S", 0), code)

    def preamble(self) -> list[bytes]:
        """System start, directory and trading state per symbol, and one of
        every other administrative type."""
        S, hdr, mid0, nm0 = STRUCTS, self.hdr, self.mids[0], self.names[0]
        out = [self.sysev(b"O"), S["V"].pack(*hdr("V", 0), 2_800_00000000, 2_600_00000000, 2_400_00000000)]
        for i, nm in enumerate(self.names):
            loc = i + 1
            out.append(S["R"].pack(*hdr("R", loc), nm, b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N", b" ", b"1",
                                   b"N", 0, b"N"))
            out.append(S["H"].pack(*hdr("H", loc), nm, b"T", b" ", b"    "))
            out.append(S["Y"].pack(*hdr("Y", loc), nm, b"0"))
            out.append(S["L"].pack(*hdr("L", loc), b"RXFD", nm, b"Y", b"N", b"A"))
        out.append(S["K"].pack(*hdr("K", 1), nm0, 34200, b"A", mid0))
        out.append(S["J"].pack(*hdr("J", 1), nm0, mid0, mid0 + 5000, mid0 - 5000, 1))
        out.append(S["h"].pack(*hdr("h", 1), nm0, b"Q", b"T"))
        out.append(S["N"].pack(*hdr("N", 1), nm0, b"B"))
        out.append(S["O"].pack(*hdr("O", 1), nm0, b"Y", mid0 - 10000, mid0 + 10000, mid0, 34200 * 10**9,
                               mid0 - 20000, mid0 + 20000))
        out += [S["W"].pack(*hdr("W", 0), b"1"), self.sysev(b"S"), self.sysev(b"Q")]
        return out

    def place(self, ref: int, li: int, side: bytes, qty: int, price: int) -> None:
        self.orders[ref] = [li, side, qty, price]
        self.pos[ref] = len(self.refs)
        self.refs.append(ref)
        self.book[li][side == b"S"].setdefault(price, {})[ref] = None

    def remove(self, ref: int) -> None:
        li, side, _, price = self.orders.pop(ref)
        i = self.pos.pop(ref)
        last = self.refs.pop()
        if last != ref:
            self.refs[i] = last
            self.pos[last] = i
        level = self.book[li][side == b"S"][price]
        del level[ref]
        if not level:
            del self.book[li][side == b"S"][price]

    def new_price(self, li: int, side: bytes) -> int:
        rnd = self.rng.random
        k = 1 + int(rnd() * rnd() * 20)
        return self.mids[li] - k * 100 if side == b"B" else self.mids[li] + k * 100

    def add(self, r: float, th: int, tl: int) -> bytes:
        """A new order (A, or F with attribution) near the symbol's mid."""
        rnd, li = self.rng.random, self.rng.randrange(self.n_symbols)
        side = b"B" if rnd() < 0.5 else b"S"
        price = self.new_price(li, side)
        qty = 100 * (1 + self.rng.randrange(10))
        ref, name = self.next_ref, self.names[li]
        if r < _CUM[0]:
            msg = STRUCTS["A"].pack(b"A", li + 1, self.track, th, tl, ref, side, qty, name, price)
        else:
            msg = STRUCTS["F"].pack(b"F", li + 1, self.track, th, tl, ref, side, qty, name, price, b"RXFD")
        self.place(ref, li, side, qty, price)
        self.next_ref += 1
        return msg

    def execute(self, r: float, th: int, tl: int) -> bytes:
        """E or C of the first order at the best price of a random live book."""
        randrange = self.rng.randrange
        li, side = self.orders[self.refs[randrange(len(self.refs))]][:2]
        levels = self.book[li][side == b"S"]
        best = max(levels) if side == b"B" else min(levels)
        ref = next(iter(levels[best]))
        o = self.orders[ref]
        q = min(o[2], 100 * (1 + randrange(5)))
        self.match += 1
        if r < _CUM[2]:
            msg = STRUCTS["E"].pack(b"E", li + 1, self.track, th, tl, ref, q, self.match)
        else:
            msg = STRUCTS["C"].pack(b"C", li + 1, self.track, th, tl, ref, q, self.match, b"Y", o[3])
        o[2] -= q
        if o[2] == 0:
            self.remove(ref)
        return msg

    def modify(self, r: float, th: int, tl: int) -> bytes:
        """X, D or U of a random live order."""
        randrange = self.rng.randrange
        ref = self.refs[randrange(len(self.refs))]
        li, side, qty, price = self.orders[ref]
        if r < _CUM[4] and qty > 100:  # partial cancel
            q = 100 * (1 + randrange(qty // 100 - 1)) if qty > 200 else 100
            self.orders[ref][2] -= q
            return STRUCTS["X"].pack(b"X", li + 1, self.track, th, tl, ref, q)
        if r < _CUM[5]:  # delete (or a cancel of an order too small to split)
            self.remove(ref)
            return STRUCTS["D"].pack(b"D", li + 1, self.track, th, tl, ref)
        # replace: same side, new reference, price and size; back of the queue
        price = self.new_price(li, side)
        qty = 100 * (1 + randrange(10))
        msg = STRUCTS["U"].pack(b"U", li + 1, self.track, th, tl, ref, self.next_ref, qty, price)
        self.remove(ref)
        self.place(self.next_ref, li, side, qty, price)
        self.next_ref += 1
        return msg

    def off_book(self, r: float, th: int, tl: int) -> bytes:
        """P, I, Q or B: trades and auction data that leave the books alone."""
        rnd, randrange, S = self.rng.random, self.rng.randrange, STRUCTS
        if r >= _CUM[9]:
            return S["B"].pack(b"B", 1 + randrange(self.n_symbols), self.track, th, tl, max(1, self.match))
        li = randrange(self.n_symbols)
        name, mid = self.names[li], self.mids[li]
        if r < _CUM[7]:
            self.match += 1
            return S["P"].pack(b"P", li + 1, self.track, th, tl, 0, b"B", 100 * (1 + randrange(5)), name, mid,
                               self.match)
        if r < _CUM[8]:
            return S["I"].pack(b"I", li + 1, self.track, th, tl, 1000 * randrange(50), 100 * randrange(50),
                               b"B" if rnd() < 0.5 else b"S", name, mid + 100, mid - 100, mid, b"C", b" ")
        self.match += 1
        return S["Q"].pack(b"Q", li + 1, self.track, th, tl, 1000 * (1 + randrange(100)), name, mid, self.match,
                           b"O" if rnd() < 0.5 else b"C")

    def activity(self, step: int) -> bytes:
        """The next order-book message, a step of about ``step`` ns later."""
        rnd = self.rng.random
        self.ts += 1 + int(rnd() * 2 * step)
        self.track = (self.track + 1) & 0xFFFF
        r = rnd()
        if len(self.refs) < 16 and r >= _CUM[1]:
            r = 0.0  # build some depth before removing
        th, tl = _ts_pack(self.ts)
        if r < _CUM[1]:
            return self.add(r, th, tl)
        if r < _CUM[3]:
            return self.execute(r, th, tl)
        if r < _CUM[6]:
            return self.modify(r, th, tl)
        return self.off_book(r, th, tl)


def generate_messages(n_messages: int = 100_000, symbols: int = 8, seed: int = 1) -> Iterator[bytes]:
    """Yield ``n_messages`` encoded ITCH 5.0 messages (deterministic for a seed)."""
    if n_messages < 64:
        raise ValueError("a synthetic day needs at least 64 messages")
    if not 1 <= symbols <= 4096:
        raise ValueError("symbols must be in 1..4096")
    day = _Day(symbols, seed)
    tail = 3  # M, E, C
    preamble = day.preamble()
    yield from preamble
    count = len(preamble)
    if count + tail > n_messages:
        raise ValueError(f"n_messages must be at least {count + tail}")
    step = max(1, (20 * 3600 - 9 * 3600) * 10**9 // max(1, n_messages))
    day.ts = 9 * 3600 * 10**9
    activity = day.activity
    for _ in range(n_messages - tail - count):
        yield activity(step)
    for code in (b"M", b"E", b"C"):
        day.ts += 1000
        yield day.sysev(code)


def message_timestamp(msg: bytes) -> int:
    return (msg[5] << 40) | (msg[6] << 32) | int.from_bytes(msg[7:11], "big")


def write_nasdaq(path: str | Path, messages: Iterable[bytes], compress: bool = False) -> int:
    """Write NASDAQ file framing (u16 big-endian length + message). Returns messages written."""
    n = 0
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        buf = bytearray()
        for m in messages:
            buf += len(m).to_bytes(2, "big")
            buf += m
            n += 1
            if len(buf) > 1 << 20:
                f.write(buf)
                buf.clear()
        f.write(buf)
    return n


def moldudp64_datagrams(messages: Iterable[bytes], session: bytes = DEFAULT_SESSION, max_frame: int = 1500,
                        end_of_session: bool = True) -> Iterator[tuple[int, bytes]]:
    """Pack messages into MoldUDP64 datagrams whose Ethernet frames fit ``max_frame``.

    Yields ``(timestamp_ns_of_first_message, payload)``.
    """
    budget = max_frame - 14 - 20 - 8 - 20
    seq = 1
    block: list[bytes] = []
    size = 0
    first_ts = 0
    for m in messages:
        if block and size + 2 + len(m) > budget:
            yield first_ts, _MOLD_HDR.pack(session, seq, len(block)) + b"".join(block)
            seq += len(block)
            block, size = [], 0
        if not block:
            first_ts = message_timestamp(m)
        block.append(len(m).to_bytes(2, "big") + m)
        size += 2 + len(m)
    if block:
        yield first_ts, _MOLD_HDR.pack(session, seq, len(block)) + b"".join(block)
        seq += len(block)
    if end_of_session:
        yield first_ts, _MOLD_HDR.pack(session, seq, 0xFFFF)


def _ip_checksum(h: bytes) -> int:
    s = sum(struct.unpack("!10H", h))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp_frame(payload: bytes, group: str = DEFAULT_GROUP, port: int = DEFAULT_PORT, src: str = "10.1.1.1",
              src_port: int = 40000, ident: int = 0, vlans: tuple[int, ...] = ()) -> bytes:
    """An Ethernet II / IPv4 / UDP frame carrying ``payload`` to a multicast group."""
    g = bytes(int(x) for x in group.split("."))
    s = bytes(int(x) for x in src.split("."))
    mac = b"\x01\x00\x5e" + bytes([g[1] & 0x7F, g[2], g[3]])
    udp = struct.pack("!HHHH", src_port, port, 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), ident & 0xFFFF, 0x4000, 16, 17, 0, s, g)
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return mac + b"\x02\x00\x00\x00\x00\x01" + tags + b"\x08\x00" + ip + udp + payload


def write_pcap(path: str | Path, frames: Iterable[tuple[int, bytes]], nsec: bool = False, linktype: int = 1,
               compress: bool = False) -> int:
    """Write classic pcap (little-endian; usec or nsec magic). ``frames``: (ts_ns, frame)."""
    opener = gzip.open if compress else open
    n = 0
    with opener(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D if nsec else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for ts, fr in frames:
            frac = ts % 10**9 if nsec else (ts % 10**9) // 1000
            f.write(struct.pack("<IIII", ts // 10**9, frac, len(fr), len(fr)))
            f.write(fr)
            n += 1
    return n


def write_pcapng(path: str | Path, frames: Iterable[tuple[int, bytes]], linktype: int = 1, tsresol: int = 9,
                 compress: bool = False) -> int:
    """Write pcapng: one section, one interface (``tsresol`` decimal digits), EPBs."""
    opener = gzip.open if compress else open
    n = 0
    with opener(path, "wb") as f:
        f.write(struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28))
        opts = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
        blen = 20 + len(opts)
        f.write(struct.pack("<IIHHI", 1, blen, linktype, 0, 262144) + opts + struct.pack("<I", blen))
        div = 10 ** (9 - tsresol)
        for ts, fr in frames:
            t = ts // div
            pad = (-len(fr)) % 4
            blen = 32 + len(fr) + pad
            f.write(struct.pack("<IIIIIII", 6, blen, 0, t >> 32, t & 0xFFFFFFFF, len(fr), len(fr)))
            f.write(fr + b"\0" * pad + struct.pack("<I", blen))
            n += 1
    return n


def frames_for(messages: Iterable[bytes], group: str = DEFAULT_GROUP, port: int = DEFAULT_PORT,
               session: bytes = DEFAULT_SESSION) -> Iterator[tuple[int, bytes]]:
    """MoldUDP64-in-UDP Ethernet frames with capture timestamps (ns since the epoch)."""
    for i, (ts, payload) in enumerate(moldudp64_datagrams(messages, session)):
        yield DAY_EPOCH_NS + ts, udp_frame(payload, group, port, ident=i)


def generate(path: str | Path, n_messages: int = 100_000, symbols: int = 8, seed: int = 1,
             fmt: str | None = None) -> int:
    """Write a synthetic day to ``path``; the format comes from ``fmt`` or the
    name: ``*.pcap``, ``*.pcapng`` (MoldUDP64 over UDP multicast), anything
    else NASDAQ file framing; a trailing ``.gz`` compresses. Returns messages."""
    p = str(path)
    compress = p.endswith(".gz")
    base = p[:-3] if compress else p
    fmt = fmt or ("pcapng" if base.endswith(".pcapng") else "pcap" if base.endswith(".pcap") else "nasdaq")
    msgs = generate_messages(n_messages, symbols, seed)
    if fmt == "nasdaq":
        return write_nasdaq(path, msgs, compress)
    counted = _Counter(msgs)
    if fmt == "pcap":
        write_pcap(path, frames_for(counted), compress=compress)
    elif fmt == "pcapng":
        write_pcapng(path, frames_for(counted), compress=compress)
    else:
        raise ValueError(f"unknown format {fmt!r} (nasdaq, pcap, pcapng)")
    return counted.n


class _Counter:
    def __init__(self, it: Iterable[bytes]) -> None:
        self.it = it
        self.n = 0

    def __iter__(self) -> Iterator[bytes]:
        for m in self.it:
            self.n += 1
            yield m
