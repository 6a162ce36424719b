"""One phase's summary, written by the Locust process at exit: Locust's statistics plus the exact samples.

Requests named "expected ..." are probes that got the rejection they asked
for (a wrong secret's 401, a revoked token's 401, a refused reconnect while
the server restarts); they are counted apart and never as failures. Real
failures are Locust's failures. "API (organizers)" aggregates the organizer
users' requests (Locust's own, bucketed percentiles). `loadtests.report`
turns the phases into summary.md / summary.json.
"""

from __future__ import annotations

import json
import time
from typing import Any

from locust.stats import StatsEntry

from loadtests.organizer import REQUEST_NAMES as ORGANIZER_REQUESTS
from loadtests.run import run_of

__all__ = ["phase_summary", "write_phase"]

EXPECTED = "expected "


def _entry(entry: StatsEntry) -> dict[str, Any]:
    count = entry.num_requests
    return {
        "type": entry.method,
        "name": entry.name,
        "count": count,
        "failures": entry.num_failures,
        "avg_ms": round(entry.avg_response_time, 1) if count else None,
        "p50_ms": entry.get_response_time_percentile(0.50) if count else None,
        "p95_ms": entry.get_response_time_percentile(0.95) if count else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if count else None,
        "max_ms": round(entry.max_response_time, 1) if count else None,
        "rps": round(entry.total_rps, 2),
        "avg_bytes": round(entry.avg_content_length, 1) if count else None,
    }


def phase_summary(environment: Any) -> dict[str, Any]:
    stats = environment.stats
    run = run_of(environment)
    entries = [e for e in stats.entries.values() if e.num_requests or e.num_failures]
    probes = [e for e in entries if e.name.startswith(EXPECTED)]
    real = [e for e in entries if not e.name.startswith(EXPECTED)]
    api = StatsEntry(stats, "API (organizers)", "", use_response_times_cache=False)
    for entry in real:
        if entry.name in ORGANIZER_REQUESTS:
            api.extend(entry)
    runner = environment.runner
    return {
        "phase": run.settings.phase,
        "host": environment.host,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "duration_s": round(stats.last_request_timestamp - stats.start_time, 1) if stats.last_request_timestamp else 0,
        "users": dict(getattr(runner, "final_user_classes_count", {}) or {}),
        "totals": {
            "requests": stats.total.num_requests,
            "failures": stats.total.num_failures,
            "probes_as_expected": sum(e.num_requests - e.num_failures for e in probes),
            "probes_not_as_expected": sum(e.num_failures for e in probes),
            "real_failures": sum(e.num_failures for e in real),
        },
        "api": _entry(api) if api.num_requests else None,
        "requests": [_entry(e) for e in sorted(entries, key=lambda e: (e.method, e.name))],
        "errors": [
            {"type": e.method, "name": e.name, "error": str(e.error)[:300], "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
        "samples": run.samples.to_dict(),
    }


def write_phase(environment: Any) -> None:
    path = run_of(environment).settings.summary
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(phase_summary(environment), indent=2, ensure_ascii=False))
