"""The IEX-TP gap fill server (tools/iex_gapfill.py) and the iex decoder's gap
fill client end to end: requests written by hand from the IEX Transport
Specification's Gap Fill Request layout (not with the code under test) get
ordinary segments of the session back; a replay with seeded drops and
``--rerequest`` recovers every message over loopback."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys

import pytest

from rxfeed.tools.iex_gapfill import IexGapFillServer
from rxfeed.tools.iex_generator import generate_iex, iex_messages

N, SYMBOLS, SEED = 6000, 3, 4
SEGMENT = struct.Struct("<BBHIIHHqqq")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("gf") / "deep.pcap"
    generate_iex(path, "deep", N, SYMBOLS, SEED, session_change_at=None)
    return path


def request(first: int, last: int, protocol: int = 0x8004, channel: int = 1, session: int = 1_000_001,
            version: int = 1, kind: int = 1) -> bytes:
    """A Gap Fill Request: version, request type, protocol id, channel id,
    session id, range count (u32), then [first, last] (i64 each), little endian."""
    return struct.pack("<BBHIII", version, kind, protocol, channel, session, 1) + struct.pack("<qq", first, last)


def ask(server: IexGapFillServer, payload: bytes, answers: int = 1) -> list[bytes]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(payload, server.address)
        out = []
        try:
            for _ in range(answers):
                out.append(s.recv(65536))
        except socket.timeout:
            pass
        return out


def blocks(segment: bytes) -> list[bytes]:
    out, pos = [], SEGMENT.size
    while pos < len(segment):
        n = int.from_bytes(segment[pos:pos + 2], "little")
        out.append(segment[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def test_a_range_is_answered_with_segments_of_the_session(capture):
    msgs = list(iex_messages("deep", N, SYMBOLS, SEED))
    with IexGapFillServer(str(capture)) as server:
        (seg,) = ask(server, request(100, 119))
        version, _, proto, channel, session, plen, count, offset, first, send = SEGMENT.unpack_from(seg)
        assert (version, proto, channel, session, count, first) == (1, 0x8004, 1, 1_000_001, 20, 100)
        assert plen == len(seg) - SEGMENT.size and blocks(seg) == msgs[99:119]
        assert offset == sum(2 + len(m) for m in msgs[:99])  # the session's byte stream from sequence 1
    assert server.stats()["requests_by_outcome"]["answered"] == 1  # counted after the send: read once stopped


def test_refusals_are_counted_never_answered(capture):
    with IexGapFillServer(str(capture)) as server:
        assert ask(server, request(5, 6, protocol=0x8003)) == []
        assert ask(server, request(5, 6, channel=2)) == []
        assert ask(server, request(5, 6, session=7)) == []
        assert ask(server, request(6, 5)) == []
        assert ask(server, request(5, 6, version=2)) == []
        assert ask(server, request(5, 6)[:-1]) == []
        assert ask(server, request(N + 1, N + 5)) == []
        out = server.stats()["requests_by_outcome"]
    assert out["wrong_session"] == 3 and out["malformed"] == 3 and out["beyond_end"] == 1


def test_a_test_request_gets_a_heartbeat_at_the_end(capture):
    with IexGapFillServer(str(capture)) as server:
        (seg,) = ask(server, struct.pack("<BBHIII", 1, 1, 0x8004, 1, 1_000_001, 0))
    _, _, _, _, _, plen, count, _, first, _ = SEGMENT.unpack_from(seg)
    assert (plen, count, first, len(seg)) == (0, 0, N + 1, SEGMENT.size)


def test_at_most_1000_messages_per_request_in_frames_that_fit(capture):
    with IexGapFillServer(str(capture)) as server:
        segs = ask(server, request(1, 5000), answers=50)
    stats = server.stats()
    assert stats["capped"] == 1 and len(segs) == 1 and len(segs[0]) <= 1400  # one datagram per request
    assert SEGMENT.unpack_from(segs[0])[8] == 1


def test_replay_with_drops_recovers_everything_by_gap_fill(capture):
    with IexGapFillServer(str(capture)) as server:
        host, port = server.address
        out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(capture), "--faults",
                              "drop=0.05,seed=3", "--rerequest", f"{host}:{port}", "--json"],
                             capture_output=True, text=True, timeout=120)
        served = server.stats()
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    rec = s["recovery"]
    assert s["messages"] == N and s["gaps"] == 0 and rec["lost_ranges"] == 0
    assert rec["gaps_opened"] == rec["gaps_filled"] > 0
    assert rec["rerequest"]["recovered_messages"] > 0 and rec["rerequest"]["answers_refused"] == {
        "malformed": 0, "wrong_session": 0, "not_asked_or_settled": 0}
    assert served["requests_by_outcome"]["answered"] == rec["rerequest"]["requests_sent"]


def test_serve_rerequest_serves_an_iex_capture(capture):
    proc = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "serve", "rerequest", str(capture),
                             "--listen", "127.0.0.1:0", "--max-seconds", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"serving {N:,} messages of session 1000001 (sequence 1..{N})" in err
    stats = json.loads(out)
    assert stats["protocol_id"] == 0x8004 and stats["channel"] == 1 and stats["session"] == 1_000_001
