"""The JetStream sink's ``stamp_headers`` (for latency benchmarks): every
message carries ``Rxfeed-Sent-Ns``, the wall-clock ns it was published;
without the flag none does. Real nats-server."""

from __future__ import annotations

import asyncio
import time

from rxfeed.sinks.nats_js import wire
from rxfeed.sinks.nats_js.publisher import HEADER_SENT_NS
from rxfeed.tools.market_generator import generate_market

from .nats_fixtures import nats_server  # noqa: F401  (fixture)
from .test_nats_fanout import Handler


def _headers(url: str, stream: str) -> list[dict[str, str]]:
    async def read() -> list[dict[str, str]]:
        import nats

        nc = await nats.connect(url)
        sub = await nc.jetstream().pull_subscribe("rxfeed.itch50.>", stream=stream)
        msgs = await sub.fetch(100_000, timeout=2)
        await nc.close()
        return [dict(m.headers or {}) for m in msgs]

    return asyncio.run(read())


def test_stamped_messages_carry_their_publish_time_and_unstamped_ones_do_not(nats_server, tmp_path):
    day = tmp_path / "day.pcap"
    generate_market(day, 5_000, symbols=5, seed=3)
    before = time.time_ns()
    stamped = Handler(day, [nats_server.url], wait_when_full=True, stamp_headers=True).start()
    stamped.finish()
    after = time.time_ns()
    headers = _headers(nats_server.url, stamped.sink.session.stream)
    assert len(headers) == stamped.sink.stats()["acked_messages"] > 0
    sent = [int(h[HEADER_SENT_NS]) for h in headers]
    assert all(before <= t <= after for t in sent) and sent == sorted(sent)

    plain = Handler(day, [nats_server.url], wait_when_full=True).start()
    plain.finish()
    mine = [h for h in _headers(nats_server.url, plain.sink.session.stream)
            if h[wire.HEADER_SESSION] == plain.sink.session.session]
    assert mine and not any(HEADER_SENT_NS in h for h in mine)
