"""NASDAQ file framing: plain and gzip, messages split across chunks, zero
length prefixes (the real extract), and cut or unframeable files."""

from __future__ import annotations

import hashlib

import pytest

from rxfeed import Pipeline

from .conftest import REAL_ITCH, collect


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


def test_unframeable_bytes_stop_the_stream_with_a_count(tmp_path):
    (tmp_path / "bad.itch").write_bytes(b"\x00\x0cS" + bytes(11) + b"\x00\x00Z" + bytes(40))
    s, _ = collect("nasdaq_file", tmp_path / "bad.itch")
    assert s.messages == 1
    assert s.errors == {"stream_unrecoverable": 1}


def test_wrong_length_prefix_is_skipped_by_its_length(tmp_path):
    from rxfeed.protocols.itch50.reference import encode

    d = encode("D", order_reference_number=5)
    bad = b"\x00\x05" + b"D\x00\x00\x00\x00"
    (tmp_path / "mixed.itch").write_bytes(b"\x00\x13" + d + bad + b"\x00\x13" + d)
    s, _ = collect("nasdaq_file", tmp_path / "mixed.itch")
    assert s.messages == 2 and s.errors == {"bad_length": 1}


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        Pipeline("nasdaq_file", backend_config={"path": str(tmp_path / "nope")})


def test_unframeable_bytes_across_a_chunk_end_count_the_same():
    from .conftest import run_payloads

    data = b"\x00\x0cS" + bytes(11) + b"\x00\x00Z" + bytes(40)
    for cut in range(len(data)):
        _, s, _ = run_payloads([data[:cut], data[cut:]], stream=True)
        assert s.messages == 1 and s.errors == {"stream_unrecoverable": 1}, cut
