"""Registries that plugins fill through the ``rxfeed_register_*`` hooks."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class _Registry(Generic[T]):
    kind = "plugin"

    def __init__(self) -> None:
        self._items: dict[str, type[T]] = {}
        self._owner: dict[str, str] = {}
        self.current_plugin = "?"

    def add(self, cls: type[T]) -> None:
        """Register ``cls`` under ``cls.name``."""
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls!r} has no string 'name'")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered by plugin {self._owner[name]!r}")
        self._items[name] = cls
        self._owner[name] = self.current_plugin

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"no {self.kind} named {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def owner(self, name: str) -> str:
        return self._owner[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items


class BackendRegistry(_Registry["object"]):
    """Backends by name (``pcap_replay``, ``nasdaq_file``, ...)."""

    kind = "backend"


class DecoderRegistry(_Registry["object"]):
    """Protocol decoders by name (``itch50``, ...)."""

    kind = "decoder"


class SinkRegistry(_Registry["object"]):
    """Output sinks by name (``zmq_pub``, ...)."""

    kind = "sink"
