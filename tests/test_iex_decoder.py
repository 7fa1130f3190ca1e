"""The iex decoder plugin (protocols/iex/_iex_decoder.pyx) through the real run
loop: generated IEX-TP days of every feed decode to exactly the messages
generated (checked with the independent ``struct`` unpacker of test_iex_spec),
as Python callbacks and numpy batches; the session layer's events and counters
reach the summary; bad segments are counted, never read past; detection from
the UDP payload picks it; recovery (A/B lines, loss declared with its range)
works on IEX-TP as on MoldUDP64."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed.pipeline import Pipeline
from rxfeed.protocols.iex.config import IexConfig
from rxfeed.protocols.iex.decoder import IexProtocolDecoder
from rxfeed.protocols.iex.spec import FEEDS
from rxfeed.tools.iex_generator import generate_iex, iex_messages, iextp_segments

from .conftest import ListBackend
from .test_iex_spec import unpack

FEED_ARG = {"TOPS": "tops", "DEEP": "deep", "DEEP+": "deep+"}
CLI = [sys.executable, "-m", "rxfeed.tools.cli"]
HEADER = struct.Struct("<BBHIIHHqqq")


def run(segments, **config):
    """Segments through the run loop (bursts of 4); (summary, [(msg, meta)], decoder)."""
    dec = IexProtocolDecoder(IexConfig(**config))
    got = []
    dec.subscribe(lambda m, meta: got.append((m, meta)), with_meta=True)
    pipe = Pipeline(ListBackend(segments), dec, run={"burst": 4})
    return pipe.run(), got, dec


def day(feed: str, n: int = 3000, seed: int = 5, **seg):
    msgs = list(iex_messages(FEED_ARG[feed], n, 4, seed))
    return msgs, [s for _, s in iextp_segments(msgs, FEED_ARG[feed], **seg)]


@pytest.mark.parametrize("feed", list(FEEDS))
def test_every_message_of_a_generated_day_as_python_messages(feed):
    msgs, segs = day(feed)
    summary, got, dec = run(segs)
    assert summary.messages == len(msgs) and summary.gaps == 0 and summary.errors == {}
    assert [m._asdict() for m, _ in got] == [unpack(FEEDS[feed], raw) for raw in msgs]
    assert dec.feed == feed
    seqs = [meta.sequence for _, meta in got]
    assert seqs == list(range(1, len(msgs) + 1))
    assert {meta.protocol_id for _, meta in got} == {FEEDS[feed].message_protocol_id}
    assert all(meta.send_time >= m.timestamp for m, meta in got)  # sent at its segment's last message


@pytest.mark.parametrize("feed", list(FEEDS))
def test_numpy_batches_hold_every_field(feed):
    msgs, segs = day(feed, 2000, seed=8)
    dec = IexProtocolDecoder(IexConfig(batch_size=100))
    dec.subscribe_batches()
    Pipeline(ListBackend(segs), dec).run()
    batches = dec.take_batches()
    want = Counter(chr(m[0]) for m in msgs)
    assert {t: len(a) for t, a in batches.items()} == dict(want)
    for t, arr in batches.items():
        rows = [unpack(FEEDS[feed], m) for m in msgs if chr(m[0]) == t]
        for name in arr.dtype.names:
            col = arr[name]
            if col.dtype.kind == "S":
                got = [v.decode().rstrip(" ") if len(FEEDS[feed].by_type[t].fields) else v for v in col]
                assert got == [str(r[name]).rstrip(" ") for r in rows], (t, name)
            else:
                assert col.tolist() == [r[name] for r in rows], (t, name)


def test_a_session_change_and_heartbeats_are_counted_and_nothing_is_lost(tmp_path):
    path = tmp_path / "d.pcap"
    n = generate_iex(path, "deep", 5000, 3, 2, session_change_at=0.5)
    code, s = _replay(path)
    d = s["decoder_stats"]
    assert code == 0 and s["decoder"] == "iex" and s["messages"] == n and s["gaps"] == 0
    assert d["session_changes"] == 1 and d["heartbeats"] > 0 and d["feed"] == "DEEP"
    assert d["end_of_session"] == 1  # the System Event 'C' (end of messages) of the day


def test_a_sequence_restart_at_1_is_an_event_and_delivers_again():
    msgs, segs = day("DEEP", 3000, reset_at=1500)
    summary, got, dec = run(segs)
    assert summary.messages == 3000 and dec.counters()["restarts"] == 1
    assert [e["kind"] for e in dec.events].count("sequence_restart") == 1


def _drop(segs, every):
    """Every ``every``-th segment that carries messages dropped; the messages lost."""
    kept, lost = [], 0
    for i, s in enumerate(segs):
        count = HEADER.unpack_from(s)[6]
        if count and i % every == 3:
            lost += count
        else:
            kept.append(s)
    return kept, lost


def test_gaps_are_events_with_their_range():
    msgs, segs = day("DEEP+", 3000, new_session_at=None)
    kept, lost = _drop(segs, 10)
    summary, got, dec = run(kept)
    gaps = [e for e in dec.events if e["kind"] == "gap"]
    assert summary.messages == 3000 - lost and summary.gap_messages == lost and sum(g["count"] for g in gaps) == lost
    delivered = {meta.sequence for _, meta in got}
    for g in gaps:
        assert not delivered & set(range(g["first"], g["first"] + g["count"]))
        assert g["channel"] == 1 and g["session"] == HEADER.unpack_from(segs[0])[4]


def test_duplicate_segments_are_skipped_and_counted():
    msgs, segs = day("TOPS", 2000, new_session_at=None)
    summary, got, dec = run([s for s in segs for _ in range(2)])
    assert summary.messages == 2000 and summary.duplicates == 2000
    assert [meta.sequence for _, meta in got] == list(range(1, 2001))


def test_bad_segments_are_counted_never_read_past():
    msgs, segs = day("DEEP", 500, new_session_at=None)
    data = [s for s in segs if HEADER.unpack_from(s)[6] >= 2]
    good = data[0]
    truncated = good[:-3]                                             # payload length > bytes
    trailing = good + b"\x00\x00"                                     # payload length < bytes
    fewer = good[:14] + struct.pack("<H", HEADER.unpack_from(good)[6] - 1) + good[16:]  # count disagrees
    longer_block = good[:40] + struct.pack("<H", 0xFFFF) + good[42:]  # a block past the payload
    unknown = bytearray(good)
    unknown[42] = ord("z")                                            # an unknown message type
    short_msg = bytearray(data[1])
    short_msg[40:42] = struct.pack("<H", 3)                           # declared shorter than its type
    summary, got, dec = run([b"\x01" * 12, truncated, trailing, fewer, longer_block, bytes(unknown),
                             bytes(short_msg)])
    e = summary.errors
    assert e["not_iextp"] == 1 and e["truncated_segment"] == 1 and e["trailing_bytes"] == 1
    assert e["count_mismatch"] == 3 and e["unknown_type"] == 1
    assert dec.counters()["malformed_messages"] > 0


def test_another_feed_in_the_same_capture_is_counted_not_decoded():
    _, deep = day("DEEP", 500, new_session_at=None)
    _, tops = day("TOPS", 500, new_session_at=None)
    summary, got, dec = run([s for pair in zip(deep, tops) for s in pair] + deep[len(tops):])
    assert dec.feed == "DEEP" and summary.messages == 500
    assert dec.counters()["other_protocol"] == min(len(tops), len(deep))
    with pytest.raises(Exception):
        IexConfig(feed="DEEP++")
    summary, got, dec = run(tops, feed="DEEP")
    assert summary.messages == 0 and dec.counters()["other_protocol"] == len(tops)


def test_deep_plus_channels_each_have_their_own_session_layer():
    _, one = day("DEEP+", 1000, new_session_at=None)
    _, two = day("DEEP+", 800, seed=9, new_session_at=None, channel=2)
    summary, got, dec = run([s for pair in zip(one, two) for s in pair] + one[len(two):])
    assert summary.messages == 1800 and summary.gaps == 0
    assert {c["channel"] for c in dec.counters()["channels"]} == {1, 2}
    summary, got, dec = run(one + two, channel=2)
    assert summary.messages == 800 and dec.counters()["other_channel"] == len(one)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=12), st.integers(0, 2**32 - 1))
def test_random_and_truncated_segments_never_crash(blobs, seed):
    _, segs = day("DEEP+", 300, seed=3, new_session_at=None)
    rnd = random.Random(seed)
    mixed = []
    for s in segs[:30]:
        cut = rnd.randrange(len(s) + 1) if rnd.random() < 0.3 else len(s)
        mixed.append(s[:cut])
        if blobs and rnd.random() < 0.3:
            b = blobs.pop()
            mixed.append(HEADER.pack(1, 0, 0x8005, 1, 1, len(b), rnd.randrange(4), 0, rnd.randrange(1, 400), 0) + b)
    summary, got, dec = run(mixed)
    c = dec.counters()
    assert summary.messages == len(got) <= 300
    assert [meta.sequence for _, meta in got] == sorted({meta.sequence for _, meta in got})


def _replay(path, *args):
    out = subprocess.run(CLI + ["replay", str(path), "--json", *args], capture_output=True, text=True, timeout=120)
    return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else out.stderr)


@pytest.mark.parametrize("feed", ["tops", "deep", "deep+"])
def test_replay_detects_iex_from_the_udp_payload(tmp_path, feed):
    path = tmp_path / f"{feed}.pcapng"
    n = generate_iex(path, feed, 2000, 2, 4)
    code, s = _replay(path)
    assert code == 0 and s["decoder"] == "iex" and s["messages"] == n, s


def test_ab_lines_with_seeded_drops_deliver_every_message_once(tmp_path):
    """Line A and line B are the same capture with different seeded drops:
    arbitration fills each line's holes from the other; what both lost is
    declared lost with its range."""
    path = tmp_path / "d.pcap"
    n = generate_iex(path, "deep", 20000, 4, 6, session_change_at=None)
    code, s = _replay(path, "-d", "iex", "--line-b", str(path), "--faults", "drop=0.05,seed=3",
                      "--faults-b", "drop=0.05,seed=4")
    assert code == 0, s
    rec = s["recovery"]
    assert rec["redundant_copies"] > 0 and rec["gaps_opened"] > 0
    both = rec["lost_messages"]
    assert s["messages"] == n - both and s["gap_messages"] == both and s["duplicates"] == 0
    assert rec["gaps_filled"] + rec["lost_ranges"] >= rec["gaps_opened"] - rec["held_now"]


def test_dissect_mode_shows_every_copy_with_its_status():
    msgs, segs = day("DEEP", 600, new_session_at=None)
    data = [s for s in segs if HEADER.unpack_from(s)[6]]
    far = bytearray(data[3])
    struct.pack_into("<q", far, 24, 10**9)  # an implausible jump, never confirmed
    summary, got, dec = run(data[:3] + [data[1], bytes(far)] + data[3:], sequenced=False)
    status = Counter(meta.status for _, meta in got)
    n1, n_far = HEADER.unpack_from(data[1])[6], HEADER.unpack_from(far)[6]
    assert status == {"new": 600, "duplicate": n1, "implausible": n_far}
    assert [m for m, meta in got if meta.status == "new"] == [m for m, _ in run(segs)[1]]
    with pytest.raises(Exception, match="dissect"):
        IexProtocolDecoder(IexConfig(sequenced=False, recovery={"reorder_window_ms": 10}))


def test_inspect_prints_iex_messages_with_session_channel_sequence_and_status(tmp_path):
    path = tmp_path / "d.pcap"
    generate_iex(path, "deep+", 1000, 2, 1)
    out = subprocess.run(CLI + ["inspect", str(path), "-n", "5", "--format", "jsonl", "--types", "a"],
                         capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and len(rows) == 5, out.stderr
    assert all(r["message_type"] == "a" and r["status"] == "new" and r["channel"] == 1 for r in rows)
    assert [r["sequence"] for r in rows] == sorted(r["sequence"] for r in rows)


def test_arrival_log_has_one_row_per_segment_with_messages():
    msgs, segs = day("TOPS", 1500, new_session_at=None)
    dec = IexProtocolDecoder()
    dec.log_arrivals()
    Pipeline(ListBackend(segs), dec).run()
    a = dec.take_arrivals()
    data = [HEADER.unpack_from(s) for s in segs if HEADER.unpack_from(s)[6]]
    assert a["sequence"].tolist() == [h[8] for h in data] and int(a["count"].sum()) == 1500
    assert (np.diff(a["done_ns"].astype(np.int64)) >= 0).all() and len(dec.take_arrivals()) == 0


# a reorder window no test outlasts: holes are declared lost at the end of the run only
WIDE_RECOVERY = {"reorder_window_ms": 600_000.0}


@pytest.mark.parametrize("change", [{"reset_at": 1500}, {"new_session_at": 1500}])
@pytest.mark.parametrize("max_jump", [0, 10_000])
def test_with_recovery_a_confirmed_restart_or_session_change_loses_nothing(change, max_jump):
    """The segment that confirms a held restart (or, with max_jump, a new
    session) is taken after the held one: the sequencer must continue from
    the tracker's new position, not drop it as a copy of the old one."""
    msgs, segs = day("DEEP", 3000, **change)
    summary, got, dec = run(segs, max_sequence_jump=max_jump, recovery=WIDE_RECOVERY)
    assert summary.messages == len(got) == 3000, (summary.duplicates, dec.counters()["recovery"]["duplicate_messages"])
    assert summary.duplicates == 0 and summary.gap_messages == 0


@pytest.mark.parametrize("change", [{"reset_at": 1500}, {"new_session_at": 1500}])
def test_a_confirmed_restart_or_session_change_event_says_where_the_session_starts(change):
    msgs, segs = day("DEEP", 3000, **change)
    summary, got, dec = run(segs)  # max_sequence_jump 10,000: both are held and confirmed
    kind = "sequence_restart" if "reset_at" in change else "session_change"
    assert [(e["kind"], e["first"]) for e in dec.events if e["kind"] in ("sequence_restart", "session_change")] \
        == [(kind, 1)]


@pytest.mark.parametrize("feed", list(FEEDS))
def test_every_message_type_round_trips_from_hand_written_bytes(feed):
    """Bytes written by hand from the specifications (test_iex_spec's golden
    messages, not from our spec table) in one IEX-TP segment, through the
    decoder to Python messages, packed again by the generator's packer: the
    same bytes, for every type of the feed."""
    from rxfeed.tools.iex_generator import FEEDS as GEN_FEEDS
    from rxfeed.tools.iex_generator import Packer

    from .test_iex_spec import GOLDEN_BY, wire_bytes

    raw = [wire_bytes(GOLDEN_BY[(feed, t)]) for t in FEEDS[feed].by_type]
    payload = b"".join(len(m).to_bytes(2, "little") + m for m in raw)
    seg = HEADER.pack(1, 0, FEEDS[feed].message_protocol_id, 1, 9, len(payload), len(raw), 0, 1, 0) + payload
    summary, got, dec = run([seg])
    assert summary.messages == len(raw) and summary.errors == {}
    packer = Packer(GEN_FEEDS[FEED_ARG[feed]])
    for m, (msg, _) in zip(raw, got):
        fields = msg._asdict()
        assert packer.pack(fields.pop("message_type"), **fields) == m, msg
