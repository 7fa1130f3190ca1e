"""A decoder for a made-up protocol ("TOY"), written in Python: a datagram is
[u32 BE sequence][u8 count] then count messages of [u8 type][u8 len][bytes].

Besides counting it offers what the protocol-neutral CLI asks of a decoder
(rxfeed.interfaces.CAPABILITIES): ``messages`` (``rxfeed inspect``),
``events`` (gap lines), ``sequenced`` (dissect mode) and ``batches``
(``rxfeed convert --no-books``). It builds no books, logs no arrivals and has
no end of session, so the CLI refuses clearly whatever needs those
(``--books``, ``plot``, ``--arrivals``, ``--until-end-of-session``, ...).

Sequence numbers count datagrams. A jump in them is one gap event
(``gaps``); the datagrams it skipped are ``gap_messages`` (the counter the
framework keeps for what a gap lost: TOY cannot know how many messages a
missing datagram held, so it counts the missing sequence numbers, at least
one per gap). A datagram whose sequence is below the
next expected one is a duplicate: its messages are counted in
``duplicates``, not ``messages``, and reach subscribers only in dissect mode
(``sequenced = False``), with status ``"duplicate"``."""
from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from pydantic import Field

from rxfeed import Packet, PluginConfig, PythonDecoder
from rxfeed.interfaces import PKT_SOURCE_RESET


def datagram(seq: int, msgs: list[tuple[bytes, bytes]]) -> bytes:
    return struct.pack(">IB", seq, len(msgs)) + b"".join(t + bytes([len(p)]) + p for t, p in msgs)


def frames_exactly(data: bytes) -> bool:
    """Is ``data`` one TOY datagram whose messages fill it exactly?"""
    if len(data) < 5:
        return False
    end = 5
    for where in framed(data):
        if where is None:
            return False
        end = where[1] + where[2]
    return end == len(data)


def framed(data: Any) -> Iterator[tuple[int, int, int] | None]:
    """``(type byte, body offset, body length)`` of each message of the TOY
    datagram ``data`` (header already checked), then ``None`` if it was cut
    short: every length is checked before it is used."""
    pos = 5
    for _ in range(data[4]):
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            yield None
            return
        yield data[pos], pos + 2, data[pos + 1]
        pos += 2 + data[pos + 1]


class ToyMessage(NamedTuple):
    """One TOY message as subscribers get it."""

    type: str
    #: position in its datagram (0-based)
    index: int
    length: int
    #: the body, as hex (JSON-safe, and nothing trimmed)
    payload_hex: str


class ToyMeta(NamedTuple):
    """Where a message came from (``subscribe(..., with_meta=True)``)."""

    session: str | None  # TOY has no sessions: always None
    sequence: int        # its datagram's sequence number
    rx_ts_ns: int
    status: str          # "new" or, in dissect mode, "duplicate"


#: Record of ``subscribe_batches`` / ``take_batches`` (one array per type).
BATCH_DTYPE = np.dtype([("sequence", "<u4"), ("index", "u1"), ("length", "u1"), ("rx_ts_ns", "<u8"),
                        ("payload_hex", "S510")])


class ToyConfig(PluginConfig):
    """:ivar sequenced: True: each datagram's messages once; False: dissect
        mode, duplicates delivered too with status "duplicate".
    :ivar batch_size: records per numpy batch."""

    sequenced: bool = Field(True, description="False: dissect mode, duplicates delivered with their status")
    batch_size: int = Field(4096, ge=1, le=1 << 20, description="records per numpy batch")


def _type_bytes(types: str | None) -> frozenset[int] | None:
    """Type characters as bytes (None: all); a character above U+00FF is no TOY type."""
    if types is None:
        return None
    bad = [c for c in types if ord(c) > 255]
    if bad:
        raise ValueError(f"not a TOY message type (one byte): {bad[0]!r}")
    return frozenset(ord(c) for c in types)


class _Batches:
    """Per-type rows collected into numpy batches of ``size``; each full
    batch goes to ``callback(type_char, array)`` or is kept for ``take``."""

    def __init__(self, size: int, callback: Callable[[str, np.ndarray], Any] | None,
                 types: frozenset[int] | None) -> None:
        self.size, self.callback, self.types = size, callback, types
        self.rows: dict[int, list[tuple[Any, ...]]] = {}
        self.kept: dict[str, list[np.ndarray]] = {}

    def add(self, t: int, row: tuple[Any, ...]) -> None:
        if self.types is not None and t not in self.types:
            return
        rows = self.rows.setdefault(t, [])
        rows.append(row)
        if len(rows) >= self.size:
            self._emit(t)

    def _emit(self, t: int) -> None:
        arr = np.array(self.rows.pop(t), dtype=BATCH_DTYPE)
        if self.callback is not None:
            self.callback(chr(t), arr)
        else:
            self.kept.setdefault(chr(t), []).append(arr)

    def flush(self) -> None:
        for t in sorted(self.rows):
            self._emit(t)

    def take(self) -> dict[str, np.ndarray]:
        self.flush()
        out = {t: np.concatenate(arrs) for t, arrs in sorted(self.kept.items())}
        self.kept = {}
        return out


class ToyDecoder(PythonDecoder[ToyConfig]):
    name = "example_toy"
    Config = ToyConfig
    description = "example: a made-up protocol decoded in Python"
    capabilities = frozenset({"messages", "events", "sequenced", "batches"})

    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__(config or ToyConfig())
        self.sequenced, self.batch_size = self.config.sequenced, self.config.batch_size
        self.per_type: Counter[str] = Counter()
        self.packets = self.gaps = self.gap_messages = self.duplicates = self.malformed = 0
        self.next_seq = 1
        self._callbacks: dict[int | None, tuple[Callable[..., Any], bool]] = {}
        self._event_callback: Callable[[dict[str, Any]], Any] | None = None
        self._batches: _Batches | None = None
        self._error: BaseException | None = None

    # --- what the conformance kit uses (pytest --rxfeed-conformance example_toy) ---
    @staticmethod
    def conformance_samples() -> tuple[list[bytes], int]:
        """200 TOY datagrams of an 'a' and a 'b' message, and the 400 messages in them."""
        return [datagram(seq, [(b"a", b"x"), (b"b", b"yz")]) for seq in range(1, 201)], 400

    # --- what the CLI uses (capabilities) --------------------------------------
    def subscribe(self, callback: Callable[..., Any], types: str | None = None, *, with_meta: bool = False) -> None:
        """``callback(msg)`` (or ``callback(msg, meta)``, a :class:`ToyMeta`)
        for each :class:`ToyMessage` of ``types`` (a string of type
        characters; None: all)."""
        for t in _type_bytes(types) or [None]:
            self._callbacks[t] = (callback, with_meta)

    def on_event(self, callback: Callable[[dict[str, Any]], Any]) -> None:
        """``callback({"kind": "gap", "first": seq, "count": n, "rx_ts_ns": ...})``
        for each run of missing datagrams."""
        self._event_callback = callback

    def subscribe_batches(self, callback: Callable[[str, np.ndarray], Any] | None = None,
                          types: str | None = None) -> None:
        """Collect messages of ``types`` into numpy arrays of :data:`BATCH_DTYPE`:
        each full batch to ``callback(type_char, array)``, or kept for :meth:`take_batches`."""
        self._batches = _Batches(self.batch_size, callback, _type_bytes(types))

    def take_batches(self) -> dict[str, np.ndarray]:
        """``{type_char: array}`` of everything collected so far."""
        return self._batches.take() if self._batches is not None else {}

    # --- decoding ---------------------------------------------------------------
    def on_packets(self, packets: Sequence[Packet]) -> bool:
        for p in packets:
            self._datagram(p)
            if self._error is not None:
                return True  # a subscriber failed: stop; finish() raises its exception
        return False

    def _datagram(self, p: Packet) -> None:
        self.packets += 1
        data = p.data
        if p.flags & PKT_SOURCE_RESET:
            self.next_seq = 1  # the source rewound: its sequences start again
        if len(data) < 5:
            self.malformed += 1
            return
        seq = struct.unpack_from(">I", data)[0]
        new = seq >= self.next_seq
        if new:
            self._gap(seq, p.rx_ts_ns)
        for index, where in enumerate(framed(data)):
            if where is None:
                self.malformed += 1
                return
            if new:
                self.per_type[chr(where[0])] += 1
            else:
                self.duplicates += 1
            if new or not self.sequenced:
                self._deliver(data, where, index, ToyMeta(None, seq, p.rx_ts_ns, "new" if new else "duplicate"))

    def _gap(self, seq: int, rx_ts_ns: int) -> None:
        if seq > self.next_seq:
            self.gaps += 1
            self.gap_messages += seq - self.next_seq
            if self._event_callback is not None:
                self._event_callback({"kind": "gap", "first": self.next_seq, "count": seq - self.next_seq,
                                      "rx_ts_ns": rx_ts_ns})
        self.next_seq = seq + 1

    def _deliver(self, data: Any, where: tuple[int, int, int], index: int, meta: ToyMeta) -> None:
        t, start, n = where
        if (not self._callbacks and self._batches is None) or self._error is not None:
            return
        body = bytes(data[start:start + n]).hex()
        sub = self._callbacks.get(t) or self._callbacks.get(None)
        try:
            if sub is not None:
                msg = ToyMessage(chr(t), index, n, body)
                sub[0](msg, meta) if sub[1] else sub[0](msg)
            if self._batches is not None:
                self._batches.add(t, (meta.sequence, index, n, meta.rx_ts_ns, body))
        except Exception as exc:  # a subscriber's (inspect -n stops this way): kept for finish()
            self._error = exc

    def finish(self) -> None:
        """Deliver partial batches; re-raise a subscriber's exception."""
        err, self._error = self._error, None
        if err is not None:
            raise err
        if self._batches is not None and self._batches.callback is not None:
            self._batches.flush()

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "messages": sum(self.per_type.values()),
                "messages_per_type": dict(self.per_type), "gaps": self.gaps, "gap_messages": self.gap_messages,
                "duplicates": self.duplicates,
                "errors": {"malformed": self.malformed} if self.malformed else {}}
