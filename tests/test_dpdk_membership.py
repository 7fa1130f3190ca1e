"""Which DPDK ports rxfeed joins groups for, and how (backends/dpdk/membership.py)."""

from __future__ import annotations

import pytest

from rxfeed.backends.dpdk.membership import port_network, vdev_args


def test_vdev_arguments_of_the_port():
    vdevs = ("net_pcap0,rx_pcap=/tmp/day.pcap", "net_af_packet1,iface=eth3,framecnt=16")
    assert vdev_args(vdevs, "net_af_packet1") == {"iface": "eth3", "framecnt": "16"}
    assert vdev_args(vdevs, "net_pcap0") == {"rx_pcap": "/tmp/day.pcap"}
    assert vdev_args(vdevs, "0000:3b:00.0") == {}


@pytest.mark.parametrize("driver, args, if_index, isolated, want", [
    ("net_pcap", {"rx_pcap": "day.pcap"}, 0, False, (None, None)),  # a replay: no network
    ("net_pcap", {"iface": "eth1"}, 0, False, (True, "eth1")),      # pcap on a live interface
    ("net_af_packet", {"iface": "veth0"}, 0, False, (True, "veth0")),  # AF_PACKET copies: the kernel sees all
    ("net_af_xdp", {"iface": "veth1"}, 0, False, (False, "veth1")),  # XDP redirects the queue's every frame
    ("mlx5_pci", {}, 1, True, (True, "lo")),                         # isolated: IGMP stays with the kernel
    ("mlx5_pci", {}, 1, False, (False, "lo")),                       # not isolated: DPDK takes it all
    ("net_ring", {}, 0, False, (None, None)),
    ("net_ice", {}, 0, False, (False, None)),                        # vfio-pci: fully bypassed
    ("net_sfc_efx", {}, 0, False, (False, None)),
])
def test_who_sees_the_ports_igmp(driver, args, if_index, isolated, want):
    assert port_network(driver, args, if_index, isolated) == want
