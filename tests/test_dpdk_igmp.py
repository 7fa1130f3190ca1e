"""IGMP sent from the DPDK TX queue (issue 15, nic mode) over a veth pair:
DPDK's net_af_packet on the host end, a raw AF_PACKET socket in the peer
namespace standing in for the switch/querier (``tests/igmp_wire.py
capture``). The host end has no socket joined to any group, so every IGMP
frame seen there is rxfeed's. Checked byte for byte against frames built
from the RFCs (tests/igmp_wire.py): the unsolicited reports on start,
answers to a general and a group-specific query within their max response
time, the leaves on close. EAL starts once per process: each DPDK run is a
process of its own.

Times are measured by the peer, a Python process competing for the CPU with
the busy-polling pollers: max response times are >= 1 s and every bound has
SLACK_S of slack; queries are spaced so that each answer is unambiguous."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.igmp_wire import (ALLOW, BLOCK, IS_EX, IS_IN, TO_EX, TO_IN, V2_LEAVE, V2_REPORT, ip, is_leave, parse,
                             querier_frame, v2_frame, v3_frame)

ANY, SSM = "233.54.12.111", "232.1.1.1"
SSM_SOURCES = ("10.1.1.1", "10.1.1.2")
INTERVAL_S = 1.0  # between the unsolicited reports
MAX_RESP_CODE, MAX_RESP_S = 10, 1.0  # the queries' max response time
SLACK_S = 0.5  # for the peer's measurement on a loaded machine
NEXT_QUERY_S = MAX_RESP_S + SLACK_S + 0.3  # a query's answer is in before the next query goes out
WIRE = str(Path(__file__).with_name("igmp_wire.py"))

# The DPDK side: open the port in nic mode, poll its queues for a while, print the IGMP counters, close (leaves).
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


def _start(cmd: list[str], ready: str, stream: str = "stdout") -> subprocess.Popen:
    """``cmd`` started, once it printed ``ready`` on ``stream``."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = getattr(p, stream).readline()
    if ready not in line:
        p.kill()
        raise AssertionError(f"{cmd[-2][:40]!r} did not start: {line}{p.stderr.read()}")
    return p


def _peer(net: dict, frames: int, queries: list[tuple[float, bytes]], seconds: float) -> subprocess.Popen:
    """The capture in the peer namespace: IGMP from the host end's MAC, each
    query sent its time after the first report, until ``frames`` frames."""
    host_mac = Path(f"/sys/class/net/{net['host_if']}/address").read_text().strip().replace(":", "")
    cmd = ["ip", "netns", "exec", net["ns"], sys.executable, WIRE, "capture", net["peer_if"], str(seconds),
           "--src-mac", host_mac, "--after-first", "--max-frames", str(frames), "--with-sent",
           *[f"{at}:{q.hex()}" for at, q in queries]]
    return _start(cmd, "ready", "stderr")


def run_exchange(net: dict, igmp: dict, filters: list[str], queries: list[tuple[float, bytes]],
                 frames: int, queues: int = 1) -> tuple[list[tuple[float, str, bytes]], list[float], dict]:
    """One DPDK run against the peer, which stops after ``frames`` frames:
    (frames seen with arrival times and kinds, query send times, counters).
    The pollers run until the last query's answer is due (plus slack)."""
    seconds = max([at for at, _ in queries], default=0.0) + INTERVAL_S + MAX_RESP_S + 2 * SLACK_S
    peer = _peer(net, frames, queries, seconds + 60)
    dpdk_args = {"iface": net["host_if"], "filters": filters, "igmp": igmp, "seconds": seconds, "queues": queues}
    try:
        dpdk = _start([sys.executable, "-c", _DPDK, json.dumps(dpdk_args)], "RUNNING")
        out, err = dpdk.communicate(timeout=120)
        assert dpdk.returncode == 0, err
        counters = json.loads(out.strip().splitlines()[-1])
        pout, perr = peer.communicate(timeout=90)
        assert peer.returncode == 0, perr
    finally:
        for p in (peer, locals().get("dpdk")):
            if p is not None and p.poll() is None:
                p.kill()
    seen = json.loads(pout)
    got = [(f["t"], bytes.fromhex(f["hex"])) for f in seen["frames"]]
    return [(t, "leave" if is_leave(parse(f)) else "report", f) for t, f in got], seen["sent"], counters


def igmp_settings(version: int, source_ip: str) -> dict:
    return {"mode": "nic", "version": version, "interface": None, "sources": {SSM: SSM_SOURCES} if version == 3 else {},
            "report_source_ip": source_ip, "robustness": 2, "unsolicited_interval_s": INTERVAL_S}


def answers_after(frames, t_query: float, kind: str = "report") -> list[tuple[float, bytes]]:
    return [(t - t_query, f) for t, k, f in frames if t >= t_query and k == kind]


def in_time(delay: float) -> bool:
    """An answer within the max response time (RFC 3376 5.2, RFC 2236 3), measured with slack."""
    return 0 <= delay < MAX_RESP_S + SLACK_S


def assert_joins_spaced(frames, join: bytes, count: int = 2) -> None:
    """The first ``count`` frames are the unsolicited report, each after the
    first at most INTERVAL_S after the one before (a random delay, RFC 3376 5.1)."""
    times = [t for t, _, f in frames[:count] if f == join]
    assert len(times) == count, "the unsolicited reports"
    assert all(0 < b - a < INTERVAL_S + SLACK_S for a, b in zip(times, times[1:])), times


def test_v3_reports_answers_and_leaves_from_the_dpdk_tx_queue():
    from tests.netns import veth_pair

    with veth_pair("g") as net:
        src = ip(net["host_ip"])
        general = querier_frame(3, 0, MAX_RESP_CODE)
        specific = querier_frame(3, ip(SSM), MAX_RESP_CODE)
        good = querier_frame(3, ip(ANY), MAX_RESP_CODE)
        broken = good[:40] + bytes([good[40] ^ 0xFF]) + good[41:]  # bad IGMP checksum
        at = INTERVAL_S + SLACK_S
        frames, sent, counters = run_exchange(
            net, igmp_settings(3, net["host_ip"]), [f"{ANY}:26477", f"{SSM}:26478"],
            [(at, general), (at + 0.1, broken), (at + NEXT_QUERY_S, specific)], frames=6)
    mac = frames[0][2][6:12]
    join = v3_frame(mac, src, [(TO_EX, ip(ANY), ()), (ALLOW, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    assert_joins_spaced(frames, join)
    assert len(sent) == 3
    (delay, answer), *_ = answers_after(frames[2:], sent[0])
    assert in_time(delay) and answer == v3_frame(mac, src, [(IS_EX, ip(ANY), ()),
                                                              (IS_IN, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    (delay, answer), *_ = answers_after(frames, sent[2])
    assert in_time(delay) and answer == v3_frame(mac, src, [(IS_IN, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    leave = v3_frame(mac, src, [(TO_IN, ip(ANY), ()), (BLOCK, ip(SSM), tuple(map(ip, SSM_SOURCES)))])
    assert [f for _, k, f in frames if k == "leave"] == [leave, leave]
    assert len(frames) == 2 + 2 + 2  # nothing else: no kernel report, no duplicate answers
    assert "not_udp" not in counters.pop("per_queue")[0]["drops"]  # queries are not counted as drops
    assert counters == {"mode": "nic", "interface": "DPDK TX queue 0", "version": 3, "robustness": 2,
                        "querier_query_interval_s": 125,
                        "groups": [ANY, ",".join(SSM_SOURCES) + "@" + SSM],
                        "reports_sent": 4, "queries_seen": 2,
                        "queries_answered": 2, "leaves_sent": 2, "tx_failed": 0, "bad_queries": 1,
                        "queries_handed_over": 0, "queries_dropped": 0}


def test_v2_reports_answers_and_leaves_from_the_dpdk_tx_queue():
    from tests.netns import veth_pair

    other = "233.54.12.112"
    with veth_pair("h") as net:
        src = ip(net["host_ip"])  # IGMPv2 has no 0.0.0.0 source: report_source_ip is set
        general = querier_frame(2, 0, MAX_RESP_CODE)
        specific = querier_frame(2, ip(other), MAX_RESP_CODE)
        at = INTERVAL_S + SLACK_S
        frames, sent, counters = run_exchange(
            net, igmp_settings(2, net["host_ip"]), [f"{ANY}:26477", f"{other}:26477", f"{ANY}:26478"],
            [(at, general), (at + NEXT_QUERY_S, specific)], frames=4 + 2 + 1 + 4)
    mac = frames[0][2][6:12]
    report = {g: v2_frame(mac, src, V2_REPORT, ip(g)) for g in (ANY, other)}
    assert [f for _, _, f in frames[:4]] == [report[ANY], report[other]] * 2
    answers = answers_after(frames[4:], sent[0])
    assert sorted(f for _, f in answers[:2]) == sorted(report.values())
    assert all(in_time(d) for d, _ in answers[:2])
    (delay, answer), *_ = answers_after(frames[6:], sent[1])
    assert answer == report[other] and in_time(delay)
    leaves = [f for _, k, f in frames if k == "leave"]
    assert leaves == [v2_frame(mac, src, V2_LEAVE, ip(ANY)), v2_frame(mac, src, V2_LEAVE, ip(other))] * 2
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
    """Two RX queues (net_af_packet fans flows out by hash): twelve queriers
    each ask about a group of their own, so that the queries land on both
    queues; queue 1's poller hands its own over to queue 0's, which answers
    every one within the max response time from TX queue 0, each after a
    random delay of its own (RFC 3376 5.2)."""
    from tests.netns import veth_pair

    groups = [f"233.54.12.{120 + i}" for i in range(12)]
    with veth_pair("i") as net:
        queries = [(INTERVAL_S + 0.1 * i, querier_frame(3, ip(g), MAX_RESP_CODE, src_ip=f"10.0.0.{i + 1}"))
                   for i, g in enumerate(groups)]
        frames, sent, counters = run_exchange(net, {**igmp_settings(3, "0.0.0.0"), "robustness": 1, "sources": {}},
                                              [f"{g}:26477" for g in groups], queries, frames=1 + 12 + 2, queues=2)
    mac = frames[0][2][6:12]
    assert len(sent) == len(groups)
    delays = []
    for g, t_query in zip(groups, sent):
        answer = v3_frame(mac, 0, [(IS_EX, ip(g), ())])
        delay = next(t - t_query for t, _, f in frames if f == answer)
        assert in_time(delay), (g, delay)
        delays.append(delay)
    assert max(delays) - min(delays) > 0.1, f"answers not spread over the max response time: {delays}"
    per_queue = counters.pop("per_queue")
    assert counters["queries_handed_over"] > 0, "the hash put no query on queue 1: the hand-over was not exercised"
    assert all("not_udp" not in q["drops"] for q in per_queue)
    assert counters["queries_seen"] == counters["queries_answered"] == len(groups)
    assert counters["queries_dropped"] == 0 and counters["tx_failed"] == 0
    # robustness 1 configured; the queries' QRV 2 (RFC 3376 4.1.6) is the one in force: two leaves
    assert counters["robustness"] == 2 and counters["leaves_sent"] == 2


# Open the port in nic mode, poll queue 0 a little, close (leaves); look at the IGMP TX pools meanwhile.
_CLOSE = """
import json, sys
from rxfeed import _runloop
from rxfeed.backends.dpdk import _dpdk
from rxfeed.backends.dpdk.backend import igmp_stats, open_device
from rxfeed.backends.dpdk.config import DpdkConfig
a = json.loads(sys.argv[1])
cfg = DpdkConfig(port="net_af_packet0", vdevs=[f"net_af_packet0,iface={a['iface']}"], no_pci=True,
                 filters=a["filters"], lcores="0", igmp=a["igmp"])
device = open_device(cfg)
pools_open = _dpdk.igmp_tx_pools()
q = device.queue(0)
_runloop.run_native(q.capsule(), _runloop.null_decoder(), 32, 0, 0.5, False)
q.close()
device.close()
print(json.dumps({"pools_open": pools_open, "pools_closed": _dpdk.igmp_tx_pools(), "igmp": igmp_stats(device)}))
"""


def test_close_frees_the_igmp_tx_pool_and_keeps_the_counters():
    """close() sends the leaves, then frees the responder and its TX pool
    while the device object lives on (it used to wait for garbage
    collection, the pool's name taken until then); the closed device still
    reports its final counters."""
    from tests.netns import veth_pair

    with veth_pair("j") as net:
        igmp = {**igmp_settings(3, net["host_ip"]), "robustness": 1, "sources": {}}
        p = subprocess.run([sys.executable, "-c", _CLOSE, json.dumps({"iface": net["host_if"], "igmp": igmp,
                                                                      "filters": [f"{ANY}:26477"]})],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["pools_open"] == 1 and out["pools_closed"] == 0, out
    run = out["igmp"]
    assert run["mode"] == "nic" and run["reports_sent"] == 1 and run["leaves_sent"] == 1, run
    assert run["tx_failed"] == 0
