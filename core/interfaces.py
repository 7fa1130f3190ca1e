"""The two plugin interfaces: where packets come from, and what the bytes mean.

=====================  ========  ===============================================
``RxBackend``          required  ``name``, ``Config``, and *one of*
                                 :meth:`~RxBackend.native_capsule` (C ABI, fast)
                                 or :meth:`~RxBackend.read_burst` (pure Python)
                       optional  :meth:`~RxBackend.stats`, :meth:`~RxBackend.close`,
                                 ``stream``, ``description``
``ProtocolDecoder``    required  ``name``, ``Config``, :meth:`~ProtocolDecoder.decoder_capsule`,
                                 :meth:`~ProtocolDecoder.counters`
                       optional  :meth:`~ProtocolDecoder.finish`, ``description``
``PythonDecoder``      required  ``name``, ``Config``, :meth:`~PythonDecoder.on_packets`,
                                 :meth:`~ProtocolDecoder.counters`
                       optional  :meth:`~PythonDecoder.on_end`, ``finish``, ``description``
=====================  ========  ===============================================

Copy ``rxfeed/backends/_template`` or ``rxfeed/protocols/_template`` to start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from .config import PluginConfig

#: The config class of a plugin: ``class MyBackend(RxBackend[MyConfig])``
#: makes ``self.config`` a ``MyConfig`` for type checkers.
ConfigT = TypeVar("ConfigT", bound=PluginConfig)


class Packet(NamedTuple):
    """One packet on the Python side: a UDP payload (or stream chunk) and what
    the backend knows about it - the fields of the C ABI's ``rxf_packet``.

    A Python backend may return these from :meth:`RxBackend.read_burst`
    (plain buffers are packets with no metadata); a :class:`PythonDecoder`
    receives them. ``data`` handed to a decoder is valid only during the call
    (a memoryview over the backend's buffer, released afterwards): copy with
    ``bytes(p.data)`` to keep it.
    """

    data: Any
    #: receive (or capture) time, ns since the Unix epoch (UTC); 0: unknown
    rx_ts_ns: int = 0
    #: IPv4 addresses in host byte order; 0: unknown
    src_ip: int = 0
    dst_ip: int = 0
    src_port: int = 0
    dst_port: int = 0
    #: ``PKT_STREAM`` | ``PKT_SOURCE_RESET`` | ``PKT_HW_TIMESTAMP``
    flags: int = 0
    #: which line (copy of the feed: A, B, ...) it came on; 0 for one line
    line: int = 0


#: ``Packet.flags``: the same bits as ``RXF_PKT_*`` in ``rxfeed/abi.h``.
PKT_STREAM, PKT_SOURCE_RESET, PKT_HW_TIMESTAMP = 0x1, 0x2, 0x4


class RxBackend(ABC, Generic[ConfigT]):
    """A packet source: a NIC, a socket, a capture file.

    A native backend returns a PyCapsule ``rxfeed.backend_ops.v1`` from
    :meth:`native_capsule` (see ``docs/plugin-abi.md``); the run loop then
    calls it without the GIL. A pure-Python backend returns ``None`` there and
    implements :meth:`read_burst` instead.
    """

    #: Registry name, e.g. ``"pcap_replay"``.
    name: ClassVar[str]
    #: pydantic model of this backend's settings.
    Config: ClassVar[type[PluginConfig]]
    #: One line for ``rxfeed plugins``.
    description: ClassVar[str] = ""
    #: True when buffers are chunks of a byte stream rather than datagrams.
    stream: ClassVar[bool] = False

    def __init__(self, config: ConfigT) -> None:
        self.config: ConfigT = config

    def native_capsule(self) -> Any | None:
        """The C function table, or ``None`` for a pure-Python backend."""
        return None

    @classmethod
    def config_for_source(cls, path: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """Settings to replay the file ``path`` (``rxfeed replay FILE --backend NAME``);
        ``overrides`` (from a config file and options) win."""
        return {"path": path, **overrides}

    def read_burst(self, max_packets: int) -> Sequence[Any] | None:
        """Pure-Python path: up to ``max_packets`` UDP payloads - any buffer
        (bytes, memoryview), or a :class:`Packet` to carry timestamps,
        addresses and flags - ``[]`` when nothing is ready, ``None`` at end.
        An exception ends the run with ``stop_reason == "backend_error"``,
        its text in ``Summary.error`` and the counts so far kept."""
        raise NotImplementedError(f"{type(self).__name__} has neither native_capsule() nor read_burst()")

    def stats(self) -> dict[str, Any]:
        """Counters for the summary; ``drops`` maps a reason to a count."""
        return {}

    def progress(self) -> tuple[int, int] | None:
        """``(done, total)`` in any unit, for progress bars; None if unknown.
        Called from another thread while the loop runs: read counters only."""
        return None

    def close(self) -> None:
        """Release resources. Called once, after the run."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What a decoder may offer beyond decoding and counting, by name: the CLI
#: and tools use a feature only when the chosen decoder declares it in
#: :attr:`ProtocolDecoder.capabilities`, and say so clearly otherwise.
CAPABILITIES: dict[str, str] = {
    "messages": "subscribe(callback, types=None, *, with_meta=False): a Python callback per message, "
                "each message with _asdict(), and a 'type' (inspect, callbacks)",
    "events": "on_event(callback): session-layer events as dicts (gaps, session changes, ...)",
    "batches": "subscribe_batches(types=None) / take_batches(): numpy batches per type (convert)",
    "handlers": "add_handlers(capsule): C handler tables of the decoder's records",
    "books": "make_books(**options): order books attached to this decoder (replay --books, convert, plot)",
    "arrivals": "log_arrivals() / take_arrivals(): per-packet handler-done times (listen --arrivals)",
    "end_of_session": "a config field stop_at_end_of_session (listen --until-end-of-session)",
    "sequenced": "a config field sequenced: False makes it a dissector that shows every message (inspect)",
}


#: What each capability needs on the decoder class: methods, or fields of
#: its ``Config`` (``"Config.field"``). The decoder registry refuses a class
#: that declares a capability without them, or a capability not listed here.
CAPABILITY_MEMBERS: dict[str, tuple[str, ...]] = {
    "messages": ("subscribe",),
    "events": ("on_event",),
    "batches": ("subscribe_batches", "take_batches"),
    "handlers": ("add_handlers",),
    "books": ("make_books",),
    "arrivals": ("log_arrivals", "take_arrivals"),
    "end_of_session": ("Config.stop_at_end_of_session",),
    "sequenced": ("Config.sequenced",),
}


class ProtocolDecoder(ABC, Generic[ConfigT]):
    """Framing + decoding of a protocol, exported as a C decoder table (``rxf_decoder_ops``)."""

    name: ClassVar[str]
    Config: ClassVar[type[PluginConfig]]
    description: ClassVar[str] = ""
    #: Names from :data:`CAPABILITIES` this decoder implements.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ConfigT) -> None:
        self.config: ConfigT = config

    @abstractmethod
    def decoder_capsule(self) -> Any:
        """PyCapsule ``rxfeed.decoder_ops.v1`` the run loop feeds."""

    @abstractmethod
    def counters(self) -> dict[str, Any]:
        """Counters for the summary (messages, per type, gaps, errors, ...)."""

    def finish(self) -> None:
        """Flush partial batches/callbacks after the run; re-raise a callback error."""


class PythonDecoder(ProtocolDecoder[ConfigT]):
    """A decoder written in Python: the run loop hands it packets in bursts.

    Implement :meth:`on_packets` and :meth:`counters` (``messages``,
    ``messages_per_type``, ``gaps``, ``errors``, ... as a native decoder's, so
    the summary and CLI treat both alike). It works behind every backend:
    behind a native one, the loop receives without the GIL and takes it once
    per burst to call :meth:`on_packets`; the bytes are the backend's own
    buffer (no copy), valid for the call. Slower than a native decoder by
    the cost of a Python call per burst and per packet touched: fine for
    prototypes, low-rate feeds and tests.
    """

    def decoder_capsule(self) -> None:
        """A Python decoder has no C table."""
        return None

    @abstractmethod
    def on_packets(self, packets: Sequence[Packet]) -> bool | None:
        """Consume one burst. Return True to stop the run (e.g. end of
        session). An exception ends the run with ``stop_reason ==
        "decoder_error"`` and its text in ``Summary.error``."""

    def on_end(self) -> None:
        """End of input: flush partial state (a message cut at the end of a stream)."""
