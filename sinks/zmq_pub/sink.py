"""ZeroMQ PUB sink.

Every decoded batch (numpy records, one type) is split by symbol and sent as a
three-part message ``[topic, header, records]``:

* ``topic``: the symbol (``b"AAPL"``); ITCH 5.0: ``b"LOC00042"`` until the
  locate's R message was seen; IEX: the record's own symbol field, and
  ``b"*"`` for messages without one (System Event); a subscriber filters with
  ZeroMQ's prefix match,
* ``header``: JSON ``{"type": "A", "count": n, "itemsize": 48, "decoder":
  "itch50"}`` (IEX adds ``"feed": "DEEP"``),
* ``records``: the raw records, ``numpy.frombuffer(records, dtype)`` with the
  decoder's dtype of that type (:func:`record_dtype`).

:func:`decode_message` does that for a subscriber.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from rxfeed.config import PluginConfig

#: ITCH 5.0 types published when ``types`` is not given (orders and trades).
ITCH_DEFAULT_TYPES = "AFECXDUPQ"


class ZmqPubConfig(PluginConfig):
    """:ivar endpoints: where to bind, e.g. ``tcp://127.0.0.1:5556``, ``ipc:///tmp/itch``.
    :ivar types: message types to publish (default: ITCH 5.0 orders and
        trades ``AFECXDUPQ``; IEX every type of the feed).
    :ivar sndhwm: ZeroMQ send high-water mark in messages (0: unbounded).
    """

    endpoints: tuple[str, ...] = Field(min_length=1)
    types: str | None = None
    sndhwm: int = Field(0, ge=0)


class ZmqPubSink:
    """Publishes a decoder's batches; attach before the run, close after."""

    name = "zmq_pub"
    Config = ZmqPubConfig
    #: decoders whose records it publishes: ITCH 5.0 batches (``stock_locate``,
    #: topics named by the R (stock directory) messages) and IEX (``symbol``)
    decoders: ClassVar[frozenset[str]] = frozenset({"itch50", "iex"})

    def __init__(self, config: ZmqPubConfig) -> None:
        import zmq

        self.config = config
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, config.sndhwm)
        self._sock.setsockopt(zmq.LINGER, 2000)
        for ep in config.endpoints:
            self._sock.bind(ep)
        self._names: dict[int, bytes] = {}
        self._decoder: Any = None
        self.sent_messages = 0
        self.sent_records = 0

    def attach(self, decoder: Any) -> None:
        """Subscribe to the decoder: its batches are published (ITCH 5.0: R
        messages name the topics). ``ValueError`` for a decoder of other records."""
        if decoder.name not in self.decoders:
            raise ValueError(f"the zmq_pub sink publishes records with a symbol (a topic per symbol); decoder "
                             f"{decoder.name!r} has other records (it publishes for {', '.join(sorted(self.decoders))})")
        self._decoder = decoder
        if decoder.name == "itch50":
            decoder.subscribe(self._on_directory, types="R")
            decoder.subscribe_batches(self._on_itch_batch, types=self.config.types or ITCH_DEFAULT_TYPES)
        else:
            decoder.subscribe_batches(self._on_iex_batch, types=self.config.types)

    def _on_directory(self, msg: Any) -> None:
        self._names[msg.stock_locate] = msg.stock.encode()

    def _on_itch_batch(self, type_char: str, arr: np.ndarray) -> None:
        locs = arr["stock_locate"]
        self._publish(type_char, arr, locs, lambda loc: self._names.get(int(loc), b"LOC%05d" % loc),
                      {"decoder": "itch50"})

    def _on_iex_batch(self, type_char: str, arr: np.ndarray) -> None:
        head = {"decoder": "iex", "feed": self._decoder.feed}
        if "symbol" not in (arr.dtype.names or ()):
            self._send(b"*", type_char, arr, head)
            return
        self._publish(type_char, arr, arr["symbol"], lambda sym: bytes(sym).rstrip(b" "), head)

    def _publish(self, type_char: str, arr: np.ndarray, keys: np.ndarray, topic_of: Any, head: dict) -> None:
        """One message per distinct key (locate or symbol), records in batch order."""
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(keys[order][1:] != keys[order][:-1]) + 1
        for idx in np.split(order, bounds):
            if len(idx):
                self._send(topic_of(keys[idx[0]]), type_char, arr[idx], head)

    def _send(self, topic: bytes, type_char: str, part: np.ndarray, head: dict) -> None:
        header = json.dumps({"type": type_char, "count": len(part), "itemsize": part.dtype.itemsize,
                             **head}).encode()
        self._sock.send_multipart([topic, header, part.tobytes()], copy=False)
        self.sent_messages += 1
        self.sent_records += len(part)

    def close(self) -> None:
        self._sock.close()


def record_dtype(header: dict) -> np.dtype:
    """The numpy dtype of a published message's records, from its header."""
    if header.get("decoder", "itch50") == "iex":
        from rxfeed.protocols.iex.dtypes import DTYPES as IEX

        return IEX[header["feed"]][header["type"]]
    from rxfeed.protocols.itch50.dtypes import DTYPES as ITCH

    return ITCH[header["type"]]


def decode_message(frames: list[bytes]) -> tuple[str, str, np.ndarray]:
    """``(symbol, type, records)`` of one published message."""
    topic, header, payload = frames
    h = json.loads(header)
    return topic.decode(), h["type"], np.frombuffer(payload, dtype=record_dtype(h))
