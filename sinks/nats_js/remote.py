"""Consumers on any host: books rebuilt from a JetStream stream, and async
iterators of trades and BBOs (``rxfeed.remote``).

:class:`Books` reads the publisher's session record, loads the latest
snapshot of each symbol it follows (checked: format, venue, symbol,
session), then reads the stream from the oldest stamp + 1 (earlier when a
symbol with messages in this session has no snapshot) with one pull
consumer filtered on those symbols' ``book``/``symbol``/``status`` subjects.
A message at or below its symbol's stamp is already in the snapshot and is
skipped; every later one is checked whole (records, session, count) before
any record of it is applied, so a malformed message is rejected, counted
and reported, and the books stay untouched. The consumer is recreated from
the last applied sequence + 1 when the server loses it (a node restart), so
nothing is applied twice or skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxfeed.events import EVENT_DTYPE, EVENT_SIZE, KIND_DTYPES, EventError, EventKind, check_events

from . import wire

BOOK_KINDS = ("book", "symbol", "status")
#: Leader lookups (last / first message of a subject) in flight at once.
LOOKUPS_IN_FLIGHT = 32
#: nats-server lists at most this many subjects in one stream info (it pages the rest).
SUBJECT_LIST_MAX = 100_000
#: JetStream's error code for "no message found".
NO_MESSAGE_FOUND = 10037


@dataclass
class RemoteStats:
    """What a consumer did."""

    snapshots_loaded: int = 0
    snapshots_rejected: int = 0
    messages_applied: int = 0
    events_applied: int = 0
    messages_skipped: int = 0     # at or below their symbol's snapshot stamp
    messages_rejected: int = 0    # malformed or of another session: books untouched
    consumer_restarts: int = 0
    last_seq: int = 0
    fetches: int = 0
    empty_fetches: int = 0
    pending: int = -1             # messages the server still holds for this consumer (last asked; -1 unknown)
    session_ended: bool = False   # the publisher ended its session
    errors: list[str] = field(default_factory=list)


def _parse_servers(servers: str | Iterable[str]) -> list[str]:
    items = [servers] if isinstance(servers, str) else list(servers)
    return [u.strip() for item in items for u in item.split(",") if u.strip()]


class _StreamReader:
    """One pull consumer on ``subjects`` from a sequence, recreated from the
    last sequence handed out when the server loses it."""

    def __init__(self, js: Any, stream: str, subjects: list[str], start_seq: int, stats: RemoteStats,
                 start_time_ns: int = 0) -> None:
        self.js, self.stream, self.subjects, self.stats = js, stream, subjects, stats
        self.next_seq = max(1, start_seq)
        self.start_time_ns = start_time_ns
        self.sub: Any = None
        self.checked = time.monotonic()
        self.check_every_s = 2.0
        self.open_failures = 0

    async def _open(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        cfg = ConsumerConfig(filter_subjects=self.subjects, ack_policy=AckPolicy.NONE, inactive_threshold=60.0,
                             mem_storage=True, num_replicas=1)
        if self.start_time_ns and self.next_seq <= 1:
            from datetime import datetime, timezone

            cfg.deliver_policy = DeliverPolicy.BY_START_TIME
            cfg.opt_start_time = datetime.fromtimestamp(self.start_time_ns / 1e9, tz=timezone.utc)
        else:
            cfg.deliver_policy, cfg.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, self.next_seq
        self.sub = await self.js.pull_subscribe(self.subjects[0], stream=self.stream, config=cfg)

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        """Up to ``batch`` messages in stream order ([] when none came within ``timeout``)."""
        import nats.errors
        import nats.js.errors

        self.stats.fetches += 1
        try:
            if self.sub is None:
                await self._open()
            # bounded here too: a fetch in flight when the connection moves to another node can wait forever
            fetching = asyncio.ensure_future(self.sub.fetch(batch, timeout=timeout))
            done, _ = await asyncio.wait({fetching}, timeout=timeout + 2.0)
            if not done:
                fetching.cancel()
                raise nats.errors.Error("fetch did not return (the connection moved?)")
            msgs = fetching.result()
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            self.stats.empty_fetches += 1
            if self.sub is None:  # the consumer could not be made yet (a node down, an election): again later
                self.open_failures += 1
                await asyncio.sleep(0.2)
            elif time.monotonic() - self.checked >= self.check_every_s:
                await self._info()  # nothing came for a while: is the consumer still there?
            return []
        except (nats.js.errors.Error, nats.errors.Error) as exc:
            self.stats.consumer_restarts += 1
            if len(self.stats.errors) < 100:
                self.stats.errors.append(f"consumer lost ({type(exc).__name__}: {exc}); reopened at {self.next_seq}")
            self.sub = None
            await asyncio.sleep(0.2)
            return []
        out = []
        for m in msgs:
            seq = m.metadata.sequence.stream
            if seq < self.next_seq:
                continue  # delivered again after a restart: handed out already
            self.next_seq = seq + 1
            out.append(m)
        return out

    async def _info(self) -> Any:
        """The consumer's info, or None when the server lost it (its node
        went down: an ephemeral consumer lives on one node); then it is
        opened again from the next sequence on the next fetch."""
        self.checked = time.monotonic()
        if self.sub is None:
            return None
        try:
            return await self.sub.consumer_info()
        except Exception as exc:
            self.stats.consumer_restarts += 1
            if len(self.stats.errors) < 100:
                self.stats.errors.append(f"consumer gone ({type(exc).__name__}: {exc}); reopened at {self.next_seq}")
            self.sub = None
            return None

    def reopen(self, why: str) -> None:
        """Drop the consumer; the next fetch opens a new one from the next sequence."""
        self.stats.consumer_restarts += 1
        if len(self.stats.errors) < 100:
            self.stats.errors.append(f"consumer reopened at {self.next_seq}: {why}")
        self.sub = None

    async def caught_up(self) -> bool:
        """True when the server has nothing more for this reader now."""
        info = await self._info()
        self.stats.pending = -1 if info is None else int(info.num_pending)
        return info is not None and info.num_pending == 0

    async def close(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:
                pass


class Books:
    """A venue's books rebuilt on this host from a JetStream stream and kept live.

    ``async with Books("nats://h:4222", "itch50", symbols=["AAPL"]) as books:``
    then ``await books.catch_up()`` and ``books.depth("AAPL")``.

    :param servers: NATS URLs (a list, or one comma-separated string).
    :param venue: the publisher's venue token.
    :param symbols: names to follow (None: every symbol).
    :param ready_timeout_s: how long to retry while JetStream is not ready
        (a node restarting, a leader election) before giving up.
    """

    def __init__(self, servers: str | Iterable[str], venue: str, symbols: Iterable[str] | None = None, *,
                 bucket: str = "rxfeed-books", ready_timeout_s: float = 30.0) -> None:
        from rxfeed.event_books import EventBooks

        self.servers = _parse_servers(servers)
        self.venue, self.bucket = venue, bucket
        self.stream, self.prefix = "", ""  # from the session record
        self.symbols = None if symbols is None else [wire.token(s) for s in symbols]
        self.books = EventBooks()
        self.ready_timeout_s = ready_timeout_s
        self.stats = RemoteStats()
        self.session: wire.Session | None = None
        self._stamps: dict[str, int] = {}
        self._ids: dict[str, int] = {}
        self._nc: Any = None
        self._reader: _StreamReader | None = None
        self._behind_leader = False

    async def __aenter__(self) -> Books:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect, load the snapshots, open the stream reader (no records applied yet)."""
        import nats

        self._nc = await nats.connect(servers=self.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
        js = self._nc.jetstream()
        await wire.retrying(lambda: self._load(js), self.ready_timeout_s)
        assert self.session is not None
        start = 1
        if self._start_after_snapshots():
            start = min(self._stamps.values()) + 1
            unsnapped = await wire.retrying(lambda: self._first_seq_without_snapshot(js), self.ready_timeout_s)
            start = min(start, unsnapped or start)
        self._reader = _StreamReader(js, self.stream, self._subjects(), start, self.stats,
                                     start_time_ns=self.session.started_ns if start == 1 else 0)

    async def _load(self, js: Any) -> None:
        """The session record and the snapshots (from scratch: a retry starts over)."""
        from rxfeed.event_books import EventBooks

        self.books, self._stamps, self._ids = EventBooks(), {}, {}
        self.stats.snapshots_loaded = self.stats.snapshots_rejected = 0
        kv = await js.key_value(self.bucket)
        self.session = await wire.read_session(js, self.bucket, self.venue)
        self.stream, self.prefix = self.session.stream, self.session.prefix
        await self._load_snapshots(kv)

    def _start_after_snapshots(self) -> bool:
        """Whether reading can start after the snapshots: every snapshot was
        sound and (following chosen symbols) each of them has one; otherwise
        read from the session's start. (Following every symbol, one with no
        snapshot normally changed only after the publisher's last snapshot
        round; :meth:`_first_seq_without_snapshot` covers the others.)"""
        if not self._stamps or self.stats.snapshots_rejected:
            return False
        return self.symbols is None or all(s in self._stamps for s in self.symbols)

    async def _first_seq_without_snapshot(self, js: Any) -> int | None:
        """Following every symbol: where the messages of this session's
        symbols that have no snapshot loaded start (None: there are none; 1:
        from the session's start). A symbol normally has none only when it
        changed after the publisher's last snapshot round, but a round the
        bucket refused, or a key listing read from a node that is behind, can
        leave one out: reading must then start where its messages start, not
        after the other symbols' stamps. Asked of the stream's leader: the
        book subjects in the stream (every session's), the last message of
        each (a subject whose last message is an earlier session's has none
        of this one), the first message of the others (one of an earlier
        session: this session's first is not known, so from its start)."""
        if self.symbols is not None:  # _start_after_snapshots: each followed symbol has one
            return None
        subjects: list[str] = []
        for kind in BOOK_KINDS:
            info = await js.stream_info(self.stream, subjects_filter=wire.subject(self.prefix, self.venue, kind, "*"))
            listed = list((info.state.subjects or {}))
            if len(listed) >= SUBJECT_LIST_MAX:
                return 1  # the leader pages longer lists, which this client cannot ask for: from the start
            subjects += [s for s in listed if s.rsplit(".", 1)[-1] not in self._stamps]
        lookups = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

        async def first_of(subject: str) -> int | None:
            async with lookups:
                if await self._session_msg(js, subject, last=True) is None:
                    return None
                return await self._session_msg(js, subject, last=False) or 1

        firsts = [f for f in await asyncio.gather(*(first_of(s) for s in subjects)) if f is not None]
        return min(firsts) if firsts else None

    async def _session_msg(self, js: Any, subject: str, last: bool) -> int | None:
        """The stream sequence of the last (or first) message on ``subject``,
        from the leader, if it is this session's; None when there is none or
        it belongs to another session."""
        import nats.js.errors

        try:
            if last:
                msg = await js.get_last_msg(self.stream, subject, direct=False)
            else:
                msg = await js.get_msg(self.stream, seq=1, subject=subject, next=True)
        except nats.js.errors.NotFoundError as exc:
            if getattr(exc, "err_code", None) == NO_MESSAGE_FOUND:
                return None
            raise
        assert self.session is not None
        return int(msg.seq) if (msg.headers or {}).get(wire.HEADER_SESSION) == self.session.session else None

    def _subjects(self) -> list[str]:
        tokens = self.symbols or [">"]
        return [wire.subject(self.prefix, self.venue, kind, t) for kind in BOOK_KINDS for t in tokens]

    async def _load_snapshots(self, kv: Any) -> None:
        import nats.js.errors

        if self.symbols is None:
            try:
                keys = await kv.keys()
            except nats.js.errors.NoKeysError:
                keys = []
            tokens = [k.split(".", 1)[1] for k in keys if k.startswith(self.venue + ".")
                      and not k.endswith("." + wire.SESSION_KEY)]
        else:
            tokens = list(self.symbols)
        for tok in tokens:
            try:
                entry = await kv.get(wire.snapshot_key(self.venue, tok))
            except nats.js.errors.KeyNotFoundError:
                continue
            self._load_one(tok, entry.value)

    def _load_one(self, tok: str, data: bytes) -> None:
        assert self.session is not None
        try:
            snap = wire.decode_snapshot(data, self.session.venue_id, None, self.session.session)
            self.books.load_snapshot(snap.venue_id, snap.symbol_id, snap.events)
        except EventError as exc:
            self.stats.snapshots_rejected += 1
            self.stats.errors.append(f"snapshot {self.venue}.{tok} rejected: {exc}")
            return
        self._stamps[tok] = snap.stream_seq
        self._ids[tok] = snap.symbol_id
        self.stats.snapshots_loaded += 1

    def apply_message(self, seq: int, subject: str, data: bytes, headers: dict[str, str] | None) -> bool:
        """Apply one stream message (checked whole first); False when skipped or rejected."""
        assert self.session is not None
        tok = subject.rsplit(".", 1)[-1]
        if seq <= self._stamps.get(tok, 0):
            self.stats.messages_skipped += 1
            return False
        try:
            events = wire.decode_message(data, headers, self.session.session)
            if ((events["venue"] != self.session.venue_id)).any():
                raise EventError("records of another venue")
            self.books.apply(events)
        except EventError as exc:
            self.stats.messages_rejected += 1
            if len(self.stats.errors) < 100:
                self.stats.errors.append(f"message {seq} on {subject} rejected: {exc}")
            return False
        self.stats.messages_applied += 1
        self.stats.events_applied += len(events)
        self.stats.last_seq = seq
        return True

    async def poll(self, batch: int = 1024, timeout: float = 0.5) -> int:
        """Apply what the stream has next (up to ``batch`` messages); how many were read."""
        assert self._reader is not None, "start() first"
        msgs = await self._reader.fetch(batch, timeout)
        if msgs:
            self.apply_messages([(m.metadata.sequence.stream, m.subject, m.data, m.headers) for m in msgs])
        return len(msgs)

    def apply_messages(self, msgs: list[tuple[int, str, bytes, dict[str, str] | None]]) -> None:
        """Apply stream messages ``(seq, subject, data, headers)`` in order: the
        cheap checks per message (stamp, session, length, count), then the
        records of every message that passed checked and applied as one batch
        (one numpy check, one C call); if that batch has a bad record, message
        by message instead, so only the bad message is rejected."""
        assert self.session is not None
        ready = []
        for seq, subject, data, headers in msgs:
            if seq <= self._stamps.get(subject.rsplit(".", 1)[-1], 0):
                self.stats.messages_skipped += 1
                continue
            h = headers or {}
            if (h.get(wire.HEADER_SESSION) != self.session.session or len(data) % EVENT_SIZE
                    or h.get(wire.HEADER_EVENTS, str(len(data) // EVENT_SIZE)) != str(len(data) // EVENT_SIZE)):
                self.apply_message(seq, subject, data, headers)  # rejected there, with the reason
                continue
            ready.append((seq, subject, data, headers))
        if not ready:
            return
        events = np.frombuffer(b"".join(r[2] for r in ready), dtype=EVENT_DTYPE)
        try:
            check_events(events)
            if (events["venue"] != self.session.venue_id).any():
                raise EventError("records of another venue")
        except EventError:
            for r in ready:
                self.apply_message(*r)
            return
        self.books.apply(events)
        self.stats.messages_applied += len(ready)
        self.stats.events_applied += len(events)
        self.stats.last_seq = ready[-1][0]

    async def caught_up(self) -> bool:
        """True when everything the stream holds for these books now is applied:
        the reader's consumer has nothing pending, and it has been handed the
        last message of these books' subjects as the stream's leader has it.
        (The consumer lives on one node; on a node whose copy of the stream is
        behind, e.g. just restarted and catching up, it reports nothing
        pending before it has the end: checking only that, a consumer once
        stopped at sequence 13,001 of about 13,200, books not final.)"""
        self._behind_leader = False
        if self._reader is None or not await self._reader.caught_up():
            return False
        last = await self._last_seq_at_leader()
        if last is None:
            return False  # the leader did not answer: not known, asked again next time
        self._behind_leader = self._reader.next_seq - 1 < last
        return not self._behind_leader

    async def _last_seq_at_leader(self) -> int | None:
        """The stream sequence of the last message of this session on these
        books' subjects, read from the stream's leader (0: none; None: not
        answered now). A subject whose last message is an earlier session's
        has none of this session (one writer, an append-only stream)."""
        js = self._nc.jetstream()
        lookups = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

        async def last_of(subject: str) -> int:
            async with lookups:
                return await self._session_msg(js, subject, last=True) or 0

        try:
            return max(await asyncio.gather(*(last_of(s) for s in self._subjects())), default=0)
        except Exception as exc:
            if len(self.stats.errors) < 100:
                self.stats.errors.append(f"last sequence at the stream's leader not read: {type(exc).__name__}: {exc}")
            return None

    async def session_ended(self) -> bool:
        """True once the publisher has ended its session (its last message is in the stream)."""
        assert self._nc is not None and self.session is not None
        js = self._nc.jetstream()

        try:
            now = await wire.retrying(lambda: wire.read_session(js, self.bucket, self.venue), 5.0)
        except Exception as exc:
            if len(self.stats.errors) < 100:
                self.stats.errors.append(f"session record not read: {type(exc).__name__}: {exc} "
                                         f"(connected to {self._nc.connected_url.netloc if self._nc.connected_url else None}, "
                                         f"open failures {self._reader.open_failures if self._reader else 0})")
            return False
        self.stats.session_ended = now.session == self.session.session and now.ended_seq > 0
        return self.stats.session_ended

    async def catch_up(self, idle_s: float = 1.0, timeout: float = 300.0, until_end: bool = False) -> int:
        """Apply until caught up with the stream and nothing new came for
        ``idle_s`` (``until_end``: until the publisher's session has ended and
        everything of it is applied); the last sequence applied. TimeoutError
        after ``timeout`` seconds."""
        assert self._reader is not None, "start() first"
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while True:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not caught up with the stream within {timeout:g} s")
            if await self.poll(timeout=0.25):
                quiet_since = time.monotonic()
                continue
            quiet = time.monotonic() - quiet_since
            if until_end and not await self.session_ended():
                continue
            if not until_end and quiet < idle_s:
                continue
            if await self.caught_up():
                return self.stats.last_seq
            if (self.stats.pending > 0 or self._behind_leader) and quiet >= self._reader.check_every_s:
                why = ("behind the stream's leader" if self._behind_leader
                       else f"{self.stats.pending} messages pending")
                self._reader.reopen(f"{why} but none delivered for {quiet:.1f} s")

    async def run(self) -> None:
        """Keep the books live until cancelled."""
        while True:
            await self.poll()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        if self._nc is not None:
            await self._nc.close()

    # ---- reading the books ----

    def symbol_ids(self) -> dict[str, int]:
        """Names (tokens) -> symbol ids known to the books."""
        vid = self.session.venue_id if self.session else 0
        return {wire.token(name): sym for (v, sym), name in self.books.symbols().items() if v == vid}

    def _id(self, symbol: str) -> tuple[int, int]:
        assert self.session is not None
        ids = self.symbol_ids()
        tok = wire.token(symbol)
        if tok not in ids:
            raise KeyError(f"{symbol!r}: no such symbol in venue {self.venue!r} (known: {len(ids)})")
        return self.session.venue_id, ids[tok]

    def depth(self, symbol: str, n: int | None = None) -> dict[str, list[tuple[int, int, int]]]:
        """{"bids": [(price, qty, orders)...], "asks": [...]} best first."""
        return self.books.depth(*self._id(symbol), n)

    def bbo(self, symbol: str) -> tuple[int, int, int, int]:
        return self.books.bbo(*self._id(symbol))

    def queue(self, symbol: str, side: str, price: int) -> list[tuple[int, int]]:
        return self.books.queue(*self._id(symbol), side, price)


async def events(servers: str | Iterable[str], venue: str, kinds: Iterable[str] = ("trade", "bbo"),
                 symbols: Iterable[str] | None = None, *, from_start: bool = False, bucket: str = "rxfeed-books",
                 stats: RemoteStats | None = None) -> AsyncIterator[tuple[str, str, np.ndarray]]:
    """``(symbol, kind, records)`` per published message, live (``from_start``:
    from the session's first message), records viewed with their kind's
    fields (rxfeed.events.KIND_DTYPES). Malformed messages are skipped and counted in ``stats``."""
    import nats

    stats = stats if stats is not None else RemoteStats()
    nc = await nats.connect(servers=_parse_servers(servers), max_reconnect_attempts=-1, reconnect_time_wait=0.25)
    try:
        js = nc.jetstream()

        session = await wire.retrying(lambda: wire.read_session(js, bucket, venue), 30.0)
        tokens = [wire.token(s) for s in symbols] if symbols is not None else [">"]
        subjects = [wire.subject(session.prefix, venue, k, t) for k in kinds for t in tokens]
        info = await wire.retrying(lambda: js.stream_info(session.stream), 30.0)
        start = 1 if from_start else info.state.last_seq + 1
        reader = _StreamReader(js, session.stream, subjects, start, stats,
                               start_time_ns=session.started_ns if from_start else 0)
        while True:
            for m in await reader.fetch(256, 1.0):
                try:
                    recs = wire.decode_message(m.data, m.headers, session.session)
                except EventError as exc:
                    stats.messages_rejected += 1
                    stats.errors.append(f"message {m.metadata.sequence.stream} on {m.subject} rejected: {exc}")
                    continue
                _, _, kind, sym = m.subject.split(".", 3)
                stats.last_seq = m.metadata.sequence.stream
                yield sym, kind, recs.view(KIND_DTYPES[EventKind(int(recs["kind"][0]))]) if len(recs) else recs
    finally:
        await nc.close()
