"""Plugin discovery: the ``rxfeed`` entry-point group, loaded one plugin at a time.

Environment:

``RXFEED_DISABLE_PLUGIN_AUTOLOAD=1``
    load only rxfeed's own entry points (and those named in ``RXFEED_PLUGINS``).
``RXFEED_PLUGINS=a,b``
    with autoload off, the third-party entry points to load anyway.
``RXFEED_BLOCK_PLUGINS=a,b``
    never load these entry points (first-party ones included).

A plugin that fails to import or whose hook raises is recorded in
:attr:`PluginSet.failures` (name, error) and skipped; discovery goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
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

    def detect(self, path: str, head: bytes) -> tuple[str, str] | None:
        return self.manager.hook.rxfeed_detect_source(path=path, head=head)

    def native_info(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for part in self.manager.hook.rxfeed_native_info():
            if part:
                out.update(part)
        return out


def _csv_env(name: str) -> set[str]:
    return {s.strip() for s in os.environ.get(name, "").split(",") if s.strip()}


def discover(extra_plugins: list[tuple[str, Any]] | None = None) -> PluginSet:
    """Load every allowed entry point of the ``rxfeed`` group and fill the registries.

    :param extra_plugins: ``(name, plugin)`` pairs registered as well (tests,
        embedding applications).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    result = PluginSet(pm, BackendRegistry(), DecoderRegistry(), SinkRegistry())
    autoload = os.environ.get("RXFEED_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    allowed = _csv_env("RXFEED_PLUGINS")
    blocked = _csv_env("RXFEED_BLOCK_PLUGINS")
    seen: set[str] = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in blocked:
            result.blocked.append(ep.name)
            continue
        if not autoload and dist != "rxfeed" and ep.name not in allowed:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not break discovery
            result.failures.append((ep.name, f"{type(exc).__name__}: {exc}"))
            continue
        result.loaded.append(PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else "?"))
    for name, plugin in extra_plugins or []:
        pm.register(plugin, name=name)
        result.loaded.append(PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "(in process)", "-"))
    _call_register(pm, "rxfeed_register_backends", result.backends, result)
    _call_register(pm, "rxfeed_register_decoders", result.decoders, result)
    _call_register(pm, "rxfeed_register_sinks", result.sinks, result)
    return result


def _call_register(pm: pluggy.PluginManager, hook: str, registry: Any, result: PluginSet) -> None:
    # each plugin's hook is called on its own so one failure stays its own
    for impl in getattr(pm.hook, hook).get_hookimpls():
        registry.current_plugin = impl.plugin_name
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
