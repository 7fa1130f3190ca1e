"""NASDAQ file framing: plain and gzip, messages split across chunks, zero
length prefixes (the real extract), and cut or unframeable files."""

from __future__ import annotations

import hashlib

import pytest

from rxfeed import Pipeline

from .conftest import REAL_ITCH, collect, replay_fifo, replay_json, replay_piped


def test_gzip_and_small_chunks_give_identical_messages(day_dir):
    s, base = collect("nasdaq_file", day_dir / "day.itch")
    for path, cfg in ((day_dir / "day.itch.gz", {}), (day_dir / "day.itch", {"chunk_size": 4096}),
                      (day_dir / "day.itch", {"chunk_size": 4099})):
        s2, got = collect("nasdaq_file", path, **cfg)
        assert got == base and s2.errors == {}


def test_real_extract_with_zeroed_length_prefixes_is_read_completely():
    data = REAL_ITCH.read_bytes()
    assert hashlib.md5(data).hexdigest() == "df54136ec04eb50dc06fe0f06cb98a99"
    for path, chunk in ((REAL_ITCH, 1 << 18), (REAL_ITCH, 4096), (REAL_ITCH.with_suffix(".TEST_ITCH_50.gz"), 1 << 18)):
        s, got = collect("nasdaq_file", path, chunk_size=chunk)
        assert s.messages == 12_012
        assert s.errors == {}
        assert s.messages_per_type == {"A": 4997, "D": 1745, "E": 198, "F": 3, "H": 3, "P": 5000, "R": 3, "S": 6,
                                       "U": 12, "X": 45}
        assert any("zero length prefix" in w for w in s.warnings)
        assert {m.stock for m in got if m.type == "R"} == {"ALC", "BOB", "CHAR"}


def test_truncated_tail_is_counted(tmp_path, day_dir):
    data = (day_dir / "day.itch").read_bytes()
    (tmp_path / "cut.itch").write_bytes(data[:-7])
    s, got = collect("nasdaq_file", tmp_path / "cut.itch", chunk_size=4096)
    assert s.messages == 19_999
    assert s.errors == {"stream_truncated_tail": 1}


def test_unframeable_bytes_to_the_end_are_counted_and_reported(tmp_path):
    """A zero prefix before an unknown type: nothing after it frames, so every
    byte to the end is counted as skipped and the offset is named."""
    (tmp_path / "bad.itch").write_bytes(b"\x00\x0cS" + bytes(11) + b"\x00\x00Z" + bytes(40))
    s, _ = collect("nasdaq_file", tmp_path / "bad.itch")
    assert s.messages == 1
    assert s.drops == {"unframeable_bytes": 43}
    assert s.backend_stats["unframeable"] == [{"offset": 14, "skipped_bytes": 43}]
    assert any("byte 14" in w and "43 bytes" in w for w in s.warnings)


def _message_offsets(data: bytes) -> list[int]:
    """Offsets of each framed message of a NASDAQ file (zero prefixes resolved)."""
    from rxfeed.protocols.itch50.spec import BY_TYPE

    out, pos = [], 0
    while pos + 3 <= len(data):
        out.append(pos)
        n = int.from_bytes(data[pos:pos + 2], "big") or BY_TYPE[chr(data[pos + 2])].wire_size
        pos += 2 + n
    return out


@pytest.mark.parametrize("chunk", [1 << 18, 4096])
def test_unknown_type_after_a_zero_prefix_resynchronises(tmp_path, chunk):
    """The real extract (all prefixes zero) with one type byte corrupted in the
    middle: decoding resumes at the next message, the loss is counted and the
    byte offset reported; the rest of the file is not silently dropped."""
    data = bytearray(REAL_ITCH.read_bytes())
    offsets = _message_offsets(bytes(data))
    assert len(offsets) == 12_012
    bad = offsets[6000]
    data[bad + 2] = ord("z")
    (tmp_path / "bad.itch").write_bytes(bytes(data))
    s, got = collect("nasdaq_file", tmp_path / "bad.itch", chunk_size=chunk)
    assert s.messages == 12_011
    assert s.backend_stats["unframeable"] == [{"offset": bad, "skipped_bytes": offsets[6001] - bad}]
    assert s.drops == {"unframeable_bytes": offsets[6001] - bad}
    assert any(f"byte {bad}" in w for w in s.warnings)


def test_wrong_length_prefix_is_skipped_to_the_next_message(tmp_path):
    """A prefix that disagrees with its type's size is not trusted: the
    backend skips to the next message that frames plausibly and counts it."""
    from rxfeed.protocols.itch50.reference import encode

    d = encode("D", order_reference_number=5)
    bad = b"\x00\x05" + b"D\x00\x00\x00\x00"
    (tmp_path / "mixed.itch").write_bytes(b"\x00\x13" + d + bad + b"\x00\x13" + d)
    s, _ = collect("nasdaq_file", tmp_path / "mixed.itch")
    assert s.messages == 2 and s.errors == {} and s.drops == {"unframeable_bytes": len(bad)}


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        Pipeline("nasdaq_file", "itch50", backend_config={"path": str(tmp_path / "nope")})


def test_truncated_gzip_delivers_everything_then_reports(tmp_path, day_dir):
    import gzip
    import zlib

    gz = (day_dir / "day.itch.gz").read_bytes()
    cut = gz[: len(gz) * 95 // 100]
    (tmp_path / "cut.itch.gz").write_bytes(cut)
    prefix = zlib.decompressobj(31).decompress(cut)
    assert len(gzip.decompress(gz)) > len(prefix)
    s, _ = collect("nasdaq_file", tmp_path / "cut.itch.gz", chunk_size=4096)
    whole = sum(1 for off in _message_offsets(prefix) if off + 2 + int.from_bytes(prefix[off:off + 2], "big")
                <= len(prefix))
    assert s.messages == whole
    assert s.error and "truncated" in s.error


def test_trailing_garbage_after_gzip_is_reported_not_refused(tmp_path, day_dir):
    gz = (day_dir / "day.itch.gz").read_bytes()
    (tmp_path / "t.itch.gz").write_bytes(gz + b"\x1f\x8b")
    s, _ = collect("nasdaq_file", tmp_path / "t.itch.gz")
    assert s.messages == 20_000 and s.error is None and s.errors == {}
    assert s.backend_stats["gzip_trailing_bytes"] == 2


@pytest.mark.parametrize("which", ["day.itch", "day.itch.gz", "real"])
def test_piped_nasdaq_file_replays_like_the_file(day_dir, which):
    """``cat day | rxfeed replay /dev/stdin`` and bash's ``<(cat day)`` (a
    /dev/fd/N pipe) decode what the file decodes."""
    import json
    import subprocess
    import sys

    path = REAL_ITCH if which == "real" else day_dir / which
    rc, base, _ = replay_json([path])
    assert rc == 0 and base["messages"] in (20_000, 12_012)
    rc, got, err = replay_piped(path)
    assert rc == 0, err
    assert got["messages"] == base["messages"] and got["messages_per_type"] == base["messages_per_type"]
    assert got["error"] is None and got["errors"] == base["errors"]
    out = subprocess.run(["bash", "-c", f"'{sys.executable}' -m rxfeed.tools.cli replay <(cat '{path}') --json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["messages"] == base["messages"]


def test_nasdaq_file_through_a_fifo(tmp_path):
    rc, got, err = replay_fifo(tmp_path, REAL_ITCH)
    assert rc == 0, err
    assert got["messages"] == 12_012


def test_a_stalled_pipe_neither_holds_back_what_came_nor_blocks_a_stop():
    """A writer sends 5,000 messages and stalls (keeps the pipe open): they
    are decoded at once, and SIGINT stops the run (the loop never sits in a
    read())."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    data = REAL_ITCH.read_bytes()
    cut = _message_offsets(data)[5000]
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "replay", "/dev/stdin", "--backend", "nasdaq_file",
                          "--json"], stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(r)
    writer = threading.Thread(target=os.write, args=(w, data[:cut]))
    writer.start()
    try:
        writer.join(timeout=30)
        time.sleep(3)  # the replay is in its loop, waiting on the stalled pipe
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
    finally:
        os.close(w)
        p.kill()
    s = json.loads(out)
    assert s["stop_reason"] == "signal", err
    assert s["messages"] == 5000


def test_unframeable_bytes_across_a_chunk_end_count_the_same():
    from .conftest import run_payloads

    data = b"\x00\x0cS" + bytes(11) + b"\x00\x00Z" + bytes(40)
    for cut in range(len(data)):
        _, s, _ = run_payloads([data[:cut], data[cut:]], stream=True)
        assert s.messages == 1 and s.errors == {"stream_unrecoverable": 1}, cut
        # the bare decoder (any stream backend but nasdaq_file, which resyncs) stops there, and says so
        assert any("could not be framed after message 1" in w for w in s.warnings), s.warnings


def test_a_corrupt_nonzero_length_prefix_is_skipped_not_trusted(tmp_path):
    """One bogus prefix (0x0100 on a 36-byte Add) in a file used to misframe
    hundreds of messages after it, counted only as one bad length; now the
    backend sees the prefix disagree with the type, skips to the next
    message and says where (review of issue 9)."""
    import struct

    from rxfeed.tools.generator import generate_messages

    msgs = list(generate_messages(20_000, symbols=4, seed=2))
    framed = [struct.pack(">H", len(m)) + m for m in msgs]
    bad = next(i for i, m in enumerate(msgs) if i > 5000 and m[:1] == b"A")
    framed[bad] = b"\x01\x00" + msgs[bad]
    data = b"".join(framed)
    (tmp_path / "bad.itch").write_bytes(data)
    s, _ = collect("nasdaq_file", tmp_path / "bad.itch", chunk_size=4096)
    assert s.messages == 20_000 - 1 and s.errors == {}
    assert s.drops == {"unframeable_bytes": 2 + len(msgs[bad])}
    offset = sum(map(len, framed[:bad]))
    assert any(f"byte {offset}" in w and "disagrees with its message type" in w for w in s.warnings)


def test_detection_needs_the_first_records_length_to_fit_its_type():
    from rxfeed import get_plugins

    ps = get_plugins()
    assert ps.detect("x", b"\x42" * 64) is None  # 'B' after a length of 16962: not an ITCH file
    assert ps.detect("x", b"\x00\x0cS" + bytes(61)) == ("nasdaq_file", "itch50")  # S is 12 bytes
    assert ps.detect("x", b"\x00\x00S" + bytes(61)) == ("nasdaq_file", "itch50")  # implied length
