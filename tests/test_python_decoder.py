"""Decoders written in Python, behind Python and native backends; Python
backends that carry packet metadata; errors on either side end the run
cleanly with the partial summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, RxBackend, get_plugins
from rxfeed.interfaces import PKT_STREAM
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams, udp_frame, write_pcap

from rxfeed_example.toy import ToyDecoder as ExampleToyDecoder
from rxfeed_example.toy import datagram

from .conftest import mold

# The made-up protocol ("TOY") of the example third-party plugin
# (tests/plugins/rxfeed_example/rxfeed_example/toy.py): a datagram is
# [u32 seq][u8 count] then count messages of [u8 type][u8 len][len bytes].
toy_datagram = datagram


class ToyConfig(PluginConfig):
    stop_after: int = 0


class ToyDecoder(ExampleToyDecoder):
    """The example's decoder, keeping what a test wants to look at and able
    to stop the run after ``stop_after`` packets."""

    name = "toy"
    Config = ToyConfig  # type: ignore[assignment]

    def __init__(self, config: ToyConfig | None = None) -> None:
        super().__init__()
        self.config = config or ToyConfig()  # type: ignore[assignment]
        self.seen: list[Packet] = []
        self.ended = False

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.seen += [p._replace(data=bytes(p.data)) for p in packets]
        super().on_packets(list(packets))
        return bool(self.config.stop_after) and self.packets >= self.config.stop_after

    def on_end(self) -> None:
        self.ended = True


class ListConfig(PluginConfig):
    pass


class ListBackend(RxBackend[ListConfig]):
    """Python backend over a list of buffers or Packets; may raise after N bursts."""

    name = "toy_list"
    Config = ListConfig

    def __init__(self, items: list[Any], fail_after: int | None = None, stream: bool = False) -> None:
        super().__init__(ListConfig())
        self.items, self.fail_after, self.bursts = list(items), fail_after, 0
        self.stream = stream  # type: ignore[misc]

    def read_burst(self, max_packets: int) -> list[Any] | None:
        if self.fail_after is not None and self.bursts >= self.fail_after:
            raise OSError("the feed went away")
        self.bursts += 1
        if not self.items:
            return None
        out, self.items = self.items[:max_packets], self.items[max_packets:]
        return out


def _toy_day(n: int = 50) -> list[bytes]:
    return [toy_datagram(i + 1, [(b"a", b"xy"), (b"b", bytes(i % 7))]) for i in range(n)]


def test_python_backend_into_python_decoder_with_metadata():
    dgrams = _toy_day()
    items = [Packet(d, rx_ts_ns=1_000 + i, src_ip=0x0A000001, dst_ip=0xE9360C6F, src_port=5, dst_port=26477,
                    line=i % 2) for i, d in enumerate(dgrams)]
    items[10] = dgrams[10]  # a plain buffer among Packets: no metadata
    del items[20]           # a lost datagram
    dec = ToyDecoder()
    s = Pipeline(ListBackend(items), dec, run={"burst": 8}).run()
    assert s.stop_reason == "end_of_source" and s.packets == 49 and dec.ended
    assert s.messages == 98 and s.messages_per_type == {"a": 49, "b": 49} and s.gaps == 1
    assert [p.rx_ts_ns for p in dec.seen[:3]] == [1000, 1001, 1002] and dec.seen[10].rx_ts_ns == 0
    assert (dec.seen[0].src_ip, dec.seen[0].dst_port) == (0x0A000001, 26477)
    assert [p.line for p in dec.seen[:4]] == [0, 1, 0, 1] and dec.seen[10].line == 0
    assert all(p.data == d for p, d in zip(dec.seen, [d for i, d in enumerate(dgrams) if i != 20]))


def test_native_backend_into_python_decoder(tmp_path):
    dgrams = _toy_day(300) + [b"\x00\x01"]  # the last one is malformed
    write_pcap(tmp_path / "toy.pcap", [(1_600_000_000_000_000_000 + i * 1000, udp_frame(d))
                                       for i, d in enumerate(dgrams)], nsec=True)
    dec = ToyDecoder()
    pipe = Pipeline("pcap_replay", dec, backend_config={"path": str(tmp_path / "toy.pcap")})
    s = pipe.run()
    assert s.stop_reason == "end_of_source" and s.packets == 301 and dec.ended
    assert s.messages == 600 and s.errors == {"malformed": 1} and s.gaps == 0
    assert dec.seen[5].rx_ts_ns == 1_600_000_000_000_005_000 and dec.seen[5].dst_port == 26477
    assert [p.data for p in dec.seen] == dgrams


def test_a_decoder_cannot_keep_the_backend_buffer(tmp_path):
    write_pcap(tmp_path / "toy.pcap", [(0, udp_frame(d)) for d in _toy_day(3)])

    class Keeper(ToyDecoder):
        kept: list[Any] = []

        def on_packets(self, packets: Sequence[Packet]) -> bool:
            self.kept.extend(p.data for p in packets)
            return super().on_packets(packets)

    dec = Keeper()
    Pipeline("pcap_replay", dec, backend_config={"path": str(tmp_path / "toy.pcap")}).run()
    with pytest.raises(ValueError, match="released"):
        bytes(dec.kept[0])


def test_python_decoder_may_stop_the_run():
    dec = ToyDecoder(ToyConfig(stop_after=10))
    s = Pipeline(ListBackend(_toy_day()), dec, run={"burst": 4}).run()
    assert s.stop_reason == "decoder_stopped" and s.packets == 12


def test_raising_python_backend_keeps_the_partial_summary():
    dec = ToyDecoder()
    s = Pipeline(ListBackend(_toy_day(), fail_after=3), dec, run={"burst": 4}).run()
    assert s.stop_reason == "backend_error" and s.error == "OSError: the feed went away"
    assert s.packets == 12 and s.messages == 24


def test_raising_python_backend_into_native_decoder_keeps_the_partial_summary():
    payloads = [p for _, p in moldudp64_datagrams(list(generate_messages(2000, symbols=2, seed=1)))]
    s = Pipeline(ListBackend(payloads, fail_after=2), "itch50", run={"burst": 4}).run()
    assert s.stop_reason == "backend_error" and "the feed went away" in s.error and s.messages > 0


def test_raising_python_decoder_ends_the_run_cleanly(tmp_path):
    class Broken(ToyDecoder):
        def on_packets(self, packets: Sequence[Packet]) -> bool:
            super().on_packets(packets)
            if self.packets >= 8:
                raise KeyError("bad message")
            return False

    write_pcap(tmp_path / "toy.pcap", [(0, udp_frame(d)) for d in _toy_day(40)])
    for backend in (ListBackend(_toy_day(40)), "pcap_replay"):
        s = Pipeline(backend, Broken(), backend_config={"path": str(tmp_path / "toy.pcap")}
                     if backend == "pcap_replay" else None, run={"burst": 4}).run()
        assert s.stop_reason == "decoder_error" and s.error == "KeyError: 'bad message'" and s.packets == 8


def test_python_backend_metadata_reaches_native_decoder():
    msgs = list(generate_messages(200, symbols=1, seed=5))
    payloads = [p for _, p in moldudp64_datagrams(msgs)]
    items = [Packet(p, rx_ts_ns=7_000_000 + i) for i, p in enumerate(payloads)]
    from rxfeed.protocols.itch50 import Itch50Decoder

    dec = Itch50Decoder()
    stamps = []
    dec.subscribe(lambda m, meta: stamps.append(meta[2]), with_meta=True)
    s = Pipeline(ListBackend(items), dec).run()
    # the last datagram is MoldUDP64's end of session, with no message
    assert s.messages == 200 and stamps[0] == 7_000_000 and stamps[-1] == 7_000_000 + len(payloads) - 2
    assert sorted(set(stamps)) == [7_000_000 + i for i in range(len(payloads) - 1)]


def test_stream_flag_reaches_python_decoder():
    dec = ToyDecoder()
    Pipeline(ListBackend([mold(1, [b"S"])], stream=True), dec).run()
    assert dec.seen[0].flags & PKT_STREAM


def test_latency_on_a_python_path_says_why_it_is_empty():
    s = Pipeline(ListBackend(_toy_day(5)), ToyDecoder(), run={"latency": True}).run()
    assert s.latency == {} and any("no latency histogram" in w for w in s.warnings)


class GreedyBackend(ListBackend):
    """Breaks the read_burst contract: returns more buffers than asked for."""

    def read_burst(self, max_packets: int) -> list[Any] | None:
        out = super().read_burst(max_packets + 3)
        return out


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_python_backend_returning_more_than_asked_is_an_error_not_a_silent_drop(wrapped):
    """Into the native decoder directly, or through a wrapper (faults) that
    reads it through the C adapter: the extra buffers are never dropped."""
    payloads = [p for _, p in moldudp64_datagrams(list(generate_messages(500, symbols=2, seed=1)))]
    backend: Any = GreedyBackend(payloads)
    if wrapped:
        backend = get_plugins().backends.get("faults").wrap(backend, "seed=1")
    s = Pipeline(backend, "itch50", run={"burst": 4}).run()
    assert s.stop_reason == "backend_error" and "returned 7 buffers (at most 4 allowed)" in s.error
