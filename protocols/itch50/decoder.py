"""The itch50 ProtocolDecoder: a thin Python face over the Cython ItchDecoder."""

from __future__ import annotations

from typing import Any

from rxfeed.interfaces import ProtocolDecoder

from ._decoder import ItchDecoder
from .config import Itch50Config


class Itch50Decoder(ProtocolDecoder[Itch50Config]):
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

    def decoder_capsule(self) -> Any:
        return self.native.capsule()

    def counters(self) -> dict[str, Any]:
        return self.native.counters()

    def finish(self) -> None:
        self.native.flush()

    def make_books(self, **options: Any) -> Any:
        """Full-depth books for every symbol (:class:`~rxfeed.protocols.itch50._book.OrderBooks`
        with ``options``), attached to this decoder's C handler table."""
        from ._book import OrderBooks

        books = OrderBooks(**options)
        self.native.add_handlers(books)
        return books

    def __getattr__(self, item: str) -> Any:
        return getattr(self.native, item)
