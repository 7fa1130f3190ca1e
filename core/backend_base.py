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
- :class:`WrapperBackend` (settings :class:`WrapperConfig`): a backend around
  another one (fault injection, live capture, ...): the inner backend opened
  by name or given as an instance, its C table (a pure-Python backend's
  made over its ``read_burst``), its stats merged, its closing.
"""

from __future__ import annotations

import ipaddress
from abc import abstractmethod
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Protocol, Self, TypeVar

from pydantic import AfterValidator, Field

from .config import ConfigError, PluginConfig, validate
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


def source_of(backend: RxBackend[Any]) -> str | None:
    """What ``backend`` reads, for the summary: its ``source``, else its config's ``path``."""
    return getattr(backend, "source", None) or getattr(backend.config, "path", None)


def registered_backend(name: str, where: str) -> type[RxBackend[Any]]:
    """The backend class registered as ``name``; an unknown name is a
    :class:`ConfigError` starting with ``where``."""
    from .plugins import get_plugins

    try:
        return get_plugins().backends.get(name)
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None


class WrapperConfig(PluginConfig):
    """The settings every wrapper backend has (a wrapper's ``Config`` subclasses this).

    :ivar backend: the inner backend's registry name, when the wrapper is
        built by name (e.g. ``Pipeline("faults", ...)``); ``None`` with
        :meth:`WrapperBackend.wrap`, which takes a backend instance.
    :ivar backend_config: the inner backend's settings.
    """

    backend: str | None = None
    backend_config: dict[str, Any] = Field(default_factory=dict)


WrapperConfigT = TypeVar("WrapperConfigT", bound=WrapperConfig)


class WrapperBackend(RxBackend[WrapperConfigT]):
    """A backend around another backend, the *inner* one, which it owns
    (closing the wrapper closes it).

    Built by name (``config.backend``, ``config.backend_config``: the inner
    backend is opened from the registry; naming the wrapper itself is
    refused) or around an instance with :meth:`wrap`. It reads like its
    inner backend (``stream``, ``source``, ``cpu``, ``progress()``); its
    ``stats()`` are the inner's plus ``inner_backend`` and
    :meth:`wrapper_stats`.

    A subclass sets ``name``, ``Config`` (a :class:`WrapperConfig`) and
    overrides what it changes:

    - :meth:`open_wrapper`: build what goes around the inner backend, e.g. a
      native object over :meth:`inner_table`; if it raises, the inner
      backend is closed;
    - :meth:`native_capsule`: the wrapper's table (by default the inner's:
      a pass-through);
    - :meth:`wrapper_stats`, :meth:`close_wrapper`.
    """

    #: the CLI option that puts this wrapper around any backend (e.g.
    #: ``"--faults SPEC"``), named when ``-b NAME`` lacks its inner backend
    cli_option: ClassVar[str] = ""

    def __init__(self, config: WrapperConfigT, inner: RxBackend[Any] | None = None) -> None:
        super().__init__(config)
        if inner is None:
            inner = self.open_inner(config)
        self.inner: RxBackend[Any] = inner
        self._inner_table: tuple[Any, Any] | None = None
        self.stream = inner.stream  # type: ignore[misc]  # the inner's kind of packets
        self.source = source_of(inner)
        cpu = getattr(inner, "cpu", None)
        if cpu is not None:
            self.cpu = cpu
        try:
            self.open_wrapper(config)
        except BaseException:
            inner.close()
            raise

    @classmethod
    def open_inner(cls, config: WrapperConfigT) -> RxBackend[Any]:
        """The inner backend ``config`` names, opened with its settings."""
        where = f"backend.{cls.name}.backend"
        if not config.backend:
            raise ConfigError(f"{where}: name the backend to wrap (or use {cls.__name__}.wrap)")
        if config.backend == cls.name:
            raise ConfigError(f"{where}: {cls.name} cannot wrap itself by name (use {cls.__name__}.wrap)")
        inner_cls = registered_backend(config.backend, where)
        return inner_cls(validate(inner_cls.Config, config.backend_config, f"backend.{config.backend}"))

    @classmethod
    def config_for_source(cls, path: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """``rxfeed replay FILE -b NAME -o backend=INNER``: the inner backend's
        settings for ``FILE``; the inner backend must be named."""
        inner = overrides.get("backend")
        if not inner or not isinstance(inner, str):
            alternative = f" (or use {cls.cli_option} with any backend)" if cls.cli_option else ""
            raise ConfigError(f"backend {cls.name}: name the backend to wrap, e.g. -o backend=pcap_replay"
                              + alternative)
        inner_cls = registered_backend(inner, f"backend.{cls.name}.backend")
        return {**overrides,
                "backend_config": inner_cls.config_for_source(path, dict(overrides.get("backend_config", {})))}

    @classmethod
    def wrap(cls, inner: RxBackend[Any], config: PluginConfig | dict[str, Any] | None = None,
             **settings: Any) -> Self:
        """``inner``, wrapped: ``config`` this wrapper's config or a dict;
        ``settings`` override. The wrapper owns ``inner``: closing it closes ``inner``."""
        if isinstance(config, PluginConfig):
            config = config.model_dump()
        return cls(validate(cls.Config, {**(config or {}), **settings}, cls.name), inner)  # type: ignore[arg-type]

    def inner_table(self) -> tuple[Any, Any]:
        """``(capsule, keep_alive)``: the inner backend's C table - its own,
        or for a pure-Python backend one over its ``read_burst``
        (:class:`rxfeed._pysource.PythonSource`, one Python call per burst)
        - and what must live as long as the table is used (the wrapper keeps
        it too). Made once."""
        if self._inner_table is None:
            from ._pysource import backend_table_of

            self._inner_table = backend_table_of(self.inner)
        return self._inner_table

    def open_wrapper(self, config: WrapperConfigT) -> None:
        """Build what goes around the inner backend (nothing by default)."""

    def native_capsule(self) -> Any:
        """The wrapper's table; by default the inner backend's (:meth:`inner_table`)."""
        return self.inner_table()[0]

    def wrapper_stats(self) -> dict[str, Any]:
        """What the wrapper adds to the inner backend's stats (its
        ``warnings`` are appended to the inner's); none by default."""
        return {}

    def stats(self) -> dict[str, Any]:
        inner = self.inner.stats()
        own = self.wrapper_stats()
        out = {**inner, "inner_backend": self.inner.name, **own}
        if "warnings" in own:
            out["warnings"] = [*inner.get("warnings", []), *own["warnings"]]
        return out

    def progress(self) -> tuple[int, int] | None:
        return self.inner.progress()

    def close_wrapper(self) -> None:
        """Stop what :meth:`open_wrapper` built, before the inner backend closes (nothing by default)."""

    def close(self) -> None:
        """:meth:`close_wrapper`, then close the inner backend."""
        self.close_wrapper()
        self.inner.close()
