"""IGMP sent from the DPDK TX queue (issue 15, nic mode) over a veth pair:
DPDK's net_af_packet on the host end, a raw AF_PACKET socket in the peer
namespace standing in for the switch/querier. The host end has no socket
joined to any group, so every IGMP frame seen there is rxfeed's. Checked
byte for byte against frames built from the RFCs (tests/igmp_wire.py):
the unsolicited reports on start, answers to a general and a group-specific
query within their max response time, the leaves on stop. EAL starts once
per process: each DPDK run is a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.igmp_harness import (ALLOW, BLOCK, IS_EX, IS_IN, TO_EX, TO_IN, V2_LEAVE, V2_REPORT, ip, query_frame,
                             v2_frame, v3_frame)

ANY, SSM = "233.54.12.111", "232.1.1.1"
SSM_SOURCES = ("10.1.1.1", "10.1.1.2")
INTERVAL_S = 0.3
RUN_S = 4.0

# The DPDK side: open the port in nic mode, poll queue 0 for RUN_S, print the IGMP counters, close (leaves).
_DPDK = """
import json, sys, threading
from rxfeed import _runloop
from rxfeed.backend_base import destinations
from rxfeed.backends.dpdk.backend import igmp_stats, open_device
from rxfeed.backends.dpdk.config import DpdkConfig
a = json.loads(sys.argv[1])
n = a.get("queues", 1)
cfg = DpdkConfig(port="net_af_packet0", vdevs=[f"net_af_packet0,iface={a['iface']},qpairs={n}"], no_pci=True,
                 filters=a["filters"], rx_queues=n, lcores=f"0-{n - 1}", igmp=a["igmp"])
device = open_device(cfg)
queues = [device.queue(q, destinations(a["filters"])) for q in range(n)]
print("RUNNING", flush=True)
def poll(q):
    _runloop.run_native(q.capsule(), _runloop.null_decoder(), 32, 0, a["seconds"], False)
threads = [threading.Thread(target=poll, args=(q,)) for q in queues]
for t in threads:
    t.start()
for t in threads:
    t.join()
per_queue = [{"frames": q.stats()["frames"], "drops": q.stats()["drops"]} for q in queues]
for q in queues:
    q.close()
device.close()  # the leaves
print(json.dumps({**igmp_stats(device), "per_queue": per_queue}), flush=True)
"""

# The peer side: capture IGMP from the host's MAC; send each query some time after the first report.
_PEER = """
import json, socket, struct, sys, time
a = json.loads(sys.argv[1])
host_mac = bytes.fromhex(a["host_mac"])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((a["iface"], 0))
s.settimeout(0.01)
print("READY", flush=True)
seen, sent, t_first = [], [], None
plan = [(d, bytes.fromhex(f)) for d, f in a["queries"]]
deadline = time.monotonic() + a["max_s"]
while time.monotonic() < deadline and sum(f[1] == "leave" for f in seen) < a["leaves"]:
    now = time.monotonic()
    if t_first is not None and plan and now >= t_first + plan[0][0]:
        s.send(plan[0][1])
        sent.append(now)
        plan.pop(0)
    try:
        frame, addr = s.recvfrom(4096)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING or frame[6:12] != host_mac or frame[12:14] != b"\\x08\\x00" or frame[23] != 2:
        continue
    t = time.monotonic()
    t_first = t if t_first is None else t_first
    ihl = 4 * (frame[14] & 15)
    kind = "leave" if frame[14 + ihl] == 0x17 or (frame[14 + ihl] == 0x22 and frame[14 + ihl + 8] in (3, 6)) else "report"
    seen.append((t, kind, frame.hex()))
print(json.dumps({"frames": seen, "sent": sent}), flush=True)
"""


def _start(cmd: list[str], ready: str) -> subprocess.Popen:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if ready not in line:
        p.kill()
        raise AssertionError(f"{cmd[-2][:40]!r} did not start: {line}{p.stderr.read()}")
    return p


def run_exchange(net: dict, igmp: dict, filters: list[str], queries: list[tuple[float, bytes]],
                 leaves: int, queues: int = 1) -> tuple[list[tuple[float, str, bytes]], list[float], dict]:
    """One DPDK run against the peer: (frames seen with arrival times and kinds, query send times, counters)."""
    host_mac = Path(f"/sys/class/net/{net['host_if']}/address").read_text().strip().replace(":", "")
    peer_args = {"iface": net["peer_if"], "host_mac": host_mac, "leaves": leaves, "max_s": RUN_S + 20,
                 "queries": [(d, q.hex()) for d, q in queries]}
    peer = _start(["ip", "netns", "exec", net["ns"], sys.executable, "-c", _PEER, json.dumps(peer_args)], "READY")
    dpdk_args = {"iface": net["host_if"], "filters": filters, "igmp": igmp, "seconds": RUN_S + 0.3 * len(queries),
                 "queues": queues}
    try:
        dpdk = _start([sys.executable, "-c", _DPDK, json.dumps(dpdk_args)], "RUNNING")
        out, err = dpdk.communicate(timeout=120)
        assert dpdk.returncode == 0, err
        counters = json.loads(out.strip().splitlines()[-1])
        pout, perr = peer.communicate(timeout=60)
    finally:
        for p in (peer, locals().get("dpdk")):
            if p is not None and p.poll() is None:
                p.kill()
    seen = json.loads(pout)
    return [(t, k, bytes.fromhex(f)) for t, k, f in seen["frames"]], seen["sent"], counters


def igmp_settings(version: int, source_ip: str) -> dict:
    return {"mode": "nic", "version": version, "interface": None, "sources": {SSM: SSM_SOURCES} if version == 3 else {},
            "report_source_ip": source_ip, "robustness": 2, "unsolicited_interval_s": INTERVAL_S}


def answers_after(frames, t_query: float, kind: str = "report") -> list[tuple[float, bytes]]:
    return [(t - t_query, f) for t, k, f in frames if t >= t_query and k == kind]


def test_v3_reports_answers_and_leaves_from_the_dpdk_tx_queue():
    from tests.netns import veth_pair

    with veth_pair("g") as net:
        src = ip(net["host_ip"])
        general = query_frame(3, 0, 10)                           # max resp 1.0 s
        specific = query_frame(3, ip(SSM), 5)                     # 0.5 s
        good = query_frame(3, ip(ANY), 5)
        broken = good[:40] + bytes([good[40] ^ 0xFF]) + good[41:]  # bad IGMP checksum
        frames, sent, counters = run_exchange(
            net, igmp_settings(3, net["host_ip"]), [f"{ANY}:26477", f"{SSM}:26478"],
            [(1.0, general), (1.1, broken), (2.2, specific)], leaves=2)
    mac = frames[0][2][6:12]
    join = v3_frame(mac, src, [(TO_EX, ip(ANY), ()), (ALLOW, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    joins = [(t, f) for t, k, f in frames if f == join]
    assert len(joins) == 2 and frames[0][2] == frames[1][2] == join
    assert INTERVAL_S - 0.1 < joins[1][0] - joins[0][0] < INTERVAL_S + 0.3
    assert len(sent) == 3
    (delay, answer), *_ = answers_after(frames[2:], sent[0])
    assert 0 <= delay < 1.0 + 0.1
    assert answer == v3_frame(mac, src, [(IS_EX, ip(ANY), ()), (IS_IN, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    (delay, answer), *_ = answers_after(frames, sent[2])
    assert 0 <= delay < 0.5 + 0.1
    assert answer == v3_frame(mac, src, [(IS_IN, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    leave = v3_frame(mac, src, [(TO_IN, ip(ANY), ()), (BLOCK, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    assert [f for _, k, f in frames if k == "leave"] == [leave, leave]
    assert len(frames) == 2 + 2 + 2  # nothing else: no kernel report, no duplicate answers
    assert "not_udp" not in counters.pop("per_queue")[0]["drops"]  # queries are not counted as drops
    assert counters == {"mode": "nic", "interface": "DPDK TX queue 0", "version": 3,
                        "groups": [ANY, ",".join(SSM_SOURCES) + "@" + SSM],
                        "reports_sent": 4, "queries_seen": 2,
                        "queries_answered": 2, "leaves_sent": 2, "tx_failed": 0, "bad_queries": 1,
                        "queries_handed_over": 0, "queries_dropped": 0}


def test_v2_reports_answers_and_leaves_from_the_dpdk_tx_queue():
    from tests.netns import veth_pair

    other = "233.54.12.112"
    with veth_pair("h") as net:
        general = query_frame(2, 0, 10)
        specific = query_frame(2, ip(other), 5)
        frames, sent, counters = run_exchange(
            net, igmp_settings(2, "0.0.0.0"), [f"{ANY}:26477", f"{other}:26477", f"{ANY}:26478"],
            [(1.0, general), (2.2, specific)], leaves=4)
    mac = frames[0][2][6:12]
    report = {g: v2_frame(mac, 0, V2_REPORT, ip(g)) for g in (ANY, other)}
    assert [f for _, _, f in frames[:4]] == [report[ANY], report[other]] * 2
    answers = answers_after(frames[4:], sent[0])
    assert sorted(f for _, f in answers[:2]) == sorted(report.values())
    assert all(0 <= d < 1.1 for d, _ in answers[:2])
    (delay, answer), *_ = answers_after(frames[6:], sent[1])
    assert answer == report[other] and 0 <= delay < 0.6
    leaves = [f for _, k, f in frames if k == "leave"]
    assert leaves == [v2_frame(mac, 0, V2_LEAVE, ip(ANY)), v2_frame(mac, 0, V2_LEAVE, ip(other))] * 2
    assert leaves[0][:6] == bytes.fromhex("01005e000002")
    assert counters["reports_sent"] == 4 + 2 + 1 and counters["leaves_sent"] == 4
    assert counters["queries_seen"] == 2 and counters["queries_answered"] == 3 and counters["tx_failed"] == 0
    assert "not_udp" not in counters["per_queue"][0]["drops"]


def test_replay_reports_igmp_off_and_counts_no_igmp(day_dir):
    p = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day_dir / "day.pcap"), "--backend",
                        "dpdk", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["backend_stats"]["igmp"] == {"mode": "off",
                                                             "reason": "a replay: no network behind the port"}


def test_queries_on_another_rx_queue_are_answered_by_queue_0s_poller():
    """Two RX queues (net_af_packet fans flows out by hash): queries from
    twelve queriers land on both; queue 1's poller hands its own over to
    queue 0's, which answers every one in time from TX queue 0."""
    from tests.netns import veth_pair

    queriers = [f"10.0.0.{i}" for i in range(1, 13)]
    with veth_pair("i") as net:
        queries = [(1.0 + 0.3 * i, query_frame(3, ip(ANY), 2, src_ip=q)) for i, q in enumerate(queriers)]
        frames, sent, counters = run_exchange(net, {**igmp_settings(3, "0.0.0.0"), "robustness": 1, "sources": {}},
                                              [f"{ANY}:26477"], queries, leaves=1, queues=2)
    mac = frames[0][2][6:12]
    answer = v3_frame(mac, 0, [(IS_EX, ip(ANY), ())])
    assert len(sent) == len(queriers)
    for t_query in sent:
        (delay, got), *_ = answers_after(frames, t_query)
        assert got == answer and 0 <= delay < 0.2 + 0.1
    per_queue = counters.pop("per_queue")
    assert counters["queries_handed_over"] > 0, "the hash put no query on queue 1: the hand-over was not exercised"
    assert all("not_udp" not in q["drops"] for q in per_queue)
    assert counters["queries_seen"] == counters["queries_answered"] == len(queriers)
    assert counters["queries_dropped"] == 0 and counters["tx_failed"] == 0
