"""Who answers IGMP for a DPDK port (rxfeed.multicast): where the kernel
still sees the port's IGMP traffic (AF_PACKET and net_pcap on a live
interface copy frames, TAP is the kernel's own, mlx5 with flow isolation
leaves everything but the rules' flows to the kernel) a kernel socket joins;
where DPDK takes it all (a vfio-bound NIC, an AF_XDP queue whose XDP program
redirects every frame, mlx5 without isolation) the backend sends IGMP from
its TX queue; a replay or a software ring has no network at all."""

from __future__ import annotations

import socket

#: PMDs that run over a kernel network interface (DPDK's driver names, as
#: ``rte_eth_dev_info.driver_name`` gives them).
KERNEL_NETDEV_PMDS = frozenset({"net_af_packet", "net_tap"})
#: PMDs over a kernel netdev whose traffic DPDK takes: the kernel sees IGMP
#: only when flow isolation hands it back (mlx5, mlx4), or never (AF_XDP:
#: the XDP program redirects the bound queue's every frame to the socket).
BIFURCATED_PMDS = frozenset({"mlx5_pci", "net_mlx5", "net_mlx4", "mlx4_pci"})
XDP_PMDS = frozenset({"net_af_xdp"})
#: PMDs with no network behind them.
NO_NETWORK_PMDS = frozenset({"net_ring", "net_null", "net_memif", "net_vhost"})
#: PMD arguments that name the kernel interface they run over.
_IFACE_KEYS = ("iface", "rx_iface", "rx_iface_in")


def vdev_args(vdevs: tuple[str, ...], port_name: str) -> dict[str, str]:
    """The ``key=value`` arguments of the ``--vdev`` that created ``port_name``."""
    for v in vdevs:
        name, _, rest = v.partition(",")
        if name == port_name:
            return dict(kv.partition("=")[::2] for kv in rest.split(",") if kv)
    return {}


def port_network(driver: str, args: dict[str, str], if_index: int,
                 isolated: bool = False) -> tuple[bool | None, str | None]:
    """``(kernel sees IGMP, kernel interface)`` of a port: True for PMDs
    whose netdev's stack still receives the queries (and for mlx5 when flow
    ``isolated``), False where DPDK takes every frame (vfio, AF_XDP, mlx5
    not isolated), None for replays and software rings; the interface's name
    when there is one."""
    iface = next((args[k] for k in _IFACE_KEYS if args.get(k)), None)
    if driver == "net_pcap":
        return (True, iface) if iface else (None, None)  # rx_pcap=FILE: a replay
    if driver in NO_NETWORK_PMDS:
        return None, None
    if not iface and if_index > 0:
        try:
            iface = socket.if_indextoname(if_index)
        except OSError:
            iface = None
    if driver in KERNEL_NETDEV_PMDS:
        return True, iface
    if driver in BIFURCATED_PMDS:
        return isolated, iface
    return False, iface if driver in XDP_PMDS else None
