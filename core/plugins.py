"""Plugin discovery: the ``rxfeed`` entry-point group, loaded one plugin at a time.

Environment:

``RXFEED_DISABLE_PLUGIN_AUTOLOAD=1``
    load only rxfeed's own entry points (and those named in ``RXFEED_PLUGINS``).
``RXFEED_PLUGINS=a,b``
    with autoload off, the third-party entry points to load anyway.
``RXFEED_BLOCK_PLUGINS=a,b``
    never load these entry points (first-party ones included).
``RXFEED_ALLOW_OVERRIDE=a,b``
    let third-party plugins replace these first-party backend, decoder or
    sink names (otherwise a third party registering a first-party name is
    refused and reported against that third party).

Load order: rxfeed's own entry points first (sorted by name), then
third-party ones (sorted by name), then in-process ``extra_plugins``; every
``rxfeed_register_*`` hook is called in that order, one plugin at a time.

Isolation: a plugin that fails to import, implements a hook that does not
exist (a misspelt ``rxfeed_*`` name), registers something that is not a
backend/decoder/sink class, or whose hook raises — at discovery or later
(:meth:`PluginSet.detect`, :meth:`PluginSet.native_info`) — is recorded in
:attr:`PluginSet.failures` as ``(plugin name, error)`` and skipped; every
other plugin keeps working.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from collections.abc import Iterator
from typing import Any

import pluggy

from . import hookspecs
from .registry import BackendRegistry, DecoderRegistry, SinkRegistry

GROUP = "rxfeed"


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str
    version: str


@dataclass
class PluginSet:
    """The result of discovery: the manager, filled registries and failures."""

    manager: pluggy.PluginManager
    backends: BackendRegistry
    decoders: DecoderRegistry
    sinks: SinkRegistry
    loaded: list[PluginInfo] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    #: names of rxfeed's own plugins (loaded first, protected from shadowing)
    first_party: set[str] = field(default_factory=set)

    def _each(self, hook: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Call ``hook`` plugin by plugin in load order; a plugin that raises or
        answers with the wrong type is recorded in :attr:`failures` and skipped."""
        for impl in _in_load_order(getattr(self.manager.hook, hook).get_hookimpls(), self.first_party):
            try:
                yield impl.plugin_name, impl.function(**kwargs)
            except Exception as exc:  # one plugin's bug is its own
                self._fail(impl.plugin_name, f"{hook}: {type(exc).__name__}: {exc}")

    def _fail(self, plugin: str, error: str) -> None:
        if (plugin, error) not in self.failures:
            self.failures.append((plugin, error))

    def detect(self, path: str, head: bytes) -> tuple[str, str | None] | None:
        """``(backend, decoder)`` of the first plugin that recognises the file
        (decoder None: to be found from the payloads, :meth:`claim_payloads`)."""
        for plugin, answer in self._each("rxfeed_detect_source", path=path, head=head):
            if answer is None:
                continue
            if (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], str)
                    and (answer[1] is None or isinstance(answer[1], str))):
                return answer
            self._fail(plugin, f"rxfeed_detect_source: returned {answer!r}, not (backend, decoder) or None")
        return None

    def claim_payloads(self, payloads: list[bytes]) -> list[str]:
        """Names of the registered decoders whose plugins claim these payloads."""
        claims = []
        for plugin, answer in self._each("rxfeed_claim_payloads", payloads=payloads):
            if answer is None:
                continue
            if isinstance(answer, str) and answer in self.decoders:
                claims.append(answer)
            else:
                self._fail(plugin, f"rxfeed_claim_payloads: returned {answer!r}, not a registered decoder or None")
        return sorted(set(claims))

    def native_info(self) -> dict[str, str]:
        """``{part: description}`` of every plugin's native parts."""
        out: dict[str, str] = {}
        for plugin, part in self._each("rxfeed_native_info"):
            if isinstance(part, dict):
                out.update({str(k): str(v) for k, v in part.items()})
            elif part is not None:
                self._fail(plugin, f"rxfeed_native_info: returned {type(part).__name__}, not a dict or None")
        return out


def _csv_env(name: str) -> set[str]:
    return {s.strip() for s in os.environ.get(name, "").split(",") if s.strip()}


def _in_load_order(impls: list[Any], first_party: set[str]) -> list[Any]:
    """The order rxfeed calls a hook's implementations in: ``tryfirst`` ones,
    then plain ones, then ``trylast`` ones; within each, rxfeed's own plugins
    first, then in load order (``get_hookimpls()`` keeps registration order
    within a tier, and :func:`discover` registers first-party first)."""
    def key(item: tuple[int, Any]) -> tuple[int, bool, int]:
        i, impl = item
        tier = 0 if impl.tryfirst else 2 if impl.trylast else 1
        return tier, impl.plugin_name not in first_party, i

    return [impl for _, impl in sorted(enumerate(impls), key=key)]


def _entry_points_in_load_order() -> list[Any]:
    """The group's entry points, one per name, rxfeed's own first."""
    by_name: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        by_name.setdefault(ep.name, ep)
    return sorted(by_name.values(), key=lambda e: (_dist_name(e) != "rxfeed", e.name))


def _dist_name(ep: Any) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _hook_problems(plugin: Any) -> list[str]:
    """What is wrong with a plugin's hooks: a ``rxfeed_*`` name or an
    ``@hookimpl`` that is no hook (a misspelling), or a hook left unmarked
    (pluggy would silently ignore it)."""
    known = {n for n in dir(hookspecs) if n.startswith("rxfeed_")}
    problems = []
    for attr in sorted(dir(plugin)):
        obj = getattr(plugin, attr, None)
        if not inspect.isroutine(obj):
            continue  # a module (``import rxfeed_mypkg``), a class, a constant: not a hook
        marked = getattr(obj, f"{hookspecs.PROJECT}_impl", None) is not None
        if attr not in known and (marked or attr.startswith("rxfeed_")):
            problems.append(f"{attr} is not an rxfeed hook (see rxfeed.hookspecs)")
        elif attr in known and not marked:
            problems.append(f"{attr} is not marked with @rxfeed.hookspecs.hookimpl")
    return problems


def _register(pm: pluggy.PluginManager, result: PluginSet, name: str, plugin: Any) -> bool:
    """Register one plugin, refusing bad hooks; False (and a failure) if refused."""
    problems = _hook_problems(plugin)
    if problems:
        result.failures.append((name, "; ".join(problems)))
        return False
    try:
        pm.register(plugin, name=name)
    except Exception as exc:  # pluggy's validation: wrong hook signature, duplicate name
        result.failures.append((name, f"{type(exc).__name__}: {exc}"))
        return False
    return True


def discover(extra_plugins: list[tuple[str, Any]] | None = None) -> PluginSet:
    """Load every allowed entry point of the ``rxfeed`` group and fill the registries.

    :param extra_plugins: ``(name, plugin)`` pairs registered as well, after
        the entry points and as third-party plugins (tests, embedding
        applications).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    overridable = _csv_env("RXFEED_ALLOW_OVERRIDE")
    result = PluginSet(pm, BackendRegistry(overridable), DecoderRegistry(overridable), SinkRegistry(overridable))
    autoload = os.environ.get("RXFEED_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    allowed = _csv_env("RXFEED_PLUGINS")
    blocked = _csv_env("RXFEED_BLOCK_PLUGINS")
    for ep in _entry_points_in_load_order():
        dist = _dist_name(ep)
        if ep.name in blocked:
            result.blocked.append(ep.name)
            continue
        if not autoload and dist != "rxfeed" and ep.name not in allowed:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken plugin must not break discovery
            result.failures.append((ep.name, f"{type(exc).__name__}: {exc}"))
            continue
        if _register(pm, result, ep.name, plugin):
            if dist == "rxfeed":
                result.first_party.add(ep.name)
            result.loaded.append(PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else "?"))
    for name, plugin in extra_plugins or []:
        if _register(pm, result, name, plugin):
            result.loaded.append(PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "(in process)", "-"))
    for hook, registry in (("rxfeed_register_backends", result.backends),
                           ("rxfeed_register_decoders", result.decoders),
                           ("rxfeed_register_sinks", result.sinks)):
        _call_register(pm, hook, registry, result)
    return result


def _call_register(pm: pluggy.PluginManager, hook: str, registry: Any, result: PluginSet) -> None:
    # each plugin's hook is called on its own so one failure stays its own
    for impl in _in_load_order(getattr(pm.hook, hook).get_hookimpls(), result.first_party):
        registry.current_plugin = impl.plugin_name
        registry.current_is_first_party = impl.plugin_name in result.first_party
        try:
            impl.function(registry=registry)
        except Exception as exc:
            result.failures.append((impl.plugin_name, f"{hook}: {type(exc).__name__}: {exc}"))


_CACHE: PluginSet | None = None


def get_plugins(refresh: bool = False) -> PluginSet:
    """The process-wide :class:`PluginSet` (discovered once)."""
    global _CACHE
    if _CACHE is None or refresh:
        _CACHE = discover()
    return _CACHE
