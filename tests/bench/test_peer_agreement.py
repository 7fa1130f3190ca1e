"""The benchmark peers, checked in the ordinary suite (small day, seconds):
the decode peer is itchfeed running on itchcpp, the benchmark refuses the
pure-Python fallback, and the book peers compute what rxfeed's books compute
(same BBO changes as itch-book, same final BBO as itch-book and itchcpp)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rxfeed import Pipeline
from rxfeed.protocols.itch50._book import OrderBooks
from rxfeed.tools.generator import generate

from .peers import (ITCH_BOOK_PATHS, ITCHCPP_PARSE_PATHS, PeerMissing, assert_books_agree, itch_book_numpy_tables,
                    itchcpp_books, require_itchcpp)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_day(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("peers") / "day.itch"
    return path, generate(path, 30_000, symbols=8, seed=7)


def test_the_bench_extra_gives_itchfeed_its_cpp_backend():
    import itch

    assert itch.USING_CPP_BACKEND is True
    assert require_itchcpp().__module__.startswith("itchcpp")


def test_the_decode_peer_refuses_pure_python_itchfeed():
    code = ("import sys\nfrom tests.bench.peers import PeerMissing, require_itchcpp\n"
            "try:\n    require_itchcpp()\nexcept PeerMissing as e:\n    print(e)\n    sys.exit(3)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "ITCH_NO_CPP": "1"})
    assert run.returncode == 3, run.stdout + run.stderr
    assert "USING_CPP_BACKEND is not True" in run.stdout
    assert issubclass(PeerMissing, RuntimeError)


@pytest.mark.parametrize("path_name", sorted(ITCHCPP_PARSE_PATHS))
def test_every_itchcpp_parse_path_sees_every_message(small_day, path_name):
    path, n = small_day
    assert ITCHCPP_PARSE_PATHS[path_name](path) == n


def test_itch_book_numpy_tables_sees_every_message(small_day):
    path, n = small_day
    assert itch_book_numpy_tables(path) == n


@pytest.mark.parametrize("path_name", sorted(ITCH_BOOK_PATHS))
def test_books_agree_with_itch_book_and_itchcpp(small_day, path_name):
    path, n = small_day
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(path)})
    books = OrderBooks(bbo=True)
    pipe.decoder.add_handlers(books)
    assert pipe.run().messages == n
    pipe.close()
    seen, table = ITCH_BOOK_PATHS[path_name](path)
    assert seen == n
    symbols = books.symbols()
    _, manager = itchcpp_books(path, list(symbols))
    agreed = assert_books_agree(books, books.take_bbo(), table, manager, symbols)
    assert agreed["symbols"] == 8 and agreed["bbo_changes"] > 1000
