"""The order index of the L3 engine (core/include/rxfeed/l3book.h) with order
references in patterns other than NASDAQ's 1, 2, 3, ...: random 64-bit,
strided (the low 32 bits all zero), pairs that fold to the same 32-bit tag,
and references reused after their order left. The books stay equal to the
Python reference. Also: memory per live order, and pre-sizing that never grows."""

from __future__ import annotations

import random

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._book import OrderBooks
from rxfeed.tools.generator import write_nasdaq

from .test_books_robustness import SEC, add, assert_equal_to_reference, delete, directory, random_deep_day, run_books


def random64_refs(rng: random.Random, live: dict, dead: list) -> int:
    """Any 64-bit reference not live."""
    while (r := rng.getrandbits(64)) in live or r == 0:
        pass
    return r


def strided_refs() -> callable:
    """k << 32: every reference has the same low 32 bits."""
    counter = iter(range(1, 1 << 30))
    return lambda rng, live, dead: next(counter) << 32


def tag_colliding_refs() -> callable:
    """k, then k << 32 (both fold to the tag k), then k + 1, ..."""
    state = {"k": 0, "high": True}

    def new(rng: random.Random, live: dict, dead: list) -> int:
        state["high"] = not state["high"]
        if not state["high"]:
            state["k"] += 1
        return state["k"] << 32 if state["high"] else state["k"]

    return new


def reused_refs() -> callable:
    """Half the time a reference whose order already left the book."""
    counter = iter(range(1, 1 << 62))

    def new(rng: random.Random, live: dict, dead: list) -> int:
        while dead and rng.random() < 0.5:
            r = dead.pop(rng.randrange(len(dead)))
            if r not in live:
                return r
        return next(counter)

    return new


@pytest.mark.parametrize("pattern", ["random64", "strided", "tag_colliding", "reused"])
def test_books_equal_the_reference_whatever_the_references(tmp_path, pattern):
    new_ref = {"random64": lambda: random64_refs, "strided": strided_refs, "tag_colliding": tag_colliding_refs,
               "reused": reused_refs}[pattern]()
    msgs = random_deep_day(7, 8_000, new_ref)
    books, ref = run_books(tmp_path / f"{pattern}.itch", msgs, bbo=True, depth=5)
    assert books.counters()["integrity"]["unknown_order"] == 0
    assert books.counters()["integrity"]["duplicate_add"] == 0
    assert_equal_to_reference(books, ref, msgs)


def many_live_orders(n: int) -> list[bytes]:
    """n orders added (no deletes) over 200 price levels a side, then every other one deleted."""
    msgs = [directory(1, "AAA")]
    for ref in range(1, n + 1):
        side = "B" if ref % 2 else "S"
        price = 100_000 - ref % 200 if side == "B" else 100_001 + ref % 200
        msgs.append(add(1, ref, side, 100, price, 2 * SEC + ref))
    msgs += [delete(1, ref, 3 * SEC + ref) for ref in range(1, n + 1, 2)]
    return msgs


def books_only(path, msgs: list[bytes], **kw) -> OrderBooks:
    """Replay ``msgs`` into C books alone (no Python reference: these days are big)."""
    write_nasdaq(path, msgs)
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    books = OrderBooks(**kw)
    pipe.decoder.add_handlers(books)
    pipe.run()
    return books


def test_memory_per_live_order_at_the_peak(tmp_path):
    """At most 64 bytes of order pool, index and levels per live order at the peak,
    the index grown on the way (doubling) and the counts right."""
    n = 300_000
    books = books_only(tmp_path / "live.itch", many_live_orders(n))
    mem = books.memory()
    assert mem["peak_live_orders"] == n
    assert mem["live_orders"] == n // 2
    assert mem["index_grows"] >= 1
    assert mem["bytes_per_peak_live_order"] <= 64, mem
    assert books._check() == ""


def test_presized_books_never_grow_the_index(tmp_path):
    """expected_orders sizes the index and pool: no rehash on the way to that many live orders,
    and the same books as without it."""
    n = 300_000
    msgs = many_live_orders(n)
    sized = books_only(tmp_path / "sized.itch", msgs, expected_orders=n, bbo=True)
    plain = books_only(tmp_path / "plain.itch", msgs, bbo=True)
    assert sized.memory()["index_grows"] == 0
    assert plain.memory()["index_grows"] >= 1
    assert sized._capacity()["orders"] >= n
    assert sized["AAA"].depth(300) == plain["AAA"].depth(300)
    assert (sized.take_bbo() == plain.take_bbo()).all()


def test_prefetch_changes_nothing(tmp_path):
    """The look-ahead prefetch only hints: with it off, the same BBO sequence and books."""
    msgs = random_deep_day(3, 8_000)
    on, ref = run_books(tmp_path / "on.itch", msgs, bbo=True, depth=5)
    off, _ = run_books(tmp_path / "off.itch", msgs, bbo=True, depth=5, prefetch=False)
    assert (on.take_bbo() == off.take_bbo()).all()
    assert (on.take_depth() == off.take_depth()).all()
    for loc in (1, 2):
        assert on[loc].depth(10_000) == off[loc].depth(10_000)
