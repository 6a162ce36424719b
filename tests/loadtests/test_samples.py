"""Exact samples: percentiles, and what workers ship to the master merges into the same figures."""

from __future__ import annotations

import math

from loadtests.samples import SampleBook, describe, percentile


def test_nearest_rank_percentiles():
    ordered = [float(v) for v in range(1, 101)]
    assert percentile(ordered, 0.50) == 50
    assert percentile(ordered, 0.95) == 95
    assert percentile(ordered, 1.0) == 100
    assert percentile([7.0], 0.95) == 7
    assert math.isnan(percentile([], 0.5))
    assert describe([3.0, 1.0, 2.0]) == {"count": 3, "min": 1.0, "p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "mean": 2.0}
    assert describe([]) == {"count": 0}


def test_drained_worker_reports_merge_into_the_run_figures():
    workers = [SampleBook(), SampleBook()]
    master = SampleBook()
    for i, book in enumerate(workers):
        for value in range(i * 50, i * 50 + 50):
            book.add("start notice", float(value))
        book.count("expected 401", 3)
        book.high("online", 100 + i)
    for book in workers:
        master.merge(book.drain())
    workers[0].add("start notice", 1000.0)
    master.merge(workers[0].drain())  # only what is new since the last report
    master.merge(workers[1].drain())  # nothing new: changes nothing
    figures = master.to_dict()
    assert figures["series"]["start notice"]["count"] == 101
    assert figures["series"]["start notice"]["max"] == 1000.0
    assert figures["counters"] == {"expected 401": 6}
    assert figures["maxima"] == {"online": 101}
