"""The latency lab behind ``rxfeed bench latency``.

A veth pair with one end in a network namespace the lab creates (and always
removes): a paced ``rxfeed send`` in the namespace, and on the other end
each receive path in turn - kernel socket blocking, kernel socket busy-poll,
DPDK ``net_af_packet``, DPDK ``net_af_xdp`` (where the kernel allows), and
ef_vi where this build has it - at each rate. One-way latency per datagram =
the decoder's handler-done time (CLOCK_REALTIME, logged per MoldUDP64
packet) minus the sender's send time for the same sequence number; both on
this host's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

GROUP, PORT = "233.54.12.111", 26477
_CPUS = sorted(os.sched_getaffinity(0))
#: The receiver polls on one CPU and the sender busy-waits on another, so
#: neither waits for the other's time slice (on one CPU both share it).
RX_CPU, TX_CPU = _CPUS[0], _CPUS[-1]


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@contextlib.contextmanager
def veth_pair(tag: str = "a") -> Iterator[dict[str, str]]:
    """A veth pair, one end in a fresh namespace (10.77.n.2), the other here (10.77.n.1)."""
    n = os.getpid() % 200 + (ord(tag[0]) % 50)
    pid = os.getpid()
    ns, host, peer = f"rxf{pid}{tag}", f"rxh{pid}{tag}"[:15], f"rxp{pid}{tag}"[:15]
    try:
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        _sh("ip", "link", "set", peer, "netns", ns)
        _sh("ip", "addr", "add", f"10.77.{n}.1/24", "dev", host)
        _sh("ip", "link", "set", host, "up")
        _sh("ip", "-n", ns, "addr", "add", f"10.77.{n}.2/24", "dev", peer)
        _sh("ip", "-n", ns, "link", "set", peer, "up")
        _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", peer)
        time.sleep(0.2)
        yield {"ns": ns, "host_if": host, "peer_if": peer, "host_ip": f"10.77.{n}.1", "peer_ip": f"10.77.{n}.2"}
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def available_paths() -> dict[str, dict[str, Any]]:
    """Receive paths this build and machine can run: name -> listen arguments."""
    paths: dict[str, dict[str, Any]] = {
        "kernel_blocking": {"backend": "udp_socket", "opts": {"blocking": True}},
        "kernel_busy_poll": {"backend": "udp_socket", "opts": {"busy_poll_us": 50}},
    }
    try:
        from rxfeed.backends.dpdk import _dpdk  # noqa: F401

        paths["dpdk_af_packet"] = {"backend": "dpdk", "pmd": "net_af_packet"}
        paths["dpdk_af_xdp"] = {"backend": "dpdk", "pmd": "net_af_xdp"}
    except ImportError:
        pass
    try:
        from rxfeed.backends.efvi import _efvi

        label = "efvi_standin" if "stand-in" in _efvi.BUILT_AGAINST else "efvi"
        paths[label] = {"backend": "efvi", "env": {"RXF_EFVI_STANDIN_UDP": "1"}}
    except ImportError:
        pass
    return paths


def _listen_cmd(spec: dict[str, Any], net: dict[str, str], arrivals: Path, max_seconds: float) -> list[str]:
    cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", spec["backend"], "--until-end-of-session",
           "--latency", "--json", "--max-seconds", str(max_seconds), "--arrivals", str(arrivals),
           "--cpu", str(RX_CPU)]
    group = f"{GROUP}:{PORT}"
    if spec["backend"] == "udp_socket":
        opts = {"groups": [group], "interface": net["host_if"], **spec["opts"]}
    elif spec["backend"] == "dpdk":
        opts = {"port": f"{spec['pmd']}0", "vdevs": [f"{spec['pmd']}0,iface={net['host_if']}"], "no_pci": True,
                "filters": [group]}
    else:
        opts = {"interface": net["host_if"], "filters": [group]}
    for k, v in opts.items():
        cmd += ["-o", f"{k}={json.dumps(v)}"]
    return cmd


def run_one(name: str, spec: dict[str, Any], net: dict[str, str], source: Path, rate: float,
            work: Path) -> dict[str, Any]:
    """One path at one rate: returns percentiles of one-way latency and loss."""
    arrivals, sent_rec = work / f"{name}_{int(rate)}_arr.npy", work / f"{name}_{int(rate)}_sent.npy"
    env = {**os.environ, **spec.get("env", {})}
    if "RXF_EFVI_STANDIN_UDP" in env:  # a live path: the stand-in must not replay a capture instead
        env.pop("RXF_EFVI_STANDIN_PCAP", None)
    lst = subprocess.Popen(_listen_cmd(spec, net, arrivals, 120), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env)
    try:
        seen = ""
        while "rxfeed: listening" not in seen:
            ready, _, _ = select.select([lst.stderr], [], [], 60)
            line = lst.stderr.readline() if ready else ""
            if not line:
                return {"path": name, "rate": rate, "error": (seen + lst.stderr.read())[-300:].strip()}
            seen += line
        time.sleep(0.3)
        sender = subprocess.run(["taskset", "-c", str(TX_CPU), "ip", "netns", "exec", net["ns"], sys.executable,
                                 "-m", "rxfeed.tools.cli", "send",
                                 str(source), "--group", f"{GROUP}:{PORT}", "--iface", net["peer_ip"], "--rate",
                                 str(rate), "--record", str(sent_rec)], capture_output=True, text=True, timeout=300)
        if sender.returncode != 0:
            return {"path": name, "rate": rate, "error": sender.stderr[-300:]}
        out, err = lst.communicate(timeout=150)
    finally:
        if lst.poll() is None:
            lst.kill()
            lst.wait()
    if lst.returncode != 0 or not out.strip():
        return {"path": name, "rate": rate, "error": err[-300:]}
    summary = json.loads(out)
    sent = np.load(sent_rec)
    arr = np.load(arrivals)
    idx = np.searchsorted(sent["sequence"], arr["sequence"])
    ok = (idx < len(sent)) & (sent["sequence"][np.minimum(idx, len(sent) - 1)] == arr["sequence"])
    lat_ns = arr["done_ns"][ok].astype(np.int64) - sent["send_ns"][idx[ok]].astype(np.int64)
    sent_msgs = int(sent["count"].sum())
    res = {"path": name, "rate": rate, "datagrams_sent": len(sent), "messages_sent": sent_msgs,
           "messages_received": summary["messages"], "gaps": summary["gaps"],
           "loss_pct": round(100.0 * (1 - summary["messages"] / sent_msgs), 3) if sent_msgs else 0.0,
           "rxfeed_p99_ns": (summary.get("latency") or {}).get("p99"), "latency_us": lat_ns / 1e3}
    if len(lat_ns):
        for k, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
            res[f"{k}_us"] = round(float(np.percentile(lat_ns, q)) / 1e3, 2)
        res["max_us"] = round(float(lat_ns.max()) / 1e3, 2)
    return res


def run_lab(messages: int = 20_000, rates: tuple[float, ...] = (2000.0, 10000.0),
            paths: list[str] | None = None, png: str | Path | None = None) -> list[dict[str, Any]]:
    """Run every (path, rate); returns one row each (``latency_us`` holds the samples).
    With ``png``, matplotlib is imported first: a missing one fails before any run."""
    from rxfeed.tools.generator import generate

    if png:
        import matplotlib  # noqa: F401

    avail = available_paths()
    chosen = {k: v for k, v in avail.items() if paths is None or k in paths}
    rows = []
    with tempfile.TemporaryDirectory(prefix="rxfeed-lab-") as tmp:
        work = Path(tmp)
        source = work / "day.itch"
        generate(source, messages, symbols=8, seed=3)
        with veth_pair("L") as net:
            for name, spec in chosen.items():
                for rate in rates:
                    rows.append(run_one(name, spec, net, source, rate, work))
    if png:
        plot_cdf(rows, png)
    return rows


def plot_cdf(rows: list[dict[str, Any]], out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for r in rows:
        lat = r.get("latency_us")
        if lat is None or not len(lat):
            continue
        x = np.sort(lat)
        ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=f"{r['path']} @ {int(r['rate'])}/s", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("send -> handler done, one way (us, log)")
    ax.set_ylabel("fraction of datagrams")
    ax.set_title("rxfeed latency lab (veth pair; ratios matter, absolute numbers are this machine's)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
