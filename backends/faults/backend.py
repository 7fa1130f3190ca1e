"""The faults backend: seeded fault injection around any backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed.config import ConfigError, validate
from rxfeed.interfaces import RxBackend

from ._faults import FaultInjector, PythonSource
from .config import FaultsConfig, parse_spec


def _inner_class(name: str) -> type[RxBackend[Any]]:
    """The registered backend ``name``; an unknown name is a config error."""
    from rxfeed.plugins import get_plugins

    try:
        return get_plugins().backends.get(name)
    except KeyError as exc:
        raise ConfigError(f"backend.faults.backend: {exc.args[0]}") from None


class FaultsBackend(RxBackend[FaultsConfig]):
    """Wraps another backend and drops, duplicates, reorders, delays,
    truncates or corrupts its packets, or kills the line, from one seed.

    The injector is C: around a native backend the run stays on the nogil
    path; a pure-Python backend is read through a C table that calls its
    ``read_burst`` once per burst. Build it by name (``config.backend``,
    ``config.backend_config``) or around an instance with :meth:`wrap`.
    """

    name = "faults"
    Config = FaultsConfig
    #: ``"drop=0.01,seed=7"`` -> settings (the CLI's ``--faults``)
    parse_spec = staticmethod(parse_spec)
    description = "seeded fault injection (drop, duplicate, reorder, delay, truncate, corrupt, kill) around a backend"

    def __init__(self, config: FaultsConfig, inner: RxBackend[Any] | None = None) -> None:
        super().__init__(config)
        if inner is None:
            inner = self._open_inner(config)
        self.inner: RxBackend[Any] = inner
        self.stream = inner.stream  # type: ignore[misc]  # the inner's kind of packets
        self.source = getattr(inner, "source", None) or getattr(inner.config, "path", None)
        cpu = getattr(inner, "cpu", None)
        if cpu is not None:
            self.cpu = cpu
        try:
            self.injector = self._injector(inner, config)
        except BaseException:
            inner.close()
            raise

    @staticmethod
    def _injector(inner: RxBackend[Any], c: FaultsConfig) -> FaultInjector:
        """The C injector around ``inner``'s table (a Python backend's: one built over ``read_burst``)."""
        capsule = inner.native_capsule()
        python_source = None
        if capsule is None:
            python_source = PythonSource(inner)
            capsule = python_source.capsule()
        return FaultInjector(
            capsule, (inner, python_source), c.rates(), c.seed, c.reorder_distance,
            int(c.delay_ms * 1e6), -1 if c.kill_at is None else int(c.kill_at * 1e9),
            -1 if c.kill_after is None else c.kill_after, c.hold_max, c.arena_mb << 20)

    @staticmethod
    def _open_inner(config: FaultsConfig) -> RxBackend[Any]:
        if not config.backend:
            raise ConfigError("backend.faults.backend: name the backend to wrap (or use FaultsBackend.wrap)")
        if config.backend == FaultsBackend.name:
            raise ConfigError("backend.faults.backend: faults cannot wrap itself by name (use FaultsBackend.wrap)")
        cls = _inner_class(config.backend)
        return cls(validate(cls.Config, config.backend_config, f"backend.{config.backend}"))

    @classmethod
    def config_for_source(cls, path: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """``rxfeed replay FILE -b faults -o backend=NAME``: the inner backend's
        settings for ``FILE``; the inner backend must be named."""
        inner = overrides.get("backend")
        if not inner or not isinstance(inner, str):
            raise ConfigError("backend faults: name the backend to wrap, e.g. -o backend=pcap_replay "
                              "(or use --faults SPEC with any backend)")
        icls = _inner_class(inner)
        return {**overrides, "backend_config": icls.config_for_source(path, dict(overrides.get("backend_config", {})))}

    @classmethod
    def wrap(cls, inner: RxBackend[Any], config: FaultsConfig | dict[str, Any] | str | None = None,
             **settings: Any) -> "FaultsBackend":
        """``inner`` with faults: ``config`` a :class:`FaultsConfig`, a dict, or
        a ``--faults`` spec string (``"drop=0.01,seed=7"``); ``settings``
        override. The wrapper owns ``inner``: closing it closes ``inner``."""
        if isinstance(config, str):
            config = parse_spec(config)
        if isinstance(config, FaultsConfig):
            config = config.model_dump()
        return cls(validate(FaultsConfig, {**(config or {}), **settings}, "faults"), inner)

    def native_capsule(self) -> Any:
        return self.injector.capsule()

    def stats(self) -> dict[str, Any]:
        """The inner backend's counters, plus ``faults``: what was injected."""
        return {**self.inner.stats(), "inner_backend": self.inner.name, "faults": self.injector.stats()}

    def progress(self) -> tuple[int, int] | None:
        return self.inner.progress()

    def close(self) -> None:
        """Give the inner backend back what the wrapper still borrows, then close it."""
        self.injector.close()
        self.inner.close()

    # what the conformance kit needs: with every rate 0, the inner backend's behaviour
    @staticmethod
    def conformance_source(tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """pcap_replay over the payloads, no faults."""
        from rxfeed.backends.pcap_replay.backend import PcapReplayBackend

        return {"backend": "pcap_replay", "backend_config": PcapReplayBackend.conformance_source(tmp_path, payloads)}

    @staticmethod
    def conformance_corrupt(tmp_path: Path) -> list[dict[str, Any]]:
        """The inner backend's broken sources, and a missing inner backend."""
        from rxfeed.backends.pcap_replay.backend import PcapReplayBackend

        return [{"backend": "pcap_replay", "backend_config": c, "drop": 0.1, "corrupt": 0.1}
                for c in PcapReplayBackend.conformance_corrupt(tmp_path)] + [{"backend": "no_such_backend"}]
