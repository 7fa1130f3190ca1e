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
    assert ps.decoders.owner("itch50") == "itch50" and "example_toy" in ps.decoders  # third party: tests/plugins


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
    assert sorted(specs) == ["rxfeed_claim_payloads", "rxfeed_detect_source", "rxfeed_native_info",
                             "rxfeed_register_backends", "rxfeed_register_decoders", "rxfeed_register_sinks"]
    docs = open(__file__.rsplit("/", 2)[0] + "/docs/writing-a-plugin.md").read()
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert name in docs, f"{name} missing from docs/writing-a-plugin.md"
    ps = discover()
    assert ps.detect("x", b"\xd4\xc3\xb2\xa1" + bytes(20)) == ("pcap_replay", None)  # decoder: from payloads
    assert ps.detect("x", b"\x00\x0cS" + bytes(9)) == ("nasdaq_file", "itch50")
    from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

    mold = [p for _, p in moldudp64_datagrams(list(generate_messages(500, symbols=2, seed=1)))]
    assert ps.claim_payloads(mold) == ["itch50"] and ps.claim_payloads([bytes(64)] * 3) == []
    assert ps.detect("x", b"\xff\xff\xff") is None
    assert set(ps.native_info()) >= {"pcap_replay", "nasdaq_file", "itch50"}
    assert "zmq_pub" in ps.sinks


def test_template_plugins_work(tmp_path):
    from rxfeed.backends._template.backend import TemplateBackend
    from rxfeed.backends._template.config import TemplateConfig
    from rxfeed.protocols._template.config import TemplateDecoderConfig
    from rxfeed.protocols._template.decoder import TemplateDecoder

    msgs = list(generate_messages(500, symbols=2, seed=1))
    payloads = [p for _, p in moldudp64_datagrams(msgs)] + [b"\x01"]  # the last: shorter than min_payload
    (tmp_path / "hex.txt").write_text("\n".join(p.hex() for p in payloads))
    decoder = TemplateDecoder(TemplateDecoderConfig(min_payload=20))
    s = Pipeline(TemplateBackend(TemplateConfig(path=str(tmp_path / "hex.txt"))), decoder).run()
    assert s.packets == len(payloads) and s.messages == len(payloads) - 1 and s.errors == {"malformed": 1}
    # a decoder made from the template passes the conformance kit
    from rxfeed.tools.conformance import DecoderConformance

    class TestTemplate(DecoderConformance):
        decoder = TemplateDecoder

        def valid_payloads(self):
            return payloads[:-1], len(payloads) - 1

    kit = TestTemplate()
    kit.test_counts_every_message_of_valid_input()
    kit.test_malformed_input_is_counted_never_fatal(0)


def _hook(fn):
    """A hook implementation as a module-level function would be."""
    return hookspecs.hookimpl(fn)


class _Module:
    pass


def _plugin(**hooks):
    mod = _Module()
    for name, fn in hooks.items():
        setattr(mod, name, fn)
    return mod


def test_registering_the_wrong_kind_of_class_fails_only_that_plugin():
    class NotABackend:
        name = "not_a_backend"

    bad = _plugin(rxfeed_register_backends=_hook(lambda registry: registry.add(NotABackend)))
    ps = discover(extra_plugins=[("wrong_kind", bad)])
    assert "RxBackend subclasses" in dict(ps.failures)["wrong_kind"]
    assert "not_a_backend" not in ps.backends and "pcap_replay" in ps.backends


def test_raising_detect_and_native_info_hooks_are_isolated():
    def detect(path, head):
        raise RuntimeError("detector bug")

    def info():
        raise OSError("info bug")

    ps = discover(extra_plugins=[("flaky", _plugin(rxfeed_detect_source=_hook(detect),
                                                   rxfeed_native_info=_hook(info)))])
    assert ps.detect("x", b"\xd4\xc3\xb2\xa1" + bytes(20)) == ("pcap_replay", None)
    assert ps.detect("x", b"\xff\xff\xff") is None  # asks every plugin, the flaky one too
    assert set(ps.native_info()) >= {"pcap_replay", "itch50"}
    errors = [e for name, e in ps.failures if name == "flaky"]
    assert any("detector bug" in e for e in errors) and any("info bug" in e for e in errors)


def test_detect_answer_of_the_wrong_shape_is_reported():
    ps = discover(extra_plugins=[("odd", _plugin(rxfeed_detect_source=_hook(lambda path, head: "pcap")))])
    assert ps.detect("x", bytes(24)) is None
    assert "not (backend, decoder)" in dict(ps.failures)["odd"]


def test_misspelt_or_unmarked_hooks_are_errors_naming_the_plugin():
    misspelt = _plugin(rxfeed_register_backend=_hook(lambda registry: None))
    unmarked = _plugin(rxfeed_register_backends=lambda registry: None)
    ps = discover(extra_plugins=[("misspelt", misspelt), ("unmarked", unmarked)])
    errors = dict(ps.failures)
    assert "rxfeed_register_backend is not an rxfeed hook" in errors["misspelt"]
    assert "not marked with @rxfeed.hookspecs.hookimpl" in errors["unmarked"]


class _FakeEntryPoint:
    def __init__(self, name, plugin, dist="evil-dist"):
        self.name, self.value, self._plugin = name, f"{dist}.plugin", plugin
        self.dist = type("Dist", (), {"name": dist, "version": "6.6.6"})()

    def load(self):
        return self._plugin


def _shadowing_discovery(monkeypatch):
    """Discovery with an extra third-party entry point named to sort before
    ``pcap_replay``, which registers a backend under that first-party name."""
    import rxfeed.plugins as plugins_mod
    from rxfeed import PluginConfig
    from rxfeed.interfaces import RxBackend

    class Impostor(RxBackend):
        name, Config = "pcap_replay", PluginConfig

        def read_burst(self, max_packets):
            return None

    real = plugins_mod.entry_points
    impostor = _FakeEntryPoint("aa_shadow", _plugin(
        rxfeed_register_backends=_hook(lambda registry: registry.add(Impostor))))
    monkeypatch.setattr(plugins_mod, "entry_points", lambda group: [impostor, *real(group=group)])
    return Impostor


def test_third_party_cannot_shadow_a_first_party_name(monkeypatch):
    impostor = _shadowing_discovery(monkeypatch)
    ps = discover()
    assert ps.backends.get("pcap_replay") is not impostor and ps.backends.owner("pcap_replay") == "pcap_replay"
    assert "RXFEED_ALLOW_OVERRIDE" in dict(ps.failures)["aa_shadow"]
    assert "pcap_replay" not in dict(ps.failures)


def test_user_may_let_a_third_party_replace_a_first_party_name(monkeypatch):
    impostor = _shadowing_discovery(monkeypatch)
    monkeypatch.setenv("RXFEED_ALLOW_OVERRIDE", "pcap_replay")
    ps = discover()
    assert ps.backends.get("pcap_replay") is impostor
    assert ps.backends.overrides == {"pcap_replay": ("pcap_replay", "aa_shadow")}


def test_a_plugin_module_importing_its_own_rxfeed_package_is_not_refused():
    import types

    mod = _plugin(rxfeed_register_backends=_hook(lambda registry: None))
    mod.rxfeed_mypkg = types.ModuleType("rxfeed_mypkg")  # `import rxfeed_mypkg` in the plugin module
    mod.rxfeed_VERSION = "1.0"                           # a constant of that name, neither
    ps = discover(extra_plugins=[("mypkg", mod)])
    assert "mypkg" not in dict(ps.failures) and "mypkg" in {p.name for p in ps.loaded}


def _registering(kind, cls):
    return _plugin(**{f"rxfeed_register_{kind}s": _hook(lambda registry: registry.add(cls))})


def test_registries_refuse_classes_that_could_not_run():
    from rxfeed import PluginConfig, ProtocolDecoder, PythonDecoder, RxBackend

    class NoConfig(RxBackend):
        name = "no_config"

        def read_burst(self, max_packets):
            return None

    class Neither(RxBackend):
        name, Config = "neither", PluginConfig

    class Abstract(ProtocolDecoder):  # decoder_capsule/counters not implemented
        name, Config = "abstract", PluginConfig

    class Boasting(PythonDecoder):
        name, Config = "boasting", PluginConfig
        capabilities = frozenset({"books", "end_of_session"})

        def on_packets(self, packets):
            return False

        def counters(self):
            return {}

    class Inventing(PythonDecoder):
        name, Config = "inventing", PluginConfig
        capabilities = frozenset({"telepathy"})

        def on_packets(self, packets):
            return False

        def counters(self):
            return {}

    bad = [("p_no_config", _registering("backend", NoConfig)), ("p_neither", _registering("backend", Neither)),
           ("p_abstract", _registering("decoder", Abstract)), ("p_boasting", _registering("decoder", Boasting)),
           ("p_inventing", _registering("decoder", Inventing))]
    ps = discover(extra_plugins=bad)
    errors = dict(ps.failures)
    assert "Config must be a rxfeed.PluginConfig subclass" in errors["p_no_config"]
    assert "neither native_capsule() nor read_burst()" in errors["p_neither"]
    assert "is abstract: it does not implement counters, decoder_capsule" in errors["p_abstract"]
    assert "missing make_books, Config.stop_at_end_of_session" in errors["p_boasting"]
    assert "unknown capabilities ['telepathy']" in errors["p_inventing"]
    assert not {"no_config", "neither"} & set(ps.backends.names())
    assert not {"abstract", "boasting", "inventing"} & set(ps.decoders.names()) and "itch50" in ps.decoders


def test_tryfirst_and_trylast_order_the_hook_calls():
    calls = []

    def detector(tag, answer=None):
        def detect(path, head):
            calls.append(tag)
            return answer
        return detect

    early = _plugin(rxfeed_detect_source=hookspecs.hookimpl(tryfirst=True)(detector("early")))
    late = _plugin(rxfeed_detect_source=hookspecs.hookimpl(trylast=True)(detector("late", ("late_b", None))))
    plain = _plugin(rxfeed_detect_source=_hook(detector("plain")))
    ps = discover(extra_plugins=[("late", late), ("plain", plain), ("early", early)])
    # an unknown file: everyone is asked, tryfirst first, then rxfeed's own and the
    # plain third party, trylast last (whose answer is then the one taken)
    assert ps.detect("x", b"\x42" * 64) == ("late_b", None)
    assert calls == ["early", "plain", "late"]
    calls.clear()
    assert ps.detect("x", b"\xd4\xc3\xb2\xa1" + bytes(20)) == ("pcap_replay", None)  # a plain first party answers
    assert calls == ["early"]  # before the third-party plain one, and trylast is never reached
