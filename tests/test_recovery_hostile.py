"""Recovery (issue 11) against a hostile world, end to end over real UDP on
loopback: the itch50 decoder's sequencer and MoldUDP64 re-request client
with no server at the port, a server too slow to matter, a server that
answers with junk (wrong session, ranges not asked, malformed packets, a
flood), and rxfeed's own server filling holes that both lines lost.

Every capture is a small synthetic day in which chosen datagrams are missing
on BOTH lines, so the exact lost ranges are known in advance."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rxfeed.backends.pcap_replay import PcapReplayBackend, PcapReplayConfig
from rxfeed.lines import LinesBackend
from rxfeed.pipeline import Pipeline
from rxfeed.tools.generator import (DAY_EPOCH_NS, DEFAULT_SESSION, generate_messages, moldudp64_datagrams,
                                    udp_frame, write_pcap)
from rxfeed.tools.rerequest import MOLD_HEADER, REQUEST_SIZE, RerequestServer

from .test_sequencer import Seq, lib  # noqa: F401 (lib: the sequencer harness fixture)

N_MESSAGES = 3000
#: datagrams missing on both lines: 21 and 22 are neighbours (one range of both)
DROPPED = (6, 21, 22, 40)
REORDER_MAX_MB = 1.0


@dataclass(frozen=True)
class Day:
    """The messages of a small synthetic day and its MoldUDP64 datagrams."""

    messages: list[bytes]
    payloads: list[bytes]  # data datagrams, then the end of session

    def block(self, index: int) -> tuple[int, int]:
        """(first sequence, message count) of data datagram ``index``."""
        _, seq, count = MOLD_HEADER.unpack_from(self.payloads[index])
        return seq, count

    def lost_ranges(self, dropped: Iterable[int]) -> list[tuple[int, int]]:
        """The (first, count) ranges that dropping these datagrams loses, neighbours merged."""
        out: list[list[int]] = []
        for i in sorted(dropped):
            seq, count = self.block(i)
            if out and out[-1][0] + out[-1][1] == seq:
                out[-1][1] += count
            else:
                out.append([seq, count])
        return [(a, b) for a, b in out]

    def answer(self, seq: int, count: int, session: bytes = DEFAULT_SESSION) -> bytes:
        """An honest answer: messages ``seq .. seq + count - 1`` (within the day)."""
        msgs = self.messages[seq - 1:seq - 1 + count]
        return MOLD_HEADER.pack(session, seq, len(msgs)) + b"".join(len(m).to_bytes(2, "big") + m for m in msgs)


@pytest.fixture(scope="module")
def day() -> Day:
    msgs = list(generate_messages(N_MESSAGES, symbols=4, seed=11))
    return Day(msgs, [p for _, p in moldudp64_datagrams(msgs)])


def write_capture(path: Path, day: Day, dropped: Iterable[int] = (), spacing_ns: int = 10_000) -> Path:
    """The day as a pcap without the ``dropped`` datagrams; datagram i at
    ``i * spacing_ns`` after the first (what speed=1 replays)."""
    gone = set(dropped)
    frames = [(DAY_EPOCH_NS + i * spacing_ns, udp_frame(p, ident=i)) for i, p in enumerate(day.payloads)
              if i not in gone]
    write_pcap(path, frames, nsec=True)
    return path


@pytest.fixture(scope="module")
def captures(tmp_path_factory, day) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    return {"full": write_capture(d / "full.pcap", day), "lossy": write_capture(d / "lossy.pcap", day, DROPPED)}


@dataclass
class Run:
    """What one run delivered and reported."""

    delivered: list[tuple[int, str]]
    summary: Any
    events: list[dict[str, Any]]
    books: Any
    seconds: float

    @property
    def recovery(self) -> dict[str, Any]:
        return self.summary.recovery

    @property
    def rerequest(self) -> dict[str, Any]:
        return self.summary.recovery["rerequest"]

    def gaps(self) -> list[tuple[int, int]]:
        return [(e["first"], e["count"]) for e in self.events if e["kind"] == "gap"]

    def digest(self) -> str:
        return hashlib.sha256(repr(self.delivered).encode()).hexdigest()


def run(capture: Path, recovery: dict[str, Any], lines: int = 2, books: bool = False, speed: float = 0.0) -> Run:
    """Replay ``capture`` on ``lines`` lines (the same losses on each) through
    the itch50 decoder with ``recovery``; (sequence, message) of everything delivered."""
    backends = [PcapReplayBackend(PcapReplayConfig(path=str(capture), speed=speed)) for _ in range(lines)]
    pipe = Pipeline(LinesBackend(backends), "itch50", decoder_config={"recovery": recovery})
    delivered: list[tuple[int, str]] = []
    pipe.decoder.subscribe(lambda m, meta: delivered.append((meta.sequence, repr(m))), with_meta=True)
    ob = pipe.decoder.make_books() if books else None
    t0 = time.perf_counter()
    with pipe:
        summary = pipe.run()
    return Run(delivered, summary, pipe.decoder.native.events, ob, time.perf_counter() - t0)


def assert_lost_exactly(r: Run, day: Day, ranges: list[tuple[int, int]]) -> None:
    """``ranges`` declared lost (events and summary), everything else
    delivered exactly once and in order."""
    lost = {s for first, count in ranges for s in range(first, first + count)}
    assert r.gaps() == ranges
    assert [(x["first"], x["count"]) for x in r.recovery["lost"]] == ranges
    assert r.recovery["lost_ranges"] == len(ranges) and r.recovery["lost_messages"] == len(lost)
    assert r.summary.gaps == len(ranges) and r.summary.gap_messages == len(lost)
    assert [s for s, _ in r.delivered] == [s for s in range(1, len(day.messages) + 1) if s not in lost]
    assert r.summary.messages == len(day.messages) - len(lost) and r.summary.duplicates == 0


def all_filled(r: Run) -> bool:
    """Every hole that opened was filled, none lost. (How many open depends
    on the order the answers come in: a hole whose answer is held by the
    time the hole before it is filled never becomes the first open one.)"""
    rec = r.recovery
    return rec["gaps_opened"] == rec["gaps_filled"] >= 1 and rec["lost_messages"] == 0 and r.gaps() == []

def free_udp_port() -> int:
    """A loopback UDP port nobody listens at (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Request = tuple[bytes, int, int]
Answerer = Callable[[Request], list[bytes]]


@dataclass
class FakeServer:
    """A MoldUDP64 re-request "server" that answers as the test says: a real
    UDP socket on loopback and a thread that reads the client's 20-byte
    requests (session, sequence u64 BE, count u16 BE) and sends what
    ``answer(request)`` returns, ``delay_s`` later, in chunks of ``chunk``
    datagrams (a short pause between chunks: a flood the client can read)."""

    answer: Answerer
    delay_s: float = 0.0
    chunk: int = 200
    requests: list[Request] = field(default_factory=list)
    sent: int = 0
    bad_requests: int = 0
    client: tuple[str, int] = ("", 0)  # where the last request came from

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.address = "%s:%d" % self.sock.getsockname()
        self._stop = threading.Event()
        self._due: list[tuple[float, tuple[str, int], list[bytes]]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(64)
            except TimeoutError:
                data = b""
            if len(data) == REQUEST_SIZE:
                req = MOLD_HEADER.unpack(data)
                self.requests.append(req)
                self.client = addr
                self._due.append((time.monotonic() + self.delay_s, addr, self.answer(req)))
            elif data:
                self.bad_requests += 1
            self._send_due()

    def _send_due(self) -> None:
        now = time.monotonic()
        for item in [d for d in self._due if d[0] <= now]:
            self._due.remove(item)
            _, addr, grams = item
            for k, g in enumerate(grams):
                if k and k % self.chunk == 0:
                    time.sleep(0.002)
                self.sock.sendto(g, addr)
                self.sent += 1


# --- 1. nobody listens at the server's port --------------------------------

def test_server_down_holes_are_lost_with_exact_ranges_without_hanging(day, captures):
    window_ms = 150.0
    rec = {"reorder_window_ms": window_ms, "rerequest": f"127.0.0.1:{free_udp_port()}",
           "rerequest_timeout_ms": 5.0, "rerequest_attempts": 3}
    r = run(captures["lossy"], rec)
    ranges = day.lost_ranges(DROPPED)
    assert_lost_exactly(r, day, ranges)
    assert r.seconds < window_ms / 1000 + 1.0  # one window at the end, not one per hole, no hang
    rr = r.rerequest
    assert rr["recovered_messages"] == 0 and rr["answers"] == 0
    assert rr["requests_sent"] >= len(ranges)  # each hole asked for
    assert rr["recv_errors"] >= 1  # the port is closed (ECONNREFUSED), counted, not fatal
    # 3 attempts, 5 + 10 + 20 ms, well inside the window: every range asked
    # for 3 times, then given up; sends and reads that meet the refusal are
    # counted and tried again, not fatal
    assert rr["retries"] >= 2 * len(ranges) and rr["given_up_ranges"] >= len(ranges)
    assert rr["given_up_messages"] >= r.recovery["lost_messages"] and rr["ranges_dropped"] == 0
    assert r.recovery["gaps_filled"] == 0 and r.recovery["gaps_opened"] == len(ranges)
    assert r.recovery["lost_by_reason"]["timeout"] == len(ranges)  # seen together, given up together
    assert any("declared lost" in w for w in r.summary.warnings)


def test_a_full_reorder_buffer_gives_holes_up_at_once_with_exact_ranges(day, captures):
    # room for 8 datagrams, a long window and a silent server: each hole is
    # given up when the 9th datagram after it arrives, not after the window
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never reads
    silent.bind(("127.0.0.1", 0))
    with silent:
        r = run(captures["lossy"], {"reorder_window_ms": 10_000.0, "reorder_max_datagrams": 8,
                                    "rerequest": "%s:%d" % silent.getsockname()})
    ranges = day.lost_ranges(DROPPED)
    assert_lost_exactly(r, day, ranges)
    assert r.recovery["lost_by_reason"]["buffer_full"] == len(ranges) and r.seconds < 2.0
    assert r.recovery["reorder_peak_datagrams"] <= 8 and r.rerequest["answers"] == 0


def test_answers_from_anyone_but_the_server_never_arrive(day, captures):
    # the client's socket is connected to the server: a perfect answer from
    # another address (an impostor on the same host) is dropped by the kernel
    impostor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: list[int] = []

    def answer_from_elsewhere(req: Request) -> list[bytes]:
        sent.append(impostor.sendto(day.answer(req[1], req[2]), srv.client))
        return []

    with impostor, FakeServer(answer_from_elsewhere) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 100.0, "rerequest": srv.address})
    assert sent and r.rerequest["answers"] == 0 and r.rerequest["recovered_messages"] == 0
    assert_lost_exactly(r, day, day.lost_ranges(DROPPED))


# --- 2. a server slower than the window -------------------------------------

def test_answers_later_than_the_window_are_refused_and_never_delivered(day, tmp_path):
    # paced replay (speed 1): the day lasts ~0.9 s, the holes are early; the
    # answers come 0.3 s after their requests, long after the 0.1 s window
    # settled the holes but while the run still reads the socket
    capture = write_capture(tmp_path / "paced.pcap", day, DROPPED[:2], spacing_ns=12_000_000)
    with FakeServer(lambda req: [day.answer(req[1], req[2])], delay_s=0.3) as srv:
        r = run(capture, {"reorder_window_ms": 100.0, "rerequest": srv.address, "rerequest_timeout_ms": 20.0,
                          "rerequest_attempts": 2}, speed=1.0)
    ranges = day.lost_ranges(DROPPED[:2])
    assert_lost_exactly(r, day, ranges)
    rr = r.rerequest
    assert len(srv.requests) == rr["requests_sent"] >= len(ranges) and srv.sent == len(srv.requests)
    assert rr["answers"] == srv.sent  # every late answer was read ...
    assert rr["answers_refused"] == {"malformed": 0, "wrong_session": 0, "not_asked_or_settled": srv.sent}
    assert rr["recovered_messages"] == 0 and r.recovery["gaps_filled"] == 0  # ... and none delivered
    assert r.recovery["lost_by_reason"]["timeout"] == len(ranges)


def test_an_answer_after_the_last_attempt_but_within_the_window_still_fills(day, captures):
    # the default attempts (10, 20, 40, 80 ms) are used up after 150 ms; a
    # server that takes 400 ms is slow, not gone: while the hole waits (its
    # window is 1.5 s) its answer is what was asked for and must be taken
    ranges = day.lost_ranges(DROPPED)
    with FakeServer(lambda req: [day.answer(req[1], req[2])], delay_s=0.4) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 1500.0, "rerequest": srv.address})
    full = run(captures["full"], {})
    assert r.delivered == full.delivered and all_filled(r)
    rr = r.rerequest
    assert rr["given_up_ranges"] == len(ranges) and rr["recovered_messages"] == sum(c for _, c in ranges)
    assert len(srv.requests) == rr["requests_sent"] == 4 * len(ranges)  # given up is given up: no more asking


# --- 3. a hostile server ----------------------------------------------------

def hostile_answers(day: Day, req: Request) -> dict[str, list[bytes]]:
    """Junk for one request, by the counter the client must put it in."""
    _, seq, count = req
    good = day.answer(seq, count)
    blocks = good[MOLD_HEADER.size:]
    return {
        "wrong_session": [day.answer(seq, count, session=b"OTHERSESS1")],
        "not_asked_or_settled": [day.answer(1, 5)],  # delivered long ago
        "malformed": [
            good[:-3],                                               # last block truncated
            MOLD_HEADER.pack(DEFAULT_SESSION, seq, count + 1) + blocks,  # says one message more
            MOLD_HEADER.pack(DEFAULT_SESSION, seq, count - 1) + blocks,  # says one message fewer
            MOLD_HEADER.pack(DEFAULT_SESSION, seq, 1) + struct.pack(">H", 5000) + b"A" * 10,  # length past the end
            MOLD_HEADER.pack(DEFAULT_SESSION, seq, 0),               # a heartbeat is no answer
            MOLD_HEADER.pack(DEFAULT_SESSION, seq, 0xFFFF),          # nor an end of session
            good[:19],                                               # shorter than a header
            MOLD_HEADER.pack(DEFAULT_SESSION, 2**64 - 2, count) + blocks,  # sequence + count past 2^64
        ],
    }


def test_hostile_answers_are_refused_by_kind_and_the_real_answer_still_fills(day, captures):
    ranges = day.lost_ranges(DROPPED)

    def answer(req: Request) -> list[bytes]:
        junk = hostile_answers(day, req)
        return [g for kind in sorted(junk) for g in junk[kind]] + [day.answer(req[1], req[2])]

    with FakeServer(answer) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 5000.0, "rerequest": srv.address,
                                    "rerequest_timeout_ms": 2000.0})
    full = run(captures["full"], {})
    assert r.delivered == full.delivered and r.gaps() == []
    assert all_filled(r) and r.recovery["lost_messages"] == 0
    per_request = {k: len(v) for k, v in hostile_answers(day, srv.requests[0]).items()}
    assert len(srv.requests) == len(ranges)  # each hole asked for once, answered at the first request
    rr = r.rerequest
    assert rr["answers_refused"] == {k: n * len(ranges) for k, n in per_request.items()}
    assert rr["answers"] == srv.sent == (sum(per_request.values()) + 1) * len(ranges)
    assert rr["recovered_messages"] == sum(c for _, c in ranges)


def test_an_answer_reaching_past_what_was_asked_is_refused(day, captures):
    # a server answers at most what it was asked for; one that starts in a
    # hole and runs on over what the lines delivered would put its own
    # messages (junk here) in place of theirs, silently: no loss, no gap
    ranges = day.lost_ranges(DROPPED)

    def answer(req: Request) -> list[bytes]:
        _, seq, count = req
        greedy = MOLD_HEADER.pack(DEFAULT_SESSION, seq, count + 500) + b"\x00\x01Z" * (count + 500)
        return [greedy, day.answer(seq - 5, count + 5)]  # then a real one (5 settled messages first)

    with FakeServer(answer) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 5000.0, "rerequest": srv.address,
                                    "rerequest_timeout_ms": 2000.0})
    full = run(captures["full"], {})
    assert r.delivered == full.delivered and r.summary.errors == {}
    rr = r.rerequest
    assert rr["answers_refused"] == {"malformed": 0, "wrong_session": 0, "not_asked_or_settled": len(ranges)}
    assert rr["recovered_messages"] == sum(c for _, c in ranges) and all_filled(r)


def test_empty_datagrams_are_counted_as_malformed_answers(day, captures):
    # recv() of an empty datagram returns 0, as "nothing waiting" does: each
    # one must still be counted (answers == refused + taken) and not stop
    # the reading
    ranges = day.lost_ranges(DROPPED)
    with FakeServer(lambda req: [b""] * 300 + [day.answer(req[1], req[2])], chunk=100) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 5000.0, "rerequest": srv.address,
                                    "rerequest_timeout_ms": 2000.0})
    assert all_filled(r) and r.recovery["lost_messages"] == 0
    rr = r.rerequest
    assert len(srv.requests) == len(ranges) and 0 < rr["answers"] <= srv.sent
    assert rr["answers_refused"] == {"malformed": rr["answers"] - len(ranges), "wrong_session": 0,
                                     "not_asked_or_settled": 0}


def udp_receive_buffer_errors() -> int:
    """The kernel's count of UDP datagrams dropped for a full receive buffer (all sockets)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    return int(dict(zip(lines[0], lines[1]))["RcvbufErrors"])


def test_a_flood_of_junk_is_counted_bounded_and_does_not_stop_the_real_answer(day, captures):
    ranges = day.lost_ranges(DROPPED)
    flood_size = 3000
    flooded: list[int] = []

    def answer(req: Request) -> list[bytes]:
        if flooded:
            return [day.answer(req[1], req[2])]
        rnd = os.urandom
        junk = [rnd(1 + k % 1400) for k in range(flood_size // 3)]
        junk += [day.answer(req[1], req[2], session=b"FLOODSESS1")] * (flood_size // 3)
        before = ranges[0][0] - 3  # ranges wholly before the first hole: settled long ago
        junk += [day.answer(1 + k % before, 3) for k in range(flood_size - len(junk))]
        flooded.append(len(junk))
        return junk + [day.answer(req[1], req[2])]

    drops_before = udp_receive_buffer_errors()
    with FakeServer(answer, chunk=100) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 5000.0, "rerequest": srv.address,
                                    "rerequest_timeout_ms": 2000.0, "reorder_max_mb": REORDER_MAX_MB})
    kernel_drops = udp_receive_buffer_errors() - drops_before
    full = run(captures["full"], {})
    assert r.delivered == full.delivered and r.recovery["lost_messages"] == 0
    rr = r.rerequest
    refused = sum(rr["answers_refused"].values())
    accepted = rr["answers"] - refused
    assert len(ranges) <= accepted <= len(srv.requests)  # only real answers got through
    assert flood_size - kernel_drops <= refused <= flood_size
    assert rr["answers_refused"]["wrong_session"] <= flood_size // 3
    assert r.recovery["reorder_peak_bytes"] <= REORDER_MAX_MB * (1 << 20)
    assert r.recovery["reorder_peak_datagrams"] <= len(day.payloads)


# --- 4. both lines lost the same datagrams ----------------------------------

@pytest.mark.parametrize("asking", [{}, {"rerequest_max_messages": 10, "rerequest_in_flight": 2}],
                         ids=["defaults", "small-requests"])
def test_a_good_server_fills_what_both_lines_lost_and_the_books_are_whole(day, captures, asking):
    # (answers of one datagram: a hole of 88 messages takes several, each
    # asked for afresh; small requests split every hole, two in flight)
    ranges = day.lost_ranges(DROPPED)
    ref = run(captures["full"], {}, books=True)
    with RerequestServer(day.messages, session=DEFAULT_SESSION) as srv:
        r = run(captures["lossy"], {"reorder_window_ms": 3000.0, "rerequest": "%s:%d" % srv.address, **asking},
                books=True)
        served = srv.stop()
    assert r.digest() == ref.digest() and len(r.delivered) == len(day.messages)
    assert r.gaps() == [] and r.recovery["lost_messages"] == 0 and all_filled(r)
    assert r.rerequest["recovered_messages"] == sum(c for _, c in ranges) <= served["messages_sent"]
    assert r.summary.duplicates == 0 and r.rerequest["answers_refused"]["malformed"] == 0
    assert r.seconds < 2.0  # filled by the answers, not by waiting out the window
    assert not r.books.suspect and r.books.counters() == ref.books.counters()


def test_without_a_server_the_books_say_they_are_suspect(day, captures):
    ranges = day.lost_ranges(DROPPED)
    r = run(captures["lossy"], {"reorder_window_ms": 50.0}, books=True)
    assert_lost_exactly(r, day, ranges)
    assert r.books.suspect and r.books.lost_messages == sum(c for _, c in ranges)
    assert [tuple(x[1:]) for x in r.books.counters()["lost_ranges"]] == ranges



# --- 5. rxfeed's own server: clients that vanish ----------------------------

def test_the_server_keeps_answering_when_clients_vanish_before_their_answers(day):
    # (wrong session, zero and absurd counts, beyond the end, floods and the
    # rate limit are in test_rerequest_server.py) a client that closes its
    # socket before the answer leaves an ICMP port-unreachable behind: it
    # must not cost another client its answer
    with RerequestServer(day.messages, session=DEFAULT_SESSION) as srv:
        for k in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
                gone.sendto(MOLD_HEADER.pack(DEFAULT_SESSION, 1 + k, 20), srv.address)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as live:
            live.settimeout(3.0)
            live.sendto(MOLD_HEADER.pack(DEFAULT_SESSION, 100, 3), srv.address)
            assert live.recv(2048) == day.answer(100, 3)
        stats = srv.stop()  # the thread joined: the last outcome is counted
    assert stats["requests"] == 51 and stats["requests_by_outcome"]["answered"] == 51
    assert stats["send_errors"] == 0 and stats["internal_errors"] == 0


# --- every hole gets its own window, counted from when it was seen ----------

def test_each_hole_is_declared_lost_one_window_after_it_was_seen(day, tmp_path):
    # a live-paced day (a datagram every 10 ms) with a hole every 40 ms and
    # nobody to fill them: each hole must be given up reorder_window_ms after
    # the datagram that revealed it arrived, not a window after the hole
    # before it was given up (which would delay everything after the holes
    # by one more window per hole: a backlog without bound on a lossy feed)
    # (a window per hole before would make hole k late by 100 + 60 k ms: 100,
    # 160, 220, 280, 340; the bound below leaves 120 ms for a loaded machine)
    spacing_ms, window_ms, slack_ms = 10, 100.0, 120.0
    dropped = (3, 7, 11, 15, 19)
    capture = write_capture(tmp_path / "paced.pcap", day, dropped, spacing_ns=spacing_ms * 1_000_000)
    started_ns = time.time_ns()
    r = run(capture, {"reorder_window_ms": window_ms}, speed=1.0)
    assert_lost_exactly(r, day, day.lost_ranges(dropped))
    late_ms = [(e["rx_ts_ns"] - started_ns) / 1e6 - (i + 1) * spacing_ms
               for i, e in zip(dropped, (e for e in r.events if e["kind"] == "gap"))]
    assert all(window_ms - 1 <= late <= window_ms + slack_ms for late in late_ms), late_ms
    assert r.recovery["lost_by_reason"]["timeout"] == len(dropped)


def test_sequencer_a_later_hole_waits_from_when_it_was_seen(lib):
    # the same, deterministic, on the sequencer alone (tests/test_sequencer.py's harness)
    s = Seq(lib, next_seq=1, max_wait_ns=1000)
    s.offer(1, 1, now=0)
    s.offer(3, 1, now=10)  # 2 missing since 10
    s.offer(5, 1, now=20)  # 4 missing since 20
    s.offer(7, 1, now=30)  # 6 missing since 30
    s.offer(2, 1, now=900)  # the first hole filled late: the next one still waits from 20
    s.tick(1019)
    assert s.losses() == [] and s.delivered() == [1, 2, 3]
    s.tick(1020)
    assert s.losses() == [(4, 1, 1)]
    s.tick(1030)  # not 1020 + 1000
    assert s.losses() == [(4, 1, 1), (6, 1, 1)] and s.delivered() == [1, 2, 3, 5, 7]
    s.check_invariants()
