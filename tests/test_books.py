"""Order books: the C books equal an independent Python reconstruction on a
generated day (final depth of every symbol and the whole BBO sequence), the
real extract's inconsistencies are counted, and the CLI reports books."""

from __future__ import annotations

import json

import numpy as np

from click.testing import CliRunner

from rxfeed import Pipeline
from rxfeed.tools.cli import main
from rxfeed.protocols.itch50._book import OrderBooks

from .book_reference import RefBooks
from .conftest import REAL_ITCH


def build(path, backend="pcap_replay", **kw):
    pipe = Pipeline(backend, "itch50", backend_config={"path": str(path)})
    books = OrderBooks(**kw)
    ref = RefBooks()
    pipe.decoder.add_handlers(books)
    pipe.decoder.subscribe(ref.on)
    s = pipe.run()
    return s, books, ref


def test_books_equal_the_reference_and_bbo_sequences_match(day_dir):
    s, books, ref = build(day_dir / "day.pcap", bbo=True)
    assert books.counters()["integrity"] == {"unknown_order": 0, "exec_beyond_remaining": 0,
                                             "cancel_beyond_remaining": 0, "duplicate_add": 0, "invalid_side": 0,
                                             "zero_shares_add": 0, "directory_conflict": 0, "crossed": 0,
                                             "locked": 0, "out_of_memory": 0}
    assert books._check() == ""
    for sym, loc in books.symbols().items():
        d = books[sym].depth(n=10_000)
        assert d["bids"] == ref.depth(loc, "B"), sym
        assert d["asks"] == ref.depth(loc, "S"), sym
    bbo = books.take_bbo()
    got = [tuple(int(x) for x in (r["timestamp"], r["locate"], r["bid_price"], r["bid_shares"], r["ask_price"],
                                  r["ask_shares"])) for r in bbo]
    assert got == ref.bbo_seq and len(got) > 1000


def test_fifo_priority_and_replace_loses_it(day_dir):
    _, books, ref = build(day_dir / "day.pcap")
    sym, loc = next(iter(books.symbols().items()))
    (bp, _), _ = books[sym].bbo()
    q = books[sym].queue("B", bp)
    assert [r for r, _ in q] == ref.levels[(loc, "B")][bp]
    assert sum(sh for _, sh in q) == books[sym].bbo()[0][1]


def test_same_books_from_every_file_backend(day_dir):
    finals = []
    for path, backend in ((day_dir / "day.pcap", "pcap_replay"), (day_dir / "day.itch.gz", "nasdaq_file")):
        _, books, _ = build(path, backend)
        finals.append(books.final_bbo())
    assert finals[0] == finals[1]


def test_real_extract_inconsistent_books_are_counted_not_fatal():
    s, books, ref = build(REAL_ITCH, "nasdaq_file")
    c = books.counters()
    assert s.messages == 12_012
    assert c["integrity"]["unknown_order"] == ref.unknown > 0
    assert set(books.final_bbo()) == {"ALC", "BOB", "CHAR"}
    assert books["ALC"].depth(5)["bids"] or books["ALC"].depth(5)["asks"]


def test_replay_books_json(day_dir):
    r = CliRunner().invoke(main, ["replay", str(day_dir / "day.pcap"), "--books", "--json"])
    s = json.loads(r.output)
    assert set(s["books"]["final_bbo"]) == {"AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META"}
    q = s["books"]["final_bbo"]["AAPL"]
    assert 0 < q["bid_price"] < q["ask_price"] and q["bid_shares"] > 0
    assert s["books"]["integrity"]["crossed"] == 0
    r = CliRunner().invoke(main, ["replay", str(REAL_ITCH), "--books"])
    assert r.exit_code == 0 and "book integrity: unknown_order=" in r.output


def test_depth_snapshots_on_change(day_dir):
    s, books, ref = build(day_dir / "day.pcap", depth=10)
    snaps = books.take_depth()
    assert len(snaps) == books.counters()["depth_snapshots"] > 1000
    for sym, loc in books.symbols().items():
        last = snaps[snaps["locate"] == loc][-1]
        want = ref.depth(loc, "B")[:10]
        got = [(int(p), int(sh), int(o)) for p, o, sh in zip(last["bid"]["price"], last["bid"]["orders"],
                                                             last["bid"]["shares"]) if p]
        assert got == want, sym
        want = ref.depth(loc, "S")[:10]
        got = [(int(p), int(sh), int(o)) for p, o, sh in zip(last["ask"]["price"], last["ask"]["orders"],
                                                             last["ask"]["shares"]) if p]
        assert got == want, sym
    assert (np.diff(snaps["timestamp"].astype(np.int64)) >= 0).all()


def test_books_via_efvi_and_dpdk_equal_pcap_replay(day_dir, monkeypatch):
    import subprocess
    import sys

    from rxfeed.backends.efvi.backend import EfviBackend
    from rxfeed.backends.efvi.config import EfviConfig

    _, base, _ = build(day_dir / "day.pcap")
    monkeypatch.setenv("RXF_EFVI_STANDIN_PCAP", str(day_dir / "day.pcap"))
    pipe = Pipeline(EfviBackend(EfviConfig(interface="sfc0", filters=["233.54.12.111:26477"], idle_timeout_s=0.3,
                                              igmp={"mode": "off"})), "itch50")
    books = OrderBooks()
    pipe.decoder.add_handlers(books)
    pipe.run()
    assert books.final_bbo() == base.final_bbo()
    out = subprocess.run([sys.executable, "-m", "rxfeed.tools.cli", "replay", str(day_dir / "day.pcap"), "--backend",
                          "dpdk", "--books", "--json"], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout)["books"]["final_bbo"] == base.final_bbo()


def test_depth_snapshots_on_a_clock(day_dir):
    """At each tick, one snapshot of every book whose top changed since the
    previous tick: exactly the last on-change snapshot of that book before the
    tick, stamped with the tick."""
    minute = 60 * 10**9
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")})
    books = OrderBooks(depth=5, depth_every_ns=minute)
    pipe.decoder.add_handlers(books)
    system_events = []                    # the day ends with system events
    pipe.decoder.subscribe(lambda m: system_events.append(m.timestamp), types="S")
    pipe.run()
    snaps = books.take_depth()
    ticks = np.unique(snaps["timestamp"])
    assert (ticks % minute == 0).all() and len(ticks) > 100
    _, on_change, _ = build(day_dir / "day.pcap", depth=5)
    changes = on_change.take_depth()
    tick_of = (changes["timestamp"] // minute + 1) * minute
    last_message = system_events[-1]
    want = {}
    for snap, tick in zip(changes, tick_of):
        if tick <= last_message:          # a tick is only seen when a message passes it
            want[(int(tick), int(snap["locate"]))] = snap
    assert [(int(s["timestamp"]), int(s["locate"])) for s in snaps] == sorted(want)
    for s in snaps:
        w = want[(int(s["timestamp"]), int(s["locate"]))]
        assert (s["bid"] == w["bid"]).all() and (s["ask"] == w["ask"]).all()
