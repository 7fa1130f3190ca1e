"""The DPDK backend class."""

from __future__ import annotations

import ipaddress
import os
import warnings
from pathlib import Path
from typing import Any

from rxfeed.backend_base import NativeBackend, NativeReader, destinations
from rxfeed.multicast import GroupMembership

from .config import DpdkConfig
from .membership import port_network, vdev_args


def load_extension() -> Any:
    """The compiled extension, or a clear error if this build has none."""
    try:
        from . import _dpdk
    except ImportError as exc:
        raise RuntimeError("the DPDK backend is not built: install DPDK's development files "
                           "(Debian: apt-get install libdpdk-dev pkg-config) and rebuild rxfeed "
                           f"(meson feature 'dpdk'); import said: {exc}") from None
    return _dpdk


def hugepages_free() -> int:
    """Free hugepages reported by the kernel (0 if unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def flow_options(config: DpdkConfig) -> dict[str, Any]:
    """The device's flow steering arguments (dpdk_flow.c) from the config."""
    return {"filters": destinations(config.filters), "flow_rules": config.flow_rules,
            "flow_isolate": config.flow_isolate, "flow_queues": config.flow_queues,
            "flow_rss": config.flow_action == "rss"}


def flow_warning(config: DpdkConfig, steering: dict[str, Any]) -> str | None:
    """What to say when flow rules were asked for (auto) but only the software
    filters run, or isolation (auto) was wanted and did not happen; else None."""
    if config.flow_rules == "off" or not config.filters or not steering["reason"]:
        return None
    what = "rte_flow rules in place" if steering["mode"] == "rte_flow" else "no rte_flow rules, software filters only"
    return f"DPDK port {config.port}: {what}: {steering['reason']}"


def hold_membership(device: Any, config: DpdkConfig) -> GroupMembership:
    """The port's multicast membership for the run (``config.igmp``; see
    docs/backends/multicast.md): ``kernel`` holds kernel
    sockets on the PMD's netdev; ``nic`` starts IGMP from TX queue 0
    (dpdk_igmp.c); a replay has none. Before the queues' pollers are made."""
    cfg = config.igmp
    driver, if_index = device.driver()
    port_name = config.port if isinstance(config.port, str) else ""
    isolated = bool(device.flow_steering()["isolated"])
    owns, iface = port_network(driver, vdev_args(config.vdevs, port_name), if_index, isolated)
    if isolated and cfg.mode == "nic":
        raise ValueError("igmp.mode=nic on a flow-isolated port: the querier's queries go to the kernel, "
                         "not to DPDK; use igmp.mode=auto (kernel sockets) or flow_isolate=off")
    held = GroupMembership(cfg, config.filters, backend="dpdk", kernel_owns_port=owns, can_send=True,
                           interface=iface)
    if held.mode == "nic" and held.groups:
        device.igmp_start(held.groups, cfg.version, int(ipaddress.IPv4Address(cfg.report_source_ip)),
                          cfg.robustness, cfg.unsolicited_interval_s)
    return held


def igmp_stats(device: Any) -> dict[str, Any]:
    """``backend_stats["igmp"]``: the membership's mode and groups, in ``nic``
    mode with the TX-side counters (``leaves_sent`` counts once the device closed)."""
    held = device.membership
    out = held.stats() if held is not None else {"mode": "off"}
    counters = device.igmp_counters()
    return {**out, "interface": "DPDK TX queue 0", **counters} if counters else out


def open_device(config: DpdkConfig) -> Any:
    """Start EAL (once per process) and the port ``config`` names, with all
    its RX queues, and its multicast membership (``config.igmp``)."""
    dpdk = load_extension()
    dpdk.eal_init(config.eal_args())
    device = dpdk.DpdkDevice(config.port, config.rx_queues, config.rx_desc, config.tx_desc,
                             config.pool_size, config.pool_cache, config.promiscuous,
                             config.all_multicast, config.expected_frames, config.idle_timeout_s,
                             config.nic_ts_unit_ns, nic_timestamps=config.nic_timestamps,
                             nic_clock_hz=config.nic_clock_hz, register_lcore=config.register_lcores,
                             nic_ts_format=config.nic_ts_format,
                             **flow_options(config))
    flow_note = flow_warning(config, device.flow_steering())
    if flow_note:
        warnings.warn(flow_note, RuntimeWarning, stacklevel=3)
    try:
        device.membership = hold_membership(device, config)
    except BaseException:
        device.close()
        raise
    return device


def warn_numa(config: DpdkConfig, device: Any, queue: int, cpu: int) -> None:
    """RuntimeWarning when queue ``queue``'s poller (pinned to ``cpu``) sits on
    another NUMA node than the port (and so than its mbuf pool)."""
    poller = device.lcore_socket(cpu)
    if device.port_socket >= 0 and poller >= 0 and poller != device.port_socket:
        warnings.warn(f"DPDK port {config.port} (and its mbuf pool) is on NUMA node {device.port_socket}, the "
                      f"poller of queue {queue} on lcore {cpu} on node {poller}: every packet crosses the "
                      "interconnect", RuntimeWarning, stacklevel=4)


class DpdkBackend(NativeBackend):
    """Busy-polls one RX queue of a DPDK port; frames are parsed in the mbufs
    (no copy) and the burst is freed in bulk after the decoder is done.
    ``self.reader`` is the queue's poller, ``self.device`` the port."""

    name = "dpdk"
    Config = DpdkConfig
    description = "DPDK poll-mode driver (any PMD: NICs, net_pcap, net_af_packet, net_af_xdp)"

    def __init__(self, config: DpdkConfig, device: Any = None, queue: int = 0) -> None:
        self._owns_device = device is None
        self.device = open_device(config) if device is None else device
        self.queue_id = queue
        super().__init__(config)
        self.cpu = config.lcore_list()[queue]
        warn_numa(config, self.device, queue, self.cpu)
        self.source = next((v.split("rx_pcap=")[1].split(",")[0] for v in config.vdevs if "rx_pcap=" in v), None)

    def open_reader(self, config: DpdkConfig) -> NativeReader:
        return self.device.queue(self.queue_id, destinations(config.filters))

    def queue_backends(self) -> list["DpdkBackend"]:
        """One backend per RX queue (this one is queue 0), sharing the device:
        run each in its own pipeline and thread (``rxfeed.pipeline.run_parallel``)."""
        return [self] + [DpdkBackend(self.config, self.device, q) for q in range(1, self.device.rx_queues)]

    @classmethod
    def config_for_source(cls, path: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """Replay a pcap through DPDK's net_pcap virtual device: EAL arguments
        derived for the user (each overridable)."""
        from rxfeed import _runloop
        from rxfeed.backends.pcap_replay._pcap import PcapReader

        if not os.path.isfile(path):
            raise ValueError(f"{path}: DPDK's net_pcap replays a regular pcap file, not a pipe, FIFO or device "
                             "(use the pcap_replay backend, or save the stream to a file first)")
        if open(path, "rb").read(2) == b"\x1f\x8b":
            raise ValueError(f"{path}: DPDK's net_pcap reads plain pcap only; gunzip it first")
        reader = PcapReader(path)  # count frames so the replay ends exactly at the end of the file
        _runloop.run_native(reader.capsule(), _runloop.null_decoder(), 256, 0, 0.0, False)
        frames = reader.stats()["frames"]
        reader.close()
        cfg: dict[str, Any] = {"port": "net_pcap0", "vdevs": [f"net_pcap0,rx_pcap={path}"], "no_pci": True,
                               "lcores": str(min(os.sched_getaffinity(0))),
                               "hugepages": hugepages_free() >= 128, "expected_frames": frames,
                               "idle_timeout_s": 2.0, "nic_ts_unit_ns": 1000.0}
        cfg.update(overrides)
        return cfg

    # What the conformance kit needs (``pytest --rxfeed-conformance dpdk``). EAL
    # starts once per process and a closed net_pcap port cannot be opened again,
    # so the kit runs each of its tests in a process of its own.
    conformance_one_per_process = True

    @classmethod
    def conformance_source(cls, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """net_pcap over a capture with one UDP datagram per payload."""
        from rxfeed.tools.generator import udp_frame, write_pcap

        write_pcap(tmp_path / "nic.pcap", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)])
        return cls.config_for_source(str(tmp_path / "nic.pcap"), {"idle_timeout_s": 1.0})

    @classmethod
    def conformance_corrupt(cls, tmp_path: Path) -> list[dict[str, Any]]:
        """A port that does not exist and an mbuf pool too small for the rings
        (the same EAL arguments as a good source)."""
        good = cls.conformance_source(tmp_path, [bytes(40)] * 3)
        return [{**good, "port": "net_nosuch0"}, {**good, "pool_size": 300}]

    def extra_stats(self) -> dict[str, Any]:
        dpdk = load_extension()
        steering = self.device.flow_steering()
        flow_note = flow_warning(self.config, steering) if self.queue_id == 0 else None  # once per device
        return {"dpdk_version": dpdk.version(), "eal_args": " ".join(dpdk.eal_args() or []),
                "pool": self.device.pool_info(), "igmp": igmp_stats(self.device), "flow_steering": steering,
                **({"warnings": [flow_note]} if flow_note else {})}

    def close(self) -> None:
        super().close()
        if self._owns_device:
            self.device.close()
