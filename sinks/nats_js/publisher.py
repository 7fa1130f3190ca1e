"""The publisher thread: drains the event ring into JetStream.

Runs its own asyncio loop (nats-py) in one thread, the ring's only consumer.
Each round pops up to ``batch_events`` records, cuts the batch after the
last record flagged LAST (the rest waits for the next round, so a feed
message's events never straddle two NATS messages), groups it by subject and
publishes one message per subject without waiting: acks come back on one
inbox (``<inbox>.<n>``) and are awaited only when ``ack_window`` messages
are outstanding. Un-acked messages are kept and re-sent with the same
``Nats-Msg-Id`` after ``ack_timeout_s`` or a reconnect (the stream drops
duplicates). The records also go into shadow books (rxfeed.event_books):
every ``snapshot_every_s`` the publisher waits for all acks, then writes the
changed symbols' books to the key-value bucket stamped with the last acked
stream sequence, which they include exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxfeed.events import EVENT_DTYPE, FLAG_LAST, FLAG_SUSPECT, EventKind, LossReason, as_kind, make_events

from . import wire

#: with ``stamp_headers``: wall-clock ns when the message was first published
HEADER_SENT_NS = "Rxfeed-Sent-Ns"


@dataclass
class PublisherStats:
    """Counters of one publisher, read by any thread (plain ints: each written by
    the publisher only; ``loss_unreported`` and the first of ``errors`` by the
    sink's close(), in the caller's thread)."""

    published_messages: int = 0
    published_events: int = 0
    acked_messages: int = 0
    acked_events: int = 0
    duplicates: int = 0
    resent_messages: int = 0
    publish_errors: int = 0
    unpublished_events: int = 0
    stream_lost_messages: int = 0
    snapshots: int = 0
    snapshot_rounds: int = 0
    snapshot_errors: int = 0
    last_seq: int = 0
    reconnects: int = 0
    disconnects: int = 0
    connected: bool = False
    failed: bool = False
    loss_unreported: bool = False  # the run's last drops could not be written as a LOSS event (close)
    errors: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    subject: str
    payload: bytes
    headers: dict[str, str]
    events: int
    sent: float
    retries: int = 0
    first_refused: float = 0.0
    in_flight: bool = False
    attempt: int = 0
    waiter: Any = None  # a future while a re-send is awaited alone


#: JetStream's error code for a Nats-Expected-Last-Sequence that does not match
WRONG_LAST_SEQUENCE = 10071


class Publisher:
    """One thread publishing ``ring``'s records for ``session`` (see the module doc)."""

    def __init__(self, config: Any, ring: Any, session: wire.Session) -> None:
        from rxfeed.event_books import EventBooks

        self.config = config
        self.ring = ring
        self.session = session
        self.stats = PublisherStats()
        self.shadow = EventBooks()
        self._unsaved: set[tuple[int, int]] = set()  # (venue, symbol) books no round has written since they changed
        self._names: dict[int, str] = {}
        self._pending: dict[int, _Pending] = {}
        self._next_no = 0
        self._base_seq = 0       # the stream's last sequence when the session began
        self._broken = False     # something needs re-sending (see _repair)
        self._next_repair = 0.0  # not before (a leader election takes a while: no busy re-sending)
        self._js: Any = None
        self._loss_records: list[tuple[int, int]] = []  # (first, count) of stream sequences lost
        self._carry = np.empty(0, dtype=EVENT_DTYPE)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._acked = asyncio.Event()
        self._thread = threading.Thread(target=self._thread_main, name="rxfeed-nats-publisher", daemon=True)
        self.on_failure: Any = None

    # ---- life cycle (caller's thread) ----

    def start(self, timeout: float) -> None:
        """Start the thread; return once connected with the stream and bucket
        in place, or raise ``ConnectionError`` saying why."""
        self._thread.start()
        if not self._ready.wait(timeout):
            self._stop.set()
            raise ConnectionError(f"no NATS server answered at {','.join(self.config.servers)} within {timeout:g} s")
        if self._failed is not None:
            raise ConnectionError(str(self._failed)) from self._failed

    def stop(self, timeout: float) -> None:
        """Publish what is left in the ring, wait for the acks (up to
        ``timeout``), write the final snapshots, close the connection."""
        self._stop.set()
        self._thread.join(timeout + 10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the thread ----

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the loop's end: recorded, reported by the sink
            self._failed = exc
            self.stats.failed = True
            self.stats.errors.append(f"publisher stopped: {type(exc).__name__}: {exc}")
            self.stats.unpublished_events += sum(p.events for p in self._pending.values())
            if self.on_failure:
                self.on_failure()
        finally:
            self._ready.set()

    async def _main(self) -> None:
        import nats

        cfg = self.config
        self._acked = asyncio.Event()
        nc = await nats.connect(servers=list(cfg.servers), connect_timeout=cfg.connect_timeout_s,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.25, allow_reconnect=True,
                                disconnected_cb=self._on_disconnect, reconnected_cb=self._on_reconnect,
                                error_cb=self._on_error, name=f"rxfeed-{self.session.venue}")
        try:
            js = self._js = nc.jetstream()
            kv = await wire.retrying(lambda: self._set_up(js), cfg.ready_timeout_s)
            self._base_seq = (await wire.retrying(lambda: js.stream_info(self.session.stream), cfg.ready_timeout_s)).state.last_seq
            inbox = nc.new_inbox()
            await nc.subscribe(inbox + ".*.*", cb=self._on_ack)
            self.stats.connected = True
            self._ready.set()
            await self._publish_loop(nc, inbox, kv)
        finally:
            await nc.close()
            self.stats.connected = False

    async def _set_up(self, js: Any) -> Any:
        """The stream and the bucket in place, the session record written; the bucket."""
        cfg = self.config
        await self._ensure_stream(js)
        kv = await js.create_key_value(bucket=cfg.bucket, history=1, replicas=cfg.replicas)
        await self._forget_previous_session(kv)
        await kv.put(wire.snapshot_key(self.session.venue, wire.SESSION_KEY), self.session.to_bytes())
        return kv

    async def _forget_previous_session(self, kv: Any) -> None:
        """Delete the venue's snapshots of an earlier session: a new session's books start empty."""
        import nats.js.errors

        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return
        prefix = self.session.venue + "."
        await asyncio.gather(*(kv.delete(k) for k in keys if k.startswith(prefix)))

    async def _ensure_stream(self, js: Any) -> None:
        import nats.js.errors
        from nats.js.api import StreamConfig

        cfg = self.config
        subjects = [f"{self.session.prefix}.{self.session.venue}.>"]
        sc = StreamConfig(name=self.session.stream, subjects=subjects, num_replicas=cfg.replicas,
                          max_age=cfg.max_age_s or None, max_bytes=cfg.max_bytes or None,
                          max_msgs=cfg.max_msgs or None, duplicate_window=cfg.duplicate_window_s)
        try:
            info = await js.stream_info(self.session.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(sc)
            return
        if not set(subjects) <= set(info.config.subjects or []):
            sc.subjects = sorted(set(info.config.subjects or []) | set(subjects))
        await js.update_stream(sc)

    async def _publish_loop(self, nc: Any, inbox: str, kv: Any) -> None:
        cfg = self.config
        next_snapshot = time.monotonic() + cfg.snapshot_every_s
        while True:
            batch = self._next_batch(final=self._stop.is_set())
            if self._loss_records:
                batch = np.concatenate([self._loss_batch(), batch])
            if len(batch):
                await self._publish(nc, inbox, batch)
                self.shadow.apply(batch)
            elif self._stop.is_set() and not self.ring.stats()["waiting"] and not len(self._carry):
                break
            else:
                await asyncio.sleep(0.0005)
            await self._repair(nc, inbox)
            if cfg.snapshot_every_s and time.monotonic() >= next_snapshot:
                await self._snapshot(kv, cfg.ack_timeout_s)
                next_snapshot = time.monotonic() + cfg.snapshot_every_s
        await self._drain(nc, inbox, cfg.close_timeout_s)
        await self._snapshot(kv, cfg.close_timeout_s)
        ended = dataclasses.replace(self.session, ended_seq=max(1, self.stats.last_seq))
        await wire.retrying(lambda: kv.put(wire.snapshot_key(ended.venue, wire.SESSION_KEY), ended.to_bytes()),
                            cfg.ready_timeout_s)
        lost = sum(p.events for p in self._pending.values())
        self.stats.unpublished_events += lost
        if lost:
            self.stats.errors.append(f"{len(self._pending)} messages ({lost} events) not acked within "
                                     f"{cfg.close_timeout_s:g} s of the end")

    def _next_batch(self, final: bool) -> np.ndarray:
        """The next records to publish: popped, after the carry, cut after the
        last LAST record (everything when ``final``)."""
        got = self.ring.pop(self.config.batch_events)
        batch = np.concatenate([self._carry, got]) if len(self._carry) else got
        if final or not len(batch):
            self._carry = batch[:0]
            return batch
        ends = np.flatnonzero(batch["flags"] & FLAG_LAST)
        cut = int(ends[-1]) + 1 if len(ends) else 0
        self._carry = batch[cut:]
        if len(self._carry) > 4 * self.config.batch_events:  # no LAST for this long: publish anyway
            cut, self._carry = len(batch), batch[:0]
        return batch[:cut]

    def _learn_names(self, batch: np.ndarray) -> None:
        sym = batch[batch["kind"] == EventKind.SYMBOL]
        if len(sym):
            for rec in as_kind(sym, EventKind.SYMBOL):
                self._names[int(rec["symbol"])] = rec["name"].decode("ascii", "replace").strip(" \0")

    async def _publish(self, nc: Any, inbox: str, batch: np.ndarray) -> None:
        """One message per subject; message n expects the stream to end at
        ``base + n`` (it is the stream's only writer): a message stored out of
        order is refused by the server instead."""
        self._learn_names(batch)
        s = self.session
        for kind_class, sym, records in wire.group_by_subject(batch):
            subj = wire.subject(s.prefix, s.venue, wire.KIND_TOKENS[kind_class],
                                wire.symbol_token(sym, self._names.get(sym)))
            n = self._next_no
            self._next_no += 1
            headers = {"Nats-Msg-Id": f"{s.session}:{n}", "Nats-Expected-Last-Sequence": str(self._base_seq + n),
                       wire.HEADER_SESSION: s.session, wire.HEADER_EVENTS: str(len(records))}
            if self.config.stamp_headers:
                headers[HEADER_SENT_NS] = str(time.time_ns())
            p = _Pending(subj, records.tobytes(), headers, len(records), 0.0)
            self._pending[n] = p
            await self._send(nc, inbox, n, p)
            self.stats.published_messages += 1
            self.stats.published_events += len(records)
            if len(self._pending) >= self.config.ack_window:
                await self._wait_acks(self.config.ack_window // 2, self.config.ack_timeout_s)
                await self._repair(nc, inbox)

    async def _send(self, nc: Any, inbox: str, n: int, p: _Pending) -> None:
        p.sent = time.monotonic()
        p.in_flight = True
        p.attempt += 1  # in the reply subject: a late answer to an earlier attempt is not this one's
        try:
            await nc.publish(p.subject, p.payload, reply=f"{inbox}.{n}.{p.attempt}", headers=p.headers)
        except Exception as exc:  # disconnected with a full reconnect buffer: re-sent by _repair
            p.in_flight = False
            self._broken = True
            self._note(f"publish: {type(exc).__name__}: {exc}")

    async def _on_ack(self, msg: Any) -> None:
        _, n_text, attempt = msg.subject.rsplit(".", 2)
        n = int(n_text)
        p = self._pending.get(n)
        if p is None or not p.in_flight or p.attempt != int(attempt):
            return  # a late answer to a message acked already, or to an earlier attempt
        p.in_flight = False
        status = (msg.headers or {}).get("Status")
        try:
            ack = {"error": {"description": f"status {status}"}} if status else json.loads(msg.data)
        except ValueError:
            ack = {"error": {"description": f"unreadable ack {bytes(msg.data[:80])!r}"}}
        if p.waiter is not None:  # a re-send awaited alone (_resend_one) reads its own answer
            if not p.waiter.done():
                p.waiter.set_result(ack)
        elif "error" in ack:
            self._refused(n, p, str(ack["error"].get("description", ack["error"])))
        else:
            self._acked_one(n, p, ack)
        self._acked.set()

    def _acked_one(self, n: int, p: _Pending, ack: dict[str, Any]) -> None:
        self.stats.acked_messages += 1
        self.stats.acked_events += p.events
        self.stats.duplicates += bool(ack.get("duplicate"))
        self.stats.last_seq = max(self.stats.last_seq, int(str(ack.get("seq", 0))))
        del self._pending[n]

    def _refused(self, n: int, p: _Pending, why: str) -> None:
        """A refused publish (no stream leader now, or an earlier message is
        missing: wrong last sequence): re-sent in order by :meth:`_repair`,
        given up and counted when still refused ``retry_for_s`` after the first refusal."""
        self.stats.publish_errors += 1
        p.retries += 1
        p.first_refused = p.first_refused or time.monotonic()
        self._broken = True
        if time.monotonic() - p.first_refused <= self.config.retry_for_s:
            return
        self._note(f"JetStream refused {p.subject} for {self.config.retry_for_s:g} s ({p.retries} times, last: "
                   f"{why}): {p.events} events not published")
        self.stats.unpublished_events += p.events
        del self._pending[n]

    async def _wait_acks(self, at_most: int, timeout: float) -> bool:
        """Wait until at most ``at_most`` messages are un-acked; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self._pending) > at_most:
            left = deadline - time.monotonic()
            if left <= 0 or (self._broken and not any(p.in_flight for p in self._pending.values())):
                return False
            self._acked.clear()
            try:
                await asyncio.wait_for(self._acked.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass
        return True

    async def _repair(self, nc: Any, inbox: str) -> None:
        """After a refusal, a lost connection or an ack overdue: once every
        answer still due has come (or is overdue), re-send the pending
        messages in order, one at a time (each answer then says exactly what
        happened to that message), then go back to pipelining."""
        overdue = time.monotonic() - self.config.ack_timeout_s
        if any(p.in_flight and p.sent <= overdue for p in self._pending.values()):
            self._broken = True
        if not self._broken or not nc.is_connected or time.monotonic() < self._next_repair:
            return
        self._next_repair = time.monotonic() + self.config.retry_wait_s
        while any(p.in_flight and p.sent > overdue for p in self._pending.values()):
            self._acked.clear()
            try:
                await asyncio.wait_for(self._acked.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
            overdue = time.monotonic() - self.config.ack_timeout_s
        self._broken = False
        for n in sorted(self._pending):
            if n not in self._pending:
                continue  # found stored while an earlier one was re-sent (_claim_stored)
            if not await self._resend_one(nc, inbox, n):
                self._broken = True  # no answer, or refused again: the next round goes on from here
                return

    async def _resend_one(self, nc: Any, inbox: str, n: int) -> bool:
        """Send pending message ``n`` alone and await its answer: True once it
        is in the stream (stored now, or a duplicate of a copy stored before).
        A wrong-sequence refusal means the stream does not end where ``n``
        expects: :meth:`_rebase`, then the next round sends it again."""
        p = self._pending[n]
        p.waiter = asyncio.get_running_loop().create_future()
        self.stats.resent_messages += 1
        await self._send(nc, inbox, n, p)
        try:
            ack = await asyncio.wait_for(p.waiter, self.config.ack_timeout_s)
        except asyncio.TimeoutError:
            p.in_flight = False
            return False
        finally:
            p.waiter = None
        if "error" not in ack:
            self._acked_one(n, p, ack)
            return True
        if ack["error"].get("err_code") == WRONG_LAST_SEQUENCE:
            await self._rebase(n)
            return n not in self._pending  # found stored: go on; else sent again next round
        self._refused(n, p, str(ack["error"].get("description", ack["error"])))
        return False

    async def _rebase(self, n: int) -> None:
        """Message ``n`` (every message before it acked) was refused: the
        stream does not end at the sequence it expects. Either the stream lost
        messages it had acknowledged (a server killed before writing them
        out: an R1 stream acks before its disk does) or another writer
        appended. Count and report it, publish a LOSS (stream) record for the
        sequences lost, and expect the stream's real end from here on."""
        try:
            info = await self._js.stream_info(self.session.stream)
        except Exception as exc:
            self._note(f"stream info after a wrong-sequence refusal: {type(exc).__name__}: {exc}")
            return
        actual, expected = int(info.state.last_seq), self._base_seq + n
        if actual > expected:
            n, expected = await self._claim_stored(n, expected, actual)
        if actual == expected:
            return
        if actual < expected:
            lost = expected - actual
            self.stats.stream_lost_messages += lost
            self._note(f"the stream lost {lost} acknowledged messages (sequences {actual + 1}..{expected}): "
                       "a server restarted without them on disk; books may be wrong from there (LOSS published)")
            self._loss_records.append((actual + 1, lost))
        else:
            self._note(f"the stream ends at {actual}, not {expected}: another writer appended to it")
        self._base_seq = actual - n
        for m, q in self._pending.items():
            q.headers["Nats-Expected-Last-Sequence"] = str(self._base_seq + m)

    async def _claim_stored(self, n: int, expected: int, actual: int) -> tuple[int, int]:
        """The stream holds more than the messages before ``n``: those after
        ``expected`` that are this publisher's pending ``n``, ``n + 1``...
        (stored, their acks lost: the stream checks the expected sequence
        before the message id) are marked acked. Returns the first pending
        message not found and the sequence it now expects."""
        seq = expected + 1
        while seq <= actual and n in self._pending:
            try:
                msg = await self._js.get_msg(self.session.stream, seq)
                found = (msg.headers or {}).get("Nats-Msg-Id")
            except Exception as exc:
                found = f"unreadable ({type(exc).__name__}: {exc})"
            if found != f"{self.session.session}:{n}":
                self._note(f"stream sequence {seq} holds message {found!r}, not pending message {n}")
                break
            self._acked_one(n, self._pending[n], {"seq": seq, "duplicate": True})
            n, expected, seq = n + 1, seq, seq + 1
        return n, expected

    def _loss_batch(self) -> np.ndarray:
        """LOSS (stream) records for what the stream lost, to publish next."""
        out = make_events(EventKind.LOSS, len(self._loss_records), venue=self.session.venue_id,
                          first=[f for f, _ in self._loss_records], seq=[f for f, _ in self._loss_records],
                          count=[c for _, c in self._loss_records], reason=int(LossReason.STREAM),
                          flags=FLAG_LAST | FLAG_SUSPECT)
        self._loss_records = []
        return out

    async def _drain(self, nc: Any, inbox: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            await self._wait_acks(0, min(self.config.ack_timeout_s, max(0.0, deadline - time.monotonic())))
            await self._repair(nc, inbox)
            if self._pending and not nc.is_connected:
                await asyncio.sleep(0.1)

    async def _snapshot(self, kv: Any, timeout: float) -> None:
        """Every changed symbol's book, stamped with the last acked sequence
        (only once every published message is acked: then it includes them
        all). A round the bucket refuses (a server restarting) is reported
        and skipped: the snapshots already there stay valid, only older."""
        if not await self._wait_acks(0, timeout):
            return  # not stamped exactly: the changed books stay changed for the next round
        try:
            await self._write_snapshots(kv)
        except Exception as exc:
            self.stats.snapshot_errors += 1
            self._note(f"snapshot round skipped: {type(exc).__name__}: {exc}")

    async def _write_snapshots(self, kv: Any) -> None:
        """The books changed since the last round, and those a failed round
        did not write (kept in ``_unsaved`` until a round writes them)."""
        changed = self.shadow.take_changed()
        self._unsaved |= set(zip(changed["venue"].tolist(), changed["symbol"].tolist()))
        puts = []
        for venue_id, sym in sorted(self._unsaved):
            data = wire.encode_snapshot(venue_id, sym, self.stats.last_seq, self.session.session,
                                        self.shadow.snapshot(venue_id, sym))
            key = wire.snapshot_key(self.session.venue, wire.symbol_token(sym, self._names.get(sym)))
            puts.append(kv.put(key, data))
            if len(puts) >= 256:
                await asyncio.gather(*puts)
                puts = []
        if puts:
            await asyncio.gather(*puts)
        self.stats.snapshots += len(self._unsaved)
        self.stats.snapshot_rounds += 1
        self._unsaved = set()

    # ---- connection events ----

    def _note(self, text: str) -> None:
        if len(self.stats.errors) < 100:
            self.stats.errors.append(text)

    async def _on_disconnect(self) -> None:
        self.stats.disconnects += 1

    async def _on_reconnect(self) -> None:
        self.stats.reconnects += 1
        self._broken = True  # answers to what was in flight may never come: re-sent in order
        for p in self._pending.values():
            p.in_flight = False

    async def _on_error(self, exc: Exception) -> None:
        self._note(f"nats: {type(exc).__name__}: {exc}")
