"""JetStream sink: the books emit normalised events into a lock-free ring
(C, on the loop thread, never waiting unless asked to), a publisher thread
(:mod:`.publisher`) batches them into a JetStream stream and keeps per-symbol
book snapshots in a key-value bucket. docs/distribution.md describes the
subjects, the snapshots and how a consumer on another host rebuilds a book.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar, Iterable

from pydantic import Field, field_validator

from rxfeed.config import PluginConfig

from . import wire

#: The samples of :meth:`NatsJsSink.metrics_samples`: (name, help, kind).
_METRICS = (
    ("rxfeed_events_offered_total", "events the books offered to the event ring", "counter", "offered"),
    ("rxfeed_events_dropped_total", "events dropped at a full event ring", "counter", "dropped"),
    ("rxfeed_event_ring_waiting", "events waiting in the ring for the publisher", "gauge", "waiting"),
    ("rxfeed_event_ring_capacity", "event ring capacity (events)", "gauge", "capacity"),
    ("rxfeed_event_ring_peak", "most events waiting at once", "gauge", "peak"),
)
_PUBLISHER_METRICS = (
    ("rxfeed_published_messages_total", "NATS messages published", "counter", "published_messages"),
    ("rxfeed_published_events_total", "events published", "counter", "published_events"),
    ("rxfeed_acked_events_total", "events acknowledged by JetStream", "counter", "acked_events"),
    ("rxfeed_publish_resent_total", "messages re-sent after an ack timeout or reconnect", "counter",
     "resent_messages"),
    ("rxfeed_publish_errors_total", "messages JetStream refused", "counter", "publish_errors"),
    ("rxfeed_unpublished_events_total", "events that could not be published", "counter", "unpublished_events"),
    ("rxfeed_snapshots_total", "book snapshots written", "counter", "snapshots"),
    ("rxfeed_nats_reconnects_total", "reconnections to NATS", "counter", "reconnects"),
    ("rxfeed_stream_last_seq", "last stream sequence acknowledged", "gauge", "last_seq"),
    ("rxfeed_loss_unreported", "1 when the run's last drops could not be published as a LOSS event", "gauge",
     "loss_unreported"),
)


class NatsJsConfig(PluginConfig):
    """:ivar servers: NATS URLs (a cluster: several), e.g. ``nats://127.0.0.1:4222``.
    :ivar venue: the venue's subject token (default: the decoder's name).
    :ivar venue_id: the events' venue id (u16).
    :ivar stream: JetStream stream name (default ``RXFEED_<venue>``); it takes
        ``<prefix>.<venue>.>``, and this sink must be its only writer (each
        message states the sequence it expects to follow: a message stored
        out of order after a failure is refused and re-sent in order).
    :ivar prefix: first subject token.
    :ivar bucket: key-value bucket of the book snapshots.
    :ivar replicas: stream and bucket replicas (3 on a 3-node cluster).
    :ivar max_age_s, max_bytes, max_msgs: stream limits (0: none).
    :ivar duplicate_window_s: how long JetStream remembers message ids (re-sends inside it are dropped).
    :ivar ring_events: event ring capacity (a power of two; 64 bytes per event).
    :ivar wait_when_full: the books wait for room in a full ring instead of
        dropping (a replay that backfills a stream; never for a live feed).
    :ivar batch_events: events popped per publishing round.
    :ivar ack_window: messages published without an ack before waiting.
    :ivar ack_timeout_s: a message not acked for this long is re-sent.
    :ivar retry_wait_s: after a refusal (no stream leader: a node down, an
        election), re-send the pending messages at most this often.
    :ivar retry_for_s: a message JetStream still refuses this long after its
        first refusal is given up and counted (``unpublished_events``).
    :ivar snapshot_every_s: period of the book snapshots (0: only at the end).
    :ivar connect_timeout_s, close_timeout_s: connecting; publishing what is left at the end.
    :ivar ready_timeout_s: how long to retry setting up the stream and bucket
        while JetStream is not ready (a cluster just started, a leader election).
    :ivar stamp_headers: add an ``Rxfeed-Sent-Ns`` header (``time.time_ns()``
        when the publisher thread publishes the message) to every message, for
        measuring latency (tests/bench/test_bench_distribution.py).
    """

    servers: tuple[str, ...] = Field(min_length=1)
    venue: str | None = None
    venue_id: int = Field(1, ge=0, le=0xFFFF)
    stream: str | None = None
    prefix: str = "rxfeed"
    bucket: str = "rxfeed-books"
    replicas: int = Field(1, ge=1, le=5)
    max_age_s: float = Field(0.0, ge=0)
    max_bytes: int = Field(0, ge=0)
    max_msgs: int = Field(0, ge=0)
    duplicate_window_s: float = Field(120.0, gt=0)
    ring_events: int = Field(1 << 20, ge=2, le=1 << 30)
    wait_when_full: bool = False
    batch_events: int = Field(65536, ge=1, le=1 << 20)
    ack_window: int = Field(512, ge=1)
    ack_timeout_s: float = Field(2.0, gt=0)
    retry_wait_s: float = Field(0.25, gt=0)
    retry_for_s: float = Field(60.0, ge=0)
    snapshot_every_s: float = Field(1.0, ge=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    ready_timeout_s: float = Field(30.0, gt=0)
    close_timeout_s: float = Field(30.0, gt=0)
    stamp_headers: bool = False

    @field_validator("servers")
    @classmethod
    def _nats_urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        urls = tuple(u.strip() for item in v for u in item.split(",") if u.strip())
        for u in urls:
            if not u.startswith(("nats://", "tls://")):
                raise ValueError(f"{u!r} is not a NATS URL (nats://HOST:PORT)")
        if not urls:
            raise ValueError("no NATS URL")
        return urls

    @field_validator("ring_events")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"ring_events {v} is not a power of two")
        return v

    @field_validator("venue", "stream", "prefix", "bucket")
    @classmethod
    def _one_token(cls, v: str | None) -> str | None:
        if v is not None and wire.token(v) != v:
            raise ValueError(f"{v!r}: letters, digits, '_' and '-' only (one subject token)")
        return v


class NatsJsSink:
    """Publishes the books' events to JetStream; attach before the run, close after."""

    name = "nats_js"
    Config = NatsJsConfig
    #: decoders whose books emit events
    decoders: ClassVar[frozenset[str]] = frozenset({"itch50", "iex"})

    def __init__(self, config: NatsJsConfig) -> None:
        from rxfeed.events import EventRing

        self.config = config
        self.ring = EventRing(config.ring_events)
        self.books: Any = None
        self.publisher: Any = None
        self.session: wire.Session | None = None

    def attach(self, decoder: Any, books: Any = None) -> Any:
        """Make the decoder's books emit events (``books``: ones already made
        for it) and connect; returns the books. ``ValueError`` for a decoder
        whose books emit no events, ``ConnectionError`` when NATS does not answer."""
        from .publisher import Publisher

        if books is None:
            if not hasattr(decoder, "make_books"):
                raise ValueError(f"decoder {decoder.name!r} builds no books: nothing to publish")
            books = decoder.make_books()
        if not hasattr(books, "emit_events"):
            raise ValueError(f"the books of decoder {decoder.name!r} do not emit events (it publishes for "
                             f"{', '.join(sorted(self.decoders))})")
        cfg = self.config
        venue = cfg.venue or wire.token(decoder.name)
        self.session = wire.Session(session=os.urandom(8).hex(), venue=venue, venue_id=cfg.venue_id,
                                    stream=cfg.stream or f"RXFEED_{venue}", prefix=cfg.prefix,
                                    started_ns=time.time_ns())
        self.publisher = Publisher(cfg, self.ring, self.session)
        self.publisher.on_failure = books.stop_waiting
        self.publisher.start(cfg.connect_timeout_s + cfg.ready_timeout_s + 10)
        books.emit_events(self.ring, venue=cfg.venue_id, wait=cfg.wait_when_full)
        self.books = books
        return books

    def close(self) -> None:
        """After the run: report pending drops, publish the rest, final snapshots, disconnect."""
        if self.publisher is None:
            return
        self._report_last_drops()
        self.publisher.stop(self.config.close_timeout_s)
        if self.publisher.stats.failed:  # what it could not take from the ring is not published either
            left = self.ring.pop(self.config.ring_events)
            self.publisher.stats.unpublished_events += len(left)
        if self.books is not None:
            self.books.emit_events(None)

    def _report_last_drops(self) -> None:
        """The run's last drops as their LOSS event. The ring may still be
        full when the run ends (that is why they were dropped): wait, as the
        producer, for the publisher to make room, up to ``close_timeout_s``.
        If it never does (it failed, or the time ran out), the missing report
        is an error in the stats, not a silent gap."""
        deadline = time.monotonic() + self.config.close_timeout_s
        while not self.ring.flush_loss():
            if not self.publisher.alive or self.publisher.stats.failed or time.monotonic() > deadline:
                self.publisher.stats.loss_unreported = True  # the caller's thread: the publisher is done with it
                self.publisher.stats.errors.insert(0, "the last dropped events could not be reported as a LOSS "
                                                      "event: the ring stayed full (see ring.dropped)")
                return
            time.sleep(0.001)

    def stats(self) -> dict[str, Any]:
        """Ring and publisher counters (any thread)."""
        out: dict[str, Any] = {"ring": self.ring.stats()}
        if self.publisher is not None:
            st = self.publisher.stats
            out.update({k: v for k, v in st.__dict__.items() if k != "errors"})
            out["pending_messages"] = len(self.publisher._pending)
            out["errors"] = list(st.errors[:20])
            out["session"] = self.session.session if self.session else None
        return out

    def metrics_samples(self) -> Iterable[tuple[str, str, str, dict[str, str], float]]:
        """Prometheus samples (name, help, kind, labels, value) for ``--metrics``."""
        venue = {"venue": self.session.venue if self.session else ""}
        ring = self.ring.stats()
        for name, text, kind, key in _METRICS:
            yield name, text, kind, venue, float(ring[key])
        if self.publisher is None:
            return
        st = self.publisher.stats
        for name, text, kind, key in _PUBLISHER_METRICS:
            yield name, text, kind, venue, float(getattr(st, key))
        yield ("rxfeed_publish_backlog_messages", "messages published and not acked yet", "gauge", venue,
               float(len(self.publisher._pending)))
