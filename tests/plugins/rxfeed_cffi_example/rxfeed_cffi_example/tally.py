"""A C handler table for ITCH 5.0 records (tally.c), built by cffi: every
decoded record is counted in C, in the nogil loop, without a Python call."""
from __future__ import annotations

from typing import Any

from rxfeed.protocols.itch50 import ffi as itch_ffi


class ItchTally:
    """Counts of the records an ITCH 5.0 decoder decodes, by type.

    ``ItchTally().attach(decoder)`` before the run; the table and its counts
    live as long as this object (keep it while the decoder runs)."""

    def __init__(self) -> None:
        from ._tally import ffi, lib

        self._ffi = ffi
        self._table = ffi.new("rxf_itch_handlers *")
        self._tally = ffi.new("rxcf_tally *")
        lib.rxcf_tally_init(self._table, self._tally)

    def attach(self, decoder: Any) -> None:
        """Add the table to an ``itch50`` decoder (``decoder.add_handlers``)."""
        decoder.add_handlers(itch_ffi.handlers_capsule(self._ffi, self._table))

    def by_type(self) -> dict[str, int]:
        """Records seen, by message type letter."""
        return {chr(i): int(self._tally.by_type[i]) for i in range(256) if self._tally.by_type[i]}

    @property
    def add_shares(self) -> int:
        """Sum of the shares of every AddOrder ('A') record."""
        return int(self._tally.add_shares)

    @property
    def last_sequence(self) -> int:
        """MoldUDP64 sequence number of the last record (0 if none carried one)."""
        return int(self._tally.last_sequence)
