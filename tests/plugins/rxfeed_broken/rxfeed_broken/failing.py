"""Plugins that register fine and fail when used."""
from __future__ import annotations

import errno
from collections.abc import Sequence
from typing import Any

from rxfeed import Packet, PluginConfig, PythonDecoder, RxBackend
from rxfeed.hookspecs import hookimpl


class OSErrorBackend(RxBackend[PluginConfig]):
    """Its constructor raises an OSError (a device it cannot open)."""

    name, Config = "broken_oserror", PluginConfig

    def __init__(self, config: PluginConfig) -> None:
        raise OSError(errno.EACCES, "Permission denied", "/dev/broken0")

    def read_burst(self, max_packets: int) -> list[Any] | None:
        return None


class MissingModuleBackend(RxBackend[PluginConfig]):
    """Its constructor needs a module that is not installed."""

    name, Config = "broken_nomod", PluginConfig

    def __init__(self, config: PluginConfig) -> None:
        import nomod_rxfeed_broken  # type: ignore[import-not-found]  # noqa: F401

    def read_burst(self, max_packets: int) -> list[Any] | None:
        return None


class BuggyBackend(RxBackend[PluginConfig]):
    """Its constructor has a bug."""

    name, Config = "broken_bug", PluginConfig

    def __init__(self, config: PluginConfig) -> None:
        self.fd = None
        self.fd.fileno()  # type: ignore[attr-defined]

    def read_burst(self, max_packets: int) -> list[Any] | None:
        return None


class FailingSourceConfig(PluginConfig):
    #: bursts delivered before the source fails
    good_bursts: int = 2


class FailingSourceBackend(RxBackend[FailingSourceConfig]):
    """Delivers ``good_bursts`` bursts of 4 packets, then its source fails."""

    name, Config = "broken_source", FailingSourceConfig

    def __init__(self, config: FailingSourceConfig) -> None:
        super().__init__(config)
        self.bursts = 0

    def read_burst(self, max_packets: int) -> list[Any] | None:
        if self.bursts == self.config.good_bursts:
            raise ConnectionResetError("the feed went away")
        self.bursts += 1
        return [Packet(b"\x00\x00\x00%c\x01q\x01x" % (4 * self.bursts - 3 + i), rx_ts_ns=1) for i in range(4)]


class FailingDecoder(PythonDecoder[PluginConfig]):
    """Counts packets, and raises on the third burst."""

    name, Config = "broken_decoder", PluginConfig

    def __init__(self, config: PluginConfig | None = None) -> None:
        super().__init__(config or PluginConfig())
        self.packets = self.bursts = 0

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.bursts += 1
        if self.bursts == 3:
            raise KeyError("no handler for this packet")
        self.packets += len(packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "messages": self.packets, "messages_per_type": {"p": self.packets}}


class NoKitDecoder(PythonDecoder[PluginConfig]):
    """Decodes fine, but gives the conformance kit no ``conformance_samples()``:
    ``pytest --rxfeed-conformance broken_no_kit`` must fail naming that."""

    name, Config = "broken_no_kit", PluginConfig

    def __init__(self, config: PluginConfig | None = None) -> None:
        super().__init__(config or PluginConfig())
        self.packets = 0

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.packets += len(packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": self.packets, "messages": 0}


class Failing:
    @hookimpl
    def rxfeed_register_backends(self, registry: Any) -> None:
        for cls in (OSErrorBackend, MissingModuleBackend, BuggyBackend, FailingSourceBackend):
            registry.add(cls)

    @hookimpl
    def rxfeed_register_decoders(self, registry: Any) -> None:
        registry.add(FailingDecoder)
        registry.add(NoKitDecoder)


failing = Failing()
