"""The kernel UDP socket backend: loopback unicast, multicast over a veth pair
in a test-made namespace, and an overload whose losses show up as socket
drops (SO_RXQ_OVFL) and gaps, never silently."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed import ConfigError, Pipeline

from .netns import live_run, veth_pair

ROOT = Path(__file__).resolve().parents[1]
GROUP = "233.54.12.111:26477"


def test_loopback_unicast_every_message(rxfeed_day):
    port = 20000 + os.getpid() % 20000
    sent, s = live_run("udp_socket", {"groups": [f"127.0.0.1:{port}"]}, rxfeed_day(20_000, 4, 5, "nasdaq"),
                       f"127.0.0.1:{port}", 2000, "127.0.0.1")
    assert s["messages"] == sent["messages"] == 20_000 and s["gaps"] == 0
    assert s["stop_reason"] == "end_of_session"
    assert s["backend_stats"]["socket_drops"] == 0


def test_multicast_over_veth_every_message_busy_poll(rxfeed_day):
    with veth_pair("u") as net:
        sent, s = live_run("udp_socket", {"groups": [GROUP], "interface": net["host_if"], "busy_poll_us": 50},
                           rxfeed_day(20_000, 4, 5, "nasdaq"), GROUP, 2000, net["peer_ip"], netns=net["ns"])
    assert s["messages"] == sent["messages"] == 20_000 and s["gaps"] == 0


def test_overload_losses_are_socket_drops_and_gaps(rxfeed_day):
    with veth_pair("v") as net:
        sent, s = live_run("udp_socket", {"groups": [GROUP], "interface": net["host_if"], "rcvbuf": 4096},
                           rxfeed_day(400_000, 4, 5, "nasdaq"), GROUP, 0, net["peer_ip"], netns=net["ns"],
                           same_cpu=True)
    last_seen = s["decoder_stats"]["next_sequence"] - 1
    assert s["backend_stats"]["socket_drops"] > 0 and s["gaps"] > 0
    assert s["messages"] + s["gap_messages"] == last_seen
    print(f"\nudp overload: sent {sent['messages']}, delivered {s['messages']}, gap messages {s['gap_messages']}, "
          f"socket drops {s['backend_stats']['socket_drops']} datagrams")


def test_config_errors():
    with pytest.raises(ConfigError, match="share one port"):
        Pipeline("udp_socket", "itch50", backend_config={"groups": ["233.1.1.1:1000", "233.1.1.2:1001"]})
    with pytest.raises(ConfigError, match="groups"):
        Pipeline("udp_socket", "itch50", backend_config={"groups": ["233.1.1.1"]})


def test_rxfeed_send_paced_to_a_udp_socket_listener(tmp_path, day_dir):
    import numpy as np

    port = 20000 + (os.getpid() + 7) % 20000
    cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", "udp_socket", "--until-end-of-session",
           "--max-seconds", "60", "--json", "-o", f'groups=["127.0.0.1:{port}"]']
    lst = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([lst.stderr], [], [], 30)
        assert ready and "listening" in lst.stderr.readline()
        rec = tmp_path / "sent.npy"
        out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "send", str(day_dir / "day.pcap"), "--group",
                              f"127.0.0.1:{port}", "--rate", "4000", "--record", str(rec)],
                             capture_output=True, text=True, check=True, timeout=120).stdout
        got, err = lst.communicate(timeout=60)
    finally:
        if lst.poll() is None:
            lst.kill()
    sent = json.loads(out)
    s = json.loads(got)
    assert sent["messages"] == s["messages"] == 20_000 and s["gaps"] == 0
    r = np.load(rec)
    assert len(r) == sent["datagrams"] and int(r["count"].sum()) == 20_000
    assert list(r["sequence"][:2]) == [1, 1 + int(r["count"][0])]
    # paced: never faster than asked (the clock is busy-waited, not slept on)
    assert sent["seconds"] >= (sent["datagrams"] - 1) / 4000
    assert (np.diff(r["send_ns"].astype(np.int64)) > 0).all()


def test_rx_ts_ns_is_unix_epoch():
    # abi.h: ns since the Unix epoch; SO_TIMESTAMPNS stamps with CLOCK_REALTIME.
    import socket
    import time

    from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

    port = 20000 + (os.getpid() + 13) % 20000
    pipe = Pipeline("udp_socket", "itch50", backend_config={"groups": [f"127.0.0.1:{port}"], "idle_timeout_s": 0.3})
    stamps: dict[int, int] = {}
    pipe.decoder.subscribe(lambda m, meta: stamps.setdefault(meta[1], meta[2]), with_meta=True)
    t0 = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for _, payload in moldudp64_datagrams(generate_messages(500, symbols=2, seed=5)):
            tx.sendto(payload, ("127.0.0.1", port))
    s = pipe.run()
    t1 = time.time()
    pipe.close()
    assert s.messages == len(stamps) == 500 and s.gaps == 0
    assert t0 - 2 < min(stamps.values()) / 1e9 <= max(stamps.values()) / 1e9 < t1 + 2
