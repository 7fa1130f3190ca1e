"""The file backends map a plain regular file (pointers into the mapping, no
copy) and read everything else: the mapped replay equals the read() replay
message for message and packet for packet, a file cut under a running replay
is a clear error (never a SIGBUS, never a hang), even when the cut lands in
pages already handed out, and a SIGBUS that is not ours still kills."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import frames_for, generate_messages, write_pcap

from .conftest import replay_fifo

BACKENDS = ("nasdaq_file", "pcap_replay")
MSGS = list(generate_messages(20_000, symbols=4, seed=11))


def _itch_file(path: Path, copies: int = 1) -> Path:
    framed = b"".join(len(m).to_bytes(2, "big") + m for m in MSGS)
    path.write_bytes(framed * copies)
    return path


def _pcap_file(path: Path) -> Path:
    write_pcap(path, list(frames_for(MSGS)), nsec=True)
    return path


def _source(tmp_path: Path, backend: str) -> Path:
    return _itch_file(tmp_path / "day.itch") if backend == "nasdaq_file" else _pcap_file(tmp_path / "day.pcap")


def _replay(backend: str, path: Path, **cfg) -> tuple[object, list, bool]:
    """(summary, every message with its meta, whether the reader mapped the file)."""
    pipe = Pipeline(backend, "itch50", backend_config={"path": str(path), **cfg})
    seen: list = []
    pipe.decoder.subscribe(lambda m, meta: seen.append((m, meta)), with_meta=True)
    summary = pipe.run()
    mapped = pipe.backend.reader.mapped
    pipe.close()
    return summary, seen, mapped


@pytest.mark.parametrize("backend", BACKENDS)
def test_mapped_replay_equals_the_read_path_packet_for_packet(tmp_path, backend):
    path = _source(tmp_path, backend)
    extra = {"chunk_size": 4096} if backend == "nasdaq_file" else {}
    s_map, got_map, mapped = _replay(backend, path, **extra)
    s_read, got_read, read_mapped = _replay(backend, path, mmap=False, **extra)
    assert mapped and not read_mapped
    assert s_map.messages == s_read.messages == len(MSGS)
    assert s_map.packets == s_read.packets
    assert s_map.backend_stats == s_read.backend_stats
    assert got_map == got_read
    assert s_map.error is None and s_read.error is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_gzip_is_not_mapped_and_replays_alike(tmp_path, backend):
    path = _source(tmp_path, backend)
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes()))
    s_plain, got_plain, mapped = _replay(backend, path)
    s_gz, got_gz, gz_mapped = _replay(backend, gz)
    assert mapped and not gz_mapped
    assert got_gz == got_plain and s_gz.error is None


def test_a_fifo_is_read_not_mapped(tmp_path):
    rc, got, err = replay_fifo(tmp_path, _itch_file(tmp_path / "day.itch"))
    assert rc == 0, err
    assert got["messages"] == len(MSGS) and got["error"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_file_is_handled_as_before(tmp_path, backend):
    """A zero-byte file cannot be mapped: the read() path says what it always said."""
    (tmp_path / "empty").write_bytes(b"")
    mapped_err = read_err = None
    for mmap_on in (True, False):
        try:
            s, _, _ = _replay(backend, tmp_path / "empty", mmap=mmap_on)
            err = ("ok", s.messages, s.error)
        except Exception as e:  # noqa: BLE001 - compare whatever each path does
            err = ("raised", type(e).__name__, str(e))
        if mmap_on:
            mapped_err = err
        else:
            read_err = err
    assert mapped_err == read_err


CUT_SCRIPT = r"""
import json, os, sys
from rxfeed import Pipeline
backend, path, cut = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = {"path": path}
if backend == "nasdaq_file":
    cfg["chunk_size"] = 4096
pipe = Pipeline(backend, "itch50", backend_config=cfg, run={"max_packets": 5})
first = pipe.run()
assert pipe.backend.reader.mapped
os.truncate(path, cut)   # inside the stretch already checked and handed out
pipe.run_config = pipe.run_config.model_copy(update={"max_packets": 0})
second = pipe.run()
print(json.dumps({"first": first.messages, "total": second.messages, "packets": second.packets,
                  "error": second.error}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cut_inside_pages_already_handed_out_is_an_error_not_a_sigbus(tmp_path, backend):
    """The file is cut under the replay after its next stretch was checked:
    the reads past the cut fault (SIGBUS); the handler maps zero pages there
    and the run ends with an error naming both sizes (faulthandler on, as
    under pytest: our handler chains past it)."""
    path = _source(tmp_path, backend)
    full = path.stat().st_size
    assert full > 3 * 65536
    cut = 2 * 65536 + 100
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CUT_SCRIPT, backend, str(path), str(cut)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    res = json.loads(out.stdout)
    assert res["first"] > 0
    assert f"capture shrank from {full} to {cut} bytes during replay" in res["error"]
    assert "read as zeros" in res["error"]
    assert res["total"] < len(MSGS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cut_ahead_of_the_checked_stretch_delivers_what_is_left(tmp_path, backend):
    """A cut past the stretch already checked is found by the size check:
    every whole record still in the file is delivered, then the error."""
    frames = list(frames_for(MSGS))
    path = _itch_file(tmp_path / "big.itch", copies=8) if backend == "nasdaq_file" else None
    if path is None:  # repeated sequence numbers: the session layer drops them, so count packets
        path = tmp_path / "big.pcap"
        write_pcap(path, frames * 8, nsec=True)
    full = path.stat().st_size
    assert full > 4 << 20
    cut = 3 << 20
    out = subprocess.run([sys.executable, "-c", CUT_SCRIPT, backend, str(path), str(cut)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    res = json.loads(out.stdout)
    assert f"capture shrank from {full} to {cut} bytes during replay" in res["error"]
    assert "read as zeros" not in res["error"]
    if backend == "nasdaq_file":
        assert 2 * len(MSGS) < res["total"] < 8 * len(MSGS)
    else:
        assert 2 * len(frames) < res["packets"] < 8 * len(frames)


FOREIGN_SCRIPT = r"""
import os, signal, sys
from rxfeed import Pipeline
pipe = Pipeline(sys.argv[1], "itch50", backend_config={"path": sys.argv[2]})
pipe.run()
assert pipe.backend.reader.mapped
os.kill(os.getpid(), signal.SIGBUS)
print("survived")
"""


@pytest.mark.parametrize("faulthandler", [False, True])
def test_a_sigbus_that_is_not_ours_still_kills(tmp_path, faulthandler):
    """Our handler only papers over faults inside our own mappings; any
    other SIGBUS reaches the handler it replaced (faulthandler) or the
    default action."""
    path = _itch_file(tmp_path / "day.itch")
    flags = ["-X", "faulthandler"] if faulthandler else []
    out = subprocess.run([sys.executable, *flags, "-c", FOREIGN_SCRIPT, "nasdaq_file", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert "survived" not in out.stdout
    if "AddressSanitizer" in out.stderr:  # under scripts/sanitize.sh ASan's handler was there first
        assert out.returncode != 0
        assert "BUS signal" in out.stderr or "Bus error" in out.stderr, out.stderr[-2000:]
        return
    assert out.returncode == -signal.SIGBUS, (out.returncode, out.stderr[-2000:])
    if faulthandler:
        assert "Bus error" in out.stderr


def test_loops_over_a_mapped_file(tmp_path):
    path = _itch_file(tmp_path / "day.itch")
    s, got, mapped = _replay("nasdaq_file", path, loops=3)
    assert mapped and s.messages == 3 * len(MSGS) and s.error is None
    assert os.path.getsize(path) > 0


def test_raw_chunks_without_the_backends_walk_decode_the_same(tmp_path):
    """check_framing=False: chunks cut anywhere (4 KiB, mid-message), only
    the decoder frames; a clean file decodes to the same messages."""
    path = _itch_file(tmp_path / "day.itch")
    s_walk, got_walk, _ = _replay("nasdaq_file", path, chunk_size=4096)
    s_raw, got_raw, _ = _replay("nasdaq_file", path, chunk_size=4096, check_framing=False)
    assert got_raw == got_walk and s_raw.messages == len(MSGS)
    assert s_raw.error is None and s_raw.errors == {} and s_raw.drops == {}
    assert s_raw.backend_stats["bytes"] == path.stat().st_size


def test_raw_chunks_stop_at_an_unframeable_point_and_say_so(tmp_path):
    """Without the backend's walk nothing resynchronises: the decoder stops
    at a zero prefix before an unknown type and counts it, never silently."""
    (tmp_path / "bad.itch").write_bytes(b"\x00\x0cS" + bytes(11) + b"\x00\x00Z" + bytes(40) +
                                        b"".join(len(m).to_bytes(2, "big") + m for m in MSGS[:50]))
    s, got, _ = _replay("nasdaq_file", tmp_path / "bad.itch", check_framing=False)
    assert s.messages == 1
    assert s.errors.get("stream_unrecoverable") == 1
    assert s.warnings
