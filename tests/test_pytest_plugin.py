"""The pytest plugin users get with rxfeed (``rxfeed.tools.testing``), exercised
with pytester in a separate pytest process."""

from __future__ import annotations

import json
import os
from pathlib import Path

pytest_plugins = ["pytester"]

USER_SUITE = '''
def test_my_handler_latency(benchmark, rxfeed_day, rxfeed_pipeline, rxfeed_latency):
    day = rxfeed_day(messages=5000, symbols=3, seed=2)
    seen = []

    def once():
        pipe = rxfeed_pipeline("pcap_replay", path=day, run={"burst": 1})
        pipe.decoder.subscribe(seen.append, types="A")
        return rxfeed_latency.run(pipe)

    summary = benchmark.pedantic(once, rounds=2, iterations=1)
    assert summary.messages == 5000 and seen
    assert rxfeed_latency.results[-1]["p99"] > 0


def test_day_is_cached(rxfeed_day):
    assert rxfeed_day(messages=1000) == rxfeed_day(messages=1000)
    assert rxfeed_day(messages=1000, fmt="nasdaq").suffix == ".itch"
'''


def test_plugin_fixtures_in_a_user_suite(pytester):
    pytester.makepyfile(test_user=USER_SUITE)
    result = pytester.runpytest_subprocess("--benchmark-json=bench.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "bench.json").read_text())
    extra = data["benchmarks"][0]["extra_info"]
    assert {"latency_p50_ns", "latency_p99_ns", "latency_p99_9_ns", "latency_max_ns"} <= set(extra)
    assert extra["latency_p50_ns"] <= extra["latency_p99_ns"] <= extra["latency_max_ns"]


def _kit(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_conformance_option_runs_the_kit_alone_on_a_first_party_decoder(pytester):
    pytester.makepyfile(test_user="def test_mine():\n    raise AssertionError('not run with the option alone')\n")
    result = _kit(pytester, "--rxfeed-conformance", "itch50", "-v")
    # counts, bursts, 3 malformed seeds, counters, 2 lifetime; native: ABI refusal, stop with an error
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(["*TestDecoder_itch50::test_a_table_of_another_abi_is_refused PASSED*"])
    result.stdout.fnmatch_lines(["*TestDecoder_itch50::test_a_decoder_that_stops_ends_the_run_with_its_error PASSED*"])
    result.stdout.fnmatch_lines(["*rxfeed-conformance?itch50?::TestDecoder_itch50::test_released_buffers_poisoned*"
                                 "PASSED*"])
    assert "test_mine" not in result.stdout.str()


def test_conformance_option_on_the_example_plugins_backends(pytester):
    """A pure-Python and a C backend of the third-party example package:
    the C one also gets the ABI, release-pairing and poison checks."""
    result = _kit(pytester, "--rxfeed-conformance", "example_py", "--rxfeed-conformance", "example_c", "-v")
    out = result.stdout.str()
    assert "TestBackend_example_c::test_a_table_of_another_abi_is_refused PASSED" in out
    assert "TestBackend_example_c::test_poison_mode_delivers_the_same PASSED" in out
    assert "TestBackend_example_py::test_a_table_of_another_abi_is_refused" not in out
    result.assert_outcomes(passed=out.count(" PASSED"))
    assert out.count("TestBackend_example_py::") >= 9


def test_conformance_option_on_the_example_plugins_decoders(pytester):
    """The example's Python TOY decoder (the flagship of writing a decoder in
    Python) and its Cython twin pass the kit; only the Cython one, having a
    C table, gets the native decoder checks."""
    result = _kit(pytester, "--rxfeed-conformance", "example_toy", "--rxfeed-conformance", "example_toy_native",
                  "-v")
    out = result.stdout.str()
    result.assert_outcomes(passed=8 + 10)
    assert "TestDecoder_example_toy_native::test_a_table_of_another_abi_is_refused PASSED" in out
    assert "TestDecoder_example_toy::test_a_table_of_another_abi_is_refused" not in out


def test_conformance_option_says_when_a_plugin_cannot_be_checked(pytester, monkeypatch):
    """A decoder (rxfeed_broken's ``broken_no_kit``, found on PYTHONPATH)
    that gives the kit no sample payloads: one test fails saying what is
    missing, rather than nothing being checked."""
    broken = Path(__file__).parent / "plugins" / "rxfeed_broken"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")]))
    result = _kit(pytester, "--rxfeed-conformance", "broken_no_kit")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the decoder suite cannot run: rxfeed_broken.failing.NoKitDecoder has no "
                                 "conformance_samples()*"])


def test_conformance_option_refuses_an_unknown_name(pytester):
    result = _kit(pytester, "--rxfeed-conformance", "no_such_plugin")
    assert result.ret == 4  # usage error
    result.stderr.fnmatch_lines(["*--rxfeed-conformance: no backend or decoder named 'no_such_plugin'*pcap_replay*"])


def test_conformance_option_with_paths_runs_both(pytester):
    pytester.makepyfile(test_user="def test_mine():\n    pass\n")
    result = _kit(pytester, "test_user.py", "--rxfeed-conformance", "template_nope", "-q")
    assert result.ret == 4
    result = _kit(pytester, "test_user.py", "--rxfeed-conformance", "itch50", "-k", "mine or counts_every")
    result.assert_outcomes(passed=2)


def test_poison_option_turns_poison_mode_on_for_the_session(pytester):
    pytester.makepyfile(test_user='''
from rxfeed import _runloop

def test_on():
    assert _runloop.poison_wanted()
''')
    _kit(pytester, "--rxfeed-poison-released").assert_outcomes(passed=1)
    _kit(pytester).assert_outcomes(failed=1)
