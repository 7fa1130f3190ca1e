"""The ITCH books' output tables (BBO changes, trades, depth snapshots) are
kept in fixed 1 MiB chunks (protocols/itch50/book.c, ``rxf_rows``): rows that
span many chunks come out whole and in order, a take empties the table and
the next rows start a fresh one. The books read the messages through wire
views (no decoded record): they stay equal to the Python reference. A new
level placed from the level a cent away stays in price order."""

from __future__ import annotations

import ctypes
import random
from pathlib import Path

import numpy as np
import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._book import BBO_DTYPE, OrderBooks
from rxfeed.tools.generator import write_nasdaq

from rxfeed.protocols.itch50.reference import encode

from .test_books_robustness import (SEC, add, delete, directory, random_deep_day, ref_top_sequences, run_books,
                                    snapshot_states)

CHUNK = 1 << 20  # RXF_ROWS_CHUNK_BYTES


def bbo_rows(bbo: np.ndarray) -> list[tuple]:
    """The BBO table as the reference's tuples."""
    return [tuple(int(x) for x in (r["timestamp"], r["locate"], r["bid_price"], r["bid_shares"], r["ask_price"],
                                   r["ask_shares"])) for r in bbo]


def top_churn(n: int) -> list[bytes]:
    """n orders that each become the best bid, are partly executed and deleted:
    every message changes the BBO, every other one is a trade."""
    msgs = [directory(1, "AAA")]
    for ref in range(1, n + 1):
        ts = 2 * SEC + 4 * ref
        msgs += [add(1, ref, "B", 300, 10_000 + ref % 97, ts),
                 encode("E", stock_locate=1, timestamp=ts + 1, order_reference_number=ref, executed_shares=100,
                        match_number=ref),
                 delete(1, ref, ts + 2)]
    return msgs


def test_bbo_and_trades_across_many_chunks_equal_the_reference(tmp_path):
    """More BBO changes and trades than three chunks hold: every row, in order, as the reference's."""
    n = 40_000
    books, ref = run_books(tmp_path / "many.itch", top_churn(n), bbo=True, trades=True)
    bbo = books.take_bbo()
    assert len(bbo) == 3 * n > 3 * CHUNK // BBO_DTYPE.itemsize
    assert bbo_rows(bbo) == ref.bbo_seq
    trades = books.take_trades()
    assert len(trades) == n
    assert trades["order_reference_number"].tolist() == list(range(1, n + 1))
    assert trades["match_number"].tolist() == list(range(1, n + 1))
    assert (trades["shares"] == 100).all() and (trades["price"] == 10_000 + np.arange(1, n + 1) % 97).all()
    assert len(books.take_bbo()) == 0 and len(books.take_trades()) == 0


def test_depth_snapshots_across_chunks(tmp_path):
    """Depth-100 snapshots (3,216 bytes: 326 to a chunk) over many chunks equal the reference's top 100."""
    msgs = random_deep_day(12, 3_000)
    books, _ = run_books(tmp_path / "depth.itch", msgs, depth=100)
    snaps = books.take_depth()
    assert len(snaps) > 3 * (CHUNK // snaps.dtype.itemsize)
    want = ref_top_sequences(msgs, 100, (1, 2))
    for loc in (1, 2):
        assert snapshot_states(snaps, loc) == want[loc]


def test_take_between_runs_starts_a_fresh_table(tmp_path):
    """Two runs into the same books with a take between: the two tables, end to end,
    are the one table of a single run."""
    msgs = top_churn(40_000)
    half = len(msgs) // 2
    whole, _ = run_books(tmp_path / "whole.itch", msgs, bbo=True)
    books = OrderBooks(bbo=True)
    parts = []
    for i, part in enumerate((msgs[:half], msgs[half:])):
        write_nasdaq(tmp_path / f"part{i}.itch", part)
        pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(tmp_path / f"part{i}.itch")})
        pipe.decoder.add_handlers(books)
        pipe.run()
        pipe.close()
        parts.append(books.take_bbo())
    assert all(len(p) > CHUNK // BBO_DTYPE.itemsize for p in parts)
    assert (np.concatenate(parts) == whole.take_bbo()).all()


def handler_table(books: OrderBooks) -> tuple[list[int], list[int]]:
    """(on[256], wire[256]) of the books' rxf_itch_handlers, as addresses (0: none)."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    addr = get(books.capsule(), b"rxfeed.itch50.handlers.v1")
    ptrs = (ctypes.c_void_p * 512).from_address(addr + 16)  # after version, struct_size, ctx
    return [p or 0 for p in ptrs[:256]], [p or 0 for p in ptrs[256:]]


def test_books_read_wire_views_only(tmp_path):
    """The books ask the decoder for wire views of the types they read and for no
    decoded record (nothing is decoded for them), and equal the reference."""
    on, wire = handler_table(OrderBooks(bbo=True))
    assert not any(on)
    assert {chr(t) for t in range(256) if wire[t]} == set("AFECXDUPQBHRS")
    msgs = random_deep_day(14, 5_000)
    books, ref = run_books(Path(tmp_path) / "wire.itch", msgs, bbo=True)
    assert bbo_rows(books.take_bbo()) == ref.bbo_seq
    for loc in (1, 2):
        assert books[loc].depth(10_000)["bids"] == ref.depth(loc, "B")
        assert books[loc].depth(10_000)["asks"] == ref.depth(loc, "S")


def tick_mix_day(seed: int, n: int) -> list[bytes]:
    """Adds and deletes on two books whose prices walk by jumps of many cents and
    sit on the cent grid, a cent off it, or a few units from either end of the
    u32 price range: new levels one cent from a level, and not, with levels
    between at finer steps."""
    rng = random.Random(seed)
    msgs = [directory(1, "AAA"), directory(2, "BBB")]
    live: list[tuple[int, int]] = []
    centre = {1: 1_000_000, 2: 5_000}
    ts = 2 * SEC
    for ref in range(1, n + 1):
        ts += 1
        loc = rng.choice((1, 2))
        if rng.random() < 0.02:
            centre[loc] = max(300, centre[loc] + rng.choice((-1, 1)) * rng.randrange(100, 5_000) * 100)
        if live and rng.random() < 0.45:
            old_loc, old = live.pop(rng.randrange(len(live)))
            msgs.append(delete(old_loc, old, ts))
            continue
        side = rng.choice("BS")
        step = rng.choice((100, 100, 100, 1, 37))
        price = centre[loc] + (1 if side == "S" else -1) * rng.randrange(0, 40) * step
        edge = rng.random()
        if edge < 0.01:
            price = rng.randrange(1, 150)
        elif edge < 0.02:
            price = 0xFFFFFFFF - rng.randrange(0, 150)
        msgs.append(add(loc, ref, side, rng.randrange(1, 500), max(1, price), ts))
        live.append((loc, ref))
    return msgs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_new_levels_placed_from_a_tick_away_equal_the_reference(tmp_path, seed):
    """A new level finds its neighbours through the level a cent away when one is
    there (l3book.h, l3_tick_neighbours) and is checked against the level next to
    it (a finer step may lie between): the books equal the reference and the
    books with that off (tick 0), trees and threads sound."""
    msgs = tick_mix_day(seed, 40_000)
    books, ref = run_books(tmp_path / "tick.itch", msgs, bbo=True)
    write_nasdaq(tmp_path / "off.itch", msgs)
    off = OrderBooks(bbo=True)
    off._tick = 0
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(tmp_path / "off.itch")})
    pipe.decoder.add_handlers(off)
    pipe.run()
    pipe.close()
    assert books._tick == 100 and books._check() == "" and off._check() == ""
    for loc in (1, 2):
        for side, key in (("B", "bids"), ("S", "asks")):
            levels = books[loc].depth(100_000)[key]
            assert levels == ref.depth(loc, side) == off[loc].depth(100_000)[key]
            assert len(levels) > 100
    assert bbo_rows(books.take_bbo()) == ref.bbo_seq == bbo_rows(off.take_bbo())


def test_latency_counts_updates_over_20us(tmp_path):
    """latency() reports how many updates took 20 µs or more (the max target), within the messages seen."""
    books, _ = run_books(tmp_path / "lat.itch", top_churn(2_000), latency=True)
    lat = books.latency()
    assert isinstance(lat["over_20us"], int)
    assert 0 <= lat["over_20us"] <= books.counters()["messages"]
    assert lat["over_20us"] == 0 or lat["max"] >= 20_000
