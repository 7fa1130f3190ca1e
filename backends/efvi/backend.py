"""The ef_vi backend class."""

from __future__ import annotations

from typing import Any

from rxfeed.backends.pcap_replay.config import parse_destination
from rxfeed.interfaces import RxBackend

from .config import EfviConfig


def load_extension() -> Any:
    try:
        from . import _efvi
    except ImportError as exc:
        raise RuntimeError("the ef_vi backend is not built: build rxfeed with Onload's ef_vi headers and "
                           "libciul (meson -Donload_prefix=...; see docs/backends/efvi.md); "
                           f"import said: {exc}") from None
    return _efvi


class EfviBackend(RxBackend):
    """Receives on a Solarflare/AMD NIC with ef_vi: busy-polls the event queue
    and reads each frame in place in its registered DMA buffer."""

    name = "efvi"
    Config = EfviConfig
    description = "Solarflare/AMD ef_vi (Onload libciul), zero-copy DMA buffers"

    def __init__(self, config: EfviConfig) -> None:
        super().__init__(config)
        efvi = load_extension()
        self.receiver = efvi.EfviReceiver(config.interface, config.rx_ring, config.ev_ring, config.refill_batch,
                                          config.timestamps, [parse_destination(f) for f in config.filters],
                                          config.expected_frames, config.idle_timeout_s)

    def native_capsule(self) -> Any:
        return self.receiver.capsule()

    def stats(self) -> dict[str, Any]:
        from . import _efvi

        s = self.receiver.stats()
        s["built_against"] = _efvi.BUILT_AGAINST
        return s

    def close(self) -> None:
        self.receiver.close()
