"""Third-party plugins built as a user would build them (tests/plugins:
rxfeed_example - Python and plain C - and rxfeed_cython_example - Cython),
run through the CLI (plugins, replay, listen, inspect, convert) and the
conformance kit: a Cython backend (``example_cython``), the made-up TOY
protocol decoded in Python (``example_toy``, with messages, events,
sequenced and batches) and in Cython (``example_toy_native``, counting only)."""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, get_plugins
from rxfeed.interfaces import PKT_SOURCE_RESET
from rxfeed.tools.conformance import (DecoderConformance, NativeBackendConformance, NativeDecoderConformance,
                                      ReplayAgainConformance, backend_kit, decoder_kit)
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

from rxfeed_cython_example import records
from rxfeed_example.toy import ToyDecoder, datagram

from .test_python_decoder import ListBackend

TOY_DECODERS = ("example_toy", "example_toy_native")


def rx(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def toy_messages(seq: int) -> list[tuple[bytes, bytes]]:
    """The messages of datagram ``seq``: an 'a' each, a 'b' every third, a 0xff every fifth."""
    msgs = [(b"a", bytes([seq % 256]) * (seq % 5))]
    if seq % 3 == 0:
        msgs.append((b"b", b"bid %d" % seq))
    if seq % 5 == 0:
        msgs.append((b"\xff", b""))
    return msgs


class ToyDay:
    """300 TOY datagrams; datagram 100 lost (a gap of 1) and 50 sent twice
    (after 51: a duplicate of 1 or 2 messages)."""

    def __init__(self, n: int = 300) -> None:
        self.seqs = [s for s in range(1, n + 1) if s != 100]
        self.seqs.insert(self.seqs.index(51) + 1, 50)
        self.payloads = [datagram(s, toy_messages(s)) for s in self.seqs]
        self.packets = [Packet(p, rx_ts_ns=1_700_000_000_000_000_000 + i * 1000, src_ip=0x0A000001 + i % 3,
                               dst_ip=0xEF010101, src_port=40000 + i, dst_port=26477)
                        for i, p in enumerate(self.payloads)]
        new = [s for s in range(1, n + 1) if s != 100]
        self.per_type = Counter(t.decode("latin-1") for s in new for t, _ in toy_messages(s))
        self.messages = sum(self.per_type.values())
        self.duplicates = len(toy_messages(50))


@pytest.fixture(scope="module")
def day() -> ToyDay:
    return ToyDay()


@pytest.fixture(scope="module")
def day_file(day: ToyDay, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cy") / "toy.rxcy"
    records.write(path, day.packets)
    return path


def assert_toy_counts(s: dict[str, Any], day: ToyDay, loops: int = 1) -> None:
    assert s["messages"] == loops * day.messages and s["messages_per_type"] == {
        k: loops * v for k, v in sorted(day.per_type.items())}
    assert s["gaps"] == loops and s["duplicates"] == loops * day.duplicates and s["errors"] == {}


# --- discovery -------------------------------------------------------------------

def test_rxfeed_plugins_lists_the_cython_plugin_and_what_each_decoder_offers():
    out = rx("plugins", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["backends"]["example_cython"] == {"plugin": "cython_example", "native": True,
                                                  "description": "example: record file replayed by a Cython backend"}
    assert info["decoders"]["example_toy_native"]["plugin"] == "cython_example"
    assert info["decoders"]["example_toy_native"]["capabilities"] == []
    assert info["decoders"]["example_toy"]["capabilities"] == ["batches", "events", "messages", "sequenced"]
    assert info["native"]["example_cython"].startswith("built (_replay")
    assert info["native"]["example_toy_native"].startswith("built (_toy")
    assert "cython_example" in [p["name"] for p in info["plugins"]]
    text = rx("plugins").stdout
    assert "example_cython" in text and "example_toy_native" in text


# --- replay ----------------------------------------------------------------------

@pytest.mark.parametrize("decoder", TOY_DECODERS)
def test_replay_through_the_cython_backend(day_file, day, decoder):
    out = rx("replay", day_file, "-b", "example_cython", "-d", decoder, "--json", "--loop", "2")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["backend"] == "example_cython" and s["decoder"] == decoder and s["stop_reason"] == "end_of_source"
    assert s["packets"] == 2 * len(day.payloads)
    assert_toy_counts(s, day, loops=2)  # the second pass restarts the sequences: no duplicates from it
    assert s["backend_stats"]["packets"] == s["backend_stats"]["released"] == 2 * len(day.payloads)
    assert s["backend_stats"]["loops"] == 2


def test_a_record_file_is_detected_and_its_payloads_claimed(day_file, day):
    """No -b, no -d: the plugin's detector names its backend and the TOY
    payloads are claimed by the example plugin's decoder."""
    out = rx("replay", day_file, "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert (s["backend"], s["decoder"]) == ("example_cython", "example_toy")
    assert_toy_counts(s, day)


def test_itch_through_the_cython_backend(tmp_path):
    msgs = list(generate_messages(5000, symbols=3, seed=4))
    records.write(tmp_path / "itch.rxcy", [p for _, p in moldudp64_datagrams(msgs)])
    out = rx("replay", tmp_path / "itch.rxcy", "-b", "example_cython", "-d", "itch50", "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["messages"] == 5000 and s["gaps"] == 0 and s["errors"] == {}
    assert s["messages_per_type"] == dict(sorted(Counter(chr(m[0]) for m in msgs).items()))


class _Recorder(ToyDecoder):
    """The Python TOY decoder keeping every packet's metadata."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Packet] = []

    def on_packets(self, packets: Any) -> bool:
        self.seen += [p._replace(data=bytes(p.data)) for p in packets]
        return super().on_packets(packets)


def test_the_cython_backend_fills_every_packet_field(day_file, day):
    dec = _Recorder()
    with Pipeline("example_cython", dec, backend_config={"path": str(day_file), "loops": 2},
                  run={"burst": 7}) as pipe:
        s = pipe.run()
    assert s.stop_reason == "end_of_source" and len(dec.seen) == 2 * len(day.packets)
    want = [p._replace(flags=0) for p in day.packets]
    assert dec.seen[:len(want)] == want
    assert dec.seen[len(want)] == want[0]._replace(flags=PKT_SOURCE_RESET)
    assert [p.flags for p in dec.seen].count(PKT_SOURCE_RESET) == 1


def test_both_toy_decoders_count_alike_on_any_input(day):
    """The Cython decoder is the Python one's twin: same counters on good,
    cut, bit-flipped and random datagrams (every length checked)."""
    import random

    rng = random.Random(7)
    bad = [b"", b"\x00\x00\x00\x01", datagram(400, [(b"a", b"xy")])[:-1], struct.pack(">IB", 401, 3) + b"a\x05ab"]
    for p in day.payloads:
        flipped = bytearray(p)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        bad += [p, p[:rng.randrange(len(p) + 1)], bytes(flipped), rng.randbytes(rng.randrange(64))]
    counts = {}
    for name in TOY_DECODERS:
        pipe = Pipeline(ListBackend(bad), name, run={"burst": 5})
        s = pipe.run()
        counts[name] = pipe.decoder.counters()
        assert s.stop_reason == "end_of_source"
    assert counts["example_toy"] == counts["example_toy_native"]
    assert counts["example_toy"]["errors"]["malformed"] >= 4 and counts["example_toy"]["duplicates"] > 0


@pytest.mark.parametrize("name", TOY_DECODERS)
def test_toy_gaps_count_events_and_gap_messages_what_they_lost(name):
    """Datagrams 4-6 and 9 lost: two gap events (``gaps``), four datagrams
    missing in them (``gap_messages``) - the framework's meaning of both,
    in the Python decoder and its Cython twin alike."""
    seqs = [1, 2, 3, 7, 8, 10]
    s = Pipeline(ListBackend([datagram(q, toy_messages(q)) for q in seqs]), name).run()
    assert (s.gaps, s.gap_messages) == (2, 4)


@pytest.mark.parametrize("tail,why", [
    (struct.pack("<I", 10) + b"\x00" * 7, "header cut short by the end of the file; bytes left (11)"),
    (records.record(b"x" * 50)[:-1], "payload runs past the end of the file; payload length (50)"),
    (records.HEADER.pack(70000, 0, 0, 0, 0, 0) + b"\x00" * 70000, "payload length larger than a UDP payload can be (70000)"),
])
def test_a_corrupt_record_file_is_a_clear_error_after_the_good_records(tmp_path, day, tail, why):
    path = tmp_path / "bad.rxcy"
    records.write(path, day.payloads[:10])
    path.write_bytes(path.read_bytes() + tail)
    dec = ToyDecoder()
    s = Pipeline("example_cython", dec, backend_config={"path": str(path)}).run()
    assert s.stop_reason == "backend_error" and s.packets == 10
    assert s.error == f"record 10 at byte {path.stat().st_size - len(tail)}: {why}"
    out = rx("replay", path, "-b", "example_cython", "-d", "example_toy_native", "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["error"] == s.error and json.loads(out.stdout)["messages"] > 0


def test_a_record_file_cut_anywhere_delivers_the_whole_records_then_says_why(tmp_path):
    """Cut at every byte: the records wholly before the cut are delivered,
    then the end (cut on a record boundary) or one clear error; random bytes
    after the magic never crash the Cython reader."""
    import random

    payloads = [datagram(s, toy_messages(s)) for s in range(1, 9)]
    records.write(tmp_path / "full.rxcy", payloads)
    full = (tmp_path / "full.rxcy").read_bytes()
    ends = [len(records.MAGIC)]
    for p in payloads:
        ends.append(ends[-1] + records.HEADER.size + len(p))
    for cut in range(len(records.MAGIC), len(full) + 1):
        (tmp_path / "cut.rxcy").write_bytes(full[:cut])
        s = Pipeline("example_cython", "example_toy_native", backend_config={"path": str(tmp_path / "cut.rxcy")},
                     run={"burst": 3}).run()
        whole = sum(1 for e in ends[1:] if e <= cut)
        assert s.packets == whole and s.messages == sum(len(toy_messages(i + 1)) for i in range(whole))
        assert (s.stop_reason, s.error is None) == (("end_of_source", True) if cut in ends else ("backend_error", False))
    rng = random.Random(3)
    for _ in range(200):
        (tmp_path / "rand.rxcy").write_bytes(records.MAGIC + rng.randbytes(rng.randrange(200)))
        s = Pipeline("example_cython", "example_toy_native", backend_config={"path": str(tmp_path / "rand.rxcy")}).run()
        assert s.stop_reason in ("end_of_source", "backend_error") and (s.stop_reason == "end_of_source") == (not s.error)


def test_a_file_of_another_format_is_refused_on_open(tmp_path, day_file):
    (tmp_path / "x.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(40))
    out = rx("replay", tmp_path / "x.pcap", "-b", "example_cython", "-d", "example_toy")
    assert out.returncode == 2 and "not an example_cython record file" in out.stderr and "Traceback" not in out.stderr
    out = rx("replay", tmp_path / "missing.rxcy", "-b", "example_cython", "-d", "example_toy")
    assert out.returncode == 2 and "No such file" in out.stderr


# --- listen ----------------------------------------------------------------------

@pytest.mark.parametrize("decoder", TOY_DECODERS)
def test_listen_on_loopback_with_a_toy_decoder(day, decoder):
    port = 20000 + (os.getpid() + 31 + TOY_DECODERS.index(decoder)) % 20000
    cmd = [sys.executable, "-m", "rxfeed.tools.cli", "listen", "-b", "udp_socket", "-d", decoder, "--json",
           "--max-seconds", "60", "-o", f'groups=["127.0.0.1:{port}"]', "-o", "idle_timeout_s=1.5",
           "-o", f"rcvbuf={1 << 22}"]
    lst = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([lst.stderr], [], [], 30)
        assert ready and "listening" in lst.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i, p in enumerate(day.payloads):
                tx.sendto(p, ("127.0.0.1", port))
                if i % 16 == 15:
                    time.sleep(0.002)  # paced: the machine is shared, the listener may be descheduled
        got, err = lst.communicate(timeout=60)
    finally:
        if lst.poll() is None:
            lst.kill()
    assert lst.returncode == 0, err
    s = json.loads(got)
    assert s["decoder"] == decoder and s["packets"] == len(day.payloads)
    assert_toy_counts(s, day)
    assert s["backend_stats"]["socket_drops"] == 0


# --- inspect and convert (the Python TOY decoder) ----------------------------------

def test_inspect_dissects_toy_messages_with_duplicates_and_gaps(day_file, day):
    out = rx("inspect", day_file, "-b", "example_cython", "-d", "example_toy", "-n", "0", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    msgs = [d for d in lines if "event" not in d]
    assert [d for d in lines if "event" in d] == [
        {"event": "gap", "first": 100, "count": 1, "rx_ts_ns": day.packets[day.seqs.index(101)].rx_ts_ns}]
    assert len(msgs) == day.messages + day.duplicates
    assert Counter(d["type"] for d in msgs if d["status"] == "new") == day.per_type
    assert [d for d in msgs if d["status"] == "duplicate"] == [
        {"type": t.decode("latin-1"), "index": i, "length": len(b), "payload_hex": b.hex(), "sequence": 50,
         "status": "duplicate"} for i, (t, b) in enumerate(toy_messages(50))]
    assert msgs[:2] == [{"type": "a", "index": 0, "length": 1, "payload_hex": "01", "sequence": 1, "status": "new"},
                        {"type": "a", "index": 0, "length": 2, "payload_hex": "0202", "sequence": 2,
                         "status": "new"}]


def test_inspect_sequenced_and_by_type(day_file, day):
    out = rx("inspect", day_file, "-b", "example_cython", "-d", "example_toy", "-n", "0", "--sequenced",
             "--types", "b")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == day.per_type["b"] and "# gap" not in out.stdout and "status=" not in out.stdout
    assert lines[0] == "type=b index=1 length=5 payload_hex=" + b"bid 3".hex() + " sequence=3"
    out = rx("inspect", day_file, "-b", "example_cython", "-d", "example_toy", "-n", "3")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3, out.stderr


def test_convert_writes_toy_messages_to_parquet(day_file, day, tmp_path):
    import pyarrow.parquet as pq

    out = rx("convert", day_file, "-b", "example_cython", "-d", "example_toy", "--no-books", "-o", tmp_path / "pq")
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["messages"] == day.messages
    assert done["files"] == {"messages_a.parquet": day.per_type["a"], "messages_b.parquet": day.per_type["b"],
                             "messages_\xff.parquet": day.per_type["\xff"]}
    b = pq.read_table(tmp_path / "pq" / "messages_b.parquet").to_pydict()
    want = [s for s in range(1, 301) if s % 3 == 0 and s != 100]
    assert b["sequence"] == want and set(b["index"]) == {1}
    assert b["payload_hex"] == [(b"bid %d" % s).hex() for s in want] and b["length"] == [len(b"bid %d" % s)
                                                                                          for s in want]
    first = day.seqs.index(3)
    assert b["rx_ts_ns"][0] == day.packets[first].rx_ts_ns


def test_what_the_native_toy_decoder_lacks_is_one_clear_error(day_file, tmp_path):
    for args, capability in ((["inspect", day_file], "messages"),
                             (["convert", day_file, "--no-books", "-o", tmp_path / "o"], "batches"),
                             (["replay", day_file, "--books"], "books")):
        out = rx(*args, "-b", "example_cython", "-d", "example_toy_native")
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.count("rxfeed: error:") == 1
        assert f"decoder 'example_toy_native' cannot" in out.stderr and f"offer {capability!r}" in out.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# --- the Python TOY decoder's API ----------------------------------------------------

def test_toy_subscribers_batches_and_a_failing_callback(day):
    dec = ToyDecoder()
    got: list[Any] = []
    dec.subscribe(lambda m, meta: got.append((m.type, meta.sequence, meta.status)), "b", with_meta=True)
    dec.subscribe_batches(types="a\xff")
    Pipeline(ListBackend(day.payloads), dec).run()
    assert got == [("b", s, "new") for s in range(3, 301, 3) if s != 100]
    batches = dec.take_batches()
    assert sorted(batches) == ["a", "\xff"] and len(batches["a"]) == day.per_type["a"]
    assert batches["a"]["payload_hex"][1] == b"0202" and dec.take_batches() == {}
    with pytest.raises(ValueError, match="not a TOY message type"):
        dec.subscribe(print, "\u20ac")

    class Stop(Exception):
        pass

    def stop(msg: Any) -> None:
        raise Stop(msg.type)

    dec = ToyDecoder()
    dec.subscribe(stop, "b")
    with pytest.raises(Stop, match="b"):
        Pipeline(ListBackend(day.payloads), dec, run={"burst": 1}).run()
    assert dec.packets == 3  # the run stopped at the datagram of the first 'b'


# --- conformance kit -------------------------------------------------------------------

TestCythonBackend = backend_kit(get_plugins().backends.get("example_cython"))
TestNativeToyDecoder = decoder_kit(get_plugins().decoders.get("example_toy_native"))
#: the Python TOY decoder through its conformance_* hooks (pytest --rxfeed-conformance example_toy)
TestPythonToyDecoderHooks = decoder_kit(ToyDecoder)


def test_the_cython_plugin_gets_the_native_and_replay_again_suites():
    assert issubclass(TestCythonBackend, NativeBackendConformance)
    assert issubclass(TestCythonBackend, ReplayAgainConformance) and TestCythonBackend.reset_option == "loops"
    assert issubclass(TestNativeToyDecoder, NativeDecoderConformance)
    assert issubclass(TestPythonToyDecoderHooks, DecoderConformance)
    assert not issubclass(TestPythonToyDecoderHooks, NativeDecoderConformance)


def test_rxfeed_conformance_option_on_the_cython_plugin(tmp_path):
    """What its author runs: ``pytest --rxfeed-conformance NAME`` (in a
    directory of no tests of its own) passes for both of its plugins."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rxfeed-conformance",
                          "example_cython", "--rxfeed-conformance", "example_toy_native"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "skipped" not in last
    assert int(last.split()[0]) >= 20, last


def _toy_payloads() -> tuple[list[bytes], int]:
    payloads = [datagram(s, toy_messages(s)) for s in range(1, 201)]
    return payloads, sum(len(toy_messages(s)) for s in range(1, 201))


class TestPythonToyDecoder(DecoderConformance):
    decoder = "example_toy"

    def valid_payloads(self) -> tuple[list[bytes], int]:
        return _toy_payloads()


def test_publish_refuses_records_it_cannot_publish(tmp_path):
    """The ZeroMQ sink publishes ITCH and IEX records (a topic per symbol): a
    decoder with batches of other records is one clear error, not a
    traceback - even when its message types have ITCH letters."""
    records.write(tmp_path / "a.rxcy", [datagram(s, [(b"A", b"12"), (b"R", b"3")]) for s in range(1, 20)])
    out = rx("replay", tmp_path / "a.rxcy", "-d", "example_toy", "--publish",
             f"tcp://127.0.0.1:{20000 + (os.getpid() + 41) % 20000}")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "publishes records with a symbol" in out.stderr and "'example_toy'" in out.stderr
    assert "iex, itch50" in out.stderr
