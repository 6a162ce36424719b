"""summary.md / summary.json from phase summaries: the headline figures and the verdicts."""

from __future__ import annotations

import json

from loadtests.report import headline, media_steps, write_report
from loadtests.run import step_label


def _phase(name: str, **samples) -> dict:
    return {
        "phase": name,
        "duration_s": 60.0,
        "users": {"EndpointUser": 3321},
        "totals": {"requests": 10, "failures": 0, "probes_as_expected": 2, "probes_not_as_expected": 0, "real_failures": 0},
        "api": None,
        "requests": [{"type": "WS", "name": "heartbeat", "count": 9, "failures": 0, "p50_ms": 0, "p95_ms": 1, "p99_ms": 1, "max_ms": 1, "avg_ms": 0.2, "rps": 332.1, "avg_bytes": 40}],
        "errors": [],
        "samples": {"series": {}, "counters": {}, "maxima": {}, **samples},
    }


def test_media_steps_give_loss_per_number_of_subscribers():
    samples = {
        "counters": {
            "media packets expected @10": 10000, "media packets lost @10": 12, "media packets expected @20": 20000, "media packets lost @20": 900,
            "media windows at tier 360p @10": 30, "media windows at tier 360p @20": 40, "media windows at tier audio @20": 20,
            "media packets expected @ramping": 500, "media packets lost @ramping": 3,
        },
        "series": {"media kbps @10": {"count": 30, "p50": 610.0}, "media kbps @20": {"count": 60, "p50": 580.0}},
    }
    assert media_steps(samples) == [
        {"subscribers": 10, "loss_pct": 0.12, "kbps_p50": 610.0, "windows": 30, "tiers": {"360p": 30}},
        {"subscribers": 20, "loss_pct": 4.5, "kbps_p50": 580.0, "windows": 60, "tiers": {"360p": 40, "audio": 20}},
    ]


def test_each_process_of_a_distributed_ramp_labels_the_whole_runs_step():
    steps = (60, 81, 100)
    assert [step_label(n, 2, steps) for n in (30, 40, 41, 50)] == ["60", "81", "81", "100"]
    assert step_label(35, 2, steps) == "ramping"  # spawning between steps
    assert step_label(35, 1, steps) == "35"


def test_report_states_the_start_notice_verdict(tmp_path):
    storm = _phase("storm", series={"start notice (by server_time)": {"count": 3321, "p50": 900.0, "p95": 1200.0, "max": 6100.0}}, maxima={"online communes (max seen)": 3321})
    figures = headline([storm])
    assert figures["online_communes_max"] == {"storm": 3321}
    assert figures["heartbeats_per_s"] == {"storm": 332.1}
    write_report(tmp_path, [storm], command="python -m loadtests", notes=["a note"])
    text = (tmp_path / "summary.md").read_text()
    assert "NOT met (max 6,100 ms)" in text
    assert "- a note" in text
    assert json.loads((tmp_path / "summary.json").read_text())["figures"]["start notice (by server_time)"]["storm"]["max"] == 6100.0
