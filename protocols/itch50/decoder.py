"""The itch50 ProtocolDecoder: a thin Python face over the Cython ItchDecoder."""

from __future__ import annotations

from typing import Any

from rxfeed.config import ConfigError
from rxfeed.interfaces import ProtocolDecoder
from rxfeed.native_outputs import NativeOutputs
from rxfeed.recovery import RecoveryConfig, start_recovery

from ._decoder import ItchDecoder
from .config import Itch50Config


class Itch50Decoder(NativeOutputs, ProtocolDecoder[Itch50Config]):
    """MoldUDP64 (datagrams) or NASDAQ-file framing (stream chunks) -> ITCH 5.0 records.

    Everything of :class:`ItchDecoder` is reachable as ``self.native`` and
    forwarded: ``subscribe``, ``subscribe_batches``, ``take_batches``,
    ``add_handlers``, ``on_event``, ``events``.
    """

    name = "itch50"
    Config = Itch50Config
    description = "NASDAQ TotalView-ITCH 5.0 (all 23 message types), Cython"
    capabilities = frozenset({"messages", "events", "batches", "handlers", "books", "arrivals", "end_of_session",
                              "sequenced"})

    def __init__(self, config: Itch50Config | None = None) -> None:
        super().__init__(config or Itch50Config())
        c = self.config
        self.native = ItchDecoder(c.initial_sequence, c.batch_size, c.stop_at_end_of_session,
                                  c.max_sequence_jump, c.sequenced)
        self._start_recovery(c.recovery)

    def _start_recovery(self, r: RecoveryConfig) -> None:
        """The sequencer and the re-request client, as configured (nothing when off)."""
        if not r.enabled:
            return
        if not self.config.sequenced:
            raise ConfigError("decoder.itch50.recovery: recovery needs sequenced delivery (not dissect mode)")
        start_recovery(self.native, r, "decoder.itch50.recovery", None)

    def decoder_capsule(self) -> Any:
        return self.native.capsule()

    @staticmethod
    def conformance_samples() -> tuple[list[bytes], int]:
        """For the conformance kit: MoldUDP64 datagrams of 3000 generated messages."""
        from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

        msgs = list(generate_messages(3000, symbols=3, seed=9))
        return [p for _, p in moldudp64_datagrams(msgs)], len(msgs)

    def counters(self) -> dict[str, Any]:
        c: dict[str, Any] = self.native.counters()
        if c.get("recovery") is not None:
            c["recovery"]["lost"] = [{"session": e["session"], "first": e["first"], "count": e["count"]}
                                     for e in self.native.events if e["kind"] == "gap"][:100]
        c["warnings"] = self._warnings(c)
        return c

    @staticmethod
    def _warnings(c: dict[str, Any]) -> list[str]:
        """What a reader of the summary must not miss, in words."""
        out = []
        if c.get("implied_lengths"):
            out.append(f"{c['implied_lengths']} messages had a zero length prefix; their lengths were "
                       "taken from the ITCH 5.0 type table")
        if c.get("lost_in_malformed"):
            out.append(f"{c['lost_in_malformed']} sequenced messages were lost inside malformed packets")
        if c["errors"].get("stream_unrecoverable"):
            out.append(f"the byte stream could not be framed after message {c['messages']} (a zero length "
                       "prefix before an unknown type): the rest of the stream was not decoded")
        rec = c.get("recovery") or {}
        if rec.get("lost_ranges"):
            out.append(f"{rec['lost_messages']} messages in {rec['lost_ranges']} ranges could not be recovered "
                       "and were declared lost (recovery.lost); books built from this run are suspect")
        dropped = c.get("implausible_messages", 0) + c.get("overflow_messages", 0)
        if dropped:
            out.append(f"{dropped} messages were dropped with datagrams whose sequence numbers were implausible "
                       "(errors.implausible_sequence, errors.sequence_overflow)")
        return out

    def make_books(self, **options: Any) -> Any:
        """Full-depth books for every symbol (:class:`~rxfeed.protocols.itch50._book.OrderBooks`
        with ``options``), attached to this decoder's C handler table."""
        from ._book import OrderBooks

        books = OrderBooks(**options)
        self.native.add_handlers(books)
        self.native.add_loss_listener(books.mark_lost)
        return books
