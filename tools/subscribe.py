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

    async def keys() -> list[str]:
        kv = await nc.jetstream().key_value(bucket)
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []

    async def venues() -> list[str]:
        """The venues of the bucket, asked again for a few seconds while there is none (a replica catching up)."""
        deadline = time.monotonic() + 5.0
        while True:
            found = sorted(k[: -len(wire.SESSION_KEY) - 1] for k in await wire.retrying(keys, 30.0)
                           if k.endswith("." + wire.SESSION_KEY))
            if found or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(0.25)

    nc = await nats.connect(servers=servers, connect_timeout=5, max_reconnect_attempts=3)
    try:
        venues = await venues()
    finally:
        await nc.close()
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
                       until_end: bool, seconds: float | None, depth: int | None, as_json: bool) -> int:
    """Rebuild the books, keep them live; print them at the end: caught up
    and ``idle_exit`` seconds without news, the session ended and applied
    whole (``until_end``), ``seconds`` elapsed, or Ctrl-C."""
    async with Books(servers, venue, symbols, bucket=bucket) as books:
        loaded = time.monotonic()
        complete = False
        try:
            if idle_exit or until_end:
                await asyncio.wait_for(books.catch_up(idle_exit, timeout=1e9, until_end=until_end), seconds)
                complete = True
            else:
                await asyncio.wait_for(books.run(), seconds)
        except (KeyboardInterrupt, asyncio.CancelledError, asyncio.TimeoutError):
            pass
        report = {"venue": venue, "complete": complete, "last_seq": books.stats.last_seq, "stats": _stats(books.stats),
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
        for err in report["stats"]["errors"]:
            print(f"rxfeed: warning: {err}", file=sys.stderr)
    if until_end and not complete:
        print("rxfeed: error: stopped before the publisher's session ended and was applied whole", file=sys.stderr)
        return 1
    return 0


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
