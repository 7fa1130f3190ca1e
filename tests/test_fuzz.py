"""Fuzz tests that assert what the parsers count, not only that they survive.

MoldUDP64 datagrams (random and mutated): every message a header declares is
accounted for exactly once - decoded (and counted per type), refused (unknown
type, bad length), lost inside a malformed datagram, or a duplicate; every
decoded message is the block found at its sequence position inside a datagram
(nothing read past the end); with one session, sequence numbers are delivered
once and in order, and decoded + gap + lost messages add up to the next
expected sequence number.

NASDAQ file framing: the decoded messages are exactly the frames the 2-byte
prefixes delimit (a zero prefix takes the type's length), and chunking the
bytes at any boundaries - a real NASDAQ extract included - changes nothing.

Captures: frames read = packets delivered + packets dropped by reason; cut
or payload-mutated files deliver exactly their whole records; the decoder sees
exactly the packets and bytes the backend handed out.

Hypothesis budgets are per test (``max_examples``); the module stays well
under a minute on a 2-core machine.
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rxfeed import Pipeline
from rxfeed.tools.generator import frames_for, generate_messages, moldudp64_datagrams, write_pcap, write_pcapng
from rxfeed.protocols.itch50._decoder import decode_one
from rxfeed.protocols.itch50.spec import MESSAGES

from .conftest import REAL_ITCH, mold, run_payloads

MSGS = list(generate_messages(300, symbols=2, seed=2))
#: Wire size per type byte (NASDAQ's lengths; test_itch_golden pins them).
WIRE = {ord(m.type): m.wire_size for m in MESSAGES}
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
SESSIONS = (b"SESSION001", b"SESSION002")


def _decodes(raw: bytes):
    """rxfeed's decoding of one message body, or None if it is refused."""
    try:
        return decode_one(raw)
    except ValueError:
        return None


def _refused(errors: dict[str, int]) -> int:
    return errors.get("unknown_type", 0) + errors.get("bad_length", 0)


# --- MoldUDP64 datagrams ------------------------------------------------------

@st.composite
def _block(draw) -> bytes:
    """A message block: a real message or random bytes, behind a true or wrong length."""
    body = draw(st.one_of(st.sampled_from(MSGS), st.binary(max_size=48)))
    length = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFF)))
    return struct.pack(">H", length) + body


@st.composite
def _datagram(draw) -> bytes:
    """A MoldUDP64 datagram whose header may lie about its blocks, possibly cut."""
    blocks = draw(st.lists(_block(), max_size=6))
    count = draw(st.one_of(st.just(len(blocks)), st.sampled_from((0, 0xFFFF)), st.integers(0, 0xFFFF)))
    seq = draw(st.one_of(st.integers(0, 40), st.integers(0, 2**64 - 1)))
    raw = struct.pack(">10sQH", draw(st.sampled_from(SESSIONS)), seq, count) + b"".join(blocks)
    raw += draw(st.binary(max_size=4))
    return raw[:draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw


def _declared(payloads: list[bytes]) -> Counter:
    """What the headers declare: short datagrams, heartbeats, ends of session, messages."""
    out: Counter = Counter()
    for p in payloads:
        if len(p) < 20:
            out["short"] += 1
            continue
        count = struct.unpack_from(">H", p, 18)[0]
        if count == 0:
            out["heartbeats"] += 1
        elif count == 0xFFFF:
            out["ends"] += 1
        else:
            out["messages"] += count
    return out


def _blocks_by_sequence(payloads: list[bytes]) -> dict[int, list[bytes]]:
    """Sequence number -> bodies of the blocks that lie wholly inside a datagram there."""
    out: dict[int, list[bytes]] = defaultdict(list)
    for p in payloads:
        if len(p) < 20:
            continue
        seq, count = struct.unpack_from(">QH", p, 10)
        off = 20
        for i in range(0 if count == 0xFFFF else count):
            if off + 2 > len(p):
                break
            n = struct.unpack_from(">H", p, off)[0]
            if off + 2 + n > len(p):
                break
            out[seq + i].append(p[off + 2:off + 2 + n])
            off += 2 + n
    return out


#: Order Delete messages (type, zero header, order reference 1..7).
_D = [b"D" + bytes(10) + i.to_bytes(8, "big") for i in range(1, 8)]


@settings(max_examples=200, deadline=None, suppress_health_check=_QUIET)
@given(st.lists(st.one_of(_datagram(), st.binary(max_size=40)), max_size=12))
# a datagram cut inside blocks already delivered, with new ones after them
@example([mold(1, _D[:3]), mold(2, _D[1:6])[:25]])
def test_datagrams_account_for_every_declared_message(payloads):
    pipe, s, got = run_payloads(payloads)
    c = pipe.decoder.counters()
    declared = _declared(payloads)
    assert s.packets == len(payloads) and c["bytes"] == sum(map(len, payloads))
    assert s.errors.get("short_packet", 0) == declared["short"]
    # a heartbeat or end of session with an implausible sequence is dropped with its datagram
    dropped = s.errors.get("implausible_sequence", 0) + s.errors.get("sequence_overflow", 0)
    assert declared["heartbeats"] + declared["ends"] - dropped <= c["heartbeats"] + c["end_of_session"]
    assert c["heartbeats"] <= declared["heartbeats"] and c["end_of_session"] <= declared["ends"]
    assert s.messages + _refused(s.errors) + c["lost_in_malformed"] + s.duplicates + c["implausible_messages"] \
        + c["overflow_messages"] == declared["messages"]
    assert s.messages == len(got) == sum(s.messages_per_type.values())
    assert s.messages_per_type == dict(Counter(m.type for m, _ in got))
    blocks = _blocks_by_sequence(payloads)
    for msg, (_session, seq, _ts, _status) in got:
        assert msg in [_decodes(b) for b in blocks[seq]], (seq, msg)
    mold_packets = len(payloads) - declared["short"]
    assert sum(2 + WIRE[ord(m.type)] for m, _ in got) + 20 * mold_packets <= c["bytes"]


SESSION_DAY = [p for _, p in moldudp64_datagrams(MSGS, end_of_session=False)]


@settings(max_examples=150, deadline=None, suppress_health_check=_QUIET)
@given(st.lists(st.tuples(st.integers(0, len(SESSION_DAY) - 1), st.none() | st.integers(0, 1500)), max_size=30))
def test_reordered_lost_repeated_and_cut_datagrams_of_one_session(plan):
    payloads = [SESSION_DAY[i] if cut is None else SESSION_DAY[i][:cut] for i, cut in plan]
    pipe, s, got = run_payloads(payloads)
    c = pipe.decoder.counters()
    seqs = [meta[1] for _, meta in got]
    assert seqs == sorted(set(seqs)), "each sequence number once, in order"
    assert all(msg == decode_one(MSGS[q - 1]) for msg, (_, q, *_) in got)
    assert _refused(s.errors) == 0
    if c["next_sequence"] is not None:
        assert s.messages + s.gap_messages + c["lost_in_malformed"] == c["next_sequence"] - 1


# --- NASDAQ file framing (byte stream) ----------------------------------------

def _frames(data: bytes) -> tuple[list[bytes], list[int], str | None]:
    """Walk NASDAQ's framing: bodies, their frame offsets, and how the walk ended
    (None: cleanly; "tail": a partial frame; "dead": a zero prefix before an unknown type)."""
    bodies, starts, pos = [], [], 0
    while pos < len(data):
        if len(data) - pos < 2 or (data[pos] == data[pos + 1] == 0 and len(data) - pos < 3):
            return bodies, starts, "tail"
        n = struct.unpack_from(">H", data, pos)[0] or WIRE.get(data[pos + 2], 0)
        if n == 0:
            return bodies, starts, "dead"
        if pos + 2 + n > len(data):
            return bodies, starts, "tail"
        bodies.append(data[pos + 2:pos + 2 + n])
        starts.append(pos)
        pos += 2 + n
    return bodies, starts, None


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0] + sorted(cuts) + [len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def _stream_result(chunks: list[bytes]) -> tuple[list, dict]:
    """Messages and every counter that must not depend on chunking."""
    pipe, s, got = run_payloads(chunks, stream=True)
    c = pipe.decoder.counters()
    assert c["bytes"] == sum(map(len, chunks)) and s.packets == len(chunks)
    assert s.messages == len(got) == sum(s.messages_per_type.values())
    keep = {k: c[k] for k in ("messages", "messages_per_type", "implied_lengths", "errors")}
    return [m for m, _ in got], keep


@st.composite
def _stream_and_cuts(draw) -> tuple[bytes, list[int]]:
    """Frames with true or zero prefixes, and junk, cut at random places."""
    pieces = draw(st.lists(st.one_of(
        st.sampled_from(MSGS).map(lambda m: struct.pack(">H", len(m)) + m),
        st.sampled_from(MSGS).map(lambda m: b"\0\0" + m),
        st.binary(min_size=1, max_size=3).map(lambda b: b"\0\0" + b),  # zero prefix, maybe no type
        st.binary(min_size=1, max_size=24)), max_size=24))
    data = b"".join(pieces)
    return data, draw(st.lists(st.integers(0, len(data)), max_size=12))


@settings(max_examples=200, deadline=None, suppress_health_check=_QUIET)
@given(_stream_and_cuts())
# a zero prefix, split from the unknown type after it: dead, not also a truncated tail
@example((b"\0\0\x0c", [1]))
def test_stream_decodes_exactly_the_framed_messages_however_chunked(data_cuts):
    data, cuts = data_cuts
    got, counters = _stream_result(_chunks(data, cuts))
    bodies, _, end = _frames(data)
    decoded = [m for m in map(_decodes, bodies) if m is not None]
    assert got == decoded
    assert counters["messages"] + _refused(counters["errors"]) == len(bodies)
    assert counters["errors"].get("stream_truncated_tail", 0) == (end == "tail")
    assert counters["errors"].get("stream_unrecoverable", 0) == (end == "dead")
    assert (got, counters) == _stream_result([data])


@lru_cache(maxsize=None)
def _nasdaq_file(name: str) -> tuple[bytes, list[int], tuple[list, dict]]:
    """A NASDAQ file's bytes, its frame offsets, and its one-chunk decode."""
    if name == "real":
        data = REAL_ITCH.read_bytes()
    else:
        data = b"".join(struct.pack(">H", len(m)) + m for m in generate_messages(3000, symbols=4, seed=9))
    bodies, starts, end = _frames(data)
    assert end is None and bodies
    return data, starts, _stream_result([data])


@st.composite
def _file_and_cuts(draw) -> tuple[str, list[int]]:
    """Cuts anywhere, and cuts at 0..3 bytes past a frame start (inside the prefix and type)."""
    name = draw(st.sampled_from(("real", "generated")))
    data, starts, _ = _nasdaq_file(name)
    anywhere = st.integers(0, len(data))
    near_frame = st.tuples(st.sampled_from(starts), st.integers(0, 3)).map(lambda t: min(t[0] + t[1], len(data)))
    return name, draw(st.lists(st.one_of(anywhere, near_frame), max_size=40))


@settings(max_examples=40, deadline=None, suppress_health_check=_QUIET)
@given(_file_and_cuts())
def test_chunking_a_nasdaq_file_changes_nothing(name_cuts):
    name, cuts = name_cuts
    data, _, whole = _nasdaq_file(name)
    assert _stream_result(_chunks(data, cuts)) == whole


# --- captures (pcap, pcapng) ----------------------------------------------------

@dataclass(frozen=True)
class Capture:
    """A valid capture and where its records are: (start, frame start, frame end, end)."""

    blob: bytes
    header_end: int
    records: tuple[tuple[int, int, int, int], ...]
    messages: tuple[int, ...]  # messages in each record's MoldUDP64 datagram


def _records(blob: bytes, pcapng: bool) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Record spans of a capture rxfeed's generator wrote (little-endian, one interface)."""
    out = []
    if not pcapng:
        pos = 24
        while pos < len(blob):
            incl = struct.unpack_from("<I", blob, pos + 8)[0]
            out.append((pos, pos + 16, pos + 16 + incl, pos + 16 + incl))
            pos += 16 + incl
        return 24, out
    pos, header_end = 0, 0
    while pos < len(blob):
        btype, blen = struct.unpack_from("<II", blob, pos)
        if btype == 6:
            cap = struct.unpack_from("<I", blob, pos + 20)[0]
            out.append((pos, pos + 28, pos + 28 + cap, pos + blen))
        else:
            header_end = pos + blen
        pos += blen
    return header_end, out


def _mold_messages(payload: bytes) -> int:
    """Messages a MoldUDP64 datagram carries (0 for a heartbeat or end of session)."""
    count = struct.unpack_from(">H", payload, 18)[0]
    return 0 if count == 0xFFFF else count


@pytest.fixture(scope="module")
def captures(tmp_path_factory) -> dict[str, Capture]:
    d = tmp_path_factory.mktemp("caps")
    frames = list(frames_for(MSGS))
    write_pcap(d / "a.pcap", frames)
    write_pcapng(d / "a.pcapng", frames)
    out = {}
    for fmt in ("pcap", "pcapng"):
        blob = (d / f"a.{fmt}").read_bytes()
        header_end, recs = _records(blob, fmt == "pcapng")
        counts = tuple(_mold_messages(blob[fs + 42:fe]) for _, fs, fe, _ in recs)  # 42: Ethernet, IPv4, UDP
        out[fmt] = Capture(blob, header_end, tuple(recs), counts)
    assert sum(out["pcap"].messages) == len(MSGS)
    return out


def _replay(path) -> tuple[object, dict, dict] | None:
    """Summary, backend stats and decoder counters of a replay; None if refused at open."""
    try:
        pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(path)})
    except ValueError as exc:
        assert str(exc), "a refusal says why"
        return None
    try:
        s = pipe.run()
        return s, pipe.backend.stats(), pipe.decoder.counters()
    finally:
        pipe.close()


def _check_replay_counts(s, b: dict, c: dict) -> None:
    """Frames = packets + drops by reason; the decoder saw what the backend gave;
    no message claims more bytes than its datagram had."""
    dropped = sum(v for k, v in s.drops.items() if k != "truncated_record")
    assert b["frames"] == b["packets"] + dropped
    assert c["packets"] == b["packets"] and c["bytes"] == b["bytes"]
    assert s.messages == sum(s.messages_per_type.values())
    mold_packets = c["packets"] - s.errors.get("short_packet", 0)
    assert sum(n * (2 + WIRE[ord(t)]) for t, n in s.messages_per_type.items()) + 20 * mold_packets <= c["bytes"]


@st.composite
def _mutation(draw, cap: Capture) -> tuple[bytearray, bool, int]:
    """Byte changes (inside frames only, or anywhere) and a cut; (blob, frames_only, cut)."""
    blob = bytearray(cap.blob)
    frames_only = draw(st.booleans())
    spans = [(fs, fe) for _, fs, fe, _ in cap.records] if frames_only else [(0, len(blob))]
    for _ in range(draw(st.integers(0, 8))):
        a, b = draw(st.sampled_from(spans))
        blob[draw(st.integers(a, b - 1))] = draw(st.integers(0, 255))
    ends = [r[3] for r in cap.records]
    cut = draw(st.one_of(st.just(len(blob)), st.integers(0, len(blob)), st.sampled_from(ends)))
    return blob, frames_only, cut


@settings(max_examples=150, deadline=None, suppress_health_check=_QUIET)
@given(data=st.data())
def test_mutated_captures_account_for_every_record(captures, tmp_path_factory, data):
    cap = captures[data.draw(st.sampled_from(sorted(captures)))]
    blob, frames_only, cut = data.draw(_mutation(cap))
    path = tmp_path_factory.getbasetemp() / "mutated.bin"
    path.write_bytes(bytes(blob[:cut]))
    result = _replay(path)
    if result is None:
        assert cut < cap.header_end or not frames_only, "a capture with intact headers opens"
        return
    s, b, c = result
    _check_replay_counts(s, b, c)
    if not frames_only or cut < cap.header_end:
        return
    whole = [i for i, r in enumerate(cap.records) if r[3] <= cut]
    inside = any(r[0] < cut < r[3] for r in cap.records)
    assert s.error is None
    assert b["frames"] == len(whole), "every whole record is read"
    assert s.drops.get("truncated_record", 0) == inside
    if blob == bytearray(cap.blob):
        assert s.messages == sum(cap.messages[i] for i in whole) and s.drops == ({"truncated_record": 1} if inside else {})


_PCAP_HEAD = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_PCAPNG_HEAD = struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a",
           b"\x1f\x8b")


@settings(max_examples=100, deadline=None, suppress_health_check=_QUIET)
@given(st.sampled_from((b"", _PCAP_HEAD, _PCAPNG_HEAD)), st.binary(max_size=200))
def test_random_files_are_refused_or_counted(tmp_path_factory, head, raw):
    path = tmp_path_factory.getbasetemp() / "random.bin"
    path.write_bytes(head + raw)
    result = _replay(path)
    if result is None:
        return
    assert any((head + raw).startswith(m) for m in _MAGICS), "only a capture's magic opens"
    _check_replay_counts(*result)
