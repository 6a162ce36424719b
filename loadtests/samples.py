"""Exact figures beside Locust's statistics: every sample kept, counters, and maxima, merged across processes.

Locust rounds response times into buckets (10 ms steps above 100 ms, 100 ms
above 1 s) before it computes percentiles; the summary wants the start-notice
delays and media figures exactly, so users also record them here. With
`--processes` each worker ships what it gathered since its last report to the
master (`report_to_master` / `worker_report`), which merges them.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

__all__ = ["SampleBook", "percentile", "describe"]

REPORT_KEY = "vcs_samples"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (`fraction` 0.95 for p95)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def describe(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "min": round(ordered[0], 1),
        "p50": round(percentile(ordered, 0.50), 1),
        "p95": round(percentile(ordered, 0.95), 1),
        "p99": round(percentile(ordered, 0.99), 1),
        "max": round(ordered[-1], 1),
        "mean": round(sum(ordered) / len(ordered), 1),
    }


class SampleBook:
    """Named series of numbers, named counters and named maxima of one process (or, merged, of the run)."""

    def __init__(self) -> None:
        self.series: dict[str, list[float]] = defaultdict(list)
        self.counters: Counter[str] = Counter()
        self.maxima: dict[str, float] = {}
        self._pending_series: dict[str, list[float]] = defaultdict(list)
        self._pending_counters: Counter[str] = Counter()
        self._pending_maxima: dict[str, float] = {}

    def add(self, name: str, value: float) -> None:
        self.series[name].append(value)
        self._pending_series[name].append(value)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n
        self._pending_counters[name] += n

    def high(self, name: str, value: float) -> None:
        if value > self.maxima.get(name, -math.inf):
            self.maxima[name] = value
        if value > self._pending_maxima.get(name, -math.inf):
            self._pending_maxima[name] = value

    # --- across processes -------------------------------------------------

    def drain(self) -> dict[str, Any]:
        """What changed since the last drain, for a worker's report to the master."""
        data = {"series": dict(self._pending_series), "counters": dict(self._pending_counters), "maxima": dict(self._pending_maxima)}
        self._pending_series, self._pending_counters, self._pending_maxima = defaultdict(list), Counter(), {}
        return data

    def merge(self, data: dict[str, Any]) -> None:
        for name, values in data.get("series", {}).items():
            self.series[name].extend(values)
        self.counters.update(data.get("counters", {}))
        for name, value in data.get("maxima", {}).items():
            if value > self.maxima.get(name, -math.inf):
                self.maxima[name] = value

    # --- reading ----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": {name: describe(values) for name, values in sorted(self.series.items())},
            "counters": dict(sorted(self.counters.items())),
            "maxima": dict(sorted(self.maxima.items())),
        }
