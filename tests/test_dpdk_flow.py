"""Flow steering of the DPDK backend (backends/dpdk/dpdk_flow.c): the rte_flow
rules built from the filters, and what happens on PMDs that cannot take them
(net_pcap, net_af_packet: no flow ops; net_tap: flow ops backed by the
kernel's TC flower, which this machine's kernel lacks). EAL starts once per
process, so every DPDK run here is a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from rxfeed.backend_base import destinations

GROUP = "233.54.12.111:26477"  # the generator's default destination
ETH_IPV4_UDP = "ingress pattern eth / ipv4"


def rules(filters, **kw):
    from rxfeed.backends.dpdk._dpdk import flow_rule_texts

    return flow_rule_texts(destinations(filters), **kw)


def test_one_rule_per_filter_wildcards_are_items_without_spec():
    got = rules(["233.54.12.111:26477", "*:26478", "233.54.12.112", "*:*"], rx_queues=2)
    assert got == [
        f"{ETH_IPV4_UDP} dst spec 233.54.12.111 dst mask 255.255.255.255 / udp dst spec 26477 dst mask 65535 / end "
        "actions queue index 0 / end",
        f"{ETH_IPV4_UDP} / udp dst spec 26478 dst mask 65535 / end actions queue index 1 / end",
        f"{ETH_IPV4_UDP} dst spec 233.54.12.112 dst mask 255.255.255.255 / udp / end actions queue index 0 / end",
        f"{ETH_IPV4_UDP} / udp / end actions queue index 1 / end",
    ]


def test_rule_actions_follow_flow_queues_or_rss():
    two = ["233.54.12.111:26477", "233.54.12.112:26477"]
    assert [r.split("actions ")[1] for r in rules(two, rx_queues=4, flow_queues=[3, 3])] == ["queue index 3 / end"] * 2
    assert [r.split("actions ")[1] for r in rules(two)] == ["queue index 0 / end"] * 2  # one queue: all to it
    assert rules(two, rx_queues=3, rss=True)[1].endswith("actions rss queues 0 1 2 end / end")


def test_rule_builder_refuses_what_the_port_cannot_have():
    with pytest.raises(ValueError, match="rule 0: queue 2 is not one of 2 RX queues"):
        rules([GROUP], rx_queues=2, flow_queues=[2])
    with pytest.raises(ValueError, match="flow_queues has 1 entries for 2 filters"):
        rules([GROUP, "*:1"], rx_queues=2, flow_queues=[1])
    with pytest.raises(ValueError, match="at most 16 filters; got 17"):
        rules([f"233.54.12.{i}:1" for i in range(17)])
    with pytest.raises(ValueError, match="rule 0: queue 0 is not one of 17 RX queues"):
        rules([GROUP], rx_queues=17)  # more queues than the RSS action can list


@pytest.mark.parametrize("options, message", [
    ({"filters": [GROUP], "flow_queues": [0, 1]}, "flow_queues has 2 entries for 1 filters"),
    ({"filters": [GROUP], "flow_queues": [1]}, r"flow_queues \[1\] are not RX queues of rx_queues 1"),
    ({"filters": [GROUP], "flow_isolate": "on", "flow_rules": "off"}, "an isolated port without rules receives nothing"),
    ({"flow_isolate": "on"}, "flow_isolate = on needs flow rules"),
    ({"flow_rules": "on"}, "flow_rules = on needs filters"),
    ({"filters": [GROUP], "flow_isolate": "on", "igmp": {"mode": "nic"}}, "queries would never reach the responder"),
    ({"filters": [GROUP], "flow_rules": "yes"}, "flow_rules"),
    ({"filters": [GROUP], "flow_action": "mirror"}, "flow_action"),
])
def test_flow_settings_are_checked_before_eal(options, message):
    from rxfeed.backends.dpdk.config import DpdkConfig

    with pytest.raises(ValidationError, match=message):
        DpdkConfig(**options)


def test_flow_defaults():
    from rxfeed.backends.dpdk.config import DpdkConfig

    cfg = DpdkConfig(filters=[GROUP])
    assert (cfg.flow_rules, cfg.flow_isolate, cfg.flow_queues, cfg.flow_action) == ("auto", "auto", (), "queue")


def _toml(path: Path, **kv) -> Path:
    path.write_text("[backend.dpdk]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in kv.items()))
    return path


def rx(*args):
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_net_pcap_auto_falls_back_to_software_filters_and_says_so(day_dir, tmp_path):
    cfg = _toml(tmp_path / "auto.toml", filters=[GROUP])
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    steering = s["backend_stats"]["flow_steering"]
    assert steering["mode"] == "software" and steering["rules"] == 0 and steering["isolated"] is False
    assert steering["reason"].startswith("net_pcap has no rte_flow: rte_flow_validate said: ")
    assert steering["reason"].endswith("Function not implemented (errno 38)")  # ENOSYS: no flow ops
    said = "DPDK port net_pcap0: no rte_flow rules, software filters only: net_pcap has no rte_flow"
    assert f"RuntimeWarning: {said}" in p.stderr
    assert [w for w in s["warnings"] if w.startswith(said)] == [f"{said}{steering['reason'][len('net_pcap has no rte_flow'):]}"]
    assert s["messages"] == 20_000 and "filtered" not in s["drops"]  # the software filter lets the group in


def test_net_pcap_software_filter_stays_on_with_flow_rules_off(day_dir, tmp_path):
    cfg = _toml(tmp_path / "off.toml", filters=["233.54.12.112:26477"], flow_rules="off")
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg, "--json")
    # every frame of the day is for another group: all filtered in software, so nothing to decode
    assert p.returncode == 1 and 'the source ended with 0 packets read; dropped: {"filtered": 456}' in p.stderr
    assert "RuntimeWarning" not in p.stderr  # software only was asked for: nothing to warn about


def test_net_pcap_on_refuses_to_start_saying_why(day_dir, tmp_path):
    cfg = _toml(tmp_path / "on.toml", filters=[GROUP], flow_rules="on")
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg)
    assert p.returncode == 2
    assert "flow_rules = on: net_pcap has no rte_flow: rte_flow_validate said: " in p.stderr
    cfg = _toml(tmp_path / "iso.toml", filters=[GROUP], flow_isolate="on")
    p = rx("replay", day_dir / "day.pcap", "--backend", "dpdk", "--config", cfg)
    assert p.returncode == 2
    assert "flow_isolate = on: net_pcap (port 0) cannot isolate: rte_flow_isolate said: " in p.stderr


_OPEN = """
import json, sys, warnings
from rxfeed.backends.dpdk.backend import open_device
from rxfeed.backends.dpdk.config import DpdkConfig
warnings.simplefilter("always")
try:
    dev = open_device(DpdkConfig(**json.loads(sys.argv[1])))
except RuntimeError as e:
    print(json.dumps({"error": str(e)}))
else:
    print(json.dumps(dev.flow_steering()))
    dev.close()
"""


def open_in_process(options: dict, netns: str | None = None) -> tuple[dict, str]:
    """``(flow_steering or {"error": ...}, stderr)`` of opening a device in a process of its own."""
    cmd = [sys.executable, "-c", _OPEN, json.dumps({"no_pci": True, **options})]
    p = subprocess.run((["ip", "netns", "exec", netns] if netns else []) + cmd, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout), p.stderr


@pytest.mark.parametrize("pmd, mode", [("net_af_packet", "auto"), ("net_af_packet", "on"), ("net_af_xdp", "auto")])
def test_live_pmds_have_no_rte_flow(pmd, mode):
    from .netns import veth_pair

    with veth_pair("f") as net:
        got, err = open_in_process({"port": f"{pmd}0", "vdevs": [f"{pmd}0,iface={net['host_if']}"],
                                    "filters": [GROUP, "*:26478"], "flow_rules": mode})
    if mode == "on":
        assert got["error"].startswith(f"flow_rules = on: {pmd} has no rte_flow: rte_flow_validate said: ")
    else:
        assert got["mode"] == "software" and got["rules"] == 0
        assert got["reason"].startswith(f"{pmd} has no rte_flow: rte_flow_validate said: ")
        assert f"RuntimeWarning: DPDK port {pmd}0: no rte_flow rules" in err


def test_net_af_packet_auto_fallback_still_receives_every_message(rxfeed_day):
    from .netns import live_run, veth_pair

    with veth_pair("g") as net:
        opts = {"port": "net_af_packet0", "vdevs": [f"net_af_packet0,iface={net['host_if']}"], "no_pci": True,
                "filters": [GROUP], "flow_rules": "auto"}
        sent, s = live_run("dpdk", opts, rxfeed_day(5_000, 4, 5, "nasdaq"), GROUP, 2000, net["peer_ip"],
                           netns=net["ns"])
    assert s["backend_stats"]["flow_steering"]["mode"] == "software"
    assert s["messages"] == sent["messages"] == 5_000 and s["gaps"] == 0


# --- net_tap: rte_flow through the kernel's TC (multiq qdisc, flower, skbedit) ---

def tc_flow_support() -> str:
    """"" if this kernel has what net_tap's rte_flow needs, else what is missing
    (tc's own words), tried on a veth pair in a namespace of its own."""
    from rxfeed.tools.lab import veth_pair

    steps = [("multiq qdisc", "qdisc add dev {dev} root handle 1: multiq"),
             ("ingress qdisc", "qdisc add dev {dev} ingress"),
             ("flower + skbedit", "filter add dev {dev} parent 1: protocol ip flower dst_ip 233.54.12.111 "
                                  "action skbedit queue_mapping 1")]
    with veth_pair("t") as net:
        for what, cmd in steps:
            p = subprocess.run(["ip", "netns", "exec", net["ns"], "tc", *cmd.format(dev=net["peer_if"]).split()],
                               capture_output=True, text=True)
            if p.returncode != 0:
                return f"{what}: {p.stderr.strip()}"
    return ""


@pytest.fixture(scope="module")
def tc_missing() -> str:
    return tc_flow_support()


@pytest.fixture
def netns():
    name = f"rxflow{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def tap(iface: str, **options) -> dict:
    return {"port": "net_tap0", "vdevs": [f"net_tap0,iface={iface}"], **options}


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_net_tap_without_tc_flower_validates_then_refuses_reported(mode, tc_missing, netns):
    if not tc_missing:  # a kernel with TC flower takes the rules: what the steering test checks
        got = steer_run(netns, flow_rules=mode)
        assert got["steering"]["mode"] == "rte_flow" and got["steering"]["rules"] == 2
        return
    got, err = open_in_process(tap("rxtapa", filters=[GROUP, "*:26478"], flow_rules=mode), netns)
    assert "Disabling rte flow support" in err  # the PMD says so at probe; its flow ops stay, the kernel refuses
    why = "net_tap cannot take rule 0 (233.54.12.111:26477): rte_flow_create said: "  # validate passed, create not
    if mode == "on":
        assert got["error"].startswith(f"flow_rules = on: {why}")
    else:
        assert got["mode"] == "software" and got["rules"] == 0 and got["reason"].startswith(why)
        assert f"RuntimeWarning: DPDK port net_tap0: no rte_flow rules, software filters only: {why}" in err


_ISOLATE_TAP = _OPEN.replace("warnings.simplefilter", "from rxfeed.backends.dpdk import _dpdk\n"
                             "_dpdk.set_isolating_drivers(['net_tap'])\nwarnings.simplefilter")


def test_net_tap_auto_isolation_is_never_left_without_rules(tc_missing, netns):
    # flow_isolate = auto isolates bifurcated drivers (mlx5) before configure,
    # before it knows whether the rules will go in; net_tap stands in for
    # mlx5 here. An isolated port without rules would receive nothing: the
    # rules go in, or isolation is left again, or the device does not open.
    options = json.dumps({"no_pci": True, **tap("rxtapb", filters=[GROUP])})
    p = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _ISOLATE_TAP, options],
                       capture_output=True, text=True, timeout=60)
    got = json.loads(p.stdout)
    if not tc_missing:
        assert got == {"mode": "rte_flow", "rules": 1, "isolated": True, "reason": ""}
        return
    # here leaving isolation needs TC too (net_tap's implicit rule), so it fails and says so
    assert got["error"].startswith("flow rules failed on an isolated port and leaving isolation failed")
    assert "so the port would receive nothing: net_tap cannot take rule 0 (233.54.12.111:26477)" in got["error"]


def test_flow_isolate_on_isolates_then_needs_the_rules(tc_missing, netns):
    got, _ = open_in_process(tap("rxtapc", filters=[GROUP], flow_isolate="on"), netns)
    if not tc_missing:
        assert got == {"mode": "rte_flow", "rules": 1, "isolated": True, "reason": ""}
    else:  # rte_flow_isolate itself works on net_tap; the rules then cannot go in
        assert got["error"].startswith("flow_isolate = on needs the rules: net_tap cannot take rule 0")


_STEER = """
import json, socket, subprocess, sys, time
from rxfeed import _runloop
from rxfeed.backend_base import destinations
from rxfeed.backends.dpdk.backend import open_device
from rxfeed.backends.dpdk.config import DpdkConfig
cfg = DpdkConfig(**json.loads(sys.argv[1]))
dev = open_device(cfg)
sh = lambda *a: subprocess.run(a, capture_output=True, text=True, check=True).stdout
tc = sh("tc", "filter", "show", "dev", "rxtaps")
sh("ip", "addr", "add", "10.79.0.1/24", "dev", "rxtaps")
sh("ip", "link", "set", "rxtaps", "up")
time.sleep(0.5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.79.0.1"))
for group, port in [("233.54.12.111", 26477), ("233.54.12.112", 26477), ("233.54.12.113", 26477)] * 50:
    s.sendto(b"x" * 40, (group, port))
out = []
for q in range(cfg.rx_queues):
    reader = dev.queue(q, destinations(cfg.filters))
    _runloop.run_native(reader.capsule(), _runloop.null_decoder(), 64, 0, 0.0, False)
    out.append(reader.stats())
print(json.dumps({"tc": tc, "steering": dev.flow_steering(), "queues": out}))
dev.close()
"""


def steer_run(netns: str, **options) -> dict:
    """Open net_tap ("rxtaps") in ``netns``, send 50 datagrams to each of three
    groups out of the tap from the kernel, poll every queue until idle."""
    options = {"no_pci": True, "idle_timeout_s": 1.0, "filters": ["233.54.12.111:26477", "233.54.12.112:26477"],
               **tap("rxtaps"), **options}
    p = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _STEER, json.dumps(options)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_net_tap_software_filters_take_two_groups_of_three(netns):
    # the harness of the steering test below, with the rules off: every
    # datagram reaches DPDK and the third group is dropped in software
    got = steer_run(netns, flow_rules="off")
    assert got["steering"]["mode"] == "software"
    (q,) = got["queues"]
    assert q["packets"] == 100 and q["drops"]["filtered"] == 50


def test_net_tap_steers_only_the_configured_groups_where_the_kernel_can(tc_missing, netns):
    if tc_missing:
        # net_tap's rte_flow needs the kernel's TC multiq qdisc, flower classifier and
        # skbedit action; this machine kind (and CI) lacks them and cannot load modules:
        # the PMD validates, the kernel refuses the rule, and the refusal is reported
        got = steer_run(netns, flow_rules="auto", flow_isolate="off")
        assert got["steering"]["mode"] == "software" and "rte_flow_create said" in got["steering"]["reason"]
        (q,) = got["queues"]
        assert q["packets"] == 100 and q["drops"]["filtered"] == 50
        return
    # one queue: net_tap needs as many TX as RX queues, and the device sets up one TX queue
    got = steer_run(netns, flow_isolate="on")
    assert got["steering"] == {"mode": "rte_flow", "rules": 2, "isolated": True, "reason": ""}
    assert got["tc"].count("flower") >= 2 and "233.54.12.111" in got["tc"] and "233.54.12.112" in got["tc"]
    (q,) = got["queues"]  # isolated: the third group never reaches DPDK
    assert q["frames"] == q["packets"] == 100 and not q["drops"]


def test_two_queues_report_the_fallback_once(day_dir):
    p = rx("listen", "--decoder", "itch50", "--backend", "dpdk", "--json", "-o", "port=net_pcap0", "-o", "no_pci=true",
           "-o", "lcores=0-1", "-o", "rx_queues=2", "-o", "idle_timeout_s=1.5", "-o", f'filters=["{GROUP}"]',
           "-o", f'vdevs=["net_pcap0,rx_pcap={day_dir / "day.pcap"},rx_pcap={day_dir / "day.pcap"}"]')
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert [q["flow_steering"]["mode"] for q in s["backend_stats"]["queues"]] == ["software", "software"]
    assert len([w for w in s["warnings"] if "no rte_flow rules" in w]) == 1  # one device, one warning
    assert s["messages"] == 40_000


_DIRECT = """
from rxfeed.backends.dpdk import _dpdk
_dpdk.eal_init(["-l", "0", "--no-huge", "-m", "64", "--no-pci", "--vdev=net_null0", "--no-telemetry",
                "--log-level=error"])
for kw in ({"flow_isolate": "on"}, {"flow_isolate": "on", "flow_rules": "off", "filters": [(0, 1)]}):
    try:
        _dpdk.DpdkDevice("net_null0", **kw)
    except RuntimeError as e:
        print(e)
"""


def test_the_device_itself_refuses_isolation_without_rules():
    # the config refuses it first; the C side refuses it too (DpdkDevice used directly)
    p = subprocess.run([sys.executable, "-c", _DIRECT], capture_output=True, text=True, timeout=60)
    want = "flow_isolate = on needs flow rules: an isolated port without rules receives nothing"
    assert p.stdout.splitlines() == [want, want], p.stderr
