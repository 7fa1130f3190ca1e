"""Plugin discovery through the ``rxfeed`` entry-point group, one plugin at a
time; a third-party package (tests/plugins/rxfeed_example) with a pure-Python
and a C backend; every hook documented and exercised."""

from __future__ import annotations

import inspect

import pytest

from rxfeed import Pipeline, hookspecs
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams
from rxfeed.plugins import discover

from .conftest import collect


def test_first_party_plugins_register_through_entry_points():
    ps = discover()
    names = {p.name: p.distribution for p in ps.loaded}
    assert names["pcap_replay"] == names["nasdaq_file"] == names["itch50"] == "rxfeed"
    assert {"pcap_replay", "nasdaq_file"} <= set(ps.backends.names())
    assert ps.decoders.names() == ["itch50"]


def test_broken_plugin_is_reported_and_skipped():
    ps = discover()
    assert ("example_broken", "ImportError: rxfeed_example.broken is broken on purpose") in ps.failures
    assert "example_py" in ps.backends and "example_c" in ps.backends


def test_autoload_switch_and_block_list(monkeypatch):
    monkeypatch.setenv("RXFEED_DISABLE_PLUGIN_AUTOLOAD", "1")
    ps = discover()
    assert "example_py" not in ps.backends and ps.failures == []
    assert "pcap_replay" in ps.backends
    monkeypatch.setenv("RXFEED_PLUGINS", "example")
    assert "example_py" in discover().backends
    monkeypatch.delenv("RXFEED_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("RXFEED_BLOCK_PLUGINS", "example_broken,nasdaq_file")
    ps = discover()
    assert ps.failures == [] and "nasdaq_file" not in ps.backends
    assert sorted(ps.blocked) == ["example_broken", "nasdaq_file"]


def test_failing_hook_is_isolated():
    class Bad:
        @hookspecs.hookimpl
        def rxfeed_register_backends(self, registry):
            raise RuntimeError("nope")

    class Dup:
        @hookspecs.hookimpl
        def rxfeed_register_decoders(self, registry):
            from rxfeed.protocols.itch50 import Itch50Decoder

            registry.add(Itch50Decoder)

    ps = discover(extra_plugins=[("bad", Bad()), ("dup", Dup())])
    errors = dict(ps.failures)
    assert "RuntimeError: nope" in errors["bad"]
    assert "already registered by plugin 'itch50'" in errors["dup"]
    assert "pcap_replay" in ps.backends


@pytest.mark.parametrize("backend", ["example_py", "example_c"])
def test_third_party_backends_feed_the_same_decoder(tmp_path, backend, day_dir):
    from rxfeed_example import datagrams

    msgs = list(generate_messages(5000, symbols=3, seed=4))
    datagrams.write(tmp_path / "d.bin", [p for _, p in moldudp64_datagrams(msgs)])
    s, got = collect(backend, tmp_path / "d.bin")
    assert s.messages == 5000 and s.gaps == 0 and s.errors == {}
    assert [bytes([ord(m.type)]) for m in got[:3]] == [m[:1] for m in msgs[:3]]


def test_every_hook_is_documented_and_exercised():
    specs = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("rxfeed_")]
    assert sorted(specs) == ["rxfeed_detect_source", "rxfeed_native_info", "rxfeed_register_backends",
                             "rxfeed_register_decoders", "rxfeed_register_sinks"]
    docs = open(__file__.rsplit("/", 2)[0] + "/docs/writing-a-plugin.md").read()
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert name in docs, f"{name} missing from docs/writing-a-plugin.md"
    ps = discover()
    assert ps.detect("x", b"\xd4\xc3\xb2\xa1" + bytes(20)) == ("pcap_replay", "itch50")
    assert ps.detect("x", b"\x00\x0cS" + bytes(9)) == ("nasdaq_file", "itch50")
    assert ps.detect("x", b"\xff\xff\xff") is None
    assert set(ps.native_info()) >= {"pcap_replay", "nasdaq_file", "itch50"}
    assert "zmq_pub" in ps.sinks


def test_template_plugins_work(tmp_path):
    from rxfeed.backends._template.backend import TemplateBackend
    from rxfeed.backends._template.config import TemplateConfig
    from rxfeed.protocols._template.decoder import TemplateDecoder

    msgs = list(generate_messages(500, symbols=2, seed=1))
    (tmp_path / "hex.txt").write_text("\n".join(p.hex() for _, p in moldudp64_datagrams(msgs)))
    s = Pipeline(TemplateBackend(TemplateConfig(path=str(tmp_path / "hex.txt"))), TemplateDecoder()).run()
    assert s.messages == 500
