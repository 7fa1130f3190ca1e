"""Distribution (issue 14) on real nats-server processes (opt-in: ``pytest -m bench -k distribution``).

A generated market day (``RXFEED_BENCH_DIST_MESSAGES``, default 1,000,000
messages, ``RXFEED_BENCH_DIST_SYMBOLS`` 500 symbols, MoldUDP64 in a pcap,
cached in ``RXFEED_BENCH_DIR``) replayed by ``pcap_replay`` into the ITCH 5.0
decoder and its books with BBO rows (``make_books(bbo=True)``):

1. **Handler throughput** (``test_handler_throughput_with_the_jetstream_sink``),
   interleaved rounds, the order rotated: the books alone; the books emitting
   events into a ring that holds the whole day, nothing reading it (the
   emitting cost alone); (a) the books with the JetStream sink attached, its
   ring holding the whole day, never waiting: the loop's cost, timed by the
   CPU time of the loop's thread (the publisher thread of the same process
   is not counted) and by the wall clock of the run; the publisher drains the
   ring after the clock stops. The 0.8x target is about (a). (b) the books
   with the sink waiting on a 64k-event ring until the publisher has every
   event acknowledged and the final snapshots written (``close()``): the
   publish-limited rate, events/s.
2. **Rates and latency beside ZeroMQ** (``test_publish_rate_and_latency_beside_zeromq``):
   full speed, each sink with a consumer in another process: events (records
   for ZeroMQ) per second published and received. Then a paced replay of a
   smaller day (``RXFEED_BENCH_DIST_PACED_MESSAGES``, default 50,000, over
   ``RXFEED_BENCH_DIST_PACED_S`` seconds, default 16: the day's quiet spell
   before the open takes about half, so ~10k events/s while trading) with a
   consumer in another process stamping ``time.time_ns()`` on arrival.
   ZeroMQ twice: with the decoder's default numpy batches (65,536 records:
   the sink sends a batch when it fills) and with ``batch_size=1``. Two
   latencies: from the time the pacing released the event's packet to the
   handler (``t0 + (packet capture time - first capture time) / speed``; the
   loop busy-polls, so this is when the books made the event, plus any lag
   of the loop behind the schedule) to arrival, for both sinks; and from the
   publish stamp (JetStream: the ``Rxfeed-Sent-Ns``
   header of ``stamp_headers``, stamped by the publisher thread; ZeroMQ: the
   stamp added to the header frame when the decoder's batch callback sends)
   to arrival.
3. **Catch-up** (``test_late_consumer_catch_up``): a day
   (``RXFEED_BENCH_DIST_CATCH_UP_MESSAGES``, default 200,000) published live
   (paced over ``RXFEED_BENCH_DIST_LIVE_S`` seconds, default 20), a consumer
   (``rxfeed.remote.Books``, every symbol) started in another process when
   the pacing releases the day's middle packet: events applied and seconds
   from ``start()`` to caught up with the stream (nothing pending),
   with snapshots every second and with none (it replays from the session's
   start); its final books are checked equal to the handler's.

Results: ``.benchmarks/rxfeed-distribution.json`` and printed by the last
test. No timing is asserted (the machine is shared); counts, zero loss and
book equality are.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rxfeed import Pipeline
from rxfeed.events import EventRing
from rxfeed.sinks.nats_js import NatsJsConfig, NatsJsSink
from rxfeed.sinks.zmq_pub.sink import ZmqPubConfig, ZmqPubSink
from rxfeed.tools.generator import DAY_EPOCH_NS
from rxfeed.tools.market_generator import generate_market

from ..nats_fixtures import nats_server  # noqa: F401  (fixture)
from ..test_nats_fanout import handler_books_report
from .timing import machine

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_DIST_MESSAGES", "1000000"))
SYMBOLS = int(os.environ.get("RXFEED_BENCH_DIST_SYMBOLS", "500"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_DIST_ROUNDS", "3"))
PACED_N = int(os.environ.get("RXFEED_BENCH_DIST_PACED_MESSAGES", "50000"))
PACED_S = float(os.environ.get("RXFEED_BENCH_DIST_PACED_S", "16"))
CATCH_UP_N = int(os.environ.get("RXFEED_BENCH_DIST_CATCH_UP_MESSAGES", "200000"))
LIVE_S = float(os.environ.get("RXFEED_BENCH_DIST_LIVE_S", "20"))
#: events the ring of (a) holds: the whole day (checked: nothing dropped)
DAY_RING = 1 << int(os.environ.get("RXFEED_BENCH_DIST_RING_BITS", "21"))
#: Issue 14: the handler's rate with the JetStream sink at least this fraction of without.
TARGET = 0.8
ROOT = Path(__file__).parents[2]
RESULTS: dict[str, Any] = {}


def _market(bench_day, n: int) -> Path:
    return bench_day(f"market{n}-{SYMBOLS}.pcap", n, lambda p: generate_market(p, n, SYMBOLS))


@pytest.fixture(scope="module")
def day(bench_day) -> Path:
    return _market(bench_day, N)


@pytest.fixture(scope="module")
def paced_day(bench_day) -> Path:
    return _market(bench_day, PACED_N)


@pytest.fixture(scope="module")
def live_day(bench_day) -> Path:
    return _market(bench_day, CATCH_UP_N)


# ---- the pacing schedule ----


@dataclass(frozen=True)
class Schedule:
    """Each MoldUDP64 packet's first ITCH timestamp (ns since midnight: its
    capture time less the generator's epoch), in file order."""

    first_ts: np.ndarray

    @classmethod
    def of(cls, path: Path) -> Schedule:
        data = path.read_bytes()
        magic = struct.unpack_from("<I", data)[0]
        frac_ns = 1 if magic == 0xA1B23C4D else 1000
        at, out = 24, []
        while at + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack_from("<IIII", data, at)
            out.append(sec * 10**9 + frac * frac_ns - DAY_EPOCH_NS)
            at += 16 + incl
        return cls(np.array(out, dtype=np.int64))

    @property
    def span_ns(self) -> int:
        return int(self.first_ts[-1] - self.first_ts[0])

    def released_ns(self, ts: np.ndarray, t0_ns: int, speed: float) -> np.ndarray:
        """When the paced replay (started at ``t0_ns``) released the packets holding messages of ITCH time ``ts``."""
        idx = np.searchsorted(self.first_ts, ts.astype(np.int64), side="right") - 1
        return t0_ns + ((self.first_ts[np.maximum(idx, 0)] - self.first_ts[0]) / speed).astype(np.int64)


# ---- one handler run ----


@dataclass
class Run:
    """One handler run: messages, events out, the loop's wall and thread-CPU
    seconds, the seconds until everything was published (``close()``), sink stats."""

    messages: int
    events: int
    loop_wall_s: float
    loop_cpu_s: float
    total_wall_s: float
    stats: dict = field(default_factory=dict)
    t0_ns: int = 0


def _pipeline(path: Path, speed: float = 0.0, batch_size: int | None = None) -> Pipeline:
    """A replay of ``path`` (paced when ``speed`` > 0); ``batch_size``: the decoder's records per numpy batch."""
    return Pipeline("pcap_replay", "itch50", backend_config={"path": str(path), "speed": speed},
                    decoder_config={} if batch_size is None else {"batch_size": batch_size})


def _timed_loop(pipe: Pipeline) -> tuple[Any, float, float, int]:
    """(summary, wall s, CPU s of this thread, wall ns at the start) of ``pipe.run()``, GC off."""
    gc.collect()
    gc.disable()
    try:
        t0_ns = time.time_ns()
        w0, c0 = time.perf_counter(), time.thread_time()
        summary = pipe.run()
        return summary, time.perf_counter() - w0, time.thread_time() - c0, t0_ns
    finally:
        gc.enable()


def _purge(url: str, stream: str) -> None:
    """Empty the stream between runs (the disk of a shared machine)."""
    import nats

    async def purge() -> None:
        nc = await nats.connect(url)
        await nc.jetstream().purge_stream(stream)
        await nc.close()

    asyncio.run(purge())


def run_books(path: Path) -> Run:
    """The books with BBO rows, nothing else."""
    pipe = _pipeline(path)
    pipe.decoder.make_books(bbo=True)
    s, wall, cpu, _ = _timed_loop(pipe)
    pipe.close()
    return Run(s.messages, 0, wall, cpu, wall)


def run_books_ring(path: Path) -> Run:
    """The books emitting every event into a ring that holds the day, read by no one."""
    pipe = _pipeline(path)
    books = pipe.decoder.make_books(bbo=True)
    ring = EventRing(DAY_RING)
    books.emit_events(ring, venue=1, wait=False)
    s, wall, cpu, _ = _timed_loop(pipe)
    st = ring.stats()
    books.emit_events(None)
    pipe.close()
    assert st["dropped"] == 0, f"the ring of {DAY_RING} events did not hold the day: raise RXFEED_BENCH_DIST_RING_BITS"
    return Run(s.messages, st["queued"], wall, cpu, wall, {"ring": st})


def run_books_sink(path: Path, url: str, wait: bool, speed: float = 0.0, before_run: Callable[[], Any] = lambda: None,
                   **opts: Any) -> tuple[Run, NatsJsSink, Any]:
    """The books with the JetStream sink: (a) ``wait=False`` on a ring holding the
    day, (b) ``wait=True`` on a 64k ring; closed (everything published) after
    the loop. ``before_run`` runs once the session exists (start consumers there)."""
    ring = 1 << 16 if wait else DAY_RING
    cfg = dict(servers=(url,), ring_events=ring, wait_when_full=wait, close_timeout_s=600.0) | opts
    pipe = _pipeline(path, speed)
    sink = NatsJsSink(NatsJsConfig(**cfg))
    books = sink.attach(pipe.decoder, books=pipe.decoder.make_books(bbo=True))
    before_run()
    s, wall, cpu, t0_ns = _timed_loop(pipe)
    sink.close()
    total = (time.time_ns() - t0_ns) / 1e9
    st = sink.stats()
    pipe.close()
    assert st["ring"]["dropped"] == 0 and st["unpublished_events"] == 0, st
    assert st["acked_events"] == st["published_events"] == st["ring"]["queued"], st
    stats = {k: v for k, v in st.items() if k != "errors"}
    return Run(s.messages, st["acked_events"], wall, cpu, total, stats, t0_ns), sink, books


# ---- 1. handler throughput ----


def _race(contenders: dict[str, Callable[[], Run]], rounds: int) -> dict[str, list[Run]]:
    """Every contender once per round, the order rotated each round."""
    runs: dict[str, list[Run]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(contenders[name]())
    return runs


def _best_rate(runs: list[Run], clock: str) -> float:
    """Best messages/s of the loop, by ``cpu`` (the loop thread) or ``wall``."""
    return max(r.messages / (r.loop_cpu_s if clock == "cpu" else r.loop_wall_s) for r in runs)


def _paired_ratios(runs: dict[str, list[Run]], num: str, den: str, clock: str) -> list[float]:
    """Per round: ``num``'s msg/s over ``den``'s (same round: the same load)."""
    sec = (lambda r: r.loop_cpu_s) if clock == "cpu" else (lambda r: r.loop_wall_s)
    return [sec(b) / sec(a) for a, b in zip(runs[num], runs[den])]


def test_handler_throughput_with_the_jetstream_sink(benchmark, day, nats_server):
    url = nats_server.url
    holder: dict[str, Any] = {}

    def sink_run(wait: bool) -> Run:
        run, sink, _ = run_books_sink(day, url, wait)
        _purge(url, sink.session.stream)
        return run

    def race() -> None:
        holder["runs"] = _race({"books": lambda: run_books(day), "books_ring": lambda: run_books_ring(day),
                                "sink_a_loop": lambda: sink_run(False), "sink_b_end_to_end": lambda: sink_run(True)},
                               ROUNDS)

    load0 = os.getloadavg()[0]
    benchmark.pedantic(race, rounds=1, iterations=1)
    runs = holder["runs"]
    for name, rs in runs.items():
        assert all(r.messages == N for r in rs), name
    events = runs["books_ring"][0].events
    res: dict[str, Any] = {"rounds": ROUNDS, "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
                           "events_per_day": events}
    for name, rs in runs.items():
        res[name] = {"msg_per_s_cpu_best": round(_best_rate(rs, "cpu")), "msg_per_s_wall_best": round(_best_rate(rs, "wall")),
                     "loop_cpu_s": [round(r.loop_cpu_s, 3) for r in rs], "loop_wall_s": [round(r.loop_wall_s, 3) for r in rs]}
    for name in ("books_ring", "sink_a_loop"):
        for clock in ("cpu", "wall"):
            paired = _paired_ratios(runs, name, "books", clock)
            res[name][f"vs_books_{clock}"] = {"of_best": round(_best_rate(runs[name], clock) /
                                                               _best_rate(runs["books"], clock), 3),
                                              "paired": [round(x, 3) for x in paired]}
    b = runs["sink_b_end_to_end"]
    res["sink_b_end_to_end"] |= {"events_per_s_acked": [round(r.events / r.total_wall_s) for r in b],
                                 "seconds_to_all_acked": [round(r.total_wall_s, 2) for r in b],
                                 "nats_messages": b[0].stats["published_messages"]}
    a = runs["sink_a_loop"]
    res["sink_a_loop"]["seconds_to_all_acked"] = [round(r.total_wall_s, 2) for r in a]
    ratio = res["sink_a_loop"]["vs_books_cpu"]["of_best"]
    res["target"] = {"ratio_cpu_of_best": ratio, "target": TARGET, "met": ratio >= TARGET}
    RESULTS["1_handler_throughput"] = res
    benchmark.extra_info.update(res)


# ---- 2. rates and latency beside ZeroMQ ----

#: A JetStream consumer in its own process, as ``rxfeed.remote.events`` reads
#: (one pull consumer from the session's start, 256 messages a fetch; every
#: subject of the venue): per
#: event its ITCH ``ts``, the publish stamp and the arrival time (stamped per
#: message before decoding it). Ends after ``idle`` seconds without a message.
_NATS_CONSUMER = """
import asyncio, sys, time
import numpy as np, nats
from rxfeed.sinks.nats_js.remote import RemoteStats, _StreamReader
from rxfeed.sinks.nats_js import wire
from rxfeed.sinks.nats_js.publisher import HEADER_SENT_NS
url, out, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])

async def main():
    nc = await nats.connect(url)
    js = nc.jetstream()
    kv = await js.key_value('rxfeed-books')
    session = wire.session_record((await kv.get(wire.snapshot_key('itch50', wire.SESSION_KEY))).value)
    reader = _StreamReader(js, session.stream, [session.prefix + '.itch50.>'], 1, RemoteStats(), start_time_ns=session.started_ns)
    arrival, sent, ts = [], [], []
    print('ready', flush=True)
    last, deadline = None, time.monotonic() + 900
    while time.monotonic() < deadline:
        msgs = await reader.fetch(256, 0.5)
        if not msgs:
            if last is not None and time.monotonic() - last > idle:
                break
            continue
        for m in msgs:
            now = time.time_ns()
            recs = wire.decode_message(m.data, m.headers, session.session)
            arrival.append(np.full(len(recs), now, dtype=np.int64))
            sent.append(np.full(len(recs), int((m.headers or {}).get(HEADER_SENT_NS, 0)), dtype=np.int64))
            ts.append(recs['ts'].astype(np.int64))
        last = time.monotonic()
    await nc.close()
    np.savez(out, arrival=np.concatenate(arrival), sent=np.concatenate(sent), ts=np.concatenate(ts))

asyncio.run(main())
"""

#: A ZeroMQ SUB in its own process (receive high-water mark unbounded):
#: per record its ITCH timestamp, the send stamp of its header and the arrival time.
_ZMQ_CONSUMER = """
import json, sys, time
import numpy as np, zmq
from rxfeed.sinks.zmq_pub.sink import record_dtype
endpoint, out, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])
sub = zmq.Context.instance().socket(zmq.SUB)
sub.setsockopt(zmq.RCVHWM, 0)
sub.setsockopt(zmq.SUBSCRIBE, b'')
sub.connect(endpoint)
arrival, sent, ts = [], [], []
print('ready', flush=True)
last, deadline = None, time.monotonic() + 900
while time.monotonic() < deadline:
    if not sub.poll(500):
        if last is not None and time.monotonic() - last > idle:
            break
        continue
    frames = sub.recv_multipart()
    now = time.time_ns()
    head = json.loads(frames[1])
    recs = np.frombuffer(frames[2], dtype=record_dtype(head))
    arrival.append(np.full(len(recs), now, dtype=np.int64))
    sent.append(np.full(len(recs), head.get('sent_ns', 0), dtype=np.int64))
    ts.append(recs['timestamp'].astype(np.int64))
    last = time.monotonic()
np.savez(out, arrival=np.concatenate(arrival), sent=np.concatenate(sent), ts=np.concatenate(ts))
"""
#: a consumer ends after this long without a message (paced: the day's quiet spell before the open is longer)
IDLE_S = 3.0


def _idle_s(speed: float) -> float:
    return 0.6 * PACED_S if speed else IDLE_S


class _StampingSocket:
    """The ZeroMQ sink's socket with the send time (``time.time_ns()``) added
    to each message's JSON header frame: the handler's batch callback sends,
    so this is when the handler produced the records."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    def send_multipart(self, frames: list, copy: bool = False) -> None:
        topic, header, payload = frames
        self.sock.send_multipart([topic, header[:-1] + b', "sent_ns": %d}' % time.time_ns(), payload], copy=copy)

    def close(self) -> None:
        self.sock.close()


class Consumer:
    """A consumer process (``code`` with ``args``) writing its arrivals to ``out``."""

    def __init__(self, code: str, target: str, out: Path, idle_s: float) -> None:
        self.out = out
        self.proc = subprocess.Popen([sys.executable, "-c", code, target, str(out), str(idle_s)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise AssertionError(f"consumer did not start: {self.proc.stderr.read()[-4000:]}")
        time.sleep(1.0)  # connected and subscribed (ZeroMQ's slow joiner)

    def arrivals(self) -> dict[str, np.ndarray]:
        _, err = self.proc.communicate(timeout=900)
        assert self.proc.returncode == 0, err[-4000:]
        with np.load(self.out) as z:
            return {k: z[k] for k in z.files}


def run_books_zmq(path: Path, endpoint: str, consumer_out: Path, speed: float = 0.0, stamp: bool = False,
                  batch_size: int | None = None) -> tuple[Run, dict[str, np.ndarray]]:
    """The books with the ZeroMQ sink and a SUB in another process; (run, its arrivals).
    The sink sends the decoder's numpy batches: ``batch_size`` records each
    (default 65,536), so a paced replay holds records until a batch fills."""
    pipe = _pipeline(path, speed, batch_size)
    pipe.decoder.make_books(bbo=True)
    sink = ZmqPubSink(ZmqPubConfig(endpoints=(endpoint,)))
    if stamp:
        sink._sock = _StampingSocket(sink._sock)
    sink.attach(pipe.decoder)
    consumer = Consumer(_ZMQ_CONSUMER, endpoint, consumer_out, _idle_s(speed))
    s, wall, cpu, t0_ns = _timed_loop(pipe)
    sink.close()
    pipe.close()
    got = consumer.arrivals()
    assert len(got["arrival"]) == sink.sent_records, f"SUB received {len(got['arrival'])} of {sink.sent_records}"
    return Run(s.messages, sink.sent_records, wall, cpu, wall, {"messages": sink.sent_messages}, t0_ns), got


def run_nats_with_consumer(path: Path, url: str, consumer_out: Path, speed: float = 0.0,
                           stamp: bool = False) -> tuple[Run, dict[str, np.ndarray]]:
    """The books with the JetStream sink (full speed: waiting on a full ring;
    paced: never waiting) and a consumer in another process; (run, its arrivals)."""
    box: dict[str, Consumer] = {}

    def start_consumer() -> None:
        box["c"] = Consumer(_NATS_CONSUMER, url, consumer_out, _idle_s(speed))

    run, sink, _ = run_books_sink(path, url, wait=speed == 0.0, speed=speed, before_run=start_consumer,
                                  ring_events=1 << 20 if speed else 1 << 16, stamp_headers=stamp)
    got = box["c"].arrivals()
    _purge(url, sink.session.stream)
    assert len(got["arrival"]) == run.stats["acked_events"], (len(got["arrival"]), run.stats)
    return run, got


def _percentiles(x: np.ndarray) -> dict[str, float]:
    return {"p50_us": round(float(np.percentile(x, 50)) / 1e3, 1), "p99_us": round(float(np.percentile(x, 99)) / 1e3, 1),
            "max_us": round(float(x.max()) / 1e3, 1), "n": int(len(x))}


def latency(got: dict[str, np.ndarray], schedule: Schedule, t0_ns: int, speed: float) -> dict[str, Any]:
    """Handler (packet released by the pacing) -> arrival, and publish stamp -> arrival,
    of the events released after the first 10% of the run (warm-up)."""
    released = schedule.released_ns(got["ts"], t0_ns, speed)
    keep = released >= t0_ns + int(0.1 * schedule.span_ns / speed)
    return {"handler_to_consumer": _percentiles((got["arrival"] - released)[keep]),
            "publish_to_consumer": _percentiles((got["arrival"] - got["sent"])[keep]),
            "handler_to_publish": _percentiles((got["sent"] - released)[keep])}


def received_rate(got: dict[str, np.ndarray], t0_ns: int) -> float:
    """Events (records) the consumer had, per second from the run's start to its last arrival."""
    return len(got["arrival"]) / ((int(got["arrival"].max()) - t0_ns) / 1e9)


def test_publish_rate_and_latency_beside_zeromq(benchmark, day, paced_day, nats_server, tmp_path):
    from ..nats_fixtures import free_port

    url = nats_server.url
    schedule = Schedule.of(paced_day)
    speed = schedule.span_ns / (PACED_S * 1e9)
    out: dict[str, list] = {k: [] for k in ("nats_full", "zmq_full", "nats_paced", "zmq_paced_batch1",
                                            "zmq_paced_batchdefault")}

    def nats_full() -> None:
        run, got = run_nats_with_consumer(day, url, tmp_path / "nats_full.npz")
        out["nats_full"].append({"events": run.events, "nats_messages": run.stats["published_messages"],
                                 "events_per_s_acked": round(run.events / run.total_wall_s),
                                 "events_per_s_received": round(received_rate(got, run.t0_ns)),
                                 "loop_msg_per_s_wall": round(run.messages / run.loop_wall_s)})

    def zmq_full() -> None:
        run, got = run_books_zmq(day, f"tcp://127.0.0.1:{free_port()}", tmp_path / "zmq_full.npz")
        out["zmq_full"].append({"records": run.events, "zmq_messages": run.stats["messages"],
                                "records_per_s_sent": round(run.events / run.loop_wall_s),
                                "records_per_s_received": round(received_rate(got, run.t0_ns)),
                                "loop_msg_per_s_wall": round(run.messages / run.loop_wall_s)})

    def nats_paced() -> None:
        run, got = run_nats_with_consumer(paced_day, url, tmp_path / "nats_paced.npz", speed=speed, stamp=True)
        assert run.stats["ring"]["dropped"] == 0
        out["nats_paced"].append({"events": run.events, "nats_messages": run.stats["published_messages"],
                                  **latency(got, schedule, run.t0_ns, speed)})

    def zmq_paced(batch_size: int | None) -> Callable[[], None]:
        def step() -> None:
            run, got = run_books_zmq(paced_day, f"tcp://127.0.0.1:{free_port()}", tmp_path / "zmq_paced.npz",
                                     speed=speed, stamp=True, batch_size=batch_size)
            out[f"zmq_paced_batch{batch_size or 'default'}"].append({"records": run.events,
                                                                     **latency(got, schedule, run.t0_ns, speed)})
        return step

    steps = {"nats_full": nats_full, "zmq_full": zmq_full, "nats_paced": nats_paced,
             "zmq_paced_batch1": zmq_paced(1), "zmq_paced_batchdefault": zmq_paced(None)}
    load0 = os.getloadavg()[0]
    benchmark.pedantic(lambda: _race(steps, ROUNDS), rounds=1, iterations=1)
    res = {"rounds": ROUNDS, "load": [round(load0, 1), round(os.getloadavg()[0], 1)], "paced_messages": PACED_N,
           "paced_speed": round(speed, 1), "paced_seconds": PACED_S, **out}
    RESULTS["2_rates_and_latency"] = res
    benchmark.extra_info.update(res)


# ---- 3. catch-up ----

#: A late consumer: ``rxfeed.remote.Books`` (every symbol) from ``start()``
#: until nothing is pending on the stream, then on to the session's end; its
#: counts at the caught-up moment and its final books (JSON).
_CATCH_UP = """
import asyncio, json, sys, time
from rxfeed.remote import Books
url, out = sys.argv[1], sys.argv[2]

async def main():
    books = Books(url, 'itch50')
    print('ready', flush=True)
    t0 = time.monotonic()
    await books.start()
    started = time.monotonic() - t0
    while True:
        n = await books.poll(batch=1024, timeout=0.25)
        if n < 1024 and await books.caught_up():
            break
    seconds = time.monotonic() - t0
    at = {'seconds': seconds, 'start_s': started, 'events_applied': books.stats.events_applied,
          'messages_applied': books.stats.messages_applied, 'messages_skipped': books.stats.messages_skipped,
          'snapshots_loaded': books.stats.snapshots_loaded, 'last_seq': books.stats.last_seq}
    await books.catch_up(until_end=True, timeout=900)
    final = {t: {k: [list(x) for x in v] for k, v in books.depth(t).items()} for t in books.symbol_ids()}
    json.dump({'caught_up': at, 'stats': books.stats.__dict__, 'books': final}, open(out, 'w'))
    await books.close()

asyncio.run(main())
"""


def test_late_consumer_catch_up(benchmark, live_day, nats_server, tmp_path):
    import threading

    url = nats_server.url
    schedule = Schedule.of(live_day)
    speed = schedule.span_ns / (LIVE_S * 1e9)
    # when the pacing releases the day's middle packet (the day has a quiet spell before the open)
    halfway_s = float(schedule.first_ts[len(schedule.first_ts) // 2] - schedule.first_ts[0]) / 1e9 / speed
    out: dict[str, list] = {"snapshots_every_1s": [], "no_snapshots": []}

    def one(label: str, snapshot_every_s: float) -> None:
        report = tmp_path / f"{label}.json"
        procs: list[subprocess.Popen] = []

        def late() -> None:
            procs.append(subprocess.Popen([sys.executable, "-c", _CATCH_UP, url, str(report)], cwd=ROOT,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

        timer = threading.Timer(halfway_s, late)
        run, sink, books = run_books_sink(live_day, url, wait=False, speed=speed, before_run=timer.start,
                                          ring_events=1 << 20, snapshot_every_s=snapshot_every_s)
        timer.join()
        _, err = procs[0].communicate(timeout=900)
        assert procs[0].returncode == 0, err[-4000:]
        got = json.loads(report.read_text())
        assert got["stats"]["messages_rejected"] == 0, got["stats"]["errors"]
        assert got["books"] == handler_books_report(books), "the late consumer's books differ from the handler's"
        _purge(url, sink.session.stream)
        c = got["caught_up"]
        out[label].append({**c, "events_per_s": round(c["events_applied"] / c["seconds"]),
                           "publisher_done_s_after_launch": round(run.total_wall_s - halfway_s, 2),
                           "day_events": run.events, "publisher_snapshots": run.stats["snapshots"]})

    load0 = os.getloadavg()[0]
    steps = {"snapshots_every_1s": lambda: one("snapshots_every_1s", 1.0), "no_snapshots": lambda: one("no_snapshots", 0.0)}
    benchmark.pedantic(lambda: _race(steps, ROUNDS), rounds=1, iterations=1)
    res = {"rounds": ROUNDS, "load": [round(load0, 1), round(os.getloadavg()[0], 1)], "live_seconds": LIVE_S,
           "live_messages": CATCH_UP_N,
           "live_speed": round(speed, 1), "late_consumer_at_s": round(halfway_s, 2), **out}
    RESULTS["3_catch_up"] = res
    benchmark.extra_info.update(res)


def _machine() -> str:
    return machine(f"{N:,} messages, {SYMBOLS} symbols")


def test_zz_report():
    """Print the results, write ``.benchmarks/rxfeed-distribution.json``."""
    assert RESULTS, "run the whole module"
    lines = [_machine()] + [f"{key}: {json.dumps(res, sort_keys=True)}" for key, res in RESULTS.items()]
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / "rxfeed-distribution.json").write_text(json.dumps({"machine": lines[0], "results": RESULTS}, indent=2))
