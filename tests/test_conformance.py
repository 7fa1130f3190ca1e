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
from rxfeed.backends.record.backend import RecordBackend
from rxfeed.backends.udp_socket.backend import UdpSocketBackend
from rxfeed.protocols._template.decoder import TemplateDecoder
from rxfeed.protocols.iex.decoder import IexProtocolDecoder
from rxfeed.protocols.itch50.decoder import Itch50Decoder
from rxfeed.tools.conformance import (BackendConformance, DecoderConformance, NativeBackendConformance,
                                      NativeDecoderConformance, ReplayAgainConformance, backend_kit, decoder_kit)
from rxfeed.tools.generator import generate_messages, udp_frame, write_pcapng

from .test_python_decoder import ToyDecoder, toy_datagram

_ExampleConfig = get_plugins().backends.get("example_py").Config

TestPcapReplay = backend_kit(PcapReplayBackend)
TestNasdaqFile = backend_kit(NasdaqFileBackend)
TestUdpSocket = backend_kit(UdpSocketBackend)
TestDpdk = backend_kit(DpdkBackend)
TestFaults = backend_kit(FaultsBackend)  # every rate 0 around pcap_replay: the inner backend's behaviour
TestRecord = backend_kit(RecordBackend)  # recording around pcap_replay: the inner backend's behaviour
TestTemplateBackend = backend_kit(TemplateBackend)
TestItch50 = decoder_kit(Itch50Decoder)
TestIex = decoder_kit(IexProtocolDecoder)
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
    assert issubclass(TestItch50, NativeDecoderConformance) and issubclass(TestTemplateDecoder, DecoderConformance)


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


class TestRecordOverPython(TestRecord):  # type: ignore[misc,valid-type]
    """The record wrapper around a pure-Python backend (read through its C table)."""

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        source = get_plugins().backends.get("example_py").conformance_source(tmp_path, payloads)
        return {"backend": "example_py", "backend_config": source, "dir": str(tmp_path / "record")}


class TestItch50Stream(NativeDecoderConformance):
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


def test_the_kit_is_importable_as_rxfeed_testing():
    """The name issue 10 promises: ``rxfeed.testing`` is the kit (installed from
    tools/, so the framework itself imports no tool)."""
    import rxfeed.testing
    from rxfeed.tools import conformance

    assert rxfeed.testing.DecoderConformance is conformance.DecoderConformance
    assert rxfeed.testing.NativeDecoderConformance is conformance.NativeDecoderConformance
    assert {"BackendConformance", "NativeBackendConformance", "ReplayAgainConformance", "backend_kit",
            "decoder_kit", "conformance_classes", "poisoned"} <= set(rxfeed.testing.__all__)
    assert all(getattr(rxfeed.testing, name) is getattr(conformance, name) for name in rxfeed.testing.__all__)


def _toy_kit_with(counters: Any) -> type:
    """The example TOY decoder's kit, its ``counters()`` passed through ``counters``."""
    class Toy(ToyDecoder):
        def counters(self) -> dict[str, Any]:
            return counters(super().counters())

    return type("Kit", (TestPythonDecoder,), {"decoder": Toy})


def test_the_kit_catches_gaps_counted_as_lost_messages():
    """``gaps`` is gap events, ``gap_messages`` what they lost: a decoder
    reporting lost datagrams as ``gaps`` and no ``gap_messages`` fails."""
    import pytest

    kit = _toy_kit_with(lambda c: {**c, "gaps": c["gaps"] + c.get("gap_messages", 0), "gap_messages": 0})
    with pytest.raises(AssertionError, match="gap_messages"):
        kit().test_malformed_input_is_counted_never_fatal(0)


def test_the_kit_catches_a_decoder_counting_beyond_its_bytes():
    """A decoder trusting a count field (1000 messages a datagram) fails the malformed check."""
    import pytest

    kit = _toy_kit_with(lambda c: {**c, "messages": c["packets"] * 1000,
                                   "messages_per_type": {"a": c["packets"] * 1000}})
    with pytest.raises(AssertionError, match="trusted beyond the bytes received"):
        kit().test_malformed_input_is_counted_never_fatal(1)


def test_the_kit_catches_a_decoder_blind_to_corruption():
    """A decoder that counts nothing wrong in empty, cut and bit-flipped input fails."""
    import pytest

    kit = _toy_kit_with(lambda c: {**c, "errors": {}, "gaps": 0, "gap_messages": 0})
    with pytest.raises(AssertionError, match="counted as nothing wrong"):
        kit().test_malformed_input_is_counted_never_fatal(2)


class _NoPathConfig(PluginConfig):
    count: int = 3


class _NoPathBackend(RxBackend[_NoPathConfig]):
    """A source with no ``path`` (think a generator or a live feed)."""

    name, Config = "no_path", _NoPathConfig

    def __init__(self, config: _NoPathConfig) -> None:
        super().__init__(config)
        self.left = config.count

    def read_burst(self, n: int) -> list[bytes] | None:
        if not self.left:
            return None
        self.left -= 1
        return [b"x"]


def test_the_broken_source_check_never_passes_empty(tmp_path):
    """No broken sources to try: a backend with no ``path`` and no
    ``corrupt_configs`` fails saying what to provide; an empty list fails too."""
    import pytest

    class TestNoPath(BackendConformance):
        backend = _NoPathBackend

        def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
            return {"count": len(payloads)}

    with pytest.raises(pytest.fail.Exception, match="must give corrupt_configs"):
        TestNoPath().test_broken_sources_are_refused_or_counted(tmp_path / "a")

    class TestEmpty(TestNoPath):
        def corrupt_configs(self, tmp_path: Path) -> list[dict[str, Any]]:
            return []

    with pytest.raises(AssertionError, match="gave no broken source"):
        TestEmpty().test_broken_sources_are_refused_or_counted(tmp_path / "b")


def test_a_file_backend_is_tried_on_a_missing_path_and_random_bytes_by_default(tmp_path):
    """The example backends give no ``conformance_corrupt``: the kit tries
    their source missing and full of random bytes (the test itself runs in
    TestThirdParty*Backend)."""
    configs = TestThirdPartyPythonBackend().corrupt_configs(tmp_path)
    assert len(configs) == 2 and not Path(configs[0]["path"]).exists()
    assert len(Path(configs[1]["path"]).read_bytes()) == 4096
