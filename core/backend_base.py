"""Shared pieces for backends, first party and third party alike.

- :class:`NativeBackend`: an :class:`~rxfeed.interfaces.RxBackend` whose work
  is done by one native object (a Cython class with ``capsule()``,
  ``stats()`` and ``close()``, optionally ``progress()``). A subclass only
  says how to open it (:meth:`NativeBackend.open_reader`).
- :data:`DestinationFilters`: the pydantic field type of ``group:port``
  destination filters, with the one limit of ``rxf_dst_filter``
  (:data:`FILTER_MAX`, ``RXF_FILTER_MAX`` in ``rxfeed/net.h``) checked in one
  place, at config validation.
- :func:`net_drops`: the ``drops`` dict of a backend that parses frames with
  ``rxfeed/net.h`` (verdict counters by name, plus its own reasons).
"""

from __future__ import annotations

import ipaddress
from abc import abstractmethod
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator

from .interfaces import ConfigT, RxBackend
from .summary import NET_DROP_KINDS

#: Most destination filters (or joined groups) a backend takes: the size of
#: the C arrays of ``rxf_dst_filter`` (``RXF_FILTER_MAX`` in rxfeed/net.h).
FILTER_MAX = 16


def check_filter_count(items: Sequence[object]) -> None:
    """Refuse more than :data:`FILTER_MAX` filters (never truncate)."""
    if len(items) > FILTER_MAX:
        raise ValueError(f"at most {FILTER_MAX} filters; got {len(items)}")


def parse_destination(text: str) -> tuple[int, int]:
    """``"233.54.12.111:26477"``, ``"*:26477"``, ``"233.54.12.111"`` -> (ip, port)
    in host order, 0 = any."""
    host, _, port = text.partition(":")
    ip = 0 if host in ("", "*") else int(ipaddress.IPv4Address(host))
    p = 0 if port in ("", "*") else int(port)
    if not 0 <= p <= 65535:
        raise ValueError(f"port {p} out of range")
    return ip, p


def check_destinations(filters: Sequence[str]) -> tuple[str, ...]:
    """Validate ``group:port`` destinations: at most :data:`FILTER_MAX`, each
    parseable. Raises ``ValueError``; returns them as a tuple."""
    check_filter_count(filters)
    for f in filters:
        try:
            parse_destination(f)
        except ValueError as exc:
            raise ValueError(f"bad destination {f!r}: {exc}") from None
    return tuple(filters)


def destinations(filters: Sequence[str]) -> list[tuple[int, int]]:
    """Filters (validated by :data:`DestinationFilters`) as the ``(ip, port)``
    pairs native readers take."""
    return [parse_destination(f) for f in filters]


#: Config field type for destination filters: ``filters: DestinationFilters = ()``.
DestinationFilters = Annotated[tuple[str, ...], AfterValidator(check_destinations)]


def net_drops(verdicts: Sequence[int], **reasons: int) -> dict[str, int]:
    """A backend's ``drops`` dict: the non-zero frame-parser verdict counters
    (``verdicts[i]`` counts ``rxf_net_verdict`` i; index 0, ok, is skipped),
    then the non-zero backend-specific ``reasons``."""
    drops = {NET_DROP_KINDS[i]: int(verdicts[i]) for i in range(1, len(NET_DROP_KINDS)) if verdicts[i]}
    drops.update({k: int(v) for k, v in reasons.items() if v})
    return drops


class NativeReader(Protocol):
    """What :class:`NativeBackend` needs of its native object."""

    def capsule(self) -> Any:
        """PyCapsule ``rxfeed.backend_ops.v1``, valid while the object lives."""

    def stats(self) -> dict[str, Any]:
        """Counters, with ``drops`` by reason."""

    def close(self) -> None:
        """Release the source (idempotent)."""


class NativeBackend(RxBackend[ConfigT]):
    """An :class:`RxBackend` around one native reader.

    Subclasses implement :meth:`open_reader`; :meth:`extra_stats` adds to the
    reader's counters. The reader is ``self.reader``; ``progress()`` is the
    reader's when it has one.
    """

    def __init__(self, config: ConfigT) -> None:
        super().__init__(config)
        self.reader: NativeReader = self.open_reader(config)

    @abstractmethod
    def open_reader(self, config: ConfigT) -> NativeReader:
        """Open the native source ``config`` describes (raise on failure)."""

    def native_capsule(self) -> Any:
        return self.reader.capsule()

    def extra_stats(self) -> dict[str, Any]:
        """Entries added to the reader's ``stats()`` (none by default)."""
        return {}

    def stats(self) -> dict[str, Any]:
        return {**self.reader.stats(), **self.extra_stats()}

    def progress(self) -> tuple[int, int] | None:
        progress = getattr(self.reader, "progress", None)
        return progress() if progress is not None else None

    def close(self) -> None:
        self.reader.close()
