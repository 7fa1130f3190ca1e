"""rxfeed's MoldUDP64 re-request server, over real UDP on loopback: exact
answers, hostile requests counted and bounded, the per-client rate limit,
the ``rxfeed serve rerequest`` CLI and ``rxfeed send``'s journal."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from rxfeed.tools.generator import DEFAULT_SESSION, generate_messages
from rxfeed.tools.rerequest import (MOLD_HEADER, MessageStore, RerequestServer, ServerLimits, load_store,
                                    store_from_datagrams)
from rxfeed.tools.sender import JournalOptions, send

from .conftest import mold

N = 20_000  # day_dir's days: 20,000 messages, 6 symbols, seed 3


@pytest.fixture(scope="module")
def truth() -> list[bytes]:
    return list(generate_messages(N, 6, 3))


class Client:
    """A re-request client socket on loopback (``address``: its source IP)."""

    def __init__(self, server: tuple[str, int], address: str = "127.0.0.1") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((address, 0))

    def raw(self, payload: bytes) -> None:
        self.sock.sendto(payload, self.server)

    def ask(self, seq: int, count: int, session: bytes = DEFAULT_SESSION) -> None:
        self.raw(MOLD_HEADER.pack(session, seq, count))

    def answers(self, quiet: float = 0.3, first: float = 3.0) -> list[bytes]:
        """Datagrams received until ``quiet`` seconds pass with none (``first``
        seconds for the first: a loaded machine may be slow to schedule the server)."""
        out = []
        self.sock.settimeout(first)
        try:
            while True:
                out.append(self.sock.recv(65536))
                self.sock.settimeout(quiet)
        except socket.timeout:
            return out

    def nothing(self) -> bool:
        """No datagram within 0.3 s."""
        return self.answers(0.3, 0.3) == []

    def close(self) -> None:
        self.sock.close()


def parse(datagram: bytes) -> tuple[bytes, int, list[bytes]]:
    """(session, first sequence, messages) of a downstream packet, checking its framing."""
    session, seq, count = MOLD_HEADER.unpack_from(datagram)
    msgs, pos = [], MOLD_HEADER.size
    for _ in range(count):
        size = int.from_bytes(datagram[pos:pos + 2], "big")
        msgs.append(datagram[pos + 2:pos + 2 + size])
        pos += 2 + size
    assert pos == len(datagram), "answer has bytes after its last message block"
    return session, seq, msgs


@pytest.fixture
def serve(day_dir):
    """A started server over day.pcap with the given limits; stopped after the test."""
    started: list[RerequestServer] = []

    def make(**limits) -> RerequestServer:
        srv = RerequestServer(str(day_dir / "day.pcap"), limits=ServerLimits(**limits)).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def test_loaded_stores_equal_the_source(day_dir, truth):
    for name in ("day.pcap", "day.pcapng", "day.pcap.gz", "day.itch", "day.itch.gz"):
        store = load_store(str(day_dir / name))
        assert (len(store), store.first_seq, store.holes, store.session) == (N, 1, 0, DEFAULT_SESSION)
        assert [store.message(s) for s in (1, 777, N)] == [truth[0], truth[776], truth[N - 1]]
        assert store.buffer == b"".join(len(m).to_bytes(2, "big") + m for m in truth)
    assert load_store(str(day_dir / "day.itch"), session="S1").session == b"S1        "


def test_answers_exactly_the_requested_messages(serve, truth):
    srv = serve()
    c = Client(srv.address)
    c.ask(1000, 7)
    (got,) = c.answers()
    assert parse(got) == (DEFAULT_SESSION, 1000, truth[999:1006])
    c.ask(N, 1)  # the very last message
    assert [parse(g) for g in c.answers()] == [(DEFAULT_SESSION, N, [truth[N - 1]])]
    st = srv.stats()
    assert st["requests_by_outcome"]["answered"] == 2 and st["messages_sent"] == 8 and st["ignored"] == 0
    c.close()


def test_one_datagram_per_request_by_default_several_when_configured(serve, truth):
    one = serve()
    c = Client(one.address)
    c.ask(1, 1000)
    (got,) = c.answers()
    _, seq, msgs = parse(got)
    assert seq == 1 and 0 < len(msgs) < 1000 and msgs == truth[:len(msgs)] and len(got) <= 1400
    assert one.stats()["requests_by_outcome"]["answered_partly"] == 1
    many = serve(packets_per_request=1000, max_payload=600)
    c2 = Client(many.address)
    c2.ask(5, 1000)
    grams = c2.answers()
    assert len(grams) > 1 and all(len(g) <= 600 for g in grams)
    expect_seq, messages = 5, []
    for g in grams:
        _, seq, msgs = parse(g)
        assert seq == expect_seq  # contiguous, in order, no overlap
        expect_seq += len(msgs)
        messages += msgs
    assert messages == truth[4:1004] and many.stats()["requests_by_outcome"]["answered"] == 1
    c.close(), c2.close()


def test_past_the_end_ignored_a_range_crossing_it_answered_up_to_it(serve, truth):
    srv = serve(packets_per_request=10)
    c = Client(srv.address)
    c.ask(N + 1, 5)
    c.ask(N + 10**12, 1)
    c.ask(N - 2, 10)
    grams = c.answers()
    assert [parse(g) for g in grams] == [(DEFAULT_SESSION, N - 2, truth[N - 3:])]
    out = srv.stats()["requests_by_outcome"]
    assert out["beyond_end"] == 2 and out["answered_partly"] == 1
    c.close()


def test_hostile_requests_are_counted_and_never_answered(serve, truth):
    srv = serve(max_count=50, packets_per_request=100)
    c = Client(srv.address)
    bad = [b"", b"x", MOLD_HEADER.pack(DEFAULT_SESSION, 1, 1)[:-1], MOLD_HEADER.pack(DEFAULT_SESSION, 1, 1) + b"\0",
           os.urandom(1200), MOLD_HEADER.pack(b"OTHERSESS1", 1, 5), MOLD_HEADER.pack(DEFAULT_SESSION, 10, 0),
           MOLD_HEADER.pack(DEFAULT_SESSION, 0, 5), MOLD_HEADER.pack(DEFAULT_SESSION, 2**64 - 1, 0xFFFF)]
    for p in bad:
        c.raw(p)
    assert c.nothing()
    c.ask(100, 0xFFFF)  # absurd count: capped, answered up to the cap
    msgs = [m for g in c.answers() for m in parse(g)[2]]
    assert msgs == truth[99:149]
    st = srv.stats()
    out = st["requests_by_outcome"]
    assert (out["malformed"], out["wrong_session"], out["zero_count"], out["before_start"], out["beyond_end"]) \
        == (5, 1, 1, 1, 1)
    assert st["capped"] == 1 and out["answered_partly"] == 1 and st["ignored"] == len(bad)
    assert st["requests"] == len(bad) + 1 and st["send_errors"] == 0
    c.close()


def test_a_flood_gets_at_most_the_clients_budget(serve):
    rate, burst = 2000.0, 500.0
    srv = serve(rate=rate, burst=burst, packets_per_request=100)
    flooder, other = Client(srv.address), Client(srv.address, "127.0.0.2")
    t0 = time.monotonic()
    for k in range(3000):
        flooder.ask(1 + k % 1000, 20)
    got = sum(len(parse(g)[2]) for g in flooder.answers(0.5))
    elapsed = time.monotonic() - t0
    assert got <= burst + rate * elapsed
    assert got >= burst  # the budget is given, not withheld
    st = srv.stats()
    assert st["requests_by_outcome"]["rate_limited"] > 0
    assert 0 < st["requests"] <= 3000 and st["requests"] + st["kernel_drops"] <= 3000
    other.ask(1, 20)  # another client address has a budget of its own
    assert sum(len(parse(g)[2]) for g in other.answers()) == 20
    flooder.close(), other.close()


def test_per_client_state_is_bounded(serve):
    srv = serve(max_clients=4)
    for k in range(2, 12):
        c = Client(srv.address, f"127.0.0.{k}")
        c.ask(1, 1)
        assert len(c.answers()) == 1
        c.close()
    st = srv.stats()
    assert st["clients"] == 4 and st["clients_evicted"] == 6


def test_capture_with_duplicates_disorder_and_a_hole(truth):
    sess = b"TESTSESS01"
    grams = [mold(11, truth[10:20], sess), mold(1, truth[0:10], sess), mold(1, truth[0:10], sess),
             mold(31, truth[30:40], sess), mold(5, truth[4:8], b"OTHERSESS1"), mold(41, [], sess),
             mold(41, [], sess, count=0xFFFF), mold(41, truth[40:43], sess, count=5)[:-3],  # cut short
             mold(2**62, truth[:3], sess), mold(0, truth[:2], sess), mold(2**64 - 2, truth[:3], sess)]  # forged
    store = store_from_datagrams(grams)
    assert (store.session, store.first_seq, store.end_seq, store.holes) == (sess, 1, 43, 10)
    assert store.implausible == 3  # 2^62.. left out; 0 and 2^64-2.. (past 2^64) are no sequence numbers
    assert [store.message(s) for s in (1, 20, 21, 30, 31, 42)] == [truth[0], truth[19], None, None, truth[30],
                                                                   truth[41]]
    with RerequestServer(store, limits=ServerLimits(packets_per_request=10)) as srv:
        c = Client(srv.address)
        c.ask(15, 10, sess)  # answered up to the hole
        assert [parse(g) for g in c.answers()] == [(sess, 15, truth[14:20])]
        c.ask(25, 3, sess)  # inside the hole
        assert c.nothing()
        out = srv.stats()["requests_by_outcome"]
        assert out["answered_partly"] == 1 and out["missing"] == 1
        c.close()


def test_cli_serve_rerequest_in_a_subprocess(day_dir, truth):
    proc = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "serve", "rerequest",
                             str(day_dir / "day.itch"), "--listen", "127.0.0.1:0", "--session", "DAY1",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "serving 20,000 messages of session DAY1 (sequence 1..20000)" in line, line
        port = int(line.rsplit(":", 1)[1])
        c = Client(("127.0.0.1", port))
        c.ask(19_990, 3, b"DAY1      ")
        assert [parse(g) for g in c.answers()] == [(b"DAY1      ", 19_990, truth[19_989:19_992])]
        c.ask(1, 3)  # rxfeed's default session: not this server's
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stats = json.loads(out)
    assert stats["requests"] == 2 and stats["messages_sent"] == 3
    assert stats["requests_by_outcome"]["answered"] == 1 and stats["requests_by_outcome"]["wrong_session"] == 1


def test_cli_serve_rerequest_errors(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello\n")
    for args, text in (([str(junk), "--listen", "127.0.0.1:0"], "neither a capture nor a NASDAQ ITCH file"),
                       ([str(junk), "--listen", "127.0.0.1"], "expected ADDRESS:PORT"),
                       ([str(junk), "--listen", "127.0.0.1:0", "--max-payload", "10"], "max-payload")):
        r = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "serve", "rerequest", *args],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_send_journal_answers_what_was_sent_and_ignores_the_rest(truth):
    """While ``send`` paces the day out, requests for what it sent are
    answered, for what it has not sent yet ignored (``beyond_end``); its
    pacing is not disturbed. (Expiry: test_cli_send_with_a_journal.)"""
    feed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feed.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
    feed.bind(("127.0.0.1", 0))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    listen = ("127.0.0.1", probe.getsockname()[1])
    probe.close()
    rate = 500.0  # datagrams/s: ~450 datagrams, ~0.9 s
    opts = JournalOptions(listen, size=N, linger=3.0, limits=ServerLimits(packets_per_request=1000))
    result: dict = {}
    sender = threading.Thread(target=lambda: result.update(r=send(truth, *feed.getsockname(), rate, journal=opts)))
    sender.start()
    feed.settimeout(30)
    feed.recv(65536)  # sending has started (the server before it); most of the day is still to come
    c = Client(listen)
    c.ask(N - 10, 5)  # not sent yet
    during: list[bytes] = []
    for _ in range(50):  # keep the server busy while the pacing runs
        c.ask(1, 3)
        time.sleep(0.002)
        during += c.answers(0.001, 0.001)
    while len(during) < 50 and (more := c.answers(0.3, 3.0)):
        during += more
    assert len(during) == 50 and {parse(g)[2] == truth[:3] for g in during} == {True}
    while MOLD_HEADER.unpack_from(feed.recv(65536))[2] != 0xFFFF:
        pass
    c.ask(N - 999, 1000)  # the last 1,000, all sent now
    recent = [m for g in c.answers() for m in parse(g)[2]]
    c.ask(N + 1, 1)  # past the end of what was sent
    assert c.nothing()
    sender.join()
    res = result["r"]
    st = res.rerequest
    assert recent == truth[N - 1000:], st
    assert (st["requests"], st["requests_by_outcome"]["answered"], st["requests_by_outcome"]["beyond_end"],
            st["ignored"], st["available"]) == (53, 51, 2, 2, [1, N]), st
    # pacing held while answering: the paced loop (no GIL) keeps its schedule (it catches up
    # when the machine preempts it, so the total time, not each gap, is what answering could stretch)
    span = (int(res.records["send_ns"][-1]) - int(res.records["send_ns"][0])) / 1e9
    assert span == pytest.approx((res.datagrams - 1) / rate, rel=0.15), (span, res.summary())
    c.close(), feed.close()


def test_cli_send_with_a_journal(day_dir, truth):
    feed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feed.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
    feed.bind(("127.0.0.1", 0))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "send", str(day_dir / "day.pcap"),
                             "--group", f"127.0.0.1:{feed.getsockname()[1]}", "--rerequest-listen",
                             f"127.0.0.1:{port}", "--journal-size", "100", "--linger", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    feed.settimeout(30)
    while MOLD_HEADER.unpack_from(feed.recv(65536))[2] != 0xFFFF:
        pass
    c = Client(("127.0.0.1", port))
    c.ask(N - 3, 4)
    assert [parse(g) for g in c.answers(0.3)] == [(DEFAULT_SESSION, N - 3, truth[N - 4:])]
    c.ask(N - 99, 1)  # the oldest journalled (the last 100: N - 99 .. N)
    assert len(c.answers(0.3)) == 1
    c.ask(N - 100, 1)  # one older: forgotten
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["messages"] == N
    rr = summary["rerequest"]
    assert rr["requests_by_outcome"]["answered"] == 2 and rr["requests_by_outcome"]["expired"] == 1
    assert rr["messages_sent"] == 5
    c.close(), feed.close()


def test_store_from_messages_and_run_length():
    msgs = [bytes([65 + k % 26]) * (1 + k % 40) for k in range(500)]
    store = MessageStore.from_messages(msgs, b"S         ", first_seq=1000)
    assert store.end_seq == 1500 and store.message(1000) == msgs[0] and store.message(999) is None
    n = store.run_length(1100, 500, 300)
    assert sum(2 + len(m) for m in msgs[100:100 + n]) <= 300 < sum(2 + len(m) for m in msgs[100:101 + n])
    assert bytes(store.blocks(1100, 2)) == b"".join(len(m).to_bytes(2, "big") + m for m in msgs[100:102])
    with pytest.raises(ValueError, match="10 bytes"):
        MessageStore.from_messages(msgs, b"short")


def test_limits_are_checked_and_burst_defaults_to_one_second():
    assert ServerLimits(rate=500).burst == 500
    for bad in ({"max_payload": 22}, {"max_payload": 70_000}, {"max_count": 0}, {"packets_per_request": 0},
                {"rate": -1}, {"rate": 10, "burst": 0.5}, {"max_clients": 0}):
        with pytest.raises(ValueError):
            ServerLimits(**bad)
