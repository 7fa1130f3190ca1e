"""The atheris harnesses' properties (tests/fuzz/fuzz_*.py) hold on every
input of the committed seed corpus, and on any reproducer added there:
the same checks the sanitizer job fuzzes, run once per file in the suite."""

from __future__ import annotations

import importlib

import pytest

from tests.fuzz._harness import CORPUS_DIR

HARNESSES = ("pcap", "stream", "moldudp64", "books", "iex_books", "iex", "igmp")
CASES = [(h, f.name) for h in HARNESSES for f in sorted((CORPUS_DIR / h).iterdir())]


def test_every_harness_has_a_small_seed_corpus():
    for h in HARNESSES:
        files = list((CORPUS_DIR / h).iterdir())
        assert files and sum(f.stat().st_size for f in files) <= 16 * 1024, h


@pytest.mark.parametrize("harness,name", CASES)
def test_corpus_input_holds_the_harness_properties(harness, name):
    check = importlib.import_module(f"tests.fuzz.fuzz_{harness}").check
    check((CORPUS_DIR / harness / name).read_bytes())
