"""The ef_vi backend class."""

from __future__ import annotations

from typing import Any

from rxfeed.backend_base import NativeBackend, NativeReader, destinations
from rxfeed.multicast import GroupMembership

from .config import EfviConfig


def load_extension() -> Any:
    """The compiled extension, or a clear error if this build has none."""
    try:
        from . import _efvi
    except ImportError as exc:
        raise RuntimeError("the ef_vi backend is not built: build rxfeed with Onload's ef_vi headers and "
                           "libciul (meson -Donload_prefix=...; see docs/backends/efvi.md); "
                           f"import said: {exc}") from None
    return _efvi


class EfviBackend(NativeBackend):
    """Receives on a Solarflare/AMD NIC with ef_vi: busy-polls the event queue
    and reads each frame in place, in its registered DMA buffer (EF10) or in
    the NIC's superbuffer (X3 efct)."""

    name = "efvi"
    Config = EfviConfig
    description = "Solarflare/AMD ef_vi (Onload libciul), zero-copy: posted DMA buffers (X2) or X3 efct"

    def __init__(self, config: EfviConfig) -> None:
        super().__init__(config)
        try:  # the kernel keeps the port's netdev: it joins for us
            self.membership = GroupMembership(config.igmp, config.filters, backend="efvi", kernel_owns_port=True,
                                              can_send=False, interface=config.interface)
        except BaseException:
            self.reader.close()
            raise

    def open_reader(self, config: EfviConfig) -> NativeReader:
        return load_extension().EfviReceiver(config.interface, config.rx_ring, config.ev_ring, config.refill_batch,
                                             config.timestamps, destinations(config.filters),
                                             config.expected_frames, config.idle_timeout_s, config.datapath,
                                             config.future_peek)

    def extra_stats(self) -> dict[str, Any]:
        return {"built_against": load_extension().BUILT_AGAINST, "igmp": self.membership.stats()}

    def close(self) -> None:
        super().close()
        self.membership.close()
