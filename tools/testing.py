"""pytest plugin (``pytest11`` entry point ``rxfeed``) for users' own feed
handler tests and latency suites.

Fixtures:

``rxfeed_day``
    factory ``rxfeed_day(messages=100_000, symbols=8, seed=1, fmt="pcap")``:
    a generated, book-consistent ITCH 5.0 day (``pcap``, ``pcapng`` or
    ``nasdaq``), written once per session per arguments.
``rxfeed_pipeline``
    factory ``rxfeed_pipeline(backend, decoder="itch50", run=None, **backend_config)``:
    a :class:`rxfeed.Pipeline`, closed after the test.
``rxfeed_latency``
    ``rxfeed_latency.run(pipeline)`` runs with the in-loop rdtsc histogram on
    and returns the summary; its percentiles (ns) are attached to
    pytest-benchmark's ``extra_info`` when the test also uses ``benchmark``,
    and kept in ``rxfeed_latency.results``.

See docs/latency-suites.md for a complete example.

Options:

``--rxfeed-conformance NAME``
    run the conformance kit (:mod:`rxfeed.tools.conformance`) against the
    installed backend and/or decoder ``NAME`` (repeatable); with no test
    paths given, only the kit runs. See docs/writing-a-plugin.md.
``--rxfeed-poison-released``
    every run of the session poisons released packet buffers
    (``RXFEED_POISON_RELEASED=1``; docs/plugin-abi.md, Buffer lifetime).
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import pytest

# the conformance kit's asserts report their values (as test code's do) when
# a plugin's own suite runs it
pytest.register_assert_rewrite("rxfeed.tools.conformance")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rxfeed")
    group.addoption("--rxfeed-conformance", action="append", default=[], metavar="NAME",
                    help="run rxfeed's conformance kit against the installed backend/decoder NAME (repeatable)")
    group.addoption("--rxfeed-poison-released", action="store_true", default=False,
                    help="poison released packet buffers in every rxfeed run (RXFEED_POISON_RELEASED=1)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("rxfeed_poison_released"):
        from rxfeed import _runloop

        config.stash[_POISON_BEFORE] = os.environ.get(_runloop.POISON_ENV)
        os.environ[_runloop.POISON_ENV] = "1"
    names = config.getoption("rxfeed_conformance")
    if not names:
        return
    from rxfeed.tools.conformance import conformance_classes

    try:
        config.stash[_KIT] = {name: conformance_classes(name) for name in names}
    except LookupError as exc:
        raise pytest.UsageError(f"--rxfeed-conformance: {exc.args[0]}") from None
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = []  # no paths given: the kit alone, not the tests found in the directory


_KIT = pytest.StashKey[dict[str, dict[str, type]]]()
_POISON_BEFORE = pytest.StashKey[str | None]()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _POISON_BEFORE in config.stash:
        from rxfeed import _runloop

        before = config.stash[_POISON_BEFORE]
        if before is None:
            os.environ.pop(_runloop.POISON_ENV, None)
        else:
            os.environ[_runloop.POISON_ENV] = before


class _KitModule(pytest.Module):
    """The kit's classes for one plugin, as if they were a test module."""

    classes: dict[str, type] = {}

    def _getobj(self) -> types.ModuleType:
        mod = types.ModuleType(f"rxfeed_conformance_{self.name}")
        mod.__dict__.update(self.classes)
        return mod


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Append the kit's tests for each ``--rxfeed-conformance`` NAME (before
    ``-k``/``-m`` select among the items)."""
    from rxfeed.tools import conformance

    for name, classes in config.stash.get(_KIT, {}).items():
        mod = _KitModule.from_parent(session, path=Path(conformance.__file__), nodeid=f"rxfeed-conformance[{name}]")
        mod.classes = classes
        items.extend(session.genitems(mod))


@pytest.fixture(scope="session")
def rxfeed_day(tmp_path_factory: pytest.TempPathFactory):
    from rxfeed.tools.generator import generate

    cache: dict[tuple, Path] = {}
    base = tmp_path_factory.mktemp("rxfeed_days")

    def make(messages: int = 100_000, symbols: int = 8, seed: int = 1, fmt: str = "pcap") -> Path:
        key = (messages, symbols, seed, fmt)
        if key not in cache:
            ext = {"pcap": "pcap", "pcapng": "pcapng", "nasdaq": "itch"}[fmt]
            path = base / f"day_{messages}_{symbols}_{seed}.{ext}"
            generate(path, messages, symbols, seed, fmt)
            cache[key] = path
        return cache[key]

    return make


@pytest.fixture
def rxfeed_pipeline():
    from rxfeed import Pipeline

    made: list[Any] = []

    def make(backend: str, decoder: str = "itch50", run: dict | None = None, **backend_config: Any) -> Any:
        backend_config = {k: str(v) if isinstance(v, Path) else v for k, v in backend_config.items()}
        pipe = Pipeline(backend, decoder, backend_config=backend_config, run=run)
        made.append(pipe)
        return pipe

    yield make
    for p in made:
        p.close()


class LatencyRecorder:
    """Runs pipelines with the in-loop latency histogram and reports percentiles."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.results: list[dict[str, Any]] = []

    def run(self, pipeline: Any) -> Any:
        pipeline.run_config = pipeline.run_config.model_copy(update={"latency": True})
        summary = pipeline.run()
        lat = dict(summary.latency or {})
        lat["messages"] = summary.messages
        lat["packets"] = summary.packets
        self.results.append(lat)
        if "benchmark" in self._request.fixturenames:
            bench = self._request.getfixturevalue("benchmark")
            for k in ("p50", "p90", "p99", "p99_9", "max"):
                if k in lat:
                    bench.extra_info[f"latency_{k}_ns"] = lat[k]
            bench.extra_info["latency_what"] = lat.get("what", "")
        return summary


@pytest.fixture
def rxfeed_latency(request: pytest.FixtureRequest) -> LatencyRecorder:
    return LatencyRecorder(request)
