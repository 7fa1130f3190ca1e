"""rxfeed's own plugins, and the example third-party ones, pass the
conformance kit (rxfeed.tools.conformance) a plugin author runs with one class.

DPDK and ef_vi are left out here: their sources are a NIC (or net_pcap / the
stand-in, one EAL per process), covered by tests/test_dpdk.py and
tests/test_efvi.py; udp_socket's source is live traffic (tests/test_udp_socket.py).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

from rxfeed.tools.conformance import (BackendConformance, DecoderConformance, NativeBackendConformance,
                                      ReplayAgainConformance)
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams, udp_frame, write_pcap, write_pcapng

from .test_python_decoder import ToyDecoder, toy_datagram


def _pcap_corruptions(tmp_path: Path) -> list[dict[str, Any]]:
    good = tmp_path / "good.pcap"
    write_pcap(good, [(i, udp_frame(bytes(40))) for i in range(20)])
    raw = good.read_bytes()
    cases = {
        "missing.pcap": None,
        "empty.pcap": b"",
        "random.pcap": bytes(range(256)) * 8,
        "cut_header.pcap": raw[:10],
        "cut_record.pcap": raw[:-7],
        "huge_caplen.pcap": raw[:24] + raw[24:32] + struct.pack("<II", 0x7FFFFFFF, 60) + raw[40:],
        "bad.pcap.gz": gzip.compress(raw)[:-9],
    }
    out = []
    for name, data in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        out.append({"path": str(tmp_path / name)})
    return out


class TestPcapReplay(NativeBackendConformance, ReplayAgainConformance):
    backend = "pcap_replay"
    reset_option = "loops"

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        write_pcap(tmp_path / "src.pcap", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)], nsec=True)
        return {"path": str(tmp_path / "src.pcap")}

    def corrupt_configs(self, tmp_path: Path) -> list[dict[str, Any]]:
        return _pcap_corruptions(tmp_path)


class TestPcapngReplay(NativeBackendConformance, ReplayAgainConformance):
    backend = "pcap_replay"
    reset_option = "loops"

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        write_pcapng(tmp_path / "src.pcapng", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)])
        return {"path": str(tmp_path / "src.pcapng")}


class TestNasdaqFile(NativeBackendConformance, ReplayAgainConformance):
    backend = "nasdaq_file"
    reset_option = "loops"
    stream = True

    def payloads(self, n: int = 300, seed: int = 1) -> list[bytes]:
        """It frames what it reads: runs of 10 length-prefixed ITCH messages, not random bytes."""
        framed = [struct.pack(">H", len(m)) + m for m in generate_messages(max(10 * n, 64), symbols=2, seed=seed)]
        return [b"".join(framed[i:i + 10]) for i in range(0, 10 * n, 10)]

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        (tmp_path / "src.itch").write_bytes(b"".join(payloads))
        return {"path": str(tmp_path / "src.itch"), "chunk_size": 4096}

    def corrupt_configs(self, tmp_path: Path) -> list[dict[str, Any]]:
        (tmp_path / "bad.itch.gz").write_bytes(gzip.compress(bytes(5000))[:-20])
        return [{"path": str(tmp_path / "missing.itch")}, {"path": str(tmp_path / "bad.itch.gz")}]


class _ExampleBackends(BackendConformance):
    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        from rxfeed_example import datagrams

        datagrams.write(tmp_path / "d.bin", payloads)
        return {"path": str(tmp_path / "d.bin")}


class TestThirdPartyPythonBackend(_ExampleBackends):
    backend = "example_py"


class TestThirdPartyCBackend(_ExampleBackends, NativeBackendConformance):
    backend = "example_c"


class TestItch50(DecoderConformance):
    decoder = "itch50"

    def valid_payloads(self) -> tuple[list[bytes], int]:
        msgs = list(generate_messages(3000, symbols=3, seed=9))
        return [p for _, p in moldudp64_datagrams(msgs)], len(msgs)


class TestItch50Stream(DecoderConformance):
    decoder = "itch50"
    stream = True

    def valid_payloads(self) -> tuple[list[bytes], int]:
        msgs = list(generate_messages(3000, symbols=3, seed=9))
        data = b"".join(struct.pack(">H", len(m)) + m for m in msgs)
        return [data[i:i + 1000] for i in range(0, len(data), 1000)], len(msgs)


class TestPythonDecoder(DecoderConformance):
    decoder = ToyDecoder

    def valid_payloads(self) -> tuple[list[bytes], int]:
        return [toy_datagram(i + 1, [(b"a", b"x"), (b"b", b"yz")]) for i in range(50)], 100


def test_the_kit_catches_a_backend_that_loses_or_reorders_packets(tmp_path):
    import pytest

    from rxfeed import RxBackend
    from rxfeed_example import datagrams
    from rxfeed_example.plugin import ExampleConfig

    class Lossy(RxBackend[ExampleConfig]):
        name, Config = "lossy", ExampleConfig

        def __init__(self, config: ExampleConfig) -> None:
            super().__init__(config)
            got = datagrams.read(config.path)
            self.items = [p for i, p in enumerate(got) if i != 5]
            self.items[0], self.items[1] = self.items[1], self.items[0]

        def read_burst(self, n: int):
            out, self.items = self.items[:n], self.items[n:]
            return out or None

    class TestLossy(_ExampleBackends):
        backend = Lossy

    with pytest.raises(AssertionError):
        TestLossy().test_delivers_every_payload_in_order_then_ends(tmp_path)
