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
=====================  ========  ===============================================

Copy ``rxfeed/backends/_template`` or ``rxfeed/protocols/_template`` to start.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from .config import PluginConfig

#: The config class of a plugin: ``class MyBackend(RxBackend[MyConfig])``
#: makes ``self.config`` a ``MyConfig`` for type checkers.
ConfigT = TypeVar("ConfigT", bound=PluginConfig)


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
        """Pure-Python path: up to ``max_packets`` UDP payloads (any buffer:
        bytes, memoryview), ``[]`` when nothing is ready, ``None`` at end."""
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


class ProtocolDecoder(ABC, Generic[ConfigT]):
    """Framing + decoding of a protocol, exported as a C decoder table (``rxf_decoder_ops``)."""

    name: ClassVar[str]
    Config: ClassVar[type[PluginConfig]]
    description: ClassVar[str] = ""

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
