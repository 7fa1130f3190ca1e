"""Issue 13: the decoder pays only for subscribers (opt-in: ``pytest -m bench``).

Same file (the generated 5M-message day), same process, rounds interleaved
(``timing.Race``: the order rotated every round, the GC off while the clock
runs), CPU time of this process, best of ``RXFEED_BENCH_ROUNDS``:

- ``floor``: a C loop walking the 2-byte length prefixes of the mmapped file
  (``count_framed``), nothing read, no framework;
- ``count_only``: ``nasdaq_file`` -> decoder, nobody subscribed: every message
  framed, length-checked against its type and counted, none decoded;
- ``count_only_in_memory``, ``wire_two_fields_in_memory``: the same decoder
  handed the mmapped file as one stream chunk (no file backend: no read()
  copy, no backend framing walk): what the decoder itself costs;
- ``wire_two_fields``: plus a C wire handler reading shares and price of every
  'A' through the overlay (``itch50_wire.h``), no decode;
- ``record_two_fields``: the same two fields through the decoded record;
- ``every_field``: ``ChecksumHandler``, every field of every record;
- ``python_callbacks``: a Python callback for every message (the peer's
  counting callable, ``peers._Counted``), each message its namedtuple;
- ``python_views``: the same callable, each message its view
  (``subscribe(callback, view=True)``: fields made only when read);
- ``peer_itchcpp_*``: itchfeed 1.6.4 with its C++ backend itchcpp, each parse
  path (every message as an object, a counting callback); best path is the peer.

Targets (issue 13): count_only >= 0.5x floor, wire_two_fields >= 0.4x floor,
python_callbacks >= 3x peer. ``test_python_callbacks_vs_itchcpp`` races only
the Python forms and the peer (``-k python``). Printed and written to
``.benchmarks/rxfeed-decode-subscribers.json``; no timing is asserted (the
agreement of the two views and the counts are).
"""

from __future__ import annotations

import json
import mmap
import os
import platform
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._decoder import count_framed
from rxfeed.protocols.itch50._handlers import AddOrderTwoFields, ChecksumHandler

from .peers import ITCHCPP_PARSE_PATHS, _Counted, require_itchcpp
from .timing import Race, ratios

pytestmark = pytest.mark.bench
N = int(os.environ.get("RXFEED_BENCH_MESSAGES", "5000000"))
ROUNDS = int(os.environ.get("RXFEED_BENCH_ROUNDS", "5"))
TARGETS = {"count_only_vs_floor": 0.5, "wire_two_fields_vs_floor": 0.4, "python_callbacks_vs_peer": 3.0,
           "python_views_vs_peer": 3.0}


@pytest.fixture(scope="module")
def day(bench_day) -> Path:
    return bench_day(f"day{N}.itch", N)


def _pipeline(path: Path, consumer=None, callback=None, **subscribe):
    """A prepared run (not timed): the pipeline with its consumer attached."""
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    if consumer is not None:
        pipe.decoder.add_handlers(consumer)
    if callback is not None:
        pipe.decoder.subscribe(callback, **subscribe)

    def run():
        s = pipe.run()
        pipe.close()
        return s.messages, consumer

    return run


def _floor(path: Path):
    f = open(path, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def run():
        n = count_framed(m)
        m.close()
        f.close()
        return n, None

    return run


def _in_memory(path: Path, consumer=None):
    """A prepared run of the decoder alone: the mmapped file as one stream chunk."""
    from rxfeed.protocols.itch50 import Itch50Config, Itch50Decoder

    from ..conftest import ListBackend

    f = open(path, "rb")
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    dec = Itch50Decoder(Itch50Config())
    if consumer is not None:
        dec.add_handlers(consumer)
    pipe = Pipeline(ListBackend([memoryview(m)], stream=True), dec)

    def run():
        n = pipe.run().messages
        return n, consumer

    return run


def _python_contenders(path: Path) -> dict:
    """The Python callback forms and every itchcpp parse path, the same counting callable."""
    out = {
        "python_callbacks": lambda: _pipeline(path, callback=_Counted()),  # the peer's consumer too
        "python_views": lambda: _pipeline(path, callback=_Counted(), view=True),
    }
    for name, parse in ITCHCPP_PARSE_PATHS.items():
        out[f"peer_itchcpp_{name}"] = lambda parse=parse: (lambda: (parse(path), None))
    return out


def _contenders(path: Path) -> dict:
    out = {
        "floor": lambda: _floor(path),
        "count_only": lambda: _pipeline(path),
        "count_only_in_memory": lambda: _in_memory(path),
        "wire_two_fields_in_memory": lambda: _in_memory(path, AddOrderTwoFields("wire")),
        "wire_two_fields": lambda: _pipeline(path, AddOrderTwoFields("wire")),
        "record_two_fields": lambda: _pipeline(path, AddOrderTwoFields("record")),
        "every_field": lambda: _pipeline(path, ChecksumHandler()),
    }
    return out | _python_contenders(path)


def test_decode_pays_only_for_subscribers(day):
    require_itchcpp()  # fails (never skips) unless itchcpp is itchfeed's backend
    two_fields = {}

    def check(name, out):
        assert out[0] == N, f"{name} handled {out[0]} of {N} messages"
        if "two_fields" in name:
            two_fields[name] = out[1].result

    load = os.getloadavg()
    race = Race(_contenders(day), check)
    race.warm_up()
    for _ in range(ROUNDS):
        race.round()
    assert two_fields["wire_two_fields"] == two_fields["record_two_fields"] == two_fields["wire_two_fields_in_memory"]
    rate = {name: N / r.best("cpu") for name, r in race.runs.items()}
    peer = max((k for k in rate if k.startswith("peer_")), key=rate.get)
    got = {
        "count_only_vs_floor": ratios(race.runs, "floor", "count_only"),
        "count_only_in_memory_vs_floor": ratios(race.runs, "floor", "count_only_in_memory"),
        "wire_two_fields_in_memory_vs_floor": ratios(race.runs, "floor", "wire_two_fields_in_memory"),
        "wire_two_fields_vs_floor": ratios(race.runs, "floor", "wire_two_fields"),
        "record_two_fields_vs_floor": ratios(race.runs, "floor", "record_two_fields"),
        "wire_vs_record_two_fields": ratios(race.runs, "record_two_fields", "wire_two_fields"),
        "every_field_vs_floor": ratios(race.runs, "floor", "every_field"),
    } | _python_ratios(race, peer)
    _report("rxfeed-decode-subscribers.json", race, rate, got, load, peer)


def _python_ratios(race: Race, peer: str) -> dict:
    return {"python_callbacks_vs_peer": ratios(race.runs, peer, "python_callbacks"),
            "python_views_vs_peer": ratios(race.runs, peer, "python_views")}


def _report(name: str, race: Race, rate: dict, got: dict, load: tuple, peer: str) -> None:
    """Print the rates and ratios (with the targets' verdicts); write them to .benchmarks/``name``."""
    lines = [f"{platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; {N:,} messages; "
             f"CPU time, best of {race.rounds} interleaved rounds; load {load[0]:.1f} -> {os.getloadavg()[0]:.1f}; "
             f"peer {peer}"]
    lines += [f"{k:28s} {v / 1e6:8.2f} M msg/s  {1e9 / v:6.2f} ns/msg" for k, v in rate.items()]
    for k, v in got.items():
        target = TARGETS.get(k)
        verdict = f"  (target >= {target}x: {'met' if v['of_best'] >= target else 'NOT met'})" if target else ""
        lines.append(f"{k:28s} {v['of_best']:6.2f}x of best, {v['median_paired']:6.2f}x median paired{verdict}")
    print("\n" + "\n".join(lines))
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(
        {"messages": N, "rounds": race.rounds, "load": load, "msg_per_s_cpu_best": rate, "ratios": got,
         "peer": peer}, indent=2))


def test_python_callbacks_vs_itchcpp(day):
    """Only the Python callback forms against itchcpp (``-k python``): the
    namedtuple and the view, the same counting callable as the peer's."""
    require_itchcpp()

    def check(name, out):
        assert out[0] == N, f"{name} handled {out[0]} of {N} messages"

    load = os.getloadavg()
    race = Race(_python_contenders(day), check)
    race.warm_up()
    for _ in range(ROUNDS):
        race.round()
    rate = {name: N / r.best("cpu") for name, r in race.runs.items()}
    peer = max((k for k in rate if k.startswith("peer_")), key=rate.get)
    _report("rxfeed-python-callbacks.json", race, rate, _python_ratios(race, peer), load, peer)
