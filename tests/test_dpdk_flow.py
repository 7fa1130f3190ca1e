"""Flow steering of the DPDK backend (backends/dpdk/dpdk_flow.c): the rte_flow
rules built from the filters, and what happens on PMDs that cannot take them
(net_pcap, net_af_packet: no flow ops; net_tap: flow ops backed by the
kernel's TC flower, which this machine's kernel lacks). EAL starts once per
process, so every DPDK run here is a process of its own."""

from __future__ import annotations

import json
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
    assert "(errno 38)" in steering["reason"] or "(errno 95)" in steering["reason"]  # ENOSYS / ENOTSUP
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


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_net_af_packet_has_no_rte_flow(mode):
    from .netns import veth_pair

    with veth_pair("f") as net:
        got, err = open_in_process({"port": "net_af_packet0", "vdevs": [f"net_af_packet0,iface={net['host_if']}"],
                                    "filters": [GROUP, "*:26478"], "flow_rules": mode})
    if mode == "on":
        assert got["error"].startswith("flow_rules = on: net_af_packet has no rte_flow: rte_flow_validate said: ")
    else:
        assert got["mode"] == "software" and got["rules"] == 0
        assert got["reason"].startswith("net_af_packet has no rte_flow: rte_flow_validate said: ")
        assert "RuntimeWarning: DPDK port net_af_packet0: no rte_flow rules" in err


def test_net_af_packet_auto_fallback_still_receives_every_message(rxfeed_day):
    from .netns import live_run, veth_pair

    with veth_pair("g") as net:
        opts = {"port": "net_af_packet0", "vdevs": [f"net_af_packet0,iface={net['host_if']}"], "no_pci": True,
                "filters": [GROUP], "flow_rules": "auto"}
        sent, s = live_run("dpdk", opts, rxfeed_day(5_000, 4, 5, "nasdaq"), GROUP, 2000, net["peer_ip"],
                           netns=net["ns"])
    assert s["backend_stats"]["flow_steering"]["mode"] == "software"
    assert s["messages"] == sent["messages"] == 5_000 and s["gaps"] == 0
