"""Deliberately broken plugins (tests/plugins/rxfeed_broken, one failure per
entry point, found on PYTHONPATH like an installed distribution): with all
of them present every command still works, and each failure names its
plugin - never a traceback, never another plugin blamed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed.tools.generator import generate, udp_frame, write_pcap

BROKEN = Path(__file__).parent / "plugins" / "rxfeed_broken"

#: entry point -> what `rxfeed plugins` must say about it
HOOK_FAILURES = {
    "aa_shadow": "backend 'pcap_replay' is already registered by plugin 'pcap_replay'",
    "broken_wrong_kind": "takes rxfeed.interfaces.RxBackend subclasses",
    "broken_raising_info": "native_info exploded",
    "broken_misspelt": "rxfeed_register_backend is not an rxfeed hook",
    "broken_import": "No module named 'rxfeed_broken.no_such_module'",
}


def rx(*args, **env):
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BROKEN), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=environ)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    path = tmp_path_factory.mktemp("broken") / "day.pcap"
    generate(path, 3_000, 4, 1, "pcap")
    return path


def test_plugins_lists_everyone_and_names_each_culprit():
    out = rx("plugins", "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    info = json.loads(out.stdout)
    failures = {f["plugin"]: f["error"] for f in info["failures"]}
    for plugin, text in HOOK_FAILURES.items():
        assert text in failures.get(plugin, ""), (plugin, failures)
    # the first-party plugins are not blamed and keep their names
    assert not {"pcap_replay", "itch50", "dpdk", "udp_socket"} & set(failures)
    backends = {name: b["plugin"] for name, b in info["backends"].items()}
    assert backends["pcap_replay"] == "pcap_replay" and "broken_not_a_backend" not in backends
    # plugins that register fine are there, also from the same package
    assert {"broken_oserror", "broken_source"} <= set(backends) and "example_py" in backends


def test_replay_inspect_and_convert_still_work(day, tmp_path):
    s = json.loads(rx("replay", day, "--json").stdout)
    assert s["messages"] == 3_000 and s["decoder"] == "itch50" and s["backend"] == "pcap_replay"
    inspect = rx("inspect", day, "-n", "5")
    assert inspect.returncode == 0 and len(inspect.stdout.splitlines()) >= 5, inspect.stderr
    out = rx("convert", day, "-o", tmp_path / "pq", "--types", "A")
    assert out.returncode == 0 and (tmp_path / "pq").is_dir(), out.stderr


def test_a_raising_claim_hook_is_skipped_and_named_during_detection(tmp_path):
    # a capture of a non-ITCH protocol: detection asks every plugin's claim hook
    from rxfeed_example.toy import datagram

    path = tmp_path / "toy.pcap"
    write_pcap(path, [(i, udp_frame(datagram(i + 1, [(b"q", b"1")]))) for i in range(20)])
    out = rx("replay", path, "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["decoder"] == "example_toy", out.stderr
    assert "plugin broken_raising_claim failed" in out.stderr and "claim_payloads exploded" in out.stderr


def test_a_raising_detect_hook_is_skipped_and_named(tmp_path):
    unknown = tmp_path / "mystery.bin"
    unknown.write_bytes(b"\x42" * 100)
    out = rx("replay", unknown)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no plugin recognises this file" in out.stderr and "broken_raising_detect" in out.stderr
    assert "detect_source exploded" in out.stderr


@pytest.mark.parametrize("backend,code,text", [
    ("broken_oserror", 2, "/dev/broken0: Permission denied"),
    ("broken_nomod", 1, "backend 'broken_nomod' cannot load: No module named 'nomod_rxfeed_broken'"),
    ("broken_bug", 1, "backend 'broken_bug' failed to start: AttributeError:"),
])
def test_a_plugin_that_fails_to_start_is_one_clear_error(backend, code, text):
    out = rx("listen", "-b", backend, "-d", "example_toy", "--max-seconds", "1")
    assert out.returncode == code and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == f"rxfeed: error: {text}" or text in out.stderr, out.stderr
    assert "example_toy" not in out.stderr  # the decoder is not blamed


def test_a_bug_keeps_its_traceback_on_request():
    out = rx("listen", "-b", "broken_bug", "-d", "example_toy", RXFEED_TRACEBACK="1")
    assert out.returncode == 1 and "Traceback" in out.stderr and "self.fd.fileno()" in out.stderr


def test_a_failing_source_ends_with_the_partial_summary():
    out = rx("listen", "-b", "broken_source", "-d", "example_toy", "--json", "--max-seconds", "5")
    assert out.returncode == 1, out.stderr
    s = json.loads(out.stdout)
    assert s["stop_reason"] == "backend_error" and s["error"] == "ConnectionResetError: the feed went away"
    assert s["packets"] == 8 and s["messages"] == 8  # the two good bursts were decoded


def test_a_failing_decoder_ends_with_the_partial_summary(day):
    out = rx("replay", day, "-d", "broken_decoder", "--json", "--burst", "4")
    assert out.returncode == 1, out.stderr
    s = json.loads(out.stdout)
    assert s["stop_reason"] == "decoder_error" and s["error"] == "KeyError: 'no handler for this packet'"
    assert s["packets"] == 8 and s["decoder"] == "broken_decoder"


def test_blocking_the_broken_plugins_silences_them():
    out = rx("plugins", "--json", RXFEED_BLOCK_PLUGINS=",".join([*HOOK_FAILURES, "broken_raising_detect",
                                                                 "broken_raising_claim", "example_broken"]))
    assert json.loads(out.stdout)["failures"] == []
