"""The synthetic IEX day (tools/iex_generator.py): deterministic, every message
of its feed, IEX-TP framing consistent, and DEEP+, DEEP and TOPS the same books.

Messages are read back with the table-driven ``struct`` unpacker of
``test_iex_spec`` (checked there against bytes written by hand from IEX's
specifications); the books are replayed with the plain-Python ones of
``iex_book_reference`` (shared with ``test_iex_books``), from the wire
only, and segments go through the IEX-TP session layer
(``protocols/iex/iextp.h``) of ``test_iextp``'s harness."""

from __future__ import annotations

import struct
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from rxfeed.tools.iex_generator import (ACTIVITY_BOUND, DEFAULT_SESSION_ID, FEEDS, Q_HALTED, Q_PRE_POST,
                                        generate_iex, iex_messages, iex_steps, iextp_segments, tail_length)

from .iex_book_reference import OrderBooks
from .test_iex_spec import unpack
from .test_iextp import RESTART, SESSION_CHANGE, lib, run  # noqa: F401  (lib: the harness fixture)

N, SYMBOLS, SEED = 3000, 4, 7
HEADER = struct.Struct("<BBHIIHHqqq")


@pytest.fixture(scope="module")
def days() -> dict[str, list[bytes]]:
    return {feed: list(iex_messages(feed, N, SYMBOLS, SEED)) for feed in FEEDS}


@pytest.fixture(scope="module")
def lockstep() -> dict[str, list[dict]]:
    """One simulation, every feed, decoded: the first 4000 steps (past the halt, the operational
    halt and the last step of every feed's day of N messages)."""
    out: dict[str, list[dict]] = {f: [] for f in FEEDS}
    for step in islice(iex_steps(N, SYMBOLS, SEED), 4000):
        for feed, msgs in step.items():
            out[feed] += [unpack(FEEDS[feed], m) for m in msgs]
    return out


# --- determinism and messages ---------------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_bytes(days, tmp_path):
    for feed, msgs in days.items():
        assert list(iex_messages(feed, N, SYMBOLS, SEED)) == msgs
        assert list(iex_messages(feed, N, SYMBOLS, SEED + 1)) != msgs
    paths = [tmp_path / f"{i}.pcap" for i in range(3)]
    for p, seed in zip(paths, (SEED, SEED, SEED + 1)):
        generate_iex(p, "deep", 1000, 2, seed)
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()


def test_every_message_parses_and_every_type_of_the_feed_occurs(days):
    for feed, msgs in days.items():
        spec = FEEDS[feed]
        assert len(msgs) == N
        types = Counter()
        for m in msgs:
            fields = unpack(spec, m)  # refuses a type of another feed, or a short message
            assert len(m) == spec.by_type[fields["message_type"]].length
            types[fields["message_type"]] += 1
        assert set(types) == set(spec.types), feed
        stamps = [f["timestamp"] for f in map(lambda m: unpack(spec, m), msgs)]
        assert stamps == sorted(stamps)


def test_every_feed_is_the_lockstep_day_then_fillers_and_the_close(days, lockstep):
    for feed, msgs in days.items():
        spec, full = FEEDS[feed], lockstep[feed]
        decoded = [unpack(spec, m) for m in msgs]
        common = next(i for i, (a, b) in enumerate(zip(decoded, full)) if a != b)  # the lockstep goes further
        assert common >= N - tail_length(feed, SYMBOLS) - ACTIVITY_BOUND
        assert {d["message_type"] for d in decoded[common:]} <= set("ISAMEXQ")
        assert [d["system_event"] for d in decoded[-3:] if "system_event" in d] == ["E", "C"]


def test_closing_quotes_repeat_the_last_top_with_the_post_market_flag(days):
    last: dict[str, dict] = {}
    quotes = [unpack(FEEDS["tops"], m) for m in days["tops"]]
    closing = quotes[-tail_length("tops", SYMBOLS):]
    for q in quotes[:-len(closing)]:
        if q["message_type"] == "Q":
            last[q["symbol"]] = q
    closes = [q for q in closing if q["message_type"] == "Q"]
    assert len(closes) == SYMBOLS
    for q in closes:
        before = last[q["symbol"]]
        assert q["flags"] & Q_PRE_POST and not before["flags"] & Q_PRE_POST
        assert [q[k] for k in ("bid_size", "bid_price", "ask_price", "ask_size")] == \
               [before[k] for k in ("bid_size", "bid_price", "ask_price", "ask_size")]


# --- IEX-TP ------------------------------------------------------------------------------------------

def read_pcap(path: Path) -> list[tuple[int, bytes]]:
    """(ts ns, frame) of a little-endian microsecond pcap."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    out, at = [], 24
    while at < len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, at)
        out.append((sec * 10**9 + usec * 1000, data[at + 16:at + 16 + caplen]))
        at += 16 + caplen
    return out


def read_pcapng(path: Path) -> list[tuple[int, bytes]]:
    """(ts ns, frame) of the Enhanced Packet Blocks of a nanosecond pcapng."""
    data = path.read_bytes()
    out, at = [], 0
    while at < len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if kind == 6:
            hi, lo, caplen = struct.unpack_from("<III", data, at + 12)
            out.append(((hi << 32) | lo, data[at + 28:at + 28 + caplen]))
        at += length
    return out


def segments_of(frames: list[tuple[int, bytes]]) -> list[bytes]:
    for _, f in frames:
        assert len(f) <= 1500 and f[12:14] == b"\x08\x00" and f[23] == 17  # IPv4, UDP
    return [f[42:] for _, f in frames]


def blocks(segment: bytes) -> list[bytes]:
    """The messages of a segment; every length checked."""
    version, _, _, _, _, length, count = HEADER.unpack_from(segment)[:7]
    assert version == 1 and length == len(segment) - HEADER.size
    out, at = [], HEADER.size
    for _ in range(count):
        (n,) = struct.unpack_from("<H", segment, at)
        out.append(segment[at + 2:at + 2 + n])
        at += 2 + n
        assert at <= len(segment)
    assert at == len(segment)
    return out


@pytest.mark.parametrize("feed", list(FEEDS))
def test_iextp_headers_sequence_offsets_sessions_reset_and_heartbeats(feed, tmp_path):
    n = 2000
    p = tmp_path / "day.pcap"
    options = {"session_change_at": 0.5, "reset_at": 0.25, "heartbeat_ns": 10 * 10**9}  # fewer heartbeats
    assert generate_iex(p, feed, n, 3, SEED, **options) == n
    generate_iex(tmp_path / "day.pcapng", feed, n, 3, SEED, **options)
    frames = read_pcap(p)
    ng = read_pcapng(tmp_path / "day.pcapng")
    assert [f for _, f in ng] == [f for _, f in frames] and [t // 1000 for t, _ in ng] == [t // 1000 for t, _ in frames]
    segs = segments_of(frames)
    messages, sessions, heartbeats = [], [], 0
    seq = offset = session = send = None
    for (ts, _), s in zip(frames, segs):
        _, _, proto, channel, sid, length, count, stream_offset, first, sent = HEADER.unpack_from(s)
        assert proto == FEEDS[feed].message_protocol_id and channel == 1 and sent // 1000 == ts // 1000
        assert send is None or sent >= send
        if sid != session or (first == 1 and seq is not None and seq > 1):  # new session, or a reset
            sessions.append((sid, len(messages)))
            seq, offset = 1, 0
        assert (first, stream_offset) == (seq, offset)
        msgs = blocks(s)
        assert all(unpack(FEEDS[feed], m)["timestamp"] <= sent for m in msgs)
        if count == 0:
            heartbeats += 1
            assert length == 0 and sent - send == 10 * 10**9
        seq, offset, session, send = seq + count, offset + length, sid, sent
        messages += msgs
    assert messages == list(iex_messages(feed, n, 3, SEED))
    first_sid = sessions[0][0]
    assert sessions == [(first_sid, 0), (first_sid, n // 4), (first_sid + 1, n // 2)]
    assert heartbeats > 0


def test_generated_segments_through_the_iextp_session_layer(lib):  # noqa: F811
    """Every message delivered once, in order; one session change, one restart, no gap or mismatch."""
    msgs = list(iex_messages("deep", N, SYMBOLS, SEED))
    segs = [s for _, s in iextp_segments(msgs, "deep", new_session_at=N // 2, reset_at=N // 4)]
    r = run(lib, segs, protocol=FEEDS["deep"].message_protocol_id)
    assert [d[3] for d in r.delivered] == msgs
    c = r.counters
    assert c["restarts"] == c["session_changes"] == 1 and c["heartbeats"] > 0
    assert r.events == [(RESTART, DEFAULT_SESSION_ID, 0), (SESSION_CHANGE, DEFAULT_SESSION_ID + 1, 0)]
    assert c["gaps"] == c["offset_mismatches"] == c["implausible_packets"] == c["duplicate_packets"] == 0


def test_datagrams_fit_1500_byte_frames_and_hold_many_messages():
    msgs = list(iex_messages("deep+", 20_000, 8, SEED))
    segs = [s for _, s in iextp_segments(msgs, "deep+", heartbeat_ns=None, max_delay_ns=10**15)]
    assert max(len(s) for s in segs) + 42 <= 1500
    assert max(len(blocks(s)) for s in segs) > 20 and sum(len(blocks(s)) for s in segs) == len(msgs)


# --- books -----------------------------------------------------------------------------------------

def replay_until(books: OrderBooks, plus: list[dict], at: int, ts: int) -> int:
    """Apply DEEP+ messages from index ``at`` up to timestamp ``ts``; the next index."""
    while at < len(plus) and plus[at]["timestamp"] <= ts:
        books.on(plus[at])
        at += 1
    return at


def test_deep_is_the_aggregation_of_deep_plus_at_every_batch_end(lockstep):
    plus, books, at, batches = lockstep["deep+"], OrderBooks(), 0, 0
    deep: dict[tuple[str, str], dict[int, int]] = {}
    for m in lockstep["deep"]:
        if m["message_type"] not in "85":
            continue
        lv = deep.setdefault((m["symbol"], m["message_type"]), {})
        lv[m["price"]] = m["size"]
        if not m["size"]:
            del lv[m["price"]]
        if m["event_flags"] & 1:
            at = replay_until(books, plus, at, m["timestamp"])
            assert {k: v for k, v in deep.items() if v} == books.book()
            batches += 1
    replay_until(books, plus, at, 1 << 62)
    assert {k: v for k, v in deep.items() if v} == books.book() and batches > 1000


def test_tops_quotes_are_the_top_of_the_same_books_never_crossed(lockstep):
    plus, books, at = lockstep["deep+"], OrderBooks(), 0
    quoted = {(q["timestamp"], q["symbol"]) for q in lockstep["tops"] if q["message_type"] == "Q"}
    for q in lockstep["tops"]:
        if q["message_type"] == "Q":
            at = replay_until(books, plus, at, q["timestamp"])
            assert (q["bid_size"], q["bid_price"], q["ask_price"], q["ask_size"]) == books.top(q["symbol"])
    # and every change of a top is quoted, at its own timestamp; no book ever crosses
    books, tops = OrderBooks(), {}
    for m in plus:
        books.on(m)
        sym = m.get("symbol")
        if sym and books.top(sym) != tops.get(sym, (0, 0, 0, 0)):
            tops[sym] = books.top(sym)
            assert (m["timestamp"], sym) in quoted
        bid, ask = books.top(sym)[1:3] if sym else (0, 0)
        assert not (bid and ask) or bid < ask


def test_trades_and_breaks_agree_across_feeds(lockstep):
    books = OrderBooks()
    for m in lockstep["deep+"]:
        books.on(m)
    fields = ("trade_id", "size", "price", "sale_condition_flags")
    for feed in ("deep", "tops"):
        trades = [tuple(m[f] for f in fields) for m in lockstep[feed] if m["message_type"] == "T"]
        assert trades == books.trades
    known = set(books.trades)
    for feed in FEEDS:
        breaks = [tuple(m[f] for f in fields) for m in lockstep[feed] if m["message_type"] == "B"]
        assert breaks and set(breaks) <= known


def test_the_halt_clears_the_book_and_halted_quotes_say_so(lockstep):
    plus, tops = lockstep["deep+"], lockstep["tops"]
    clear = [m for m in plus if m["message_type"] == "C"]
    assert len(clear) == 1
    sym, t = clear[0]["symbol"], clear[0]["timestamp"]
    halted = [q for q in tops if q["message_type"] == "Q" and q["symbol"] == sym and q["timestamp"] == t]
    assert len(halted) == 1 and halted[0]["flags"] & Q_HALTED and halted[0]["bid_size"] == halted[0]["ask_size"] == 0
    resumed = [m for m in plus if m["message_type"] == "H" and m["symbol"] == sym and m["timestamp"] > t]
    assert [m["trading_status"] for m in resumed] == ["O", "T"]
    during = [m for m in plus if m.get("symbol") == sym and t < m["timestamp"] < resumed[-1]["timestamp"]]
    assert {m["message_type"] for m in during} <= {"H", "B"}  # a trade break may come during a halt


@pytest.mark.parametrize("feed", ["tops", "deep", "deep+"])
def test_rxfeed_generate_writes_an_iex_day(tmp_path, feed):
    """`rxfeed generate --feed iex-...`: the same bytes as the API, same seed."""
    from click.testing import CliRunner

    from rxfeed.tools.cli import main

    out = tmp_path / f"{feed}.pcap"
    r = CliRunner().invoke(main, ["generate", str(out), "--feed", f"iex-{feed}", "-n", "500", "--seed", "3"])
    assert r.exit_code == 0, r.output
    api = tmp_path / "api.pcap"
    assert generate_iex(api, feed, 500, seed=3) == 500
    assert out.read_bytes() == api.read_bytes()


def test_rxfeed_generate_refuses_an_iex_day_in_nasdaq_framing(tmp_path):
    from click.testing import CliRunner

    from rxfeed.tools.cli import main

    r = CliRunner().invoke(main, ["generate", str(tmp_path / "x"), "--feed", "iex-deep", "--format", "nasdaq"])
    assert r.exit_code == 2 and "IEX-TP captures" in r.output
