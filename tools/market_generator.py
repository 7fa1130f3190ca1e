"""Full-market synthetic ITCH 5.0 days: thousands of symbols, a market that moves.

:func:`generate_market_messages` streams a book-consistent day shaped like a
TotalView day, unlike the small fixed-price days of :mod:`.generator` (whose
output it leaves untouched; it reuses its writers):

- symbol activity follows a Zipf law (weight ``1/rank``), so a few symbols
  carry most of the traffic;
- each symbol has a latent fair price doing a random walk in time, with a
  U-shaped intraday volatility (high at the open and the close); orders are
  placed around it, so the best bid and offer move through the day;
- each symbol's spread multiplier wanders (mean-reverting), so spreads widen
  and tighten; most orders rest near the touch, 12% 5-150 ticks from it;
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
locked.

The state machine is C (``_market_gen_engine.c`` behind the ``_market_gen``
extension, run without the GIL): a seeded xoshiro256** generator, so a day is
deterministic for a seed; live orders in a pool (32 bytes each, plus 4 in the
live list) with their price levels in per-(symbol, side) heaps and a hash, so
memory is O(live orders), not O(messages); messages are encoded straight into
1 MiB NASDAQ-framed chunks (:func:`market_chunks`), which the writers stream
to the file.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._market_gen import MarketDay, MoldPacker, min_messages, split_framed
from .generator import DAY_EPOCH_NS, DEFAULT_SESSION, DEFAULT_SYMBOLS, udp_frame, write_pcap, write_pcapng

#: The big day of issue 13: 8,000 symbols, 50M messages.
MARKET_SYMBOLS = 8_000
MARKET_MESSAGES = 50_000_000
_CHUNK = 1 << 20            # bytes of NASDAQ-framed messages per chunk (about 30,000 messages)


def _symbol_name(i: int) -> bytes:
    """Well-known names first, then S0016, S0017, ... (8 bytes, space padded)."""
    return (DEFAULT_SYMBOLS[i] if i < len(DEFAULT_SYMBOLS) else f"S{i:04d}").encode().ljust(8)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low:,}..{high:,}, not {value:,}")
    return value


def _new_day(n_messages: int, symbols: int, seed: int, zipf: float, max_live_orders: int | None) -> MarketDay:
    """Check the arguments (clear errors) and set up the day's native state."""
    _check_int("symbols", symbols, 1, 65_535)   # the stock locate is 16 bits
    _check_int("n_messages", n_messages, min_messages(symbols), 1 << 40)
    _check_int("seed", seed, 0, (1 << 64) - 1)
    if isinstance(zipf, bool) or not isinstance(zipf, (int, float)) or not 0 <= zipf <= 10 or math.isnan(zipf):
        raise ValueError(f"zipf must be a number in 0..10, not {zipf!r}")
    if max_live_orders is not None:
        _check_int("max_live_orders", max_live_orders, 64, 1 << 31)
    names = b"".join(_symbol_name(i) for i in range(symbols))
    return MarketDay(symbols, n_messages, seed, float(zipf), max_live_orders or 0, names)


def _chunks(day: MarketDay, stats: dict[str, Any] | None) -> Iterator[bytes]:
    while chunk := day.chunk(_CHUNK):
        yield chunk
    if stats is not None:
        stats.update(day.stats())


def market_chunks(n_messages: int = MARKET_MESSAGES, symbols: int = MARKET_SYMBOLS, seed: int = 1,
                  zipf: float = 1.0, max_live_orders: int | None = None,
                  stats: dict[str, Any] | None = None) -> Iterator[bytes]:
    """The day of :func:`generate_market_messages` as NASDAQ-framed chunks
    (u16 big-endian length + message, about 1 MiB each): the fast path.
    Arguments are checked when called, not when first iterated."""
    return _chunks(_new_day(n_messages, symbols, seed, zipf, max_live_orders), stats)


def generate_market_messages(n_messages: int = MARKET_MESSAGES, symbols: int = MARKET_SYMBOLS, seed: int = 1,
                             zipf: float = 1.0, max_live_orders: int | None = None,
                             stats: dict[str, Any] | None = None) -> Iterator[bytes]:
    """Yield a full-market day of ``n_messages`` encoded ITCH 5.0 messages
    (deterministic for a seed). ``stats``, if given, receives when the day
    ends ``peak_live`` and ``live`` (live orders at the peak and at the end),
    ``levels``, ``state_bytes`` (the native state's size) and ``by_type``.
    Arguments are checked when called."""
    return _split(market_chunks(n_messages, symbols, seed, zipf, max_live_orders, stats))


def _split(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield from split_framed(chunk)


def _frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """MoldUDP64 frames of the chunks: what ``frames_for`` makes of their messages."""
    packer = MoldPacker(udp_frame(b"", ident=0), DEFAULT_SESSION, DAY_EPOCH_NS)
    for chunk in chunks:
        yield from packer.frames(chunk)
    yield from packer.frames(b"", end=True)


def generate_market(path: str | Path, n_messages: int = MARKET_MESSAGES, symbols: int = MARKET_SYMBOLS,
                    seed: int = 1, fmt: str | None = None, **options: Any) -> int:
    """Write a full-market day to ``path`` (NASDAQ file framing, or MoldUDP64
    in pcap/pcapng, from ``fmt`` or the name; ``.gz`` compresses), streaming
    it chunk by chunk. Returns messages. ``options``: ``zipf``,
    ``max_live_orders``, ``stats`` of :func:`generate_market_messages`."""
    p = str(path)
    compress = p.endswith(".gz")
    base = p[:-3] if compress else p
    fmt = fmt or ("pcapng" if base.endswith(".pcapng") else "pcap" if base.endswith(".pcap") else "nasdaq")
    writers = {"pcap": write_pcap, "pcapng": write_pcapng}
    if fmt != "nasdaq" and fmt not in writers:
        raise ValueError(f"unknown format {fmt!r} (nasdaq, pcap, pcapng)")
    chunks = market_chunks(n_messages, symbols, seed, **options)
    if fmt != "nasdaq":
        writers[fmt](path, _frames(chunks), compress=compress)
        return n_messages
    with (gzip.open if compress else open)(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    return n_messages
