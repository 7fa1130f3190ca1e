"""Settings of the ef_vi backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rxfeed.backend_base import DestinationFilters, parse_destination
from rxfeed.config import PluginConfig
from rxfeed.multicast import MulticastConfig


class EfviConfig(PluginConfig):
    """A Solarflare/AMD interface received with ef_vi.

    :ivar interface: the Solarflare/AMD interface (e.g. ``enp1s0f0``).
    :ivar filters: ``group:port`` multicast (or unicast) UDP destinations to
        steer to this VI (``ef_filter_spec_set_ip4_local``); both parts exact.
    :ivar rx_ring: RX descriptors (512, 1024, 2048 or 4096 on EF10).
    :ivar ev_ring: event queue entries (-1: the driver's default).
    :ivar refill_batch: repost buffers when at least this many are free.
    :ivar timestamps: the NIC's RX timestamps (EF10: ``EF_VI_RX_TIMESTAMPS``, from the RX
        prefix; efct: always recorded), read with ``ef_vi_receive_get_precise_timestamp``.
    :ivar datapath: the receive loop: ``ef10`` (posted DMA buffers, X2), ``efct`` (X3:
        NIC-owned superbuffers, RX_REF events) or ``auto`` (what the VI's architecture says).
    :ivar future_peek: efct only: look at each frame's headers with
        ``efct_vi_rx_future_peek`` before its completion (docs/backends/efvi.md).
    :ivar expected_frames: end of source after this many frames (replays through the stand-in).
    :ivar idle_timeout_s: end of source after this long without an event (0: never).
    :ivar igmp: multicast membership: the kernel, which still owns the port,
        joins the filters' groups for the run (docs/backends/multicast.md).
    """

    interface: str = Field(min_length=1, max_length=15)
    filters: DestinationFilters = ()
    rx_ring: int = Field(512, ge=64, le=4096)
    ev_ring: int = Field(-1, ge=-1, le=32768)
    refill_batch: int = Field(16, ge=1, le=64)
    timestamps: bool = False
    datapath: Literal["auto", "ef10", "efct"] = "auto"
    future_peek: bool = False
    expected_frames: int = Field(0, ge=0)
    idle_timeout_s: float = Field(0.0, ge=0.0)
    igmp: MulticastConfig = MulticastConfig()

    @field_validator("filters")
    @classmethod
    def _exact(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for f in v:
            ip, port = parse_destination(f)
            if ip == 0 or port == 0:
                raise ValueError(f"{f!r}: ef_vi filters need an exact group and port (no wildcards)")
        return v

    @field_validator("rx_ring")
    @classmethod
    def _pow2(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"{v} is not a power of two")
        return v
