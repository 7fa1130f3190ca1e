"""Shared by the opt-in benchmarks: generated days cached in RXFEED_BENCH_DIR."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rxfeed.tools.generator import generate


@pytest.fixture(scope="session")
def bench_day(tmp_path_factory) -> Callable[..., Path]:
    """``bench_day(name, n)`` -> path of a generated day (16 symbols, seed 42),
    written once; ``writer(path)`` replaces the default generator call."""
    cache = Path(os.environ.get("RXFEED_BENCH_DIR") or tmp_path_factory.mktemp("bench"))
    cache.mkdir(parents=True, exist_ok=True)

    def get(name: str, n: int, writer: Callable[[Path], object] | None = None) -> Path:
        p = cache / name
        if not p.exists():
            (writer or (lambda q: generate(q, n, symbols=16, seed=42)))(p)
        return p

    return get
