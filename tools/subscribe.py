"""``rxfeed subscribe``: books or trades/BBOs from a JetStream stream, on any host."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from rxfeed.remote import Books, RemoteStats, events


async def discover_venue(servers: list[str], bucket: str) -> str:
    """The only venue with a session record in ``bucket``; ValueError when none or several."""
    import nats
    import nats.js.errors

    from rxfeed.sinks.nats_js import wire

    nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=3)
    try:
        kv = await nc.jetstream().key_value(bucket)
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
    finally:
        await nc.close()
    venues = sorted(k[: -len(wire.SESSION_KEY) - 1] for k in keys if k.endswith("." + wire.SESSION_KEY))
    if len(venues) != 1:
        raise ValueError(f"bucket {bucket!r} has {'no venue' if not venues else 'venues ' + ', '.join(venues)}: "
                         "name one with --venue")
    return venues[0]


def _book_report(books: Books, depth: int | None) -> dict[str, Any]:
    out = {}
    for name in sorted(books.symbol_ids()):
        d = books.depth(name, depth)
        if books.symbols is None or name in books.symbols:
            out[name] = {"bids": [list(x) for x in d["bids"]], "asks": [list(x) for x in d["asks"]]}
    return out


def _stats(stats: RemoteStats) -> dict[str, Any]:
    d = dict(stats.__dict__)
    d["errors"] = d["errors"][:20]
    return d


async def follow_books(servers: list[str], venue: str, symbols: list[str] | None, bucket: str, idle_exit: float,
                       seconds: float | None, depth: int | None, as_json: bool) -> int:
    """Rebuild the books, keep them live; print them at the end (``idle_exit``
    seconds without news, ``seconds`` elapsed, or Ctrl-C)."""
    t0 = time.monotonic()
    async with Books(servers, venue, symbols, bucket=bucket) as books:
        loaded = time.monotonic()
        quiet_since = time.monotonic()
        try:
            while seconds is None or time.monotonic() - t0 < seconds:
                if await books.poll(timeout=0.25):
                    quiet_since = time.monotonic()
                elif idle_exit and time.monotonic() - quiet_since >= idle_exit:
                    break
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass
        report = {"venue": venue, "last_seq": books.stats.last_seq, "stats": _stats(books.stats),
                  "seconds": round(time.monotonic() - loaded, 3), "books": _book_report(books, depth)}
    if as_json:
        print(json.dumps(report))
    else:
        for name, d in report["books"].items():
            bid = d["bids"][0] if d["bids"] else None
            ask = d["asks"][0] if d["asks"] else None
            print(f"{name:10} bid {bid} ask {ask} levels {len(d['bids'])}/{len(d['asks'])}")
        print(f"applied {books.stats.events_applied:,} events in {books.stats.messages_applied:,} messages "
              f"up to stream sequence {books.stats.last_seq}; snapshots {books.stats.snapshots_loaded}, "
              f"rejected {books.stats.messages_rejected}", file=sys.stderr)
    return 1 if books.stats.messages_rejected or books.stats.snapshots_rejected else 0


async def follow_events(servers: list[str], venue: str, kinds: list[str], symbols: list[str] | None, bucket: str,
                        from_start: bool, seconds: float | None, count: int | None) -> int:
    """Print each trade / BBO record as a JSON line, for ``seconds`` or ``count`` records."""
    stats = RemoteStats()

    async def consume() -> None:
        n = 0
        async for sym, kind, recs in events(servers, venue, kinds, symbols, from_start=from_start, bucket=bucket,
                                            stats=stats):
            for r in recs:
                print(json.dumps({"symbol": sym, "kind": kind,
                                  **{k: (r[k].decode() if isinstance(r[k], bytes) else int(r[k]))
                                     for k in recs.dtype.names if not k.startswith("_")}}), flush=True)
                n += 1
                if count is not None and n >= count:
                    return

    try:
        await asyncio.wait_for(consume(), seconds)
    except asyncio.TimeoutError:
        pass
    return 1 if stats.messages_rejected else 0
