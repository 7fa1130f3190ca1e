"""ZeroMQ PUB sink.

Every decoded batch (numpy records, one type) is split by stock and sent as a
three-part message ``[topic, header, records]``:

* ``topic``: the symbol (``b"AAPL"``; ``b"LOC00042"`` until the locate's R
  message was seen); a subscriber filters with ZeroMQ's prefix match,
* ``header``: JSON ``{"type": "A", "count": n, "itemsize": 48}``,
* ``records``: the raw records, ``numpy.frombuffer(records, DTYPES[type])``.

:func:`decode_message` does that for a subscriber.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from rxfeed.config import PluginConfig
from rxfeed.protocols.itch50.dtypes import DTYPES


class ZmqPubConfig(PluginConfig):
    """:ivar endpoints: where to bind, e.g. ``tcp://127.0.0.1:5556``, ``ipc:///tmp/itch``.
    :ivar types: message types to publish.
    :ivar sndhwm: ZeroMQ send high-water mark in messages (0: unbounded).
    """

    endpoints: tuple[str, ...] = Field(min_length=1)
    types: str = "AFECXDUPQ"
    sndhwm: int = Field(0, ge=0)


class ZmqPubSink:
    """Publishes a decoder's batches; attach before the run, close after."""

    name = "zmq_pub"
    Config = ZmqPubConfig
    #: decoders whose records it publishes: ITCH 5.0 batches (``stock_locate``),
    #: topics named by the R (stock directory) messages
    decoders: ClassVar[frozenset[str]] = frozenset({"itch50"})

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
        self.sent_messages = 0
        self.sent_records = 0

    def attach(self, decoder: Any) -> None:
        """Subscribe to the decoder: R messages name the topics, batches are
        published. ``ValueError`` for a decoder of other records."""
        if decoder.name not in self.decoders:
            raise ValueError(f"the zmq_pub sink publishes ITCH 5.0 records (a topic per stock); decoder "
                             f"{decoder.name!r} has other records (it publishes for {', '.join(sorted(self.decoders))})")
        decoder.subscribe(self._on_directory, types="R")
        decoder.subscribe_batches(self._on_batch, types=self.config.types)

    def _on_directory(self, msg: Any) -> None:
        self._names[msg.stock_locate] = msg.stock.encode()

    def _on_batch(self, type_char: str, arr: np.ndarray) -> None:
        locs = arr["stock_locate"]
        order = np.argsort(locs, kind="stable")
        sorted_locs = locs[order]
        bounds = np.flatnonzero(np.diff(sorted_locs)) + 1
        for idx in np.split(order, bounds):
            if not len(idx):
                continue
            loc = int(locs[idx[0]])
            topic = self._names.get(loc, b"LOC%05d" % loc)
            part = arr[idx]
            header = json.dumps({"type": type_char, "count": len(part), "itemsize": arr.dtype.itemsize}).encode()
            self._sock.send_multipart([topic, header, part.tobytes()], copy=False)
            self.sent_messages += 1
            self.sent_records += len(part)

    def close(self) -> None:
        self._sock.close()


def decode_message(frames: list[bytes]) -> tuple[str, str, np.ndarray]:
    """``(symbol, type, records)`` of one published message."""
    topic, header, payload = frames
    h = json.loads(header)
    return topic.decode(), h["type"], np.frombuffer(payload, dtype=DTYPES[h["type"]])
