"""The iex ProtocolDecoder: a thin Python face over the Cython IexDecoder."""

from __future__ import annotations

from typing import Any

from rxfeed.config import ConfigError
from rxfeed.interfaces import ProtocolDecoder
from rxfeed.native_outputs import NativeOutputs
from rxfeed.recovery import RecoveryConfig, start_recovery

from ._iex_decoder import IexDecoder
from .config import IexConfig


class IexProtocolDecoder(NativeOutputs, ProtocolDecoder[IexConfig]):
    """IEX-TP segments -> IEX TOPS 1.6 / DEEP 1.0 / DEEP+ 1.0 records.

    Everything of :class:`~rxfeed.protocols.iex._iex_decoder.IexDecoder` is
    reachable as ``self.native`` and forwarded: ``subscribe``,
    ``subscribe_batches``, ``take_batches``, ``add_handlers``, ``on_event``,
    ``events``, ``feed``.
    """

    name = "iex"
    Config = IexConfig
    description = "IEX TOPS 1.6, DEEP 1.0, DEEP+ 1.0 over IEX-TP (all message types), Cython"
    capabilities = frozenset({"messages", "events", "batches", "handlers", "books", "arrivals", "end_of_session",
                              "sequenced"})

    def __init__(self, config: IexConfig | None = None) -> None:
        super().__init__(config or IexConfig())
        c = self.config
        channel = c.channel or (1 if c.recovery.enabled else 0)
        self.native = IexDecoder(None if c.feed == "auto" else c.feed, channel, c.initial_sequence,
                                 c.max_sequence_jump, c.batch_size, c.stop_at_end_of_session, c.sequenced)
        self._start_recovery(c.recovery)

    def _start_recovery(self, r: RecoveryConfig) -> None:
        """The sequencer and the gap fill client (at most 1,000 messages per UDP request), as configured."""
        if r.enabled and not self.config.sequenced:
            raise ConfigError("decoder.iex.recovery: recovery needs sequenced delivery (not dissect mode)")
        start_recovery(self.native, r, "decoder.iex.recovery", 1000)

    def decoder_capsule(self) -> Any:
        return self.native.capsule()

    @staticmethod
    def conformance_samples() -> tuple[list[bytes], int]:
        """For the conformance kit: IEX-TP DEEP segments of 3000 generated messages."""
        from rxfeed.tools.iex_generator import iex_messages, iextp_segments

        msgs = list(iex_messages("deep", 3000, 3, 9))
        return [seg for _, seg in iextp_segments(msgs, "deep")], len(msgs)

    def counters(self) -> dict[str, Any]:
        c: dict[str, Any] = self.native.counters()
        if c.get("recovery") is not None:
            c["recovery"]["lost"] = [{"channel": e["channel"], "session": e["session"], "first": e["first"],
                                      "count": e["count"]} for e in self.native.events if e["kind"] == "gap"][:100]
        c["warnings"] = self._warnings(c)
        return c

    @staticmethod
    def _warnings(c: dict[str, Any]) -> list[str]:
        """What a reader of the summary must not miss, in words."""
        out = []
        if c.get("malformed_messages"):
            out.append(f"{c['malformed_messages']} messages were in IEX-TP segments refused as malformed "
                       "(errors: truncated_segment, trailing_bytes, count_mismatch, ...)")
        if c["errors"].get("stream_offset_mismatch"):
            out.append(f"{c['errors']['stream_offset_mismatch']} segments' stream offsets disagreed with their "
                       "sequence numbers: bytes of the session were lost or added without them")
        if c.get("other_protocol"):
            out.append(f"{c['other_protocol']} segments of another IEX feed (or not IEX-TP) were dropped; "
                       f"this decoder reads {c['feed']}")
        rec = c.get("recovery") or {}
        if rec.get("lost_ranges"):
            out.append(f"{rec['lost_messages']} messages in {rec['lost_ranges']} ranges could not be recovered "
                       "and were declared lost (recovery.lost); books built from this run are suspect")
        if c.get("implausible_messages"):
            out.append(f"{c['implausible_messages']} messages were dropped with segments whose sequence numbers "
                       "were implausible (errors.implausible_sequence)")
        return out

    def make_books(self, **options: Any) -> Any:
        """Books for every symbol (:class:`~rxfeed.protocols.iex._iex_book.IexBooks` with
        ``options``), attached to this decoder's C handler table."""
        from ._iex_book import IexBooks

        books = IexBooks(**options)
        self.native.add_handlers(books)
        self.native.add_loss_listener(books.mark_lost)
        return books
