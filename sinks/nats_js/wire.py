"""What travels on NATS, shared by the publisher and every consumer: subject
names, message headers, the session record and the book snapshot format.

* Subjects: ``<prefix>.<venue>.<kind>.<symbol>``: kind ``book`` (ORDER_*,
  LEVEL), ``bbo``, ``trade``, ``status``, ``loss``, ``symbol``; symbol the
  venue's name of the instrument (characters NATS reserves replaced by
  ``_``), ``id<N>`` before the venue named it, ``_venue`` for venue-wide
  events (symbol id 0).
* A message's payload is whole 64-byte event records (``rxfeed.events``),
  all of one subject, ending at a feed message boundary (the last record of
  every feed message it holds carries ``LAST``): a consumer applies it as
  one change. Headers: ``Rxfeed-Session``, ``Rxfeed-Events`` (records),
  ``Nats-Msg-Id`` (``<session>:<n>``, the server drops a re-sent duplicate).
* Snapshots: the key-value bucket holds per symbol the key
  ``<venue>.<symbol>``: a 64-byte :data:`SNAPSHOT_HEADER` then event records
  (rxfeed.event_books' ``snapshot()``), stamped with the stream sequence it
  includes; ``<venue>._session`` holds the session record (JSON).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import struct
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import numpy as np

from rxfeed.events import EVENT_DTYPE, EVENT_SIZE, EventError, EventKind, events_from_bytes

#: event kind -> subject token
KIND_TOKEN: dict[int, str] = {
    EventKind.ORDER_ADD: "book", EventKind.ORDER_MODIFY: "book", EventKind.ORDER_DELETE: "book",
    EventKind.LEVEL: "book", EventKind.BBO: "bbo", EventKind.TRADE: "trade", EventKind.STATUS: "status",
    EventKind.LOSS: "loss", EventKind.SYMBOL: "symbol",
}
KIND_TOKENS = ("book", "bbo", "trade", "status", "loss", "symbol")
#: token number per kind (index into KIND_TOKENS), for grouping records with numpy
KIND_CLASS = np.zeros(256, dtype=np.uint8)
for _kind, _token in KIND_TOKEN.items():
    KIND_CLASS[int(_kind)] = KIND_TOKENS.index(_token)

VENUE_WIDE = "_venue"
SESSION_KEY = "_session"
HEADER_SESSION = "Rxfeed-Session"
HEADER_EVENTS = "Rxfeed-Events"

#: magic, format version, venue id, symbol id, stream sequence included,
#: records that follow, session (16 bytes, NUL padded), reserved
SNAPSHOT_HEADER = struct.Struct("<8sHHIQQ16s16x")
SNAPSHOT_MAGIC = b"RXFSNAP1"
SNAPSHOT_VERSION = 1
assert SNAPSHOT_HEADER.size == 64

_RESERVED = re.compile(r"[^A-Za-z0-9_\-]")


def token(text: str) -> str:
    """``text`` as one subject token: letters, digits, ``_`` and ``-`` kept,
    anything else (spaces, ``.``, ``*``, ``>``) ``_``; never empty."""
    return _RESERVED.sub("_", text.strip()) or "_"


def symbol_token(symbol_id: int, name: str | None) -> str:
    """The subject token of an instrument: its name, ``id<N>`` before it has one, ``_venue`` for id 0."""
    if symbol_id == 0:
        return VENUE_WIDE
    return token(name) if name else f"id{symbol_id}"


def subject(prefix: str, venue: str, kind: str, sym: str) -> str:
    return f"{prefix}.{venue}.{kind}.{sym}"


def snapshot_key(venue: str, sym: str) -> str:
    return f"{venue}.{sym}"


@dataclass(frozen=True)
class Session:
    """One publisher run: its id, venue, stream and what it publishes under."""

    session: str
    venue: str
    venue_id: int
    stream: str
    prefix: str
    started_ns: int
    #: > 0 once the publisher has ended: the stream sequence of its last message
    ended_seq: int = 0

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Session:
        try:
            raw = json.loads(data)
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw or k != "ended_seq"})
        except (ValueError, KeyError, TypeError) as exc:
            raise EventError(f"not an rxfeed session record: {exc}") from None


@dataclass(frozen=True)
class Snapshot:
    """A decoded snapshot: its stamp and records."""

    venue_id: int
    symbol_id: int
    stream_seq: int
    session: str
    events: np.ndarray


def encode_snapshot(venue_id: int, symbol_id: int, stream_seq: int, session: str, events: np.ndarray) -> bytes:
    head = SNAPSHOT_HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, venue_id, symbol_id, stream_seq, len(events),
                                session.encode()[:16])
    return head + np.ascontiguousarray(events, dtype=EVENT_DTYPE).tobytes()


def decode_snapshot(data: bytes, venue_id: int, symbol_id: int | None, session: str) -> Snapshot:
    """A snapshot, checked: :class:`~rxfeed.events.EventError` for another
    format, venue, symbol or session, a count that disagrees with the
    length, or records that are not this version's (nothing is applied)."""
    if len(data) < SNAPSHOT_HEADER.size:
        raise EventError(f"snapshot of {len(data)} bytes: shorter than its {SNAPSHOT_HEADER.size}-byte header")
    magic, version, venue, sym, seq, n, sess = SNAPSHOT_HEADER.unpack_from(data)
    if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_VERSION:
        raise EventError(f"not an rxfeed snapshot of version {SNAPSHOT_VERSION} (magic {magic!r}, version {version})")
    got_session = sess.rstrip(b"\0").decode(errors="replace")
    if got_session != session:
        raise EventError(f"snapshot from session {got_session!r}, the stream's session is {session!r}")
    if venue != venue_id or (symbol_id is not None and sym != symbol_id):
        raise EventError(f"snapshot of venue {venue} symbol {sym}, expected venue {venue_id} symbol {symbol_id}")
    body = data[SNAPSHOT_HEADER.size:]
    if len(body) != n * EVENT_SIZE:
        raise EventError(f"snapshot says {n} records but holds {len(body)} bytes")
    events = events_from_bytes(body)
    if len(events) and ((events["venue"] != venue) | (events["symbol"] != sym)).any():
        raise EventError("snapshot holds records of another venue or symbol")
    return Snapshot(venue, sym, seq, got_session, events)


def decode_message(data: bytes, headers: dict[str, str] | None, session: str | None) -> np.ndarray:
    """The records of one published message, checked (whole records, this
    version, known kinds, the session expected when ``session`` is given,
    the record count of its header): :class:`~rxfeed.events.EventError`."""
    h = headers or {}
    if session is not None and h.get(HEADER_SESSION) != session:
        raise EventError(f"message of session {h.get(HEADER_SESSION)!r}, expected {session!r}")
    events = events_from_bytes(data)
    if HEADER_EVENTS in h and h[HEADER_EVENTS] != str(len(events)):
        raise EventError(f"message header says {h[HEADER_EVENTS]} records, payload holds {len(events)}")
    return events


def group_by_subject(events: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """``(kind class, symbol id, records)`` per subject, records in their order (stable)."""
    if not len(events):
        return []
    key = (KIND_CLASS[events["kind"]].astype(np.uint64) << np.uint64(32)) | events["symbol"].astype(np.uint64)
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    bounds = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate(([0], bounds))
    out = []
    for start, idx in zip(starts, np.split(order, bounds)):
        k = int(sorted_keys[start])
        out.append((k >> 32, k & 0xFFFFFFFF, events[idx]))
    return out


def session_record(data: Any) -> Session:
    return Session.from_bytes(bytes(data))


async def retrying(step: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    """``step()``, again while JetStream is not ready (no responders, no stream
    response, timeouts: a server just started, a node down, a leader being
    elected), up to ``timeout`` seconds; then its error."""
    import nats.errors
    import nats.js.errors

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await step()
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError,
                nats.js.errors.NoStreamResponseError, nats.errors.TimeoutError, asyncio.TimeoutError):
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.2)


async def read_session(js: Any, bucket: str, venue: str) -> Session:
    """The venue's session record, read from the bucket's stream leader (a
    direct get may be answered by a replica that is behind, e.g. a node just
    restarted, and show a session that has since ended or been replaced)."""
    msg = await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{snapshot_key(venue, SESSION_KEY)}", direct=False)
    return session_record(msg.data)
