"""IEX live (issue 12): ``rxfeed send`` replays an IEX capture's IEX-TP
segments over a veth pair and ``rxfeed listen -d iex`` receives them on the
kernel UDP socket backend: on one line, and on two multicast groups (A/B
lines) with seeded drops on each, where arbitration fills what one line lost
and only what both lost is declared lost, with its range."""

from __future__ import annotations

import json

from rxfeed.tools.iex_generator import generate_iex

import subprocess

from .netns import veth_pair
from .test_recovery_live import CLI, GROUP_A, GROUP_B, _send, run_listener


def _listen(net, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(CLI + ["listen", "-d", "iex", "-b", "udp_socket", "-o", f'groups=["{GROUP_A}"]',
                                   "-o", f"interface={net['host_if']}", "--until-end-of-session", "--max-seconds",
                                   "60", "--json", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_send_and_listen_an_iex_deep_day(tmp_path):
    path = tmp_path / "deep.pcap"
    n = generate_iex(path, "deep", 20_000, 4, 3, session_change_at=None, heartbeat_ns=None)
    with veth_pair("x") as net:
        lst = _listen(net)
        out, err, (sent,) = run_listener(lst, [lambda: _send(net["ns"], path, GROUP_A, net["peer_ip"], [], rate=2000)])
    assert lst.returncode == 0, err
    s, sent = json.loads(out), json.loads(sent)
    assert sent["messages"] == n and s["decoder"] == "iex" and s["stop_reason"] == "end_of_session"
    assert s["messages"] == n and s["gaps"] == 0 and s["errors"] == {}


def test_ab_lines_with_drops_over_veth(tmp_path):
    path = tmp_path / "deep.pcap"
    n = generate_iex(path, "deep", 30_000, 4, 5, session_change_at=None, heartbeat_ns=None)
    with veth_pair("y") as net:
        lst = _listen(net, "--line-b", f'groups=["{GROUP_B}"]', "--faults", "drop=0.05,seed=1", "--faults-b",
                      "drop=0.05,seed=2", "--reorder-window-ms", "2000")
        out, err, _ = run_listener(lst, [lambda g=g: _send(net["ns"], path, g, net["peer_ip"], [], rate=1000)
                                         for g in (GROUP_A, GROUP_B)])
    assert lst.returncode == 0, err
    s = json.loads(out)
    rec = s["recovery"]
    assert s["stop_reason"] == "end_of_session", s
    assert rec["redundant_copies"] > 0 and rec["gaps_filled"] > 0 and rec["duplicate_copies"] == 0
    both = rec["lost_messages"]
    assert s["messages"] == n - both and s["gap_messages"] == both and s["duplicates"] == 0
    lines = s["backend_stats"]["lines"]
    assert min(ln["stats"]["faults"]["dropped"] for ln in lines) > 0
