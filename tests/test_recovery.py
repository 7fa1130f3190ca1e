"""Recovery end to end (issue 11): A/B lines, rxfeed's sequencer and the
MoldUDP64 re-request client against rxfeed's own re-request server, over
real UDP on loopback, under seeded faults on each line.

The property: whatever the faults, what the decoder delivers equals the
fault-free run message for message (every record of every type, in order)
and the final books are identical; or, where nothing could fill a hole, the
hole is declared lost with its exact range and the books say they are
suspect. On a generated 1M-message day, 20 seeds at 1% and 20 at 5%.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Pipeline, get_plugins
from rxfeed.lines import LinesBackend
from rxfeed.tools.generator import generate
from rxfeed.tools.rerequest import RerequestServer

#: the sanitizer job runs these on a smaller day (scripts/sanitize.sh)
DAY_MESSAGES = int(os.environ.get("RXFEED_RECOVERY_MESSAGES", "1000000"))
#: generous for a loaded CI machine: the property tested is equality, not speed
RECOVERY = {"reorder_window_ms": 5000.0, "rerequest_attempts": 8}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recovery") / "day.pcap"
    assert generate(path, DAY_MESSAGES, seed=11) == DAY_MESSAGES
    return path


@pytest.fixture(scope="module")
def server(day: Path) -> Any:
    with RerequestServer(str(day)) as srv:
        yield srv


def _line(day: Path, faults: str | None) -> Any:
    backends = get_plugins().backends
    b = backends.get("pcap_replay")(backends.get("pcap_replay").Config(path=str(day)))
    return backends.get("faults").wrap(b, faults) if faults else b


def run_feed(day: Path, lines: list[str | None] | None, recovery: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run: a digest of every record (numpy batches, per type, in order),
    the final books and the summary. ``lines`` None: one clean line, no recovery."""
    backend = _line(day, None) if lines is None else LinesBackend([_line(day, f) for f in lines])
    pipe = Pipeline(backend, "itch50", decoder_config={"recovery": recovery or {}})
    pipe.decoder.subscribe_batches()
    books = pipe.decoder.make_books()
    with pipe:
        summary = pipe.run()
    digest = hashlib.sha256()
    for t, arr in sorted(pipe.decoder.take_batches().items()):
        digest.update(t.encode() + arr.tobytes())
    counters = books.counters()
    return {"digest": digest.hexdigest(), "summary": summary, "bbo": books.final_bbo(),
            "book_counters": {k: v for k, v in counters.items() if k not in ("suspect", "lost_messages",
                                                                              "lost_ranges")},
            "suspect": books.suspect, "events": pipe.decoder.native.events}


@pytest.fixture(scope="module")
def clean(day: Path) -> dict[str, Any]:
    ref = run_feed(day, None)
    assert ref["summary"].messages == DAY_MESSAGES and ref["summary"].gaps == 0
    return ref


def assert_same_feed(got: dict[str, Any], ref: dict[str, Any]) -> None:
    s = got["summary"]
    assert s.error is None and s.gaps == 0 and s.recovery["lost_ranges"] == 0, s.recovery
    assert s.messages == DAY_MESSAGES and s.recovery["gaps_opened"] == s.recovery["gaps_filled"]
    assert got["digest"] == ref["digest"], "a record differs, is missing, or came twice or out of order"
    assert got["bbo"] == ref["bbo"] and got["book_counters"] == ref["book_counters"]
    assert not got["suspect"]


@pytest.mark.parametrize("rate", [0.01, 0.05])
@pytest.mark.parametrize("seed", range(20))
def test_faulty_ab_lines_with_rerequest_equal_the_clean_feed(day, server, clean, rate, seed):
    """Each line drops, duplicates and reorders on its own seed; what both
    lines lost comes back from the re-request server."""
    spec = f"drop={rate},duplicate={rate},reorder={rate}"
    got = run_feed(day, [f"{spec},seed={2 * seed + 1}", f"{spec},seed={2 * seed + 2}"],
                   {**RECOVERY, "rerequest": "%s:%d" % server.address})
    assert_same_feed(got, clean)
    rec = got["summary"].recovery
    assert rec["redundant_copies"] > 0 and {ln["line"] for ln in rec["lines"]} >= {0, 1}
    rr = rec["rerequest"]
    assert rr["given_up_ranges"] == 0 and rr["answers_refused"]["malformed"] == 0
    assert rec["reorder_peak_bytes"] <= 64 << 20


def test_line_a_killed_halfway_loses_nothing(day, clean):
    """No re-request: line B alone carries the second half."""
    half = clean["summary"].packets // 2
    got = run_feed(day, [f"kill_after={half}", None], RECOVERY)
    assert_same_feed(got, clean)
    lines = {ln["line"]: ln for ln in got["summary"].recovery["lines"]}
    assert half - 10 <= lines[0]["packets"] <= half and lines[1]["packets"] == clean["summary"].packets


def test_both_lines_losing_the_same_datagrams_without_a_server_is_declared(day, clean):
    """The same seed on both lines drops the same datagrams: nothing can fill
    them; each hole is declared lost with its range, the books are suspect,
    and the rest equals the clean feed's count."""
    got = run_feed(day, ["drop=0.001,seed=5", "drop=0.001,seed=5"], {"reorder_window_ms": 50.0})
    s = got["summary"]
    assert s.recovery["lost_ranges"] > 0 and s.gaps == s.recovery["lost_ranges"]
    assert s.messages == DAY_MESSAGES - s.gap_messages and s.duplicates == 0
    lost = [(e["first"], e["count"]) for e in got["events"] if e["kind"] == "gap"]
    assert sum(c for _, c in lost) == s.gap_messages and lost == sorted(lost)
    assert got["suspect"] and s.recovery["lost"][0]["first"] == lost[0][0]


def test_both_lines_losing_the_same_datagrams_are_refilled_by_rerequest(day, server, clean):
    got = run_feed(day, ["drop=0.001,seed=5", "drop=0.001,seed=5"], {**RECOVERY, "rerequest": "%s:%d" % server.address})
    assert_same_feed(got, clean)
    assert got["summary"].recovery["rerequest"]["recovered_messages"] > 0


def _cli(*args: Any) -> Any:
    from click.testing import CliRunner

    from rxfeed.tools.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_replay_with_line_b_faults_and_rerequest(day, server, clean):
    r = _cli("replay", day, "--line-b", day, "--faults", "drop=0.02,reorder=0.02,duplicate=0.02,seed=3",
             "--faults-b", "drop=0.02,seed=4", "--rerequest", "%s:%d" % server.address,
             "--reorder-window-ms", 5000, "--books", "--json")
    assert r.exit_code == 0, r.output
    import json

    s = json.loads(r.output)
    assert s["messages"] == DAY_MESSAGES and s["gaps"] == 0 and s["recovery"]["lost_ranges"] == 0
    assert s["recovery"]["rerequest"]["server"] == "%s:%d" % server.address
    assert s["books"]["suspect"] is False and s["books"]["final_bbo"] == clean["bbo"]
    assert [ln["line"] for ln in s["recovery"]["lines"]][:2] == [0, 1]


@pytest.mark.parametrize(("args", "words"), [
    (["--faults-b", "drop=0.1"], "--faults-b needs --line-b"),
    (["--rerequest", "nowhere"], "HOST:PORT"),
    (["--rerequest", "127.0.0.1:9", "--reorder-window-ms", "0"], "reorder_window_ms > 0"),
])
def test_cli_recovery_usage_errors_are_clear(day, args, words):
    r = _cli("replay", day, *args)
    assert r.exit_code == 2 and words in r.output, r.output
