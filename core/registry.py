"""Registries that plugins fill through the ``rxfeed_register_*`` hooks.

Each registry checks what it is given (a backend registry takes only
:class:`~rxfeed.interfaces.RxBackend` subclasses, and so on) and who gives
it: a name is owned by the first plugin that registers it, and a
first-party name cannot be taken by a third party unless the user allows it
(``RXFEED_ALLOW_OVERRIDE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .interfaces import ProtocolDecoder, RxBackend

T = TypeVar("T")


class _Registry(Generic[T]):
    kind = "plugin"

    def __init__(self, overridable: Iterable[str] = ()) -> None:
        self._items: dict[str, type[T]] = {}
        self._owner: dict[str, str] = {}
        self._first_party: set[str] = set()
        self._overridable = set(overridable)
        #: names a third party replaced with the user's leave: {name: (old owner, new owner)}
        self.overrides: dict[str, tuple[str, str]] = {}
        self.current_plugin = "?"
        self.current_is_first_party = False

    def check(self, cls: Any) -> None:
        """Raise TypeError unless ``cls`` is what this registry holds."""
        if not isinstance(cls, type):
            raise TypeError(f"{self.kind} registry takes classes, got {cls!r}")

    def add(self, cls: type[T]) -> None:
        """Register ``cls`` under ``cls.name``."""
        self.check(cls)
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls!r} has no string 'name'")
        if name in self._items:
            self._replace(name, cls)
            return
        self._items[name] = cls
        self._owner[name] = self.current_plugin
        if self.current_is_first_party:
            self._first_party.add(name)

    def _replace(self, name: str, cls: type[T]) -> None:
        owner = self._owner[name]
        if name in self._first_party and not self.current_is_first_party and name in self._overridable:
            self.overrides[name] = (owner, self.current_plugin)
            self._items[name] = cls
            self._owner[name] = self.current_plugin
            self._first_party.discard(name)
            return
        hint = (" (first-party names can be replaced only with RXFEED_ALLOW_OVERRIDE)"
                if name in self._first_party else "")
        raise ValueError(f"{self.kind} {name!r} is already registered by plugin {owner!r}{hint}")

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


def _require_subclass(registry: _Registry[Any], cls: Any, base_name: str) -> None:
    from . import interfaces

    base = getattr(interfaces, base_name)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{registry.kind} registry takes {base.__module__}.{base_name} subclasses, got {cls!r}")


def _require_plugin_class(registry: _Registry[Any], cls: Any, base_name: str) -> None:
    """A subclass of ``base_name`` that can be built: concrete, with a
    pydantic ``Config`` (a PluginConfig)."""
    import inspect

    from .config import PluginConfig

    _require_subclass(registry, cls, base_name)
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, PluginConfig)):
        raise TypeError(f"{registry.kind} {cls.__name__}: Config must be a rxfeed.PluginConfig subclass, "
                        f"got {config!r}")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise TypeError(f"{registry.kind} {cls.__name__} is abstract: it does not implement {missing}")


class BackendRegistry(_Registry["RxBackend[Any]"]):
    """Backends by name: RxBackend subclasses with a Config and one of
    ``native_capsule()`` / ``read_burst()``."""

    kind = "backend"

    def check(self, cls: Any) -> None:
        from .interfaces import RxBackend

        _require_plugin_class(self, cls, "RxBackend")
        if cls.native_capsule is RxBackend.native_capsule and cls.read_burst is RxBackend.read_burst:
            raise TypeError(f"backend {cls.__name__} implements neither native_capsule() nor read_burst()")


class DecoderRegistry(_Registry["ProtocolDecoder[Any]"]):
    """Protocol decoders by name: ProtocolDecoder subclasses with a Config,
    whose declared capabilities are known and implemented."""

    kind = "decoder"

    def check(self, cls: Any) -> None:
        from .interfaces import CAPABILITY_MEMBERS

        _require_plugin_class(self, cls, "ProtocolDecoder")
        caps: frozenset[str] = getattr(cls, "capabilities", frozenset())
        unknown = sorted(set(caps) - set(CAPABILITY_MEMBERS))
        if unknown:
            raise TypeError(f"decoder {cls.__name__} declares unknown capabilities {unknown} "
                            f"(known: {', '.join(sorted(CAPABILITY_MEMBERS))})")
        fields = cls.Config.model_fields
        missing = [m for c in sorted(caps) for m in CAPABILITY_MEMBERS[c]
                   if not (m.removeprefix("Config.") in fields if m.startswith("Config.") else
                           callable(getattr(cls, m, None)))]
        if missing:
            raise TypeError(f"decoder {cls.__name__} declares capabilities it does not implement: "
                            f"missing {', '.join(missing)}")


class SinkRegistry(_Registry[Any]):
    """Output sinks by name (``zmq_pub``, ...): classes with ``name``,
    ``Config``, ``attach(decoder)`` and ``close()``."""

    kind = "sink"

    def check(self, cls: Any) -> None:
        super().check(cls)
        missing = [a for a in ("Config", "attach", "close") if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"sink {cls!r} lacks {', '.join(missing)}")
