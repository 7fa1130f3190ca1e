"""Live-test helpers: the lab's veth pair (rxfeed.tools.lab.veth_pair) and one
harness that starts ``rxfeed listen``, waits until it is receiving, sends a
day with ``rxfeed send`` (optionally from a namespace, optionally on the
listener's CPU) and returns what both sides printed."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from typing import Any

from rxfeed.tools.lab import veth_pair

__all__ = ["live_run", "veth_pair"]


def live_run(backend: str, options: dict[str, Any], source, group: str, rate: float, iface_ip: str,
             netns: str | None = None, same_cpu: bool = False, env: dict | None = None,
             max_seconds: float = 60) -> tuple[dict, dict]:
    """``(sender summary, listener summary)`` of one live run."""
    cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "--decoder", "itch50", "--backend", backend, "--until-end-of-session",
           "--max-seconds", str(max_seconds), "--json"]
    for k, v in options.items():
        cmd += ["-o", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    if same_cpu:
        cmd += ["--cpu", "0"]
    lst = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # PMDs (libxdp) and warnings may come first. Raw reads: a buffered
        # readline would keep "listening" in its buffer, out of select's sight.
        fd, seen = lst.stderr.fileno(), b""
        while b"rxfeed: listening" not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            chunk = os.read(fd, 65536) if ready else b""
            assert chunk, "listener did not start:\n" + seen.decode(errors="replace")
            seen += chunk
        snd = [sys.executable, "-m", "rxfeed.tools.cli", "send", str(source), "--group", group, "--rate", str(rate),
               "--iface", iface_ip]
        if netns:
            snd = ["ip", "netns", "exec", netns] + snd
        if same_cpu:
            snd = ["taskset", "-c", "0"] + snd
        sent = json.loads(subprocess.run(snd, capture_output=True, text=True, check=True, timeout=180).stdout)
        out, err = lst.communicate(timeout=max_seconds + 30)
    finally:
        if lst.poll() is None:
            lst.kill()
            lst.wait()
    assert lst.returncode == 0, err
    return sent, json.loads(out)
