"""The latency lab behind ``rxfeed bench latency``.

A veth pair with one end in a network namespace the lab creates (and always
removes): a paced ``rxfeed send`` in the namespace, and on the other end
each receive path in turn - kernel socket blocking, kernel socket busy-poll,
DPDK ``net_af_packet``, DPDK ``net_af_xdp`` (where the kernel allows), and
ef_vi where this build has it - at each rate. One-way latency per datagram =
the decoder's handler-done time (CLOCK_REALTIME, logged per MoldUDP64
packet) minus the sender's send time for the same sequence number; both on
this host's clock.

Every run also reports the send rate the sender achieved (from its own send
timestamps, first to last send) beside the rate asked, and flags a sender
that fell short. :func:`run_capacity` searches each path's highest asked
rate that the sender achieved and the receiver got without loss.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GROUP, PORT = "233.54.12.111", 26477
_CPUS = sorted(os.sched_getaffinity(0))
#: The receiver polls on one CPU and the sender busy-waits on another, so
#: neither waits for the other's time slice (on one CPU both share it).
RX_CPU, TX_CPU = _CPUS[0], _CPUS[-1]
#: The kernel socket paths' receive buffer: the ef_vi stand-in's (4 MiB), not
#: the system default (~208 KiB), so that the paths' capacities compare.
KERNEL_RCVBUF = 4 << 20
#: A capacity search whose start rate fails steps down by its factor at most this many times.
DOWN_STEPS = 6
#: The sender fell short when it achieved less than this share of the asked rate.
KEPT_UP_SHARE = 0.95


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
        "kernel_blocking": {"backend": "udp_socket", "opts": {"blocking": True, "rcvbuf": KERNEL_RCVBUF}},
        "kernel_busy_poll": {"backend": "udp_socket", "opts": {"busy_poll_us": 50, "rcvbuf": KERNEL_RCVBUF}},
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


def send_rate(sent: np.ndarray, asked: float) -> dict[str, Any]:
    """The rate the sender achieved, from its own send timestamps (first to
    last send: n - 1 gaps), beside the rate asked (datagrams/s; 0 = as fast as
    possible), both also in messages/s (mean messages per datagram);
    ``sender_short`` when it achieved less than KEPT_UP_SHARE of the asked rate."""
    n = len(sent)
    per_datagram = float(sent["count"].sum()) / n if n else 0.0
    span_s = (int(sent["send_ns"][-1]) - int(sent["send_ns"][0])) / 1e9 if n > 1 else 0.0
    achieved = (n - 1) / span_s if span_s > 0 else None
    return {"asked_datagrams_per_s": round(asked, 1), "asked_messages_per_s": round(asked * per_datagram, 1),
            "achieved_datagrams_per_s": round(achieved, 1) if achieved else None,
            "achieved_messages_per_s": round(achieved * per_datagram, 1) if achieved else None,
            "sender_short": bool(asked > 0 and achieved is not None and achieved < KEPT_UP_SHARE * asked)}


def run_one(name: str, spec: dict[str, Any], net: dict[str, str], source: Path, rate: float,
            work: Path, listen_seconds: float = 120.0) -> dict[str, Any]:
    """One path at one rate: returns the send rate achieved, percentiles of
    one-way latency and loss. The listener stops after ``listen_seconds``
    (if the end-of-session packets were lost)."""
    arrivals, sent_rec = work / f"{name}_{int(rate)}_arr.npy", work / f"{name}_{int(rate)}_sent.npy"
    env = {**os.environ, **spec.get("env", {})}
    if "RXF_EFVI_STANDIN_UDP" in env:  # a live path: the stand-in must not replay a capture instead
        env.pop("RXF_EFVI_STANDIN_PCAP", None)
    lst = subprocess.Popen(_listen_cmd(spec, net, arrivals, listen_seconds), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
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
        out, err = lst.communicate(timeout=listen_seconds + 30)
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
           "rxfeed_p99_ns": (summary.get("latency") or {}).get("p99"), **send_rate(sent, rate),
           "latency_us": lat_ns / 1e3}
    if len(lat_ns):
        for k, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9)):
            res[f"{k}_us"] = round(float(np.percentile(lat_ns, q)) / 1e3, 2)
        res["max_us"] = round(float(lat_ns.max()) / 1e3, 2)
    return res


@contextlib.contextmanager
def _lab(messages: int) -> Iterator[tuple[Path, dict[str, str], Path]]:
    """A generated day of ``messages`` messages and the veth pair: (source, net, work directory)."""
    from rxfeed.tools.generator import generate

    with tempfile.TemporaryDirectory(prefix="rxfeed-lab-") as tmp:
        work = Path(tmp)
        source = work / "day.itch"
        generate(source, messages, symbols=8, seed=3)
        with veth_pair("L") as net:
            yield source, net, work


def _chosen_paths(paths: list[str] | None) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in available_paths().items() if paths is None or k in paths}


def run_lab(messages: int = 20_000, rates: tuple[float, ...] = (2000.0, 10000.0),
            paths: list[str] | None = None, png: str | Path | None = None) -> list[dict[str, Any]]:
    """Run every (path, rate); returns one row each (``latency_us`` holds the samples).
    With ``png``, matplotlib is imported first: a missing one fails before any run."""
    if png:
        import matplotlib  # noqa: F401

    rows = []
    with _lab(messages) as (source, net, work):
        for name, spec in _chosen_paths(paths).items():
            for rate in rates:
                rows.append(run_one(name, spec, net, source, rate, work))
    if png:
        plot_cdf(rows, png)
    return rows


@dataclass
class CapacitySearch:
    """How :func:`run_capacity` searches: asked rates (datagrams/s) from
    ``start``, times ``factor`` while runs pass, up to ``maximum`` (divided
    by it while they fail, at most DOWN_STEPS times); then
    ``bisect_steps`` geometric bisections between the highest pass and the
    lowest failure; all paths together within ``max_seconds`` (a run started
    before the budget ran out is finished)."""

    start: float = 10_000.0
    factor: float = 2.0
    maximum: float = 2_000_000.0
    bisect_steps: int = 3
    max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not (self.start > 0 and self.factor > 1 and self.maximum >= self.start and self.bisect_steps >= 0
                and self.max_seconds > 0):
            raise ValueError("capacity search needs start > 0, factor > 1, maximum >= start, bisect steps >= 0 "
                             "and max seconds > 0")


def run_passed(row: dict[str, Any]) -> bool:
    """A run at an asked rate passes when it did not fail, the sender
    achieved the rate and the receiver got every message sent, without gaps."""
    return ("error" not in row and not row["sender_short"] and row["gaps"] == 0
            and row["messages_sent"] > 0 and row["messages_received"] >= row["messages_sent"])


def _why_failed(row: dict[str, Any]) -> str:
    if "error" in row:
        return "error"
    return "sender" if row["sender_short"] else "loss"


def _bracket(trial: Callable[[float], dict[str, Any]], search: CapacitySearch, deadline: float,
             trials: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(highest pass, lowest failure) by stepping by ``factor`` from the start
    rate: up while runs pass (to the maximum), down while they fail (at most
    DOWN_STEPS times); either may be None."""
    best: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None
    rate = search.start
    while time.monotonic() < deadline:
        row = trial(rate)
        trials.append(row)
        if run_passed(row):
            best = row
            if failed is not None or rate >= search.maximum:
                break
            rate = min(rate * search.factor, search.maximum)
        else:
            failed = row
            if best is not None or len(trials) > DOWN_STEPS:
                break
            rate = round(rate / search.factor)
    return best, failed


def search_capacity(trial: Callable[[float], dict[str, Any]], search: CapacitySearch,
                    deadline: float) -> dict[str, Any]:
    """The highest asked rate for which ``trial`` passes (:func:`run_passed`):
    multiply by ``factor`` until a failure, the maximum or the deadline (or
    divide until a pass if the start rate fails), then bisect. Every passing
    rate tried is below every failing one, by construction.
    Returns the best run (None if no rate passed), what stopped the
    search (``limited_by``) and every run (``trials``)."""
    trials: list[dict[str, Any]] = []
    best, failed = _bracket(trial, search, deadline, trials)
    for _ in range(search.bisect_steps if best and failed else 0):
        middle = round(math.sqrt(best["rate"] * failed["rate"]))
        if time.monotonic() >= deadline or not best["rate"] < middle < failed["rate"]:
            break
        row = trial(middle)
        trials.append(row)
        if run_passed(row):
            best = row
        else:
            failed = row
    if failed is not None:
        limited_by = _why_failed(failed)
    elif best is not None and best["rate"] >= search.maximum:
        limited_by = "maximum"
    else:
        limited_by = "time"
    return {"best": best, "limited_by": limited_by, "trials": trials}


def _capacity_row(name: str, found: dict[str, Any]) -> dict[str, Any]:
    """One path's answer: the best run's rates and loss, and each run compactly."""
    keys = ("asked_datagrams_per_s", "asked_messages_per_s", "achieved_datagrams_per_s",
            "achieved_messages_per_s", "messages_sent", "messages_received", "loss_pct")
    best = found["best"]
    row: dict[str, Any] = {"path": name, **{k: (best or {}).get(k) for k in keys}}
    row["limited_by"] = found["limited_by"]
    row["trials"] = [{"rate": t["rate"], "passed": run_passed(t),
                      **{k: t.get(k) for k in ("achieved_datagrams_per_s", "loss_pct", "sender_short", "error")
                         if t.get(k) is not None}} for t in found["trials"]]
    return row


def run_capacity(messages: int = 200_000, search: CapacitySearch | None = None,
                 paths: list[str] | None = None) -> list[dict[str, Any]]:
    """Per receive path, the highest loss-free asked rate the sender achieved
    (:func:`search_capacity`); the time budget is shared out over the paths,
    what one path leaves unused goes to the next."""
    search = search or CapacitySearch()
    chosen = _chosen_paths(paths)
    rows = []
    t0 = time.monotonic()
    with _lab(messages) as (source, net, work):
        datagrams = max(1, messages // 40)  # ~43 messages per generated datagram; bounds the listener only
        for i, (name, spec) in enumerate(chosen.items()):
            deadline = t0 + search.max_seconds * (i + 1) / len(chosen)

            def trial(rate: float, name: str = name, spec: dict[str, Any] = spec) -> dict[str, Any]:
                row = run_one(name, spec, net, source, rate, work, listen_seconds=20 + 3 * datagrams / rate)
                row.pop("latency_us", None)
                return row

            rows.append(_capacity_row(name, search_capacity(trial, search, deadline)))
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
