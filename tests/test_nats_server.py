"""Real nats-server processes for the JetStream work (issue 14): a single node
and a 3-node cluster start, take event records into a JetStream stream, and
give them back intact."""

from __future__ import annotations

import asyncio
import time

import nats  # the [nats] extra, installed by scripts/dev.sh setup
import nats.js.errors
import numpy as np
from nats.js.client import JetStreamContext
from nats.js.errors import NoStreamResponseError

from rxfeed.events import EventKind, as_kind, events_from_bytes, make_events

from .nats_fixtures import NatsServer, nats_cluster, nats_server  # noqa: F401 (fixtures)


def _batches(n_batches: int, per_batch: int) -> list[bytes]:
    """Batches of trade events (one NATS message each), seq numbering every event."""
    return [make_events(EventKind.TRADE, per_batch, symbol=7, seq=b * per_batch + np.arange(per_batch),
                        price=1234500 + b, qty=100).tobytes() for b in range(n_batches)]


async def _publish_and_read(servers: list[str], replicas: int, payloads: list[bytes]) -> tuple[list[int], list[bytes]]:
    """Create a stream, publish ``payloads`` (acks awaited), read them back
    with a pull consumer; (acked stream sequences, payloads read).

    A replicated stream answers only once its replicas have elected a leader,
    which add_stream does not wait for (a loaded machine saw "no responders"
    on the first publish), so publishing retries as after a failover."""
    nc = await nats.connect(servers=servers, connect_timeout=10)
    try:
        js = nc.jetstream(timeout=20)
        await js.add_stream(name="RXF_SMOKE", subjects=["rxfeed.smoke.>"], num_replicas=replicas)
        acks = [await _publish_once(js, "rxfeed.smoke.trade.7", p, f"first-{i}") for i, p in enumerate(payloads)]
        sub = await js.pull_subscribe("rxfeed.smoke.>", durable="smoke")
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < len(payloads):
            try:
                batch = await sub.fetch(len(payloads) - len(got), timeout=10)
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                # the new consumer's replicas still electing: a timeout, or 503 (CI saw both)
                await asyncio.sleep(0.2)
                if time.monotonic() > deadline:
                    raise
                continue
            for msg in batch:
                got.append(msg.data)
                await msg.ack()
        return acks, got
    finally:
        await nc.close()


async def _publish_once(js: JetStreamContext, subject: str, payload: bytes, msg_id: str,
                        within_s: float = 60.0) -> int:
    """Publish, retrying while the stream has no leader (the killed node led
    it: the others elect one); the message id makes a retry after a lost ack
    a duplicate the stream drops. The stream sequence it got."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return (await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})).seq
        except (NoStreamResponseError, nats.errors.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def _check_events(payloads: list[bytes], got: list[bytes]) -> None:
    assert got == payloads
    events = events_from_bytes(b"".join(got))
    trades = as_kind(events, EventKind.TRADE)
    assert len(trades) == len(events) and (trades["seq"] == np.arange(len(events))).all()


def test_single_node_jetstream_round_trip(nats_server: NatsServer):  # noqa: F811
    payloads = _batches(50, 32)
    seqs, got = asyncio.run(_publish_and_read([nats_server.url], 1, payloads))
    assert seqs == list(range(1, 51))
    _check_events(payloads, got)


def test_server_restart_keeps_the_stream(nats_server: NatsServer):  # noqa: F811
    payloads = _batches(5, 4)
    asyncio.run(_publish_and_read([nats_server.url], 1, payloads))
    nats_server.stop(kill=True)
    nats_server.start()
    nats_server.wait_ready()

    async def read_back() -> list[bytes]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream(timeout=20)
            return [(await js.get_msg("RXF_SMOKE", seq)).data for seq in range(1, 6)]
        finally:
            await nc.close()

    assert asyncio.run(read_back()) == payloads


def test_three_node_cluster_replicated_stream(nats_cluster: list[NatsServer]):  # noqa: F811
    payloads = _batches(20, 16)
    seqs, got = asyncio.run(_publish_and_read([n.url for n in nats_cluster], 3, payloads))
    assert seqs == list(range(1, 21))
    _check_events(payloads, got)

    async def replicas() -> int:
        nc = await nats.connect(nats_cluster[0].url)
        try:
            info = await nc.jetstream(timeout=20).stream_info("RXF_SMOKE")
            return 1 + len(info.cluster.replicas or [])
        finally:
            await nc.close()

    assert asyncio.run(replicas()) == 3


def test_cluster_node_killed_and_restarted_loses_nothing(nats_cluster: list[NatsServer]):  # noqa: F811
    first, second = _batches(10, 8), _batches(20, 8)[10:]
    asyncio.run(_publish_and_read([n.url for n in nats_cluster], 3, first))
    victim, others = nats_cluster[0], nats_cluster[1:]
    victim.stop(kill=True)

    async def publish_more() -> list[int]:
        nc = await nats.connect(servers=[n.url for n in others], connect_timeout=10)
        try:
            js = nc.jetstream(timeout=5)
            return [await _publish_once(js, "rxfeed.smoke.trade.7", p, f"more-{i}") for i, p in enumerate(second)]
        finally:
            await nc.close()

    assert asyncio.run(publish_more()) == list(range(11, 21))
    victim.start()
    victim.wait_ready()

    async def read_all_from(url: str) -> list[bytes]:
        nc = await nats.connect(url)
        try:
            sub = await nc.jetstream(timeout=20).subscribe("rxfeed.smoke.>", ordered_consumer=True)
            return [(await sub.next_msg(timeout=20)).data for _ in range(20)]
        finally:
            await nc.close()

    _check_events(first + second, asyncio.run(read_all_from(victim.url)))
