"""The record backend: live capture to pcapng (issue 11, item 6).

"What ``--record`` wrote replays to exactly what was received": each test
runs a source through the recorder, keeps what the decoder saw, then
replays the files the recorder wrote with pcap_replay and compares payload,
receive time and addresses, packet for packet.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Pipeline, PluginConfig, PythonDecoder
from rxfeed.backends.pcap_replay import PcapReplayBackend, PcapReplayConfig
from rxfeed.backends.record import RecordBackend, RecordConfig
from rxfeed.config import ConfigError
from rxfeed.tools.generator import generate, udp_frame, write_pcapng

from .c_harness import own_sanitizer_env


class Keep(PythonDecoder[PluginConfig]):
    """Keeps (bytes, rx_ts_ns, src_ip, dst_ip, src_port, dst_port) of every packet."""

    name = "record_keep"
    Config = PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.packets: list[tuple[bytes, int, int, int, int, int]] = []

    def on_packets(self, packets: Any) -> bool:
        self.packets.extend((bytes(p.data), p.rx_ts_ns, p.src_ip, p.dst_ip, p.src_port, p.dst_port)
                            for p in packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": len(self.packets)}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated day: 100,000 messages in about 2,300 MoldUDP64 datagrams."""
    path = tmp_path_factory.mktemp("record") / "day.pcap"
    generate(path, 100_000, symbols=6, seed=5)
    return path


def pcap(path: Path) -> PcapReplayBackend:
    return PcapReplayBackend(PcapReplayConfig(path=str(path)))


def replay_files(files: list[Path]) -> list[tuple[bytes, int, int, int, int, int]]:
    """What pcap_replay delivers from ``files``, one after the other."""
    out = []
    for f in files:
        keep = Keep()
        with Pipeline(pcap(f), keep) as pipe:
            pipe.run()
        out += keep.packets
    return out


def record_run(inner: Any, directory: Path, **settings: Any) -> tuple[list[Any], RecordBackend, Any]:
    """Run ``inner`` wrapped in the recorder; (what the decoder saw, the wrapper, summary)."""
    keep = Keep()
    rec = RecordBackend.wrap(inner, RecordConfig(dir=str(directory), **settings))
    with Pipeline(rec, keep) as pipe:
        summary = pipe.run()
    return keep.packets, rec, summary


def test_a_replayed_day_records_to_exactly_what_was_received(day, tmp_path):
    got, rec, summary = record_run(pcap(day), tmp_path / "rec")
    s = rec.record_stats()
    assert len(got) > 2000
    assert s["recorded_packets"] == s["seen"] == len(got) and s["overflow_packets"] == 0
    assert s["recorded_bytes"] == sum(len(p[0]) for p in got) and s["files"] == 1 and s["write_errors"] == 0
    assert summary.backend_stats["record"]["recorded_packets"] == len(got)  # the summary waited for the writer
    files = rec.files()
    assert len(files) == 1 and files[0].stat().st_size == s["file_bytes"]
    assert replay_files(files) == got  # payloads, times, addresses and ports


def test_the_itch_summary_of_the_recording_is_the_original(day, tmp_path):
    rec = RecordBackend.wrap(pcap(day), {"dir": str(tmp_path / "rec")})
    with Pipeline(rec, "itch50") as pipe:
        live = pipe.run()
    with Pipeline(pcap(rec.files()[0]), "itch50") as pipe:
        again = pipe.run()
    assert live.messages == again.messages == 100_000
    assert live.messages_per_type == again.messages_per_type
    assert (live.packets, live.gaps, live.duplicates, live.errors) == \
        (again.packets, again.gaps, again.duplicates, again.errors)


def test_rotation_by_size_gives_several_files_that_replay_to_the_input(day, tmp_path):
    got, rec, _ = record_run(pcap(day), tmp_path / "rec", rotate_mb=0.5, prefix="cap")
    files = rec.files()
    assert len(files) == rec.record_stats()["files"] >= 5
    assert [f.name for f in files[:2]] == ["cap-000001.pcapng", "cap-000002.pcapng"]
    assert all(f.stat().st_size <= (1 << 19) for f in files)
    assert replay_files(files) == got


def test_rotation_by_time_uses_receive_times(day, tmp_path):
    got, rec, _ = record_run(pcap(day), tmp_path / "rec", rotate_s=3600)
    files = rec.files()
    assert len(files) >= 3
    for f in files:
        times = [p[1] for p in replay_files([f])]
        assert times and times[-1] - times[0] < 3600 * 10**9
    assert replay_files(files) == got


def test_a_full_queue_is_counted_and_never_waited_for(day, tmp_path):
    got, rec, summary = record_run(pcap(day), tmp_path / "rec", ring_bytes=4096)
    s = rec.record_stats()
    assert s["seen"] == len(got)
    assert s["overflow_packets"] > 0 and s["recorded_packets"] > 0
    assert s["recorded_packets"] + s["overflow_packets"] == len(got)
    assert any("not recorded" in w for w in summary.warnings)
    written = replay_files(rec.files())
    assert len(written) == s["recorded_packets"]
    it = iter(got)  # what was written is what was received, minus the overflow, in order
    assert all(any(w == g for g in it) for w in written)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_udp_on_loopback_records_what_was_received(tmp_path):
    from rxfeed.backends.udp_socket.backend import UdpSocketBackend
    from rxfeed.backends.udp_socket.config import UdpSocketConfig

    port = free_port()
    # 8 MiB: all 3000 datagrams (2.1 MB) fit even while a loaded CI machine starves the reader
    inner = UdpSocketBackend(UdpSocketConfig(groups=(f"127.0.0.1:{port}",), idle_timeout_s=1.0, rcvbuf=8 << 20))
    sent = [struct.pack(">I", i) + bytes([i % 251]) * (i % 1400) for i in range(3000)]

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, d in enumerate(sent):
                s.sendto(d, ("127.0.0.1", port))
                if i % 50 == 49:
                    time.sleep(0.002)

    t = threading.Thread(target=send)
    t.start()
    try:
        got, rec, _ = record_run(inner, tmp_path / "rec")
    finally:
        t.join()
    assert [g[0] for g in got] == sent[:len(got)] and len(got) > 2500  # loopback: nothing lost in practice
    assert all(g[1] > 0 for g in got)  # receive times
    assert rec.record_stats()["recorded_packets"] == len(got)
    assert replay_files(rec.files()) == got


def test_cli_listen_records_what_it_received(tmp_path):
    """``rxfeed listen --record`` on loopback: the recording replays to the
    same packets and ITCH messages as the live run counted."""
    from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

    port, out = free_port(), tmp_path / "rec"
    datagrams = [d for _, d in moldudp64_datagrams(generate_messages(20_000, symbols=4, seed=2))]
    proc = subprocess.Popen([sys.executable, "-m", "rxfeed.tools.cli", "listen", "-b", "udp_socket", "-d", "itch50",
                             "-o", f'groups=["127.0.0.1:{port}"]', "-o", "idle_timeout_s=1.5", "--json",
                             "--record", str(out), "--record-rotate-mb", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None and "listening" in proc.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, d in enumerate(datagrams):
                s.sendto(d, ("127.0.0.1", port))
                if i % 20 == 19:
                    time.sleep(0.002)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    live = json.loads(stdout)
    rec = live["backend_stats"]["record"]
    assert live["packets"] > 0.9 * len(datagrams) and rec["recorded_packets"] == live["packets"]
    assert rec["files"] >= 2 and rec["overflow_packets"] == 0
    again = [json.loads(subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(f), "--json"],
                                       capture_output=True, text=True, check=True).stdout)
             for f in sorted(out.glob("*.pcapng"))]
    assert sum(a["packets"] for a in again) == live["packets"]
    assert sum(a["messages"] for a in again) == live["messages"]


def test_a_directory_that_cannot_be_written_is_an_error_before_the_run(day, tmp_path):
    (tmp_path / "a_file").write_bytes(b"")
    inner = pcap(day)
    with pytest.raises(ConfigError, match="a_file"):
        RecordBackend.wrap(inner, {"dir": str(tmp_path / "a_file" / "sub")})
    r = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day), "--record",
                        str(tmp_path / "a_file" / "sub")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("rxfeed: error:") and "a_file" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_byte_stream_backend_is_refused(tmp_path):
    from rxfeed.backends.nasdaq_file.backend import NasdaqFileBackend
    from rxfeed.tools.generator import generate_messages, write_nasdaq

    write_nasdaq(tmp_path / "day.itch", generate_messages(100))
    inner = NasdaqFileBackend(NasdaqFileBackend.Config(path=str(tmp_path / "day.itch")))
    with pytest.raises(ConfigError, match="byte stream"):
        RecordBackend.wrap(inner, {"dir": str(tmp_path / "rec")})


def test_existing_files_are_never_overwritten(day, tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    (d / "cap-000001.pcapng").write_bytes(b"keep me")
    with pytest.raises(ConfigError, match="cap-000001"):
        RecordBackend.wrap(pcap(day), {"dir": str(d), "prefix": "cap"})
    assert (d / "cap-000001.pcapng").read_bytes() == b"keep me"


def test_two_recordings_in_one_second_get_their_own_files(day, tmp_path):
    first = RecordBackend.wrap(pcap(day), {"dir": str(tmp_path)})
    second = RecordBackend.wrap(pcap(day), {"dir": str(tmp_path)})
    first.close()
    second.close()
    assert first.prefix != second.prefix and len(first.files()) == len(second.files()) == 1


def test_cli_replay_with_faults_records_what_the_decoder_saw(day, tmp_path):
    out = tmp_path / "rec"
    r = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day), "--json",
                        "--faults", "drop=0.1,seed=3", "--record", str(out), "--record-rotate-mb", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    rec, faults = s["backend_stats"]["record"], s["backend_stats"]["faults"]
    assert rec["recorded_packets"] == faults["delivered"] == s["packets"] and rec["files"] >= 2
    again = [json.loads(subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(f), "--json"],
                                       capture_output=True, text=True, check=True).stdout)
             for f in sorted(out.glob("*.pcapng"))]
    assert sum(a["packets"] for a in again) == s["packets"]
    assert sum(a["messages"] for a in again) == s["messages"]


def test_a_disk_error_stops_recording_not_the_run(day, tmp_path):
    """Files may not grow past 2.5 MiB (RLIMIT_FSIZE): the write fails with
    EFBIG; the recording stops with a warning, every packet is still decoded,
    and what was written before the error replays to the start of the day."""
    import resource
    import signal

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (5 << 19, 5 << 19))

    out = tmp_path / "rec"
    r = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day), "--json", "--record", str(out)],
                       capture_output=True, text=True, preexec_fn=limit)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    rec = s["backend_stats"]["record"]
    assert rec["write_errors"] == 1 and "File too large" in rec["error"]
    assert any("recording stopped" in w for w in s["warnings"])
    assert s["messages"] == 100_000 and rec["seen"] == s["packets"]
    assert 0 < rec["recorded_packets"] < s["packets"]
    assert rec["recorded_packets"] + rec["lost_to_error"] + rec["after_error"] == rec["seen"]
    with Pipeline(pcap(day), Keep()) as pipe:
        pipe.run()
        original = pipe.decoder.packets  # type: ignore[attr-defined]
    written = replay_files(sorted(out.glob("*.pcapng")))
    assert written == original[:rec["recorded_packets"]]


def read_pcapng(path: Path) -> list[tuple[int, bytes]]:
    """(timestamp, frame) of each EPB of a pcapng file this recorder wrote."""
    raw, out, at = path.read_bytes(), [], 0
    while at < len(raw):
        btype, blen = struct.unpack_from("<II", raw, at)
        assert blen >= 12 and at + blen <= len(raw) and struct.unpack_from("<I", raw, at + blen - 4)[0] == blen
        if btype == 6:
            hi, lo, caplen, origlen = struct.unpack_from("<IIII", raw, at + 12)
            assert caplen == origlen and 28 + caplen + 4 <= blen
            out.append((hi << 32 | lo, raw[at + 28:at + 28 + caplen]))
        at += blen
    return out


@pytest.mark.parametrize("sanitizer", ["thread", "address,undefined"])
def test_the_c_recorder_under_sanitizers(tmp_path, sanitizer):
    """tests/record_stress.c: record.c alone under ThreadSanitizer (the ring
    between the loop and the writer thread) and ASan/UBSan, with small rings,
    random sizes and bursts: counters add up, every inner burst released
    once, and every file holds whole blocks whose payloads are the fake
    source's, in order, each with its line in the source MAC."""
    root = Path(__file__).resolve().parents[1]
    exe = tmp_path / "record_stress"
    subprocess.run(["gcc", "-O1", "-g", f"-fsanitize={sanitizer}", "-fno-sanitize-recover=all", "-pthread",
                    "-I", root / "core/include", "-I", root / "backends/record", root / "tests/record_stress.c",
                    root / "backends/record/record.c", "-o", exe], check=True, capture_output=True)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = subprocess.run([exe, out_dir, "5"], capture_output=True, text=True, timeout=300, env=own_sanitizer_env())
    assert r.returncode == 0, r.stdout + r.stderr
    rounds = [dict(zip(line.split()[::2], map(int, line.split()[1::2]))) for line in r.stdout.splitlines()]
    assert len(rounds) == 5 and any(x["overflow"] for x in rounds) and any(x["files"] > 1 for x in rounds)
    for x in rounds:
        files = sorted(out_dir.glob(f"r{x['round']}-*.pcapng"))
        assert len(files) == x["files"]
        frames = [f for p in files for f in read_pcapng(p)]
        assert len(frames) == x["recorded"]
        last = -1
        for ts, frame in frames:
            payload = frame[42:]
            if len(payload) >= 4:
                idx = struct.unpack_from("<I", payload)[0]
                assert idx > last and ts == 1_000_000 * idx + 1
                assert payload[4:] == bytes((idx * 7 + k) & 0xFF for k in range(4, len(payload)))
                assert struct.unpack_from(">I", frame, 8)[0] == idx % 3
                last = idx


def test_rotate_options_need_record(day):
    r = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day), "--record-rotate-mb", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "need --record" in r.stderr


def test_synthesized_frames_keep_addresses_and_line(tmp_path):
    """A frame's headers come from the metadata: multicast MAC of the group, IPv4 and UDP fields."""
    payloads = [b"abc", b"", b"x" * 1401]
    write_pcapng(tmp_path / "in.pcapng", [(10**18 + i, udp_frame(p, "233.54.12.111", 26477, src="10.9.8.7",
                                                                src_port=555)) for i, p in enumerate(payloads)])
    got, rec, _ = record_run(pcap(tmp_path / "in.pcapng"), tmp_path / "rec")
    assert replay_files(rec.files()) == got and [g[0] for g in got] == payloads
    raw = rec.files()[0].read_bytes()
    frame = raw[28 + 32 + 28:][:42]  # SHB, IDB, first EPB's header
    assert frame[:6] == bytes([0x01, 0x00, 0x5E, 54, 12, 111]) and frame[12:14] == b"\x08\x00"
    assert frame[26:30] == bytes([10, 9, 8, 7]) and struct.unpack(">HHH", frame[34:40]) == (555, 26477, 11)
