"""Who owns a DPDK port's network side, for multicast membership
(rxfeed.multicast): a PMD over a kernel netdev (AF_PACKET, AF_XDP, TAP,
mlx5's bifurcated driver, net_pcap on a live interface) leaves the kernel in
charge, so a kernel socket joins; a NIC bound to vfio-pci is fully bypassed,
so the backend sends IGMP from its TX queue; a replay or a software ring has
no network at all."""

from __future__ import annotations

import socket

#: PMDs that run over a kernel network interface (DPDK's driver names, as
#: ``rte_eth_dev_info.driver_name`` gives them).
KERNEL_NETDEV_PMDS = frozenset({"net_af_packet", "net_af_xdp", "net_tap", "mlx5_pci", "net_mlx5", "net_mlx4",
                                "mlx4_pci"})
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


def port_network(driver: str, args: dict[str, str], if_index: int) -> tuple[bool | None, str | None]:
    """``(kernel_owns_port, kernel interface)`` of a port: True with the
    netdev's name for PMDs over a kernel interface, None for replays and
    software rings, False for a fully bypassed NIC."""
    iface = next((args[k] for k in _IFACE_KEYS if args.get(k)), None)
    if driver == "net_pcap":
        return (True, iface) if iface else (None, None)  # rx_pcap=FILE: a replay
    if driver in NO_NETWORK_PMDS:
        return None, None
    if driver in KERNEL_NETDEV_PMDS:
        if not iface and if_index > 0:
            try:
                iface = socket.if_indextoname(if_index)
            except OSError:
                iface = None
        return True, iface
    return False, None
