"""Recovery live (issue 11): ``rxfeed listen`` on two multicast groups (A/B
lines) over a veth pair, two ``rxfeed send`` processes and ``rxfeed serve
rerequest`` in a namespace, seeded drops on each line in the listener:
every message arrives once, in order."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

from .netns import veth_pair

GROUP_A = "233.54.12.111:26477"
GROUP_B = "233.49.196.111:26478"
CLI = [sys.executable, "-m", "rxfeed.tools.cli"]


def _wait_for(proc: subprocess.Popen, text: str) -> None:
    """Until ``proc`` writes ``text`` to stderr."""
    seen = ""
    while text not in seen:
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        line = proc.stderr.readline() if ready else ""
        assert line, f"no {text!r}:\n" + seen
        seen += line


def _send(ns: str, day, group: str, iface: str, extra: list[str], rate: int = 4000) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns] + CLI + ["send", str(day), "--group", group, "--rate", str(rate),
                                                                "--iface", iface] + extra,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_listener(lst: subprocess.Popen, senders: list) -> tuple[str, str, list[str]]:
    """Once ``lst`` listens, start each sender (a callable returning a Popen),
    wait for them, then for ``lst``: its (stdout, stderr) and the senders'
    stdout; ``lst`` is killed if anything fails."""
    try:
        _wait_for(lst, "rxfeed: listening")
        sent = []
        for p in [start() for start in senders]:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            sent.append(out)
        return (*lst.communicate(timeout=90), sent)
    finally:
        if lst.poll() is None:
            lst.kill()
            lst.wait()


def test_ab_multicast_lines_over_veth_with_drops_and_rerequest(rxfeed_day):
    day = rxfeed_day(100_000, 4, 5, "nasdaq")
    with veth_pair("r") as net:
        rr = f"{net['peer_ip']}:{30000 + os.getpid() % 20000}"
        server = subprocess.Popen(["ip", "netns", "exec", net["ns"]] + CLI + ["serve", "rerequest", str(day),
                                                                           "--listen", rr, "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        listen = CLI + ["listen", "-d", "itch50", "-b", "udp_socket", "-o", f'groups=["{GROUP_A}"]',
                        "-o", f"interface={net['host_if']}", "--line-b", f'groups=["{GROUP_B}"]',
                        "--faults", "drop=0.05,seed=1", "--faults-b", "drop=0.05,seed=2", "--rerequest", rr,
                        "--reorder-window-ms", "5000", "--until-end-of-session", "--max-seconds", "60", "--json"]
        lst = subprocess.Popen(listen, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(server, "rxfeed: serving")
            _wait_for(lst, "rxfeed: listening")
            # ~2,400 datagrams over ~5 s per line: the two senders' start-up
            # (a second or more on a loaded 2-core machine) must not decide
            # whether line B's copies arrive before line A's end of session
            a = _send(net["ns"], day, GROUP_A, net["peer_ip"], [], rate=500)
            b = _send(net["ns"], day, GROUP_B, net["peer_ip"], [], rate=500)
            sent_a = json.loads(a.communicate(timeout=120)[0])
            sent_b = b.communicate(timeout=120)
            out, err = lst.communicate(timeout=90)
        finally:
            for p in (lst, server):
                if p.poll() is None:
                    p.terminate()
                    p.wait(10)
        served = json.loads(server.communicate()[0])
    assert lst.returncode == 0, err
    s = json.loads(out)
    rec = s["recovery"]
    assert s["stop_reason"] == "end_of_session", s
    assert s["messages"] == sent_a["messages"] == 100_000 and s["gaps"] == 0 and rec["lost_ranges"] == 0, \
        json.dumps({"recovery": rec, "lines": s["backend_stats"]["lines"], "decoder": s["decoder_stats"]})
    assert b.returncode == 0, sent_b[1]
    assert rec["gaps_opened"] == rec["gaps_filled"] > 0 and rec["redundant_copies"] > 0, \
        json.dumps({"sent_a": sent_a, "sent_b": sent_b[0], "lines": s["backend_stats"]["lines"]})
    faults = [ln["stats"]["faults"]["dropped"] for ln in s["backend_stats"]["lines"]]
    assert min(faults) > 0, "both lines dropped datagrams"
    assert rec["rerequest"]["recovered_messages"] > 0, "some datagrams were lost on both lines and asked for"
    assert 0 < served["requests"] <= rec["rerequest"]["requests_sent"]


def test_ab_as_two_groups_of_one_socket(rxfeed_day):
    """A and B on one port, two groups of one udp_socket backend: each packet
    is tagged with its group's line, so copies are redundant (arbitration),
    not duplicates; faults drop on the combined stream (each copy alone)."""
    day = rxfeed_day(50_000, 4, 6, "nasdaq")
    group_b = GROUP_B.split(":")[0] + ":" + GROUP_A.split(":")[1]
    with veth_pair("s") as net:
        listen = CLI + ["listen", "-d", "itch50", "-b", "udp_socket", "-o", f'groups=["{GROUP_A}", "{group_b}"]',
                        "-o", f"interface={net['host_if']}", "--faults", "drop=0.03,seed=9",
                        "--reorder-window-ms", "2000", "--until-end-of-session", "--max-seconds", "60", "--json"]
        lst = subprocess.Popen(listen, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err, _ = run_listener(lst, [lambda g=g: _send(net["ns"], day, g, net["peer_ip"], [], rate=500)
                                         for g in (GROUP_A, group_b)])
    assert lst.returncode == 0, err
    s = json.loads(out)
    rec = s["recovery"]
    lines = {ln["line"]: ln for ln in rec["lines"]}
    assert s["stop_reason"] == "end_of_session", (s["stop_reason"], rec, s["backend_stats"], s["decoder_stats"])
    assert set(lines) == {0, 1} and min(ln["first_arrivals"] for ln in lines.values()) > 0
    assert rec["redundant_copies"] > 0 and rec["duplicate_copies"] == 0
    both = rec["lost_messages"]  # what both copies lost (3% x 3% of datagrams) is declared, with its range
    assert s["messages"] == 50_000 - both and s["gap_messages"] == both and s["duplicates"] == 0
