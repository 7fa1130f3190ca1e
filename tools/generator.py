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


def generate_messages(n_messages: int = 100_000, symbols: int = 8, seed: int = 1) -> Iterator[bytes]:
    """Yield ``n_messages`` encoded ITCH 5.0 messages (deterministic for a seed)."""
    if n_messages < 64:
        raise ValueError("a synthetic day needs at least 64 messages")
    if not 1 <= symbols <= 4096:
        raise ValueError("symbols must be in 1..4096")
    rng = random.Random(seed)
    names = [(DEFAULT_SYMBOLS[i] if i < len(DEFAULT_SYMBOLS) else f"S{i:04d}").encode().ljust(8) for i in range(symbols)]
    mids = [rng.randrange(100, 3000) * 10000 for _ in range(symbols)]
    S = STRUCTS
    ts = 4 * 3600 * 10**9
    count = 0
    track = 0

    def hdr(t: str, loc: int) -> tuple:
        nonlocal track
        track = (track + 1) & 0xFFFF
        return (t.encode(), loc, track) + _ts_pack(ts)

    def sysev(code: bytes) -> bytes:
        return S["S"].pack(*hdr("S", 0), code)

    tail = 3  # M, E, C
    out: list[bytes] = [sysev(b"O")]
    out.append(S["V"].pack(*hdr("V", 0), 2_800_00000000, 2_600_00000000, 2_400_00000000))
    for i, nm in enumerate(names):
        loc = i + 1
        out.append(S["R"].pack(*hdr("R", loc), nm, b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N", b" ", b"1",
                               b"N", 0, b"N"))
        out.append(S["H"].pack(*hdr("H", loc), nm, b"T", b" ", b"    "))
        out.append(S["Y"].pack(*hdr("Y", loc), nm, b"0"))
        out.append(S["L"].pack(*hdr("L", loc), b"RXFD", nm, b"Y", b"N", b"A"))
    nm0 = names[0]
    out.append(S["K"].pack(*hdr("K", 1), nm0, 34200, b"A", mids[0]))
    out.append(S["J"].pack(*hdr("J", 1), nm0, mids[0], mids[0] + 5000, mids[0] - 5000, 1))
    out.append(S["h"].pack(*hdr("h", 1), nm0, b"Q", b"T"))
    out.append(S["N"].pack(*hdr("N", 1), nm0, b"B"))
    out.append(S["O"].pack(*hdr("O", 1), nm0, b"Y", mids[0] - 10000, mids[0] + 10000, mids[0], 34200 * 10**9,
                           mids[0] - 20000, mids[0] + 20000))
    out.append(S["W"].pack(*hdr("W", 0), b"1"))
    out.append(sysev(b"S"))
    out.append(sysev(b"Q"))
    for m in out:
        yield m
    count = len(out)
    if count + tail > n_messages:
        raise ValueError(f"n_messages must be at least {count + tail}")

    # live orders: ref -> [locate index, side, shares, price]; a list with
    # swap-remove for O(1) random choice; FIFO queues per (symbol, side,
    # price) as insertion-ordered dicts, so executions hit the first order at
    # the best price, as a matching engine would
    orders: dict[int, list] = {}
    refs: list[int] = []
    pos: dict[int, int] = {}
    book: list[list[dict[int, dict[int, None]]]] = [[{}, {}] for _ in range(symbols)]
    next_ref = 1
    match = 0
    span = (20 * 3600 - 9 * 3600) * 10**9
    step = max(1, span // max(1, n_messages))
    p_A, p_F, p_E, p_C, p_X, p_D, p_U, p_P, p_I, p_Q, p_B = (0.36, 0.04, 0.10, 0.02, 0.08, 0.26, 0.08, 0.03,
                                                             0.015, 0.0025, 0.0025)
    cum = []
    acc = 0.0
    for p in (p_A, p_F, p_E, p_C, p_X, p_D, p_U, p_P, p_I, p_Q, p_B):
        acc += p
        cum.append(acc)
    ts = 9 * 3600 * 10**9
    rnd = rng.random
    randrange = rng.randrange
    packA, packF, packE, packC = S["A"].pack, S["F"].pack, S["E"].pack, S["C"].pack
    packX, packD, packU, packP = S["X"].pack, S["D"].pack, S["U"].pack, S["P"].pack

    def place(ref: int, li: int, side: bytes, qty: int, price: int) -> None:
        orders[ref] = [li, side, qty, price]
        pos[ref] = len(refs)
        refs.append(ref)
        book[li][side == b"S"].setdefault(price, {})[ref] = None

    def remove(ref: int) -> None:
        li, side, _, price = orders.pop(ref)
        i = pos.pop(ref)
        last = refs.pop()
        if last != ref:
            refs[i] = last
            pos[last] = i
        level = book[li][side == b"S"][price]
        del level[ref]
        if not level:
            del book[li][side == b"S"][price]

    def new_price(li: int, side: bytes) -> int:
        k = 1 + int(rnd() * rnd() * 20)
        return mids[li] - k * 100 if side == b"B" else mids[li] + k * 100

    while count < n_messages - tail:
        ts += 1 + int(rnd() * 2 * step)
        track = (track + 1) & 0xFFFF
        r = rnd()
        if len(refs) < 16 and r >= cum[1]:
            r = 0.0  # build some depth before removing
        th, tl = _ts_pack(ts)
        if r < cum[1]:  # add (A or F)
            li = randrange(symbols)
            side = b"B" if rnd() < 0.5 else b"S"
            price = new_price(li, side)
            qty = 100 * (1 + randrange(10))
            if r < cum[0]:
                msg = packA(b"A", li + 1, track, th, tl, next_ref, side, qty, names[li], price)
            else:
                msg = packF(b"F", li + 1, track, th, tl, next_ref, side, qty, names[li], price, b"RXFD")
            place(next_ref, li, side, qty, price)
            next_ref += 1
        elif r < cum[3]:  # execution (E or C) of the first order at the best price of a random book
            li, side = orders[refs[randrange(len(refs))]][:2]
            levels = book[li][side == b"S"]
            best = max(levels) if side == b"B" else min(levels)
            ref = next(iter(levels[best]))
            o = orders[ref]
            q = min(o[2], 100 * (1 + randrange(5)))
            match += 1
            if r < cum[2]:
                msg = packE(b"E", li + 1, track, th, tl, ref, q, match)
            else:
                msg = packC(b"C", li + 1, track, th, tl, ref, q, match, b"Y", o[3])
            o[2] -= q
            if o[2] == 0:
                remove(ref)
        elif r < cum[6]:  # act on a random live order
            ref = refs[randrange(len(refs))]
            li, side, qty, price = orders[ref]
            if r < cum[4]:  # partial cancel (or delete when too small to split)
                if qty <= 100:
                    msg = packD(b"D", li + 1, track, th, tl, ref)
                    remove(ref)
                else:
                    q = 100 * (1 + randrange(qty // 100 - 1)) if qty > 200 else 100
                    msg = packX(b"X", li + 1, track, th, tl, ref, q)
                    orders[ref][2] -= q
            elif r < cum[5]:
                msg = packD(b"D", li + 1, track, th, tl, ref)
                remove(ref)
            else:  # replace: same side, new reference, price and size; back of the queue
                price = new_price(li, side)
                qty = 100 * (1 + randrange(10))
                msg = packU(b"U", li + 1, track, th, tl, ref, next_ref, qty, price)
                remove(ref)
                place(next_ref, li, side, qty, price)
                next_ref += 1
        elif r < cum[7]:  # non-displayed trade
            li = randrange(symbols)
            match += 1
            msg = packP(b"P", li + 1, track, th, tl, 0, b"B", 100 * (1 + randrange(5)), names[li], mids[li], match)
        elif r < cum[8]:
            li = randrange(symbols)
            msg = S["I"].pack(b"I", li + 1, track, th, tl, 1000 * randrange(50), 100 * randrange(50),
                              b"B" if rnd() < 0.5 else b"S", names[li], mids[li] + 100, mids[li] - 100, mids[li],
                              b"C", b" ")
        elif r < cum[9]:
            li = randrange(symbols)
            match += 1
            msg = S["Q"].pack(b"Q", li + 1, track, th, tl, 1000 * (1 + randrange(100)), names[li], mids[li], match,
                              b"O" if rnd() < 0.5 else b"C")
        else:
            msg = S["B"].pack(b"B", 1 + randrange(symbols), track, th, tl, max(1, match))
        yield msg
        count += 1
    ts += 1000
    yield sysev(b"M")
    ts += 1000
    yield sysev(b"E")
    ts += 1000
    yield sysev(b"C")


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
