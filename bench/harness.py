"""The benchmark contract (ARCHITECTURE.md section 4).

A benchmark measures a subject and a baseline (the physical floor or the best peer) in the same
run and prints, last, one line::

    <name>: subject=<value><unit> baseline=<value><unit> ratio=<r> goal=<op><g>

Absolute times are not stable on a shared machine; ratios are. Each side is timed several
times, alternating, and the best run of each is kept (the least disturbed by other load).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Result", "best_time", "report", "runtime_gc"]


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    subject: float
    baseline: float
    unit: str
    ratio: float
    op: str
    goal: float

    @property
    def met(self) -> bool:
        return self.ratio <= self.goal if self.op == "<=" else self.ratio >= self.goal

    def line(self) -> str:
        return (
            f"{self.name}: subject={self.subject:.4g}{self.unit} "
            f"baseline={self.baseline:.4g}{self.unit} ratio={self.ratio:.3f} "
            f"goal={self.op}{self.goal:g}"
        )


def runtime_gc() -> None:
    """The collector settings every Willow process runs with (shells call this at start-up).

    Replay allocates many small long-lived objects; CPython's default thresholds would walk
    them over and over. Larger young-generation thresholds keep collection amortized.
    """
    gc.set_threshold(100_000, 50, 100)


def best_time(
    subject: Callable[[], object], baseline: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Best wall time of each callable over ``rounds`` alternating runs."""
    best_s = best_b = float("inf")
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        baseline()
        best_b = min(best_b, time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        subject()
        best_s = min(best_s, time.perf_counter() - t0)
    return best_s, best_b


def report(result: Result, notes: list[str] | None = None) -> Result:
    for note in notes or ():
        print(f"  {note}")
    print(result.line(), flush=True)
    return result
