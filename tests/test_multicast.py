"""Multicast membership held through kernel sockets (rxfeed.multicast), over a
real veth pair: the reports the kernel sends for rxfeed's joins are captured
on the peer and checked byte for byte against RFC 3376 / RFC 2236 frames
built by tests/igmp_wire.py; queries from the peer are answered within
their max response time; leaving sends the leaves and the memberships are
gone."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from rxfeed.multicast import KernelMembership, MulticastConfig, membership

from . import igmp_wire as w
from .netns import veth_pair

WIRE = str(Path(__file__).with_name("igmp_wire.py"))
ASM, SSM = "233.54.12.111", "232.1.1.7"
SSM_SOURCES = ("10.99.0.5", "10.99.0.6")
PEER_MAC = bytes.fromhex("020000000001")
#: time the capture may take to read a frame, or to send a query, late on a loaded machine
SLACK_S = 0.5


def ip(text: str) -> int:
    return int.from_bytes(w.ip4(text), "big")


class Capture:
    """``igmp_wire.py capture`` on the peer end, in its namespace."""

    def __init__(self, net: dict, seconds: float, sends: list[tuple[float, bytes]] = ()) -> None:
        args = [f"{at}:{frame.hex()}" for at, frame in sends]
        self.proc = subprocess.Popen(["ip", "netns", "exec", net["ns"], sys.executable, WIRE, "capture",
                                      net["peer_if"], str(seconds), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stderr], [], [], 20)
        assert ready and "ready" in self.proc.stderr.readline(), "capture did not start"
        self.started = time.monotonic()

    def frames(self) -> list[tuple[float, w.Parsed, bytes]]:
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return [(f["t"], w.parse(bytes.fromhex(f["hex"])), bytes.fromhex(f["hex"])) for f in json.loads(out)]


def host_mac(interface: str) -> bytes:
    return bytes.fromhex(Path(f"/sys/class/net/{interface}/address").read_text().strip().replace(":", ""))


def proc_groups(interface: str) -> set[str]:
    """Groups /proc/net/igmp lists on ``interface`` (the kernel's memberships)."""
    groups, current = set(), None
    for line in Path("/proc/net/igmp").read_text().splitlines()[1:]:
        if not line.startswith("\t"):
            current = line.split()[1]
        elif current == interface:
            raw = int(line.split()[0], 16)  # the __be32 printed as a host-order word
            groups.add(".".join(str(b) for b in raw.to_bytes(4, "little")))
    return groups


def check_rfc_exact(frames: list[tuple[float, w.Parsed, bytes]], mac: bytes, src_ip: str) -> None:
    """Every captured frame is the one the RFCs prescribe, byte for byte."""
    assert frames, "no IGMP frame was sent"
    for _, p, raw in frames:
        assert raw[:len(w.rebuild(p))] == w.rebuild(p), p
        assert p.src_mac == mac and p.src == src_ip and p.ttl == 1 and p.options == w.ROUTER_ALERT
        assert w.checksum(p.igmp) == 0


def records(frames, kinds=None) -> set[w.Record]:
    return {r for _, p, _ in frames for r in p.records if kinds is None or r.kind in kinds}


# -- configuration ---------------------------------------------------------

def test_membership_takes_each_multicast_group_once():
    cfg = MulticastConfig(sources={SSM: SSM_SOURCES})
    got = membership([f"{ASM}:26477", f"{ASM}:26478", "*:1000", "10.0.0.1:5", f"{SSM}:9"], cfg)
    assert got == [(ip(ASM), ()), (ip(SSM), tuple(ip(s) for s in SSM_SOURCES))]


@pytest.mark.parametrize("bad, says", [
    ({"sources": {"10.0.0.1": ["10.0.0.2"]}}, "not a multicast group"),
    ({"sources": {SSM: ["224.0.0.9"]}}, "not a unicast source"),
    ({"sources": {SSM: []}}, "empty source list"),
    ({"sources": {SSM: ["10.0.0.2"]}, "version": 2}, "need IGMP version 3"),
    ({"mode": "always"}, "mode"),
    ({"report_source_ip": "239.1.1.1"}, "multicast address"),
    ({"interface": "x" * 16}, "interface"),
])
def test_bad_settings_are_refused_with_the_reason(bad, says):
    with pytest.raises(ValidationError, match=says):
        MulticastConfig(**bad)


def test_a_source_list_for_a_group_no_filter_receives_is_refused():
    with pytest.raises(ValueError, match="no filter receives: 232.1.1.7"):
        membership([f"{ASM}:1"], MulticastConfig(sources={SSM: SSM_SOURCES}))


def test_an_unknown_interface_is_a_clear_error():
    with pytest.raises(OSError, match="no network interface 'rxfnosuch0'"):
        KernelMembership("rxfnosuch0", [(ip(ASM), ())])


# -- on the wire -----------------------------------------------------------

GROUPS = [(ip(ASM), ()), (ip(SSM), tuple(ip(s) for s in SSM_SOURCES))]


def test_igmpv3_joins_queries_and_leaves_on_the_wire():
    with veth_pair("m") as net:
        mac, iface = host_mac(net["host_if"]), net["host_if"]
        general = w.query_frame(PEER_MAC, net["peer_ip"], w.igmpv3_query(max_resp_code=20))  # 2.0 s
        specific = w.query_frame(PEER_MAC, net["peer_ip"], w.igmpv3_query(ASM, max_resp_code=10), ASM)
        cap = Capture(net, 8.0, [(3.0, general), (6.0, specific)])
        held = KernelMembership(iface, GROUPS)
        joined_at = time.monotonic() - cap.started
        assert proc_groups(iface) >= {ASM, SSM}
        assert held.stats() == {"mode": "kernel", "interface": iface, "groups": [ASM, "10.99.0.5,10.99.0.6@" + SSM],
                                "joined": 2, "version": "kernel's choice"}
        time.sleep(8.0 - joined_at + 0.5)
        frames = cap.frames()
        leave_cap = Capture(net, 3.0)
        held.close()
        left_at = time.monotonic() - cap.started
        after = proc_groups(iface)
        leave_frames = leave_cap.frames()
    check_rfc_exact(frames, mac, net["host_ip"])
    # joining: state-change reports (RFC 3376 5.1): TO_EX {} for any-source, ALLOW(sources) for SSM
    joins = [f for f in frames if f[0] < 3.0]
    assert all(p.kind == w.V3_REPORT and p.dst == w.IGMPV3_ROUTERS for _, p, _ in joins)
    assert w.Record(w.TO_EXCLUDE, ASM) in records(joins)
    assert w.Record(w.ALLOW_NEW, SSM, SSM_SOURCES) in records(joins)
    # a general query: current-state records for both, within Max Resp Time (2 s)
    answers = [f for f in frames if 3.0 < f[0] < 3.0 + 2.0 + SLACK_S]
    assert {w.Record(w.MODE_IS_EXCLUDE, ASM), w.Record(w.MODE_IS_INCLUDE, SSM, SSM_SOURCES)} <= records(answers)
    # a group-specific query: that group's record only, within 1 s
    spec = [f for f in frames if 6.0 < f[0] < 6.0 + 1.0 + SLACK_S]
    assert records(spec) == {w.Record(w.MODE_IS_EXCLUDE, ASM)}
    # leaving: TO_IN {} and BLOCK(sources), and the kernel holds no membership any more
    check_rfc_exact(leave_frames, mac, net["host_ip"])
    assert w.Record(w.TO_INCLUDE, ASM) in records(leave_frames)
    # the kernel drops an SSM socket's sources one by one: BLOCK records, together every source
    blocked = {s for r in records(leave_frames, {w.BLOCK_OLD}) if r.group == SSM for s in r.sources}
    assert blocked == set(SSM_SOURCES)
    assert left_at > 8.0
    assert not ({ASM, SSM} & after)


def test_igmpv2_forced_for_the_run_reports_answers_and_leaves():
    with veth_pair("n") as net:
        mac, iface = host_mac(net["host_if"]), net["host_if"]
        version_file = Path(f"/proc/sys/net/ipv4/conf/{iface}/force_igmp_version")
        before = version_file.read_text().strip()
        query = w.ethernet(w.ALL_HOSTS, PEER_MAC) + w.ipv4_header(net["peer_ip"], w.ALL_HOSTS, 8, 7) + w.igmpv2(
            w.QUERY, "0.0.0.0", max_resp_ds=10)
        cap = Capture(net, 5.0, [(2.5, query)])
        held = KernelMembership(iface, [(ip(ASM), ())], version=2)
        assert version_file.read_text().strip() == "2" and held.stats()["version"] == "2 (forced for the run)"
        time.sleep(5.5 - (time.monotonic() - cap.started))
        frames = cap.frames()
        leave_cap = Capture(net, 2.0)
        held.close()
        leave_frames = leave_cap.frames()
        after = version_file.read_text().strip()
    check_rfc_exact(frames + leave_frames, mac, net["host_ip"])
    reports = [(t, p) for t, p, _ in frames if p.kind == w.V2_REPORT]
    assert reports and all(p.group == ASM and p.dst == ASM for _, p in reports)
    assert any(2.5 < t < 2.5 + 1.0 + SLACK_S for t, _ in reports), "the v2 query was not answered within 1 s"
    leaves = [p for _, p, _ in leave_frames if p.kind == w.V2_LEAVE]
    assert leaves and leaves[0].group == ASM and leaves[0].dst == w.ALL_ROUTERS
    assert after == before


def test_max_resp_code_floating_point_form():
    # RFC 3376 4.1.1: 0x80 | exp << 4 | mant -> (mant | 0x10) << (exp + 3) tenths
    assert w.max_resp_time_s(100) == 10.0
    assert w.max_resp_time_s(0x80) == (0x10 << 3) / 10
    assert w.max_resp_time_s(0xFF) == (0x1F << 10) / 10


@pytest.mark.parametrize("mode, kernel_owns, can_send, want", [
    ("auto", True, True, "kernel"), ("auto", False, True, "nic"), ("auto", True, False, "kernel"),
    ("auto", None, True, "off"), ("off", True, True, "off"), ("kernel", True, False, "kernel"),
    ("nic", False, True, "nic"), ("kernel", False, True, "kernel"),
])
def test_the_mode_a_backend_runs(mode, kernel_owns, can_send, want):
    from rxfeed.multicast import resolve_mode

    assert resolve_mode(MulticastConfig(mode=mode), kernel_owns, can_send, "x") == want


def test_modes_a_backend_cannot_run_are_refused():
    from rxfeed.multicast import hold_kernel_membership, resolve_mode

    with pytest.raises(ValueError, match="efvi backend cannot send IGMP itself"):
        resolve_mode(MulticastConfig(mode="nic"), True, False, "efvi")
    with pytest.raises(ValueError, match="which kernel interface"):
        hold_kernel_membership(MulticastConfig(), [f"{ASM}:1"], None, "dpdk")
    assert hold_kernel_membership(MulticastConfig(), ["10.0.0.1:1", "*:2"], None, "dpdk") is None


# -- the backends --------------------------------------------------------------

def test_efvi_joins_on_its_interface_for_the_run(monkeypatch, day_dir):
    """ef_vi (the stand-in playing the NIC from a pcap, named as the veth end):
    the backend's own kernel join is the only one, so every report on the
    wire comes from it."""
    from rxfeed import Pipeline

    with veth_pair("j") as net:
        iface, mac = net["host_if"], host_mac(net["host_if"])
        monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(day_dir / "day.pcap"))
        monkeypatch.setenv("RXF_EFVI_STANDIN_IFNAME", iface)
        cap = Capture(net, 4.0)
        pipe = Pipeline("efvi", "itch50", backend_config={
            "interface": iface, "filters": [f"{ASM}:26477"], "idle_timeout_s": 1.0})
        during = proc_groups(iface)
        s = pipe.run()
        pipe.close()
        after = proc_groups(iface)
        frames = cap.frames()
    assert s.messages == 20_000 and s.gaps == 0
    assert s.backend_stats["igmp"]["mode"] == "kernel" and s.backend_stats["igmp"]["groups"] == [ASM]
    assert ASM in during and ASM not in after
    check_rfc_exact(frames, mac, net["host_ip"])
    assert w.Record(w.TO_EXCLUDE, ASM) in records(frames) and w.Record(w.TO_INCLUDE, ASM) in records(frames)


def test_dpdk_over_a_kernel_netdev_joins_from_a_kernel_socket():
    """DPDK's net_af_packet runs over a kernel interface: `auto` holds kernel
    joins on it (the PMD's iface=) for the run, and the kernel leaves after."""
    with veth_pair("k") as net:
        iface, mac = net["host_if"], host_mac(net["host_if"])
        cap = Capture(net, 5.0)
        cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", "dpdk",
               "--max-seconds", "2", "--json", "-o", "port=net_af_packet0", "-o", "no_pci=true",
               "-o", f'vdevs=["net_af_packet0,iface={iface}"]', "-o", f'filters=["{ASM}:26477","{SSM}:26477"]',
               "-o", 'igmp={"sources": {"%s": ["%s", "%s"]}}' % (SSM, *SSM_SOURCES)]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        after = proc_groups(iface)
        frames = cap.frames()
    assert run.returncode == 0, run.stderr
    igmp = json.loads(run.stdout)["backend_stats"]["igmp"]
    assert igmp == {"mode": "kernel", "interface": iface, "groups": [ASM, "10.99.0.5,10.99.0.6@" + SSM],
                    "joined": 2, "version": "kernel's choice"}
    check_rfc_exact(frames, mac, net["host_ip"])
    assert {w.Record(w.TO_EXCLUDE, ASM), w.Record(w.ALLOW_NEW, SSM, SSM_SOURCES),
            w.Record(w.TO_INCLUDE, ASM)} <= records(frames)
    assert not ({ASM, SSM} & after)


def test_dpdk_over_af_xdp_sends_igmp_itself():
    """net_af_xdp: the XDP program hands DPDK every frame of the queue, so the
    kernel would never see a query; `auto` sends IGMP from the DPDK TX queue
    (source 0.0.0.0 by default, RFC 3376 4.2.13) instead of joining in the kernel."""
    with veth_pair("x") as net:
        iface, mac = net["host_if"], host_mac(net["host_if"])
        cap = Capture(net, 14.0)  # EAL and the XDP socket take seconds to start under load
        cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", "dpdk",
               "--max-seconds", "3", "--json", "-o", "port=net_af_xdp0", "-o", "no_pci=true",
               "-o", f'vdevs=["net_af_xdp0,iface={iface}"]', "-o", f'filters=["{ASM}:26477"]']
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        frames = cap.frames()
        after = proc_groups(iface)
    assert run.returncode == 0, run.stderr
    igmp = json.loads(run.stdout)["backend_stats"]["igmp"]
    assert igmp["mode"] == "nic" and igmp["groups"] == [ASM] and igmp["reports_sent"] >= 1
    check_rfc_exact(frames, mac, "0.0.0.0")
    assert w.Record(w.TO_EXCLUDE, ASM) in records(frames)  # the join
    assert w.Record(w.TO_INCLUDE, ASM) in records(frames)  # the leave at close
    assert ASM not in after  # the kernel never joined
