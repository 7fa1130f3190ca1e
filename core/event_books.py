"""Order books rebuilt from normalised event records (:mod:`rxfeed.events`):
what a consumer of distributed events (or a publisher, for its snapshots)
keeps. The engine is C (``rxfeed/event_books.h`` on the L3 engine of
``rxfeed/l3book.h``); a batch of records is applied without the GIL and
without Python per record.

Example::

    from rxfeed.event_books import EventBooks
    from rxfeed.events import events_from_bytes

    books = EventBooks()
    books.load_snapshot(venue, symbol, snapshot_bytes)  # a late consumer starts from a snapshot
    books.apply(payload)                                # then every later batch of records
    books.depth(venue, symbol, 5)    # {"bids": [(price, qty, orders), ...], "asks": [...]}
    books.queue(venue, symbol, "B", price)              # [(order_id, qty), ...] in FIFO order

Books are keyed by (venue, symbol) (the records' ``venue`` and ``symbol``);
order ids are unique within a venue. A book is by-order (ORDER_ADD /
ORDER_MODIFY / ORDER_DELETE) or by-level (LEVEL). Records that cannot be
applied (an unknown order id, a duplicate add, a bad side, ...) are counted
(:meth:`EventBooks.counters`) and refused, never fatal; a batch holding a
record of another version or an unknown kind is refused whole
(:class:`~rxfeed.events.EventError`). docs/distribution.md ("Rebuilding books
from events") is the reference.
"""

from __future__ import annotations

from ._event_books import CHANGED_DTYPE, EventBooks

__all__ = ["CHANGED_DTYPE", "EventBooks"]
