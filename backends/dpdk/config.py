"""Settings of the DPDK backend. Everything is checked before EAL is touched."""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rxfeed.backend_base import DestinationFilters
from rxfeed.config import PluginConfig
from rxfeed.multicast import MulticastConfig

_LCORES = re.compile(r"^[0-9]+([-,][0-9]+)*$")


def _lcore_ids(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


class DpdkConfig(PluginConfig):
    """A DPDK port and the EAL it needs.

    :ivar port: port name (``net_pcap0``, ``net_af_packet0``, a PCI address) or id.
    :ivar lcores: EAL ``-l``: the CPUs; queue i's poller thread is pinned to the
        i-th (a thread that is not an EAL lcore registers itself as one).
    :ivar main_lcore: EAL ``--main-lcore`` (default: the first of ``lcores``).
    :ivar hugepages: True: use reserved hugepages (``--in-memory``: no files
        left behind); False: ``--no-huge`` (ordinary memory; fine for virtual
        devices, slower TLB behaviour on real NICs).
    :ivar memory_mb: EAL ``-m``.
    :ivar file_prefix: EAL ``--file-prefix`` (default ``rxfeed<pid>``).
    :ivar pci_allow: EAL ``-a`` allow-list; empty with ``no_pci`` false: all.
    :ivar no_pci: EAL ``--no-pci`` (virtual devices only).
    :ivar vdevs: EAL ``--vdev`` arguments, e.g. ``net_pcap0,rx_pcap=day.pcap``.
    :ivar eal_extra: further EAL arguments, passed as given.
    :ivar rx_queues: RX queues; > 1 spreads flows with RSS, one poller thread
        (and decoder) per queue, on the lcores in order.
    :ivar rx_desc, tx_desc: descriptor ring sizes.
    :ivar pool_size, pool_cache: the port's mbuf pool, one on the port's NUMA
        socket shared by its queues (size should be 2^n - 1), and each
        lcore's cache in it (0: no cache).
    :ivar promiscuous, all_multicast: port modes (best effort per PMD).
    :ivar filters: ``group:port`` destinations to keep.
    :ivar expected_frames: end of source after this many frames (replay).
    :ivar idle_timeout_s: end of source after this long with no frame (replay; 0: never).
    :ivar nic_ts_unit_ns: ns per unit of the PMD's RX timestamp when the PMD
        has no clock to read (net_pcap: the pcap's unit).
    :ivar nic_timestamps: ``auto``: request ``RTE_ETH_RX_OFFLOAD_TIMESTAMP``
        when the port offers it, use a PMD timestamp when a frame carries one;
        ``on``: the same, a port without the offload is an error; ``off``:
        rx_ts_ns always from the TSC.
    :ivar nic_clock_hz: the NIC clock's documented frequency; 0: measured at
        start from two ``rte_eth_read_clock`` readings 100 ms apart.
    :ivar nic_ts_format: the PMD timestamps of a port with a clock to read
        (``rte_eth_read_clock``): ``ticks`` of that clock, converted through
        the calibration; ``ns`` since the epoch, taken as is (mlx5 in
        real-time timestamp mode); ``auto``: the first stamped frame decides,
        once (ns if within a day of ``CLOCK_REALTIME``, else ticks).
    :ivar register_lcores: a poller thread that is not an EAL lcore registers
        itself (``rte_thread_register``) so the pool's per-lcore cache serves
        it; off: it allocates from the pool's ring directly (and DPDK
        multi-process stays possible).
    :ivar log_level: EAL log level.
    :ivar flow_rules: rte_flow rules steering exactly ``filters`` to the RX
        queues (dpdk_flow.c): ``auto`` tries and falls back to the software
        filters, reported in ``backend_stats.flow_steering`` and warned about;
        ``on`` refuses to start when the PMD cannot; ``off``: software filters
        only. The software filters stay on in every mode.
    :ivar flow_isolate: ``rte_flow_isolate`` (before configure): only what the
        rules match reaches DPDK, the rest stays with the kernel (mlx5's
        bifurcated driver). ``auto``: on for mlx5 when rules are to be
        installed (left again if they fail); ``on``: needs the rules, refuses
        to start without them.
    :ivar flow_queues: the queue of each filter's rule (default: filter i to
        queue i modulo ``rx_queues``).
    :ivar flow_action: ``queue`` (each rule to its queue) or ``rss`` (each rule
        spreads over all RX queues by IPv4/UDP hash; ``flow_queues`` unused).
    :ivar igmp: multicast membership for the filters' groups: a kernel socket
        on the PMD's netdev, or IGMP sent from TX queue 0 on a fully bypassed
        port (docs/backends/multicast.md).
    """

    port: str | int = 0
    lcores: str = "0"
    main_lcore: int | None = None
    hugepages: bool = False
    memory_mb: int = Field(256, ge=16, le=1 << 20)
    file_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$")
    pci_allow: tuple[str, ...] = ()
    no_pci: bool = False
    vdevs: tuple[str, ...] = ()
    eal_extra: tuple[str, ...] = ()
    rx_queues: int = Field(1, ge=1, le=16)
    rx_desc: int = Field(1024, ge=32, le=32768)
    tx_desc: int = Field(512, ge=32, le=32768)
    pool_size: int = Field(8191, ge=255)
    pool_cache: int = Field(256, ge=0, le=512)
    promiscuous: bool = True
    all_multicast: bool = True
    filters: DestinationFilters = ()
    expected_frames: int = Field(0, ge=0)
    idle_timeout_s: float = Field(0.0, ge=0.0)
    nic_ts_unit_ns: float = Field(1.0, gt=0.0)
    flow_rules: Literal["auto", "on", "off"] = "auto"
    flow_isolate: Literal["auto", "on", "off"] = "auto"
    flow_queues: tuple[int, ...] = ()
    flow_action: Literal["queue", "rss"] = "queue"
    nic_timestamps: Literal["auto", "on", "off"] = "auto"
    nic_clock_hz: int = Field(0, ge=0, le=100_000_000_000)
    nic_ts_format: Literal["auto", "ticks", "ns"] = "auto"
    register_lcores: bool = True
    igmp: MulticastConfig = MulticastConfig()
    log_level: str = Field("warning", pattern=r"^(emergency|alert|critical|error|warning|notice|info|debug|[1-8])$")

    @field_validator("lcores", mode="before")
    @classmethod
    def _lcores_exist(cls, v: object) -> str:
        v = str(v) if isinstance(v, int) else v
        if not isinstance(v, str) or not _LCORES.match(v):
            raise ValueError(f"{v!r} is not an lcore list like '0' or '0-1' or '0,2'")
        missing = _lcore_ids(v) - os.sched_getaffinity(0)
        if missing:
            raise ValueError(f"lcore(s) {sorted(missing)} are not CPUs this process may use "
                             f"(allowed: {sorted(os.sched_getaffinity(0))})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DpdkConfig":
        if self.main_lcore is not None and self.main_lcore not in _lcore_ids(self.lcores):
            raise ValueError(f"main_lcore {self.main_lcore} is not in lcores {self.lcores!r}")
        if self.pool_cache * 1.5 > self.pool_size:
            raise ValueError(f"pool_cache {self.pool_cache} is too large for pool_size {self.pool_size}")
        if self.rx_queues > len(_lcore_ids(self.lcores)):
            raise ValueError(f"rx_queues {self.rx_queues} needs as many lcores; lcores is {self.lcores!r}")
        if self.pool_size < self.rx_desc * self.rx_queues:
            raise ValueError(f"pool_size {self.pool_size} cannot fill rx_desc {self.rx_desc} descriptors "
                             f"x {self.rx_queues} RX queues (one pool per port, shared by its queues)")
        return self

    @model_validator(mode="after")
    def _flow_consistent(self) -> "DpdkConfig":
        if self.flow_queues and len(self.flow_queues) != len(self.filters):
            raise ValueError(f"flow_queues has {len(self.flow_queues)} entries for {len(self.filters)} filters "
                             "(one queue per filter, or none for the default spread)")
        bad = [q for q in self.flow_queues if not 0 <= q < self.rx_queues]
        if bad:
            raise ValueError(f"flow_queues {bad} are not RX queues of rx_queues {self.rx_queues}")
        if self.flow_isolate == "on" and (self.flow_rules == "off" or not self.filters):
            raise ValueError("flow_isolate = on needs flow rules (filters, flow_rules auto or on): "
                             "an isolated port without rules receives nothing")
        if self.flow_isolate == "on" and self.igmp.mode == "nic":
            raise ValueError("flow_isolate = on with igmp.mode = nic: no rule steers IGMP, so queries would never "
                             "reach the responder and the switch would drop the groups")
        if self.flow_rules == "on" and not self.filters:
            raise ValueError("flow_rules = on needs filters: the rules steer exactly the filters")
        return self

    def lcore_list(self) -> list[int]:
        """The lcores in order (queue i is polled on the i-th)."""
        return sorted(_lcore_ids(self.lcores))

    def eal_args(self) -> list[str]:
        """The EAL argument list this config means."""
        args = ["-l", self.lcores]
        if self.main_lcore is not None:
            args += ["--main-lcore", str(self.main_lcore)]
        args += ["--in-memory"] if self.hugepages else ["--no-huge"]
        args += ["-m", str(self.memory_mb), "--file-prefix", self.file_prefix or f"rxfeed{os.getpid()}"]
        if self.no_pci:
            args.append("--no-pci")
        for a in self.pci_allow:
            args += ["-a", a]
        args += [f"--vdev={v}" for v in self.vdevs]
        args.append(f"--log-level={self.log_level}")
        args.append("--no-telemetry")  # its socket banner would go to stdout
        return args + list(self.eal_extra)
