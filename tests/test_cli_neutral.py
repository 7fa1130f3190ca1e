"""The CLI with a decoder that is not ITCH (the example plugins' Python and
Cython decoders for a made-up protocol): what it offers works, what it lacks
is one clear error naming the missing capability, never an AttributeError."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rxfeed.tools.generator import udp_frame, write_pcap


def rx(*args):
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def toy_pcap(tmp_path_factory):
    from rxfeed_example.toy import datagram

    path = tmp_path_factory.mktemp("toy") / "toy.pcap"
    write_pcap(path, [(i, udp_frame(datagram(i + 1, [(b"q", b"12"), (b"t", b"3")]))) for i in range(200)])
    return path


def test_replay_with_a_python_decoder_of_another_protocol(toy_pcap):
    out = rx("replay", toy_pcap, "-b", "pcap_replay", "-d", "example_toy", "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["decoder"] == "example_toy" and s["messages"] == 400 and s["messages_per_type"] == {"q": 200, "t": 200}


def test_the_summary_keeps_each_decoders_own_counters_under_decoder_stats(toy_pcap, tmp_path):
    from rxfeed.tools.generator import generate

    toy = json.loads(rx("replay", toy_pcap, "-b", "pcap_replay", "-d", "example_toy", "--json").stdout)
    itch_path = tmp_path / "day.pcap"
    generate(itch_path, 500, 2, 1, "pcap")
    itch = json.loads(rx("replay", itch_path, "--json").stdout)
    # the framework's fields are the same for both protocols, nothing of MoldUDP64 among them
    assert set(toy) == set(itch) and not {"session", "next_sequence", "heartbeats"} & set(toy)
    assert toy["decoder_stats"] == {} and toy["gaps"] == 0
    assert itch["decoder_stats"]["session"] == "RXFEED0001" and itch["decoder_stats"]["next_sequence"] == 501
    assert itch["decoder_stats"]["end_of_session"] == 1 and "messages" not in itch["decoder_stats"]


@pytest.mark.parametrize("decoder,args,capability", [
    ("example_toy", ["replay", "{src}", "--books"], "books"),
    ("example_toy", ["convert", "{src}", "-o", "{tmp}/out"], "books"),
    ("example_toy", ["plot", "{src}", "-s", "AAPL", "-o", "{tmp}/p.png"], "books"),
    # the Cython TOY decoder (tests/plugins/rxfeed_cython_example) offers no capability
    ("example_toy_native", ["replay", "{src}", "--publish", "tcp://127.0.0.1:5599"], "batches"),
    ("example_toy_native", ["inspect", "{src}"], "messages"),
    ("example_toy_native", ["convert", "{src}", "-o", "{tmp}/out", "--no-books"], "batches"),
])
def test_what_the_decoder_lacks_is_one_clear_error(toy_pcap, tmp_path, decoder, args, capability):
    args = [a.format(src=toy_pcap, tmp=tmp_path) for a in args]
    out = rx(*args[:2], "-b", "pcap_replay", "-d", decoder, *args[2:])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert f"decoder {decoder!r} cannot" in out.stderr and repr(capability) in out.stderr


def test_listen_options_need_their_capabilities():
    for extra, capability in ((["--until-end-of-session"], "end_of_session"),):
        out = rx("listen", "-b", "udp_socket", "-d", "example_toy", *extra, "-o", 'groups=["239.1.1.1:5000"]')
        assert out.returncode == 2 and repr(capability) in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_listen_needs_a_decoder_when_several_are_installed():
    out = rx("listen", "-b", "udp_socket", "--max-seconds", "0.1")
    assert out.returncode == 2 and "give --decoder" in out.stderr and "itch50" in out.stderr


def test_a_backend_without_a_decoder_takes_the_detected_one(tmp_path, day_dir):
    out = rx("replay", day_dir / "day.pcap", "-b", "pcap_replay", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["decoder"] == "itch50"


def test_the_decoder_of_a_capture_is_found_from_its_payloads(toy_pcap, day_dir, tmp_path):
    """A pcap holds any protocol: each decoder plugin may claim its payloads
    (rxfeed_claim_payloads); one claim picks it, none asks for -d."""
    import os

    for src, want in ((toy_pcap, "example_toy"), (day_dir / "day.pcap.gz", "itch50"), (day_dir / "day.pcapng", "itch50")):
        out = rx("replay", src, "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["decoder"] == want, out.stderr
    piped = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", "/dev/stdin", "--json"],
                           input=toy_pcap.read_bytes(), capture_output=True, timeout=60)
    assert piped.returncode == 0 and json.loads(piped.stdout)["messages"] == 400
    write_pcap(tmp_path / "rand.pcap", [(i, udp_frame(os.urandom(100))) for i in range(50)])
    out = rx("replay", tmp_path / "rand.pcap")
    assert out.returncode == 2 and "no decoder claims its payloads: give --decoder" in out.stderr
    write_pcap(tmp_path / "none.pcap", [])
    out = rx("inspect", tmp_path / "none.pcap")
    assert out.returncode == 2 and "no UDP payload near its start" in out.stderr


# --- nothing silent (issue 9 review) -------------------------------------------

def test_replay_of_a_source_with_nothing_in_it_is_an_error(tmp_path):
    (tmp_path / "empty.itch").write_bytes(b"")
    write_pcap(tmp_path / "none.pcap", [])
    for args in ([tmp_path / "empty.itch", "-b", "nasdaq_file", "-d", "itch50"], [tmp_path / "none.pcap", "-d", "itch50"]):
        out = rx("replay", *args)
        assert out.returncode == 1 and "nothing to decode" in out.stderr and "Traceback" not in out.stderr


def test_inspect_reports_what_was_skipped_on_stderr(tmp_path):
    import struct

    from rxfeed.tools.generator import generate_messages

    ms = list(generate_messages(100, 2, 1))
    framed = [struct.pack(">H", len(m)) + m for m in ms]
    (tmp_path / "z.itch").write_bytes(b"".join(framed[:50]) + b"\x00\x00Z" + b"\x01" * 30 + b"".join(framed[50:]))
    out = rx("inspect", tmp_path / "z.itch", "-n", "0", "--format", "jsonl")
    assert out.returncode == 0
    assert sum(1 for line in out.stdout.splitlines() if '"event"' not in line) == 100
    assert "33 bytes skipped" in out.stderr and '"unframeable_bytes": 33' in out.stderr


def test_dpdk_replay_of_a_pipe_says_net_pcap_needs_a_file(tmp_path):
    write_pcap(tmp_path / "one.pcap", [(0, udp_frame(b"x" * 30))])
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", "/dev/stdin", "-b", "dpdk", "-d", "itch50"],
                         input=(tmp_path / "one.pcap").read_bytes(), capture_output=True, timeout=60)
    assert out.returncode == 2 and b"regular pcap file, not a pipe" in out.stderr, out.stderr


def test_a_failing_detection_hook_is_said_not_swallowed(tmp_path, day_dir):
    import os

    env = {**os.environ, "RXFEED_EXAMPLE_CLAIM_RAISES": "1"}
    write_pcap(tmp_path / "rand.pcap", [(i, udp_frame(os.urandom(100))) for i in range(20)])
    run = [sys.executable, "-m", "rxfeed.tools.cli", "replay"]
    out = subprocess.run([*run, str(tmp_path / "rand.pcap")], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "plugin example failed: rxfeed_claim_payloads: KeyError" in out.stderr
    out = subprocess.run([*run, str(day_dir / "day.pcap"), "--json"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["decoder"] == "itch50"
    assert "rxfeed: warning: plugin example failed: rxfeed_claim_payloads" in out.stderr


def test_an_unopenable_source_is_a_usage_error_whatever_the_backend_raises(tmp_path):
    for backend in ("pcap_replay", "example_c"):
        out = rx("replay", tmp_path / "nope", "-b", backend, "-d", "itch50")
        assert out.returncode == 2 and "No such file" in out.stderr, (backend, out.stderr)


def test_a_capture_claimed_by_two_decoders_asks_for_one(toy_pcap, tmp_path):
    # a second plugin, found on PYTHONPATH like an installed one, claims every payload
    (tmp_path / "greedy_claim.py").write_text(
        "from rxfeed.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def rxfeed_claim_payloads(payloads):\n"
        "    return 'example_toy_native'\n")
    info = tmp_path / "greedy_claim-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: greedy-claim\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[rxfeed]\ngreedy_claim = greedy_claim\n")
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(toy_pcap)], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "decoders example_toy, example_toy_native all claim its payloads: give --decoder" in out.stderr
    named = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(toy_pcap), "-d", "example_toy",
                            "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert named.returncode == 0 and json.loads(named.stdout)["messages"] == 400


def test_send_refuses_what_is_not_itch(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    out = rx("send", junk, "--group", "239.1.1.1:5000")
    assert out.returncode == 2 and "not an ITCH 5.0 capture or NASDAQ file" in out.stderr, out.stderr
