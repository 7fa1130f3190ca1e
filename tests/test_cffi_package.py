"""The cffi route as a user ships it: tests/plugins/rxfeed_cffi_example, an
installed package whose C parts (a backend and an ITCH handler table) are
built by cffi's API mode through ``cffi_modules=`` in setup.py, run through
``rxfeed plugins``, ``rxfeed replay``, a Pipeline and the conformance kit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

from rxfeed_cffi_example import datagrams
from rxfeed_cffi_example.tally import ItchTally

N_MESSAGES = 5000


def rx(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def itch_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A file of MoldUDP64 datagrams of generated ITCH messages, and the messages."""
    msgs = list(generate_messages(N_MESSAGES, symbols=3, seed=7))
    path = tmp_path_factory.mktemp("cffi") / "itch.rxcf"
    datagrams.write(path, [p for _, p in moldudp64_datagrams(msgs)])
    return path, msgs


def _types(msgs: list[bytes]) -> dict[str, int]:
    return dict(sorted(Counter(chr(m[0]) for m in msgs).items()))


def test_rxfeed_plugins_lists_the_cffi_backend():
    out = rx("plugins", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["backends"]["example_cffi"] == {
        "plugin": "cffi_example", "native": True,
        "description": "example: datagram file replayed by a C backend built with cffi"}
    assert info["native"]["example_cffi"].startswith("built with cffi (_reader")
    assert "example_cffi" in rx("plugins").stdout


@pytest.mark.parametrize("named", [True, False], ids=["named", "detected"])
def test_replay_decodes_every_generated_message(itch_day, named):
    """``-b example_cffi -d itch50``, or nothing named (the plugin detects its
    file, itch50 claims the payloads): every message, by type, no gap."""
    path, msgs = itch_day
    out = rx("replay", path, *(["-b", "example_cffi", "-d", "itch50"] if named else []), "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert (s["backend"], s["decoder"], s["stop_reason"]) == ("example_cffi", "itch50", "end_of_source")
    assert s["messages"] == N_MESSAGES and s["gaps"] == 0 and s["errors"] == {}
    assert s["messages_per_type"] == _types(msgs)
    assert s["backend_stats"]["packets"] == s["packets"]


def test_replay_twice_over_the_file(itch_day):
    path, msgs = itch_day
    out = rx("replay", path, "-b", "example_cffi", "-d", "itch50", "--loop", "2", "--json")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    assert s["messages_per_type"] == {t: 2 * n for t, n in _types(msgs).items()}


def test_the_c_handler_table_counts_every_record(itch_day):
    """The package's cffi-built ITCH handler table, fed by its cffi-built
    backend: the same counts as the decoder's, and the shares of every AddOrder."""
    path, msgs = itch_day
    tally = ItchTally()
    with Pipeline("example_cffi", "itch50", backend_config={"path": str(path)}) as pipe:
        tally.attach(pipe.decoder)
        s = pipe.run()
    assert s.messages == N_MESSAGES and s.stop_reason == "end_of_source"
    assert tally.by_type() == _types(msgs)
    assert tally.add_shares == sum(int.from_bytes(m[20:24], "big") for m in msgs if m[:1] == b"A")
    assert tally.last_sequence == N_MESSAGES


@pytest.mark.parametrize("cut, text", [(2, "payload past the end of the file"), (None, "longer than any UDP payload")])
def test_a_corrupt_file_is_a_clear_error(itch_day, tmp_path, cut, text):
    """A file cut inside its last payload, or a length no UDP payload has:
    the datagrams before it are decoded, then exit 1 with the reason and offset."""
    data = itch_day[0].read_bytes()
    data = data[:-cut] if cut else data + b"\x00\x00\x01\x00" + b"x" * 16  # 65536: one too long
    bad = tmp_path / "bad.rxcf"
    bad.write_bytes(data)
    out = rx("replay", bad, "-b", "example_cffi", "-d", "itch50", "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    s = json.loads(out.stdout)
    assert s["stop_reason"] == "backend_error" and text in s["error"] and "record at offset" in s["error"]
    assert s["messages"] > 0


def test_a_file_of_another_format_is_refused(tmp_path):
    other = tmp_path / "other.rxcf"
    other.write_bytes(bytes(range(64)))
    out = rx("replay", other, "-b", "example_cffi", "-d", "itch50")
    assert out.returncode != 0 and "not an example_cffi datagram file" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_rxfeed_conformance_option_on_the_cffi_plugin(tmp_path):
    """What its author runs: ``pytest --rxfeed-conformance example_cffi`` (in
    a directory of no tests of its own): the native and replay-again suites pass."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                          "--rxfeed-conformance", "example_cffi"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last and "skipped" not in last, last
    for test in ("test_a_table_of_another_abi_is_refused", "test_source_reset_flags_the_first_packet_of_each_pass",
                 "test_broken_sources_are_refused_or_counted"):
        assert test in out.stdout, test
