"""rxfeed's own plugins, and the example third-party ones, pass the
conformance kit (rxfeed.tools.conformance) a plugin author runs with one class
or ``pytest --rxfeed-conformance NAME``.

Each first-party backend and decoder is run here through the same
``conformance_*`` hooks the pytest option uses (:func:`backend_kit`,
:func:`decoder_kit`): udp_socket live on loopback, DPDK over net_pcap with
each test in a process of its own (EAL once per process). ef_vi runs the kit
against its stand-in in tests/test_efvi.py (the stand-in is set up through
the environment there).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from rxfeed import PluginConfig, RxBackend, get_plugins
from rxfeed.backends._template.backend import TemplateBackend
from rxfeed.backends.dpdk.backend import DpdkBackend
from rxfeed.backends.faults.backend import FaultsBackend
from rxfeed.backends.nasdaq_file.backend import NasdaqFileBackend
from rxfeed.backends.pcap_replay.backend import PcapReplayBackend
from rxfeed.backends.udp_socket.backend import UdpSocketBackend
from rxfeed.protocols._template.decoder import TemplateDecoder
from rxfeed.protocols.itch50.decoder import Itch50Decoder
from rxfeed.tools.conformance import (BackendConformance, DecoderConformance, NativeBackendConformance,
                                      ReplayAgainConformance, backend_kit, decoder_kit)
from rxfeed.tools.generator import generate_messages, udp_frame, write_pcapng

from .test_python_decoder import ToyDecoder, toy_datagram

_ExampleConfig = get_plugins().backends.get("example_py").Config

TestPcapReplay = backend_kit(PcapReplayBackend)
TestNasdaqFile = backend_kit(NasdaqFileBackend)
TestUdpSocket = backend_kit(UdpSocketBackend)
TestDpdk = backend_kit(DpdkBackend)
TestFaults = backend_kit(FaultsBackend)  # every rate 0 around pcap_replay: the inner backend's behaviour
TestTemplateBackend = backend_kit(TemplateBackend)
TestItch50 = decoder_kit(Itch50Decoder)
TestTemplateDecoder = decoder_kit(TemplateDecoder)
TestThirdPartyPythonBackend = backend_kit(get_plugins().backends.get("example_py"))
TestThirdPartyCBackend = backend_kit(get_plugins().backends.get("example_c"))


def test_the_kits_take_the_suites_that_fit():
    """Native tables get the ABI and release checks, replayable sources the
    reset check, a stream backend compares bytes; a Python backend neither."""
    assert issubclass(TestPcapReplay, NativeBackendConformance) and issubclass(TestPcapReplay, ReplayAgainConformance)
    assert issubclass(TestNasdaqFile, ReplayAgainConformance) and TestNasdaqFile.stream
    assert issubclass(TestUdpSocket, NativeBackendConformance) and not issubclass(TestUdpSocket, ReplayAgainConformance)
    assert issubclass(TestDpdk, NativeBackendConformance)
    assert issubclass(TestThirdPartyCBackend, NativeBackendConformance)
    assert not issubclass(TestThirdPartyPythonBackend, NativeBackendConformance)
    assert not issubclass(TestTemplateBackend, NativeBackendConformance)


def test_every_first_party_plugin_is_run_through_the_kit():
    """Each backend and decoder rxfeed ships (the templates included) has its
    kit class here, or (ef_vi) in tests/test_efvi.py - none is left out."""
    from . import test_efvi

    kits = [k for name, k in globals().items() if name.startswith("Test") and isinstance(k, type)]
    here = {k.backend if issubclass(k, BackendConformance) else k.decoder for k in kits}
    here.add(test_efvi.TestEfviConformance.backend)
    plugins = get_plugins()
    shipped = [plugins.backends.get(n) for n in plugins.backends.names()] + \
        [plugins.decoders.get(n) for n in plugins.decoders.names()] + [TemplateBackend, TemplateDecoder]
    missing = [c.__qualname__ for c in shipped if c.__module__.startswith("rxfeed.")
               and c not in here and c.name not in here]
    assert missing == []


class TestPcapngReplay(TestPcapReplay):  # type: ignore[misc,valid-type]
    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        write_pcapng(tmp_path / "src.pcapng", [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)])
        return {"path": str(tmp_path / "src.pcapng")}


class TestFaultsOverPython(TestFaults):  # type: ignore[misc,valid-type]
    """The faults wrapper around a pure-Python backend (read through its C table)."""

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        source = get_plugins().backends.get("example_py").conformance_source(tmp_path, payloads)
        return {"backend": "example_py", "backend_config": source}


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

    class TestLossy(TestThirdPartyPythonBackend):  # type: ignore[misc,valid-type]
        backend = Lossy

    with pytest.raises(AssertionError):
        TestLossy().test_delivers_every_payload_in_order_then_ends(tmp_path)


class _DropsAPacketInAChildProcess(RxBackend[PluginConfig]):
    """Delivers its payloads, except in a process other than the test's,
    where it loses one: shows where a ``conformance_one_per_process`` kit runs."""

    name, Config = "drops_in_child", _ExampleConfig
    conformance_one_per_process = True

    def __init__(self, config: Any) -> None:
        from rxfeed_example import datagrams

        super().__init__(config)
        self.items = datagrams.read(config.path)
        if os.getpid() != int(os.environ["RXF_TEST_PARENT_PID"]):
            del self.items[5]

    def read_burst(self, n: int) -> list[bytes] | None:
        out, self.items = self.items[:n], self.items[n:]
        return out or None

    conformance_source = staticmethod(get_plugins().backends.get("example_py").conformance_source)


def test_a_kit_for_one_backend_per_process_runs_each_test_in_a_new_process(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setenv("RXF_TEST_PARENT_PID", str(os.getpid()))
    kit = backend_kit(_DropsAPacketInAChildProcess)
    backend_kit(_DropsAPacketInAChildProcess, own_processes=False)().test_delivers_every_payload_in_order_then_ends(
        tmp_path)
    with pytest.raises(AssertionError, match="in its own process failed"):
        kit().test_delivers_every_payload_in_order_then_ends(tmp_path)
