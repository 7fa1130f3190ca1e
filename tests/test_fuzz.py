"""Random and truncated bytes never crash a parser: the decoder (datagrams and
stream chunks) and the pcap/pcapng readers either count or refuse them."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfeed import Pipeline
from rxfeed.backends.pcap_replay._pcap import PcapReader
from rxfeed.tools.generator import frames_for, generate_messages, write_pcap, write_pcapng

from .conftest import mold, run_payloads

MSGS = list(generate_messages(300, symbols=2, seed=2))
settings.register_profile("rxfeed", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("rxfeed")


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_datagrams(payloads):
    _, s, got = run_payloads(payloads)
    assert s.messages == len(got)


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_stream_chunks(chunks):
    _, s, got = run_payloads(chunks, stream=True)
    assert s.messages == len(got)


@given(st.integers(0, 40), st.integers(0, 2000), st.binary(max_size=8))
def test_truncated_and_spliced_real_datagrams(i, cut, junk):
    good = mold(1, MSGS[i:i + 30])
    _, s, got = run_payloads([good[:cut] + junk, good])
    assert s.messages == len(got) <= 60


def _pcaps(tmp_path):
    frames = list(frames_for(MSGS))
    write_pcap(tmp_path / "a.pcap", frames)
    write_pcapng(tmp_path / "a.pcapng", frames)
    return [(tmp_path / "a.pcap").read_bytes(), (tmp_path / "a.pcapng").read_bytes()]


def _replay(path):
    try:
        reader = PcapReader(str(path))
    except ValueError:
        return None  # refused at open with a message
    from rxfeed.backends.pcap_replay.backend import PcapReplayBackend

    b = PcapReplayBackend.__new__(PcapReplayBackend)
    b.reader = reader
    b.config = type("C", (), {"path": str(path)})()
    return Pipeline(b, "itch50").run()


@given(data=st.data())
@settings(max_examples=120)
def test_mutated_captures(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("fz")
    blobs = _pcaps(tmp)
    blob = bytearray(data.draw(st.sampled_from(blobs)))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    (tmp / "m.bin").write_bytes(bytes(blob[:cut]))
    s = _replay(tmp / "m.bin")
    if s is not None:
        assert s.messages <= 300 * 2


@given(st.binary(max_size=200))
def test_random_files(tmp_path_factory, raw):
    tmp = tmp_path_factory.mktemp("rf")
    for head in (b"", struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
                 struct.pack("<IIIHHqI", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1, 28)):
        (tmp / "r.bin").write_bytes(head + raw)
        _replay(tmp / "r.bin")
