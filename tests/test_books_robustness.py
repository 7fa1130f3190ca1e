"""Order books under hostile or unusual input: out-of-range locates, clock
snapshots over time jumps, very deep books (O(log n) levels), and malformed
adds / directory conflicts counted rather than applied silently. Deep random
books are checked against the plain-Python reference (tests/book_reference.py)."""

from __future__ import annotations

import heapq
import random
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from rxfeed import Pipeline
from rxfeed.tools.generator import write_nasdaq
from rxfeed.protocols.itch50._book import Book, OrderBooks
from rxfeed.protocols.itch50.reference import decode, encode

from .book_reference import RefBooks

SEC = 10**9


def directory(loc: int, name: str, ts: int = SEC) -> bytes:
    """A stock directory (R) message naming ``loc``."""
    return encode("R", stock_locate=loc, timestamp=ts, stock=name, market_category="Q",
                  financial_status_indicator="N", round_lot_size=100, round_lots_only="N",
                  issue_classification="C", issue_sub_type="Z", authenticity="P",
                  short_sale_threshold_indicator="N", ipo_flag=" ", luld_reference_price_tier="1", etp_flag="N",
                  etp_leverage_factor=0, inverse_indicator="N")


def add(loc: int, ref: int, side: str, shares: int, price: int, ts: int) -> bytes:
    return encode("A", stock_locate=loc, timestamp=ts, order_reference_number=ref, buy_sell_indicator=side,
                  shares=shares, stock="X", price=price)


def delete(loc: int, ref: int, ts: int) -> bytes:
    return encode("D", stock_locate=loc, timestamp=ts, order_reference_number=ref)


def run_books(path: Path, msgs: list[bytes], **kw) -> tuple[OrderBooks, RefBooks]:
    """Replay ``msgs`` (NASDAQ file framing) into C books and the reference."""
    write_nasdaq(path, msgs)
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    books = OrderBooks(**kw)
    ref = RefBooks()
    pipe.decoder.add_handlers(books)
    pipe.decoder.subscribe(ref.on)
    pipe.run()
    return books, ref


# 1. locates are range-checked at every entry point


@pytest.mark.parametrize("loc", [-1, 65536, 70_000, 2**40])
def test_out_of_range_locate_is_a_clear_error_not_a_crash(loc):
    books = OrderBooks()
    with pytest.raises(IndexError, match="locate"):
        Book(books, loc)
    with pytest.raises(KeyError, match="locate"):
        books[loc]
    for call in (lambda: books._levels(loc, 0, 1), lambda: books._queue(loc, 0, 100),
                 lambda: books._state(loc)):
        with pytest.raises(IndexError, match="locate"):
            call()


def test_side_is_checked_too():
    books = OrderBooks()
    with pytest.raises(ValueError, match="side"):
        books._levels(1, 2, 1)
    with pytest.raises(ValueError, match="side"):
        books[1].levels("X")
    assert books[65535].bbo() == ((0, 0), (0, 0))


# 3. clock snapshots: cost follows changed symbols; a time jump is one snapshot per changed book


def test_clock_time_jump_snapshots_only_changed_books_once(tmp_path):
    ms = 10**6
    msgs = [directory(1, "AAA"), directory(2, "BBB"), directory(3, "CCC"),
            add(1, 1, "B", 100, 10_000, SEC + 1),
            add(2, 2, "S", 100, 20_000, SEC + 10 * SEC),        # 10 s later: ~10,000 ticks passed
            add(3, 3, "S", 100, 30_000, SEC + 10 * SEC + 2 * ms)]
    books, _ = run_books(tmp_path / "jump.itch", msgs, depth=3, depth_every_ns=ms)
    snaps = books.take_depth()
    got = [(int(s["timestamp"]), int(s["locate"]), int(s["bid"]["price"][0]), int(s["ask"]["price"][0]))
           for s in snaps]
    assert got == [(SEC + ms, 1, 10_000, 0), (SEC + 10 * SEC + ms, 2, 0, 20_000)]
    assert books.counters()["depth_snapshots"] == 2


def test_clock_one_hour_jump_is_fast(tmp_path):
    msgs = [directory(loc, f"S{loc}") for loc in range(1, 2001)]
    msgs += [add(loc, loc, "B", 100, 10_000 + loc, 2 * SEC) for loc in range(1, 2001)]
    msgs += [add(1, 5000, "S", 100, 90_000, 2 * SEC + 3600 * SEC), add(1, 5001, "S", 100, 90_000, 3 * SEC + 3600 * SEC)]
    t0 = time.perf_counter()
    books, _ = run_books(tmp_path / "hour.itch", msgs, depth=5, depth_every_ns=1000)   # a tick every microsecond
    assert time.perf_counter() - t0 < 10
    snaps = books.take_depth()
    assert len(snaps) == 2001       # every changed book once at the first tick, then locate 1 once after the jump
    assert sorted(snaps["locate"][:2000].tolist()) == list(range(1, 2001))
    assert int(snaps["timestamp"][-1]) == 2 * SEC + 3600 * SEC + 1000


# 10. deep books: O(log n) per level, equal to the reference


def deep_side(n: int) -> list[bytes]:
    """n bid levels, each new one the worst, then deleted worst first."""
    msgs = [directory(1, "DEEP")]
    ts = 2 * SEC
    for i in range(n):
        ts += 1
        msgs.append(add(1, i + 1, "B", 100, 10_000_000 - i, ts))
    for i in reversed(range(n)):
        ts += 1
        msgs.append(delete(1, i + 1, ts))
    return msgs


def time_books(path: Path, msgs: list[bytes]) -> float:
    """Best CPU time (less disturbed than wall time on a busy machine) of 7 replays into fresh books."""
    write_nasdaq(path, msgs)
    best = float("inf")
    for _ in range(7):
        pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
        books = OrderBooks()
        pipe.decoder.add_handlers(books)
        t0 = time.process_time()
        pipe.run()
        best = min(best, time.process_time() - t0)
        assert books[1].bbo() == ((0, 0), (0, 0)) and books.counters()["deletes"] == len(msgs) // 2
    return best


def test_deep_books_scale_log_linear_not_quadratic(tmp_path):
    small = time_books(tmp_path / "s.itch", deep_side(10_000))
    large = time_books(tmp_path / "l.itch", deep_side(40_000))
    # 4x the levels: ~4x (n log n) expected; quadratic would be 16x
    assert large / small < 9, (small, large)


def sequential_refs() -> Callable[[random.Random, dict, list], int]:
    """Order references 1, 2, 3, ... (NASDAQ's pattern)."""
    counter = iter(range(1, 1 << 62))
    return lambda rng, live, dead: next(counter)


def random_deep_day(seed: int, n: int, new_ref: Callable[[random.Random, dict, list], int] | None = None
                    ) -> list[bytes]:
    """Random adds / executions / cancels / deletes / replaces over a wide price range (deep books).
    ``new_ref(rng, live, dead)`` names each new order (default: 1, 2, 3, ...); it must not
    return a live reference; ``dead`` holds the references gone from the book."""
    rng = random.Random(seed)
    msgs = [directory(1, "AAA"), directory(2, "BBB")]
    live: dict[int, list] = {}      # ref -> [locate, side, shares known to remain at least]
    refs: list[int] = []            # live refs, swap-removed
    dead: list[int] = []            # refs deleted, executed or replaced away
    new_ref = new_ref or sequential_refs()
    next_ref = new_ref(rng, live, dead)
    ts = 2 * SEC

    def price(side: str) -> int:
        return (100_000 - rng.randrange(3000) * 7) if side == "B" else (200_000 + rng.randrange(3000) * 7)

    def place(ref: int, loc: int, side: str, shares: int) -> None:
        live[ref] = [loc, side, shares, len(refs)]
        refs.append(ref)

    def take(ref: int, k: int) -> None:
        o = live[ref]
        o[2] -= k
        if o[2] <= 0:
            last = refs.pop()
            if last != ref:
                refs[o[3]] = last
                live[last][3] = o[3]
            del live[ref]
            dead.append(ref)

    for _ in range(n):
        ts += 1 + rng.randrange(1000)
        r = rng.random()
        if r < 0.5 or len(refs) < 50:
            loc, side, shares = rng.choice((1, 2)), rng.choice("BS"), 1 + rng.randrange(500)
            msgs.append(add(loc, next_ref, side, shares, price(side), ts))
            place(next_ref, loc, side, shares)
            next_ref = new_ref(rng, live, dead)
            continue
        o = refs[rng.randrange(len(refs))]
        loc, side, shares, _ = live[o]
        if r < 0.6:
            k = 1 + rng.randrange(shares)
            msgs.append(encode("E", stock_locate=loc, timestamp=ts, order_reference_number=o, executed_shares=k,
                               match_number=o))
        elif r < 0.7:
            k = 1 + rng.randrange(shares)
            msgs.append(encode("X", stock_locate=loc, timestamp=ts, order_reference_number=o, cancelled_shares=k))
        elif r < 0.9:
            k = shares
            msgs.append(delete(loc, o, ts))
        else:
            k = shares
            new_shares = 1 + rng.randrange(500)
            msgs.append(encode("U", stock_locate=loc, timestamp=ts, original_order_reference_number=o,
                               new_order_reference_number=next_ref, shares=new_shares, price=price(side)))
            place(next_ref, loc, side, new_shares)
        take(o, k)
        if r >= 0.9:
            next_ref = new_ref(rng, live, dead)
    return msgs


def top_state(bids: list, asks: list) -> tuple:
    return tuple(bids), tuple(asks)


def snapshot_states(snaps, loc: int) -> list[tuple]:
    """(timestamp, top levels) of each snapshot of ``loc`` whose levels differ from the one before."""
    out: list[tuple] = []
    last = top_state([], [])
    for s in snaps[snaps["locate"] == loc]:
        bids, asks = ([(int(p), int(sh), int(o)) for p, o, sh in zip(s[side]["price"], s[side]["orders"],
                                                                       s[side]["shares"]) if p]
                      for side in ("bid", "ask"))
        state = top_state(bids, asks)
        if state != last:
            out.append((int(s["timestamp"]), state))
            last = state
    return out


def ref_top_sequences(msgs: list[bytes], n: int, locates: tuple[int, ...]) -> dict[int, list[tuple]]:
    """Per locate, (timestamp, top-n levels) each time the reference's top n changed."""
    ref = RefBooks()
    out: dict[int, list[tuple]] = {loc: [] for loc in locates}
    last = {loc: top_state([], []) for loc in locates}
    for raw in msgs:
        m = SimpleNamespace(**decode(raw))
        ref.on(m)
        if m.type not in "AFECXDU":
            continue
        loc = m.stock_locate   # the generated messages name their order's locate
        state = top_state(ref_top(ref, loc, "B", n), ref_top(ref, loc, "S", n))
        if state != last[loc]:
            out[loc].append((m.timestamp, state))
            last[loc] = state
    return out


def ref_top(ref: RefBooks, loc: int, side: str, n: int) -> list[tuple]:
    """The reference's best n levels (price, shares, orders), without sorting the whole side."""
    lv = ref.levels.get((loc, side), {})
    prices = heapq.nlargest(n, lv) if side == "B" else heapq.nsmallest(n, lv)
    return [(p, sum(ref.orders[r][3] for r in lv[p]), len(lv[p])) for p in prices]


@pytest.mark.parametrize("seed", [1, 2])
def test_deep_random_books_equal_the_reference(tmp_path, seed):
    msgs = random_deep_day(seed, 30_000)
    books, ref = run_books(tmp_path / "deep.itch", msgs, bbo=True, depth=5)
    assert_equal_to_reference(books, ref, msgs)


def assert_equal_to_reference(books: OrderBooks, ref: RefBooks, msgs: list[bytes]) -> None:
    """Books of locates 1 and 2 (built with bbo=True, depth=5) equal the reference's:
    structure, every level, the FIFOs of the top 20, the BBO and depth-5 sequences."""
    assert books._check() == ""
    for loc in (1, 2):
        d = books[loc].depth(n=100_000)
        assert d["bids"] == ref.depth(loc, "B")
        assert d["asks"] == ref.depth(loc, "S")
        assert len(d["bids"]) + len(d["asks"]) > 500
        for side in "BS":
            for price, _, _ in ref.depth(loc, side)[:20]:
                assert [r for r, _ in books[loc].queue(side, price)] == ref.levels[(loc, side)][price]
    bbo = books.take_bbo()
    got = [tuple(int(x) for x in (r["timestamp"], r["locate"], r["bid_price"], r["bid_shares"], r["ask_price"],
                                  r["ask_shares"])) for r in bbo]
    assert got == ref.bbo_seq
    snaps = books.take_depth()
    want = ref_top_sequences(msgs, 5, (1, 2))
    for loc in (1, 2):
        assert snapshot_states(snaps, loc) == want[loc]


def test_memory_follows_live_orders_not_orders_ever_seen(tmp_path):
    """A day of short-lived orders (each added then deleted) keeps the initial
    pools and hash: deleted references do not accumulate."""
    msgs = [directory(1, "AAA")]
    for ref in range(1, 300_001):
        msgs += [add(1, ref, "B", 100, 10_000 + ref % 50, 2 * SEC + 2 * ref), delete(1, ref, 2 * SEC + 2 * ref + 1)]
    books, _ = run_books(tmp_path / "churn.itch", msgs)
    assert books.counters()["deletes"] == 300_000
    fresh = OrderBooks()._capacity()
    assert books._capacity() == fresh


# 12. malformed adds and directory conflicts are counted, not silently applied


def test_add_with_an_invalid_side_is_rejected_and_counted(tmp_path):
    msgs = [directory(1, "AAA"), add(1, 1, "X", 100, 10_000, 2 * SEC), add(1, 2, "B", 100, 9_000, 2 * SEC + 1),
            delete(1, 1, 2 * SEC + 2)]
    books, _ = run_books(tmp_path / "side.itch", msgs)
    c = books.counters()
    assert c["integrity"]["invalid_side"] == 1
    assert c["integrity"]["unknown_order"] == 1          # the rejected order was never on the book
    assert books["AAA"].bbo() == ((9_000, 100), (0, 0))
    assert c["adds"] == 1


def test_zero_share_add_is_counted_and_never_the_bbo(tmp_path):
    msgs = [directory(1, "AAA"), add(1, 1, "B", 100, 9_000, 2 * SEC), add(1, 2, "B", 0, 9_500, 2 * SEC + 1),
            add(1, 3, "S", 0, 9_800, 2 * SEC + 2),
            encode("U", stock_locate=1, timestamp=2 * SEC + 3, original_order_reference_number=1,
                   new_order_reference_number=4, shares=0, price=9_600)]
    books, _ = run_books(tmp_path / "zero.itch", msgs, bbo=True)
    c = books.counters()
    assert c["integrity"]["zero_shares_add"] == 3
    assert books["AAA"].bbo() == ((0, 0), (0, 0))
    assert [(int(r["bid_price"]), int(r["bid_shares"])) for r in books.take_bbo()] == [(9_000, 100), (0, 0)]
    assert list(books["AAA"].levels("B")) == [] and list(books["AAA"].levels("S")) == []


def test_directory_conflicts_are_counted_and_the_first_wins(tmp_path):
    msgs = [directory(1, "AAA"), directory(2, "AAA", SEC + 1),      # one symbol, two locates
            directory(3, "BBB"), directory(3, "CCC", SEC + 2),      # one locate, two symbols
            directory(1, "AAA", SEC + 3)]                           # a repeat of the same entry is not a conflict
    books, _ = run_books(tmp_path / "dir.itch", msgs)
    assert books.symbols() == {"AAA": 1, "BBB": 3}
    assert books.counters()["integrity"]["directory_conflict"] == 2
