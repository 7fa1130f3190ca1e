"""Interleaved timing for benchmarks on a noisy shared machine.

Contenders run one after another inside each round, the order rotated from
round to round (so none always runs first, after the page cache warmed, or
right after the heaviest one), with the garbage collector off while the clock
runs. Each run is timed by the wall clock and by this process's CPU time.
Ratios are reported two ways: of the best runs (min), and the median of the
per-round ratios (each round's contenders ran within a second of each other,
so a load change between rounds cancels out).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCKS = ("cpu", "wall")


@dataclass
class Runs:
    """Times (seconds) of every run of one contender, by clock, round by round,
    and the value its last run returned."""

    times: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CLOCKS})
    last: Any = None

    def best(self, clock: str = "cpu") -> float:
        return min(self.times[clock])

    def median(self, clock: str = "cpu") -> float:
        return statistics.median(self.times[clock])


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, fn's result), the GC off meanwhile."""
    gc.collect()
    gc.disable()
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        return time.perf_counter() - w0, time.process_time() - c0, out
    finally:
        gc.enable()


class Race:
    """Contenders timed round by round, the order rotated each round. A
    contender is a ``prepare()`` (not timed: open files, build objects) that
    returns the callable to time; ``check(name, result)`` runs after each
    run, outside the clock. ``round()`` fits ``benchmark.pedantic``."""

    def __init__(self, contenders: dict[str, Callable[[], Callable[[], Any]]],
                 check: Callable[[str, Any], None] | None = None) -> None:
        self.contenders, self.check = contenders, check
        self.runs = {n: Runs() for n in contenders}
        self.rounds = 0

    def warm_up(self) -> None:
        """Each contender once, not recorded (page cache, lazy imports, allocator)."""
        for name, prepare in self.contenders.items():
            out = prepare()()
            if self.check is not None:
                self.check(name, out)

    def round(self) -> None:
        names = list(self.contenders)
        k = self.rounds % len(names)
        for name in names[k:] + names[:k]:
            wall, cpu, out = timed(self.contenders[name]())
            if self.check is not None:
                self.check(name, out)
            self.runs[name].times["wall"].append(wall)
            self.runs[name].times["cpu"].append(cpu)
            self.runs[name].last = out
        self.rounds += 1


def ratios(runs: dict[str, Runs], num: str, den: str, clock: str = "cpu") -> dict[str, float]:
    """``num`` / ``den`` run time: of the best runs, and the median per-round ratio."""
    per_round = [a / b for a, b in zip(runs[num].times[clock], runs[den].times[clock])]
    return {"of_best": runs[num].best(clock) / runs[den].best(clock), "median_paired": statistics.median(per_round)}


def machine(workload: str) -> str:
    """One line naming the machine (CPU model, vCPUs, kernel, Python), ``workload`` and the load now."""
    model = "?"
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{platform.machine()} {os.cpu_count()} vCPU {model}, Linux {platform.release()}, "
            f"python {platform.python_version()}; {workload}; load {os.getloadavg()[0]:.1f}")
