"""The faults backend: seeded fault injection around any backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rxfeed.backend_base import WrapperBackend
from rxfeed.interfaces import RxBackend

from ._faults import FaultInjector
from .config import FaultsConfig, parse_spec


class FaultsBackend(WrapperBackend[FaultsConfig]):
    """Wraps another backend and drops, duplicates, reorders, delays,
    truncates or corrupts its packets, or kills the line, from one seed.

    The injector is C: around a native backend the run stays on the nogil
    path; a pure-Python backend is read through a C table that calls its
    ``read_burst`` once per burst. Build it by name (``config.backend``,
    ``config.backend_config``) or around an instance with :meth:`wrap`
    (:class:`~rxfeed.backend_base.WrapperBackend`).
    """

    name = "faults"
    Config = FaultsConfig
    #: ``"drop=0.01,seed=7"`` -> settings (the CLI's ``--faults``)
    parse_spec = staticmethod(parse_spec)
    description = "seeded fault injection (drop, duplicate, reorder, delay, truncate, corrupt, kill) around a backend"
    cli_option = "--faults SPEC"

    def open_wrapper(self, config: FaultsConfig) -> None:
        """The C injector around the inner backend's table."""
        capsule, keep_alive = self.inner_table()
        self.injector = FaultInjector(
            capsule, keep_alive, config.rates(), config.seed, config.reorder_distance, int(config.delay_ms * 1e6),
            -1 if config.kill_at is None else int(config.kill_at * 1e9),
            -1 if config.kill_after is None else config.kill_after, config.hold_max, config.arena_mb << 20)

    @classmethod
    def wrap(cls, inner: RxBackend[Any], config: FaultsConfig | dict[str, Any] | str | None = None,
             **settings: Any) -> "FaultsBackend":
        """``inner`` with faults: ``config`` a :class:`FaultsConfig`, a dict, or
        a ``--faults`` spec string (``"drop=0.01,seed=7"``); ``settings``
        override. The wrapper owns ``inner``: closing it closes ``inner``."""
        return super().wrap(inner, parse_spec(config) if isinstance(config, str) else config, **settings)

    def native_capsule(self) -> Any:
        return self.injector.capsule()

    def wrapper_stats(self) -> dict[str, Any]:
        """``faults``: what was injected (added to the inner backend's counters)."""
        return {"faults": self.injector.stats()}

    def close_wrapper(self) -> None:
        """Give the inner backend back what the wrapper still borrows (before it closes)."""
        self.injector.close()

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
