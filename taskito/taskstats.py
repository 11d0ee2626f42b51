"""Per-task and per-queue figures from the task minutes (``taskito_task_minutes``): counts by outcome,
failure rate, and run and wait time percentiles read off the kept histograms."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from .storage.base import RUNTIME_BOUNDS

OUTCOMES = ("complete", "failed", "dead", "cancelled")
# An attempt that failed: retried ("failed") or the last one ("dead"). Cancelled jobs never ran.
FAILED_OUTCOMES = ("failed", "dead")


class Histogram:
    """Counts per kept bucket (upper bound ``le``: one of RUNTIME_BOUNDS, or infinity)."""

    def __init__(self) -> None:
        self.counts: dict[float, int] = {}
        self.count = 0
        self.sum = 0.0

    def add(self, le: float, n: int, total: float) -> None:
        if not le:  # 0: no time known
            return
        self.counts[le] = self.counts.get(le, 0) + n
        self.count += n
        self.sum += total

    def quantile(self, q: float) -> float | None:
        """The q-quantile, interpolated within its bucket (as Prometheus' histogram_quantile does);
        above the last bound, that bound. None without observations."""
        if self.count <= 0:
            return None
        rank = q * self.count
        seen = 0
        lower = 0.0
        for le in sorted(self.counts):
            n = self.counts[le]
            if n > 0 and seen + n >= rank:
                if math.isinf(le):
                    return lower
                return lower + (le - lower) * (rank - seen) / n
            seen += n
            lower = le if not math.isinf(le) else lower
        return lower

    def cumulative(self, bounds: Sequence[float] = RUNTIME_BOUNDS) -> list[int]:
        """Counts at or below each bound (Prometheus ``le`` buckets, +Inf not included)."""
        return [sum(n for le, n in self.counts.items() if le <= bound) for bound in bounds]

    def summary(self, quantiles: Sequence[float]) -> dict[str, Any]:
        figures: dict[str, Any] = {f"p{round(q * 100)}": self.quantile(q) for q in quantiles}
        figures["count"] = self.count
        figures["mean"] = self.sum / self.count if self.count else None
        return figures


class Totals:
    """What the attempts of one task (or queue) did."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.runtime = Histogram()
        self.wait = Histogram()

    def add(self, outcome: str, runtime_le: float, wait_le: float, n: int, runtime_sum: float,
            wait_sum: float) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + n
        self.runtime.add(runtime_le, n, runtime_sum)
        self.wait.add(wait_le, n, wait_sum)

    def figures(self) -> dict[str, Any]:
        attempts = sum(self.counts[outcome] for outcome in ("complete", *FAILED_OUTCOMES))
        failed = sum(self.counts[outcome] for outcome in FAILED_OUTCOMES)
        return {"counts": dict(self.counts), "attempts": attempts,
                "failure_rate": failed / attempts if attempts else 0.0,
                "runtime": self.runtime.summary((0.5, 0.95, 0.99)),
                "wait": self.wait.summary((0.5, 0.95))}


def totals_by(rows: Iterable[Sequence[Any]], key: int) -> dict[str, Totals]:
    """Rows of ``Storage.task_minutes`` added up by column ``key`` (0: queue, 1: task name)."""
    found: dict[str, Totals] = {}
    for row in rows:
        queue, task_name, outcome, runtime_le, wait_le, n, runtime_sum, wait_sum = row
        name = (queue, task_name)[key]
        found.setdefault(name, Totals()).add(outcome, float(runtime_le), float(wait_le), int(n),
                                             float(runtime_sum or 0), float(wait_sum or 0))
    return found
