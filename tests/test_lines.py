"""Several lines of one feed read as one backend (rxfeed.lines): every
packet of every line delivered once, tagged with its line, each burst
released to its own backend; lines that end early, fail or go silent are
reported and the others go on."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, PythonDecoder, RxBackend, get_plugins
from rxfeed.config import ConfigError
from rxfeed.lines import LinesBackend, LinesConfig
from rxfeed.tools.conformance import NativeBackendConformance
from rxfeed.tools.generator import generate, udp_frame, write_pcap


class Recorder(PythonDecoder[PluginConfig]):
    name, Config = "lines_recorder", PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.seen: list[tuple[int, bytes]] = []

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.seen += [(p.line, bytes(p.data)) for p in packets]
        return False

    def counters(self) -> dict[str, Any]:
        return {"packets": len(self.seen)}


def pcap_backend(path: Path) -> Any:
    cls = get_plugins().backends.get("pcap_replay")
    return cls(cls.Config(path=str(path)))


def payload_pcap(path: Path, payloads: list[bytes]) -> Path:
    write_pcap(path, [(i, udp_frame(p)) for i, p in enumerate(payloads)])
    return path


def test_two_lines_deliver_every_packet_of_each_tagged_with_its_line(tmp_path):
    a = payload_pcap(tmp_path / "a.pcap", [b"A%04d" % i for i in range(500)])
    b = payload_pcap(tmp_path / "b.pcap", [b"B%04d" % i for i in range(300)])
    rec = Recorder()
    with Pipeline(LinesBackend([pcap_backend(a), pcap_backend(b)]), rec, run={"burst": 16}) as pipe:
        s = pipe.run()
        stats = pipe.backend.stats()
    assert s.stop_reason == "end_of_source" and s.packets == 800
    assert [d for line, d in rec.seen if line == 0] == [b"A%04d" % i for i in range(500)]
    assert [d for line, d in rec.seen if line == 1] == [b"B%04d" % i for i in range(300)]
    assert rec.seen[:32:16] == [(0, b"A0000"), (1, b"B0000")]  # round robin, one burst each
    assert [ln["packets"] for ln in stats["lines"]] == [500, 300]
    assert [ln["state"] for ln in stats["lines"]] == ["eof", "eof"] and stats["warnings"] == []


def test_the_same_day_on_two_lines_decodes_once(day_dir, tmp_path):
    single = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")}).run()
    lines = LinesBackend([pcap_backend(day_dir / "day.pcap"), pcap_backend(day_dir / "day.pcap")])
    with Pipeline(lines, "itch50") as pipe:
        s = pipe.run()
    assert s.messages == single.messages and s.messages_per_type == single.messages_per_type
    assert s.packets == 2 * single.packets and s.gaps == 0
    assert s.backend_stats["lines"][1]["stats"]["packets"] == single.packets


def test_a_failing_line_is_reported_and_the_other_goes_on(tmp_path):
    good = payload_pcap(tmp_path / "good.pcap", [b"G%04d" % i for i in range(200)])
    bad = payload_pcap(tmp_path / "bad.pcap", [b"X%04d" % i for i in range(200)])
    raw = bad.read_bytes()
    bad.write_bytes(raw[:24 + 8] + struct.pack("<I", 1 << 30) + raw[24 + 12:])  # first record's length absurd
    rec = Recorder()
    with Pipeline(LinesBackend([pcap_backend(bad), pcap_backend(good)]), rec) as pipe:
        s = pipe.run()
        stats = pipe.backend.stats()
    assert s.stop_reason == "end_of_source" and [d for _, d in rec.seen] == [b"G%04d" % i for i in range(200)]
    assert stats["lines"][0]["state"] == "error" and stats["lines"][0]["error"]
    assert any(w.startswith("line 0 (pcap_replay) failed") for w in s.warnings)


def test_every_line_failing_is_an_error_naming_the_line(tmp_path):
    bad = payload_pcap(tmp_path / "bad.pcap", [b"X"] * 10)
    raw = bad.read_bytes()
    bad.write_bytes(raw[:24 + 8] + struct.pack("<I", 1 << 30) + raw[24 + 12:])
    with Pipeline(LinesBackend([pcap_backend(bad)]), Recorder()) as pipe:
        s = pipe.run()
    assert s.stop_reason == "backend_error" and s.error.startswith("line 0: ")


def test_a_silent_line_is_reported_down_and_up_again():
    cls = get_plugins().backends.get("udp_socket")
    ports = []
    for _ in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    socks = [cls(cls.Config(groups=[f"127.0.0.1:{port}"])) for port in ports]
    lines = LinesBackend(socks, LinesConfig(silence_s=0.2))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    import threading

    def send() -> None:
        for i in range(60):  # line 0 all along; line 1 only at the start and the end
            tx.sendto(b"a%d" % i, ("127.0.0.1", ports[0]))
            if i < 3 or i > 55:
                tx.sendto(b"b%d" % i, ("127.0.0.1", ports[1]))
            time.sleep(0.01)

    t = threading.Thread(target=send)
    t.start()
    rec = Recorder()
    with Pipeline(lines, rec, run={"max_seconds": 1.2}) as pipe:
        s = pipe.run()
        stats = pipe.backend.stats()
    t.join()
    line1 = stats["lines"][1]
    assert line1["downs"] >= 1 and line1["ups"] >= 1 and stats["lines"][0]["downs"] >= 1  # 0 is idle at the end
    assert {line for line, _ in rec.seen} == {0, 1} and s.packets == len(rec.seen)


def test_lines_refuse_what_they_cannot_carry(tmp_path, day_dir):
    nasdaq = get_plugins().backends.get("nasdaq_file")
    with pytest.raises(ConfigError, match="byte stream"):
        LinesBackend([nasdaq(nasdaq.Config(path=str(day_dir / "day.itch")))])
    class PyBackend(RxBackend[PluginConfig]):
        name, Config = "py_line", PluginConfig

        def read_burst(self, max_packets: int) -> list[Any] | None:
            return None

    with pytest.raises(ConfigError, match="Python backend"):
        LinesBackend([PyBackend(PluginConfig())])
    with pytest.raises(ValueError, match="between 1 and 8"):
        LinesBackend([])


class TestOneLineConforms(NativeBackendConformance):
    """Lines of one line behave as that backend (the kit's checks: EOF,
    release pairing, limits, no packet after the end)."""

    def _open(self, config: dict[str, Any]) -> Any:
        return LinesBackend([pcap_backend(Path(config["path"]))])

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        return {"path": str(payload_pcap(tmp_path / "src.pcap", payloads))}
