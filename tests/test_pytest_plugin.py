"""The pytest plugin users get with rxfeed (``rxfeed.tools.testing``), exercised
with pytester in a separate pytest process."""

from __future__ import annotations

import json

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
