"""The run's report for ops: summary.md (read first) and summary.json, from the phases' summaries.

The runner (`loadtests.cli`) calls `write_report` after the last phase; it
imports no Locust (which would monkey-patch the runner).
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

__all__ = ["headline", "markdown", "media_steps", "write_report"]

TARGET_START_NOTICE_MS = 5000
TARGET_API_P95_MS = 200


def _ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def media_steps(samples: dict[str, Any]) -> list[dict[str, Any]]:
    """Loss and bitrate per number of running subscribers, from the media windows' counters."""
    counters = samples.get("counters", {})
    steps = []
    for name, expected in counters.items():
        if not name.startswith("media packets expected @"):
            continue
        label = name.rsplit("@", 1)[1]
        if not label.isdigit():
            continue  # windows taken while a distributed ramp spawned its next step
        running = int(label)
        lost = counters.get(f"media packets lost @{running}", 0)
        kbps = samples.get("series", {}).get(f"media kbps @{running}", {})
        tiers = {
            key.split(" ")[4]: n
            for key, n in counters.items()
            if key.startswith("media windows at tier ") and key.endswith(f" @{running}")
        }
        steps.append({
            "subscribers": running,
            "loss_pct": round(100 * lost / expected, 3) if expected else None,
            "kbps_p50": kbps.get("p50"),
            "windows": kbps.get("count", 0),
            "tiers": dict(sorted(tiers.items())),
        })
    return sorted(steps, key=lambda s: s["subscribers"])


def headline(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures issue 6 asks for, read from the phases that measured them."""
    figures: dict[str, Any] = {}
    for phase in phases:
        name, samples = phase["phase"], phase.get("samples", {})
        series, maxima = samples.get("series", {}), samples.get("maxima", {})
        if "online communes (max seen)" in maxima:
            figures.setdefault("online_communes_max", {})[name] = maxima["online communes (max seen)"]
        heartbeats = next((r for r in phase["requests"] if r["name"] == "heartbeat"), None)
        if heartbeats:
            figures.setdefault("heartbeats_per_s", {})[name] = heartbeats["rps"]
        if phase.get("api"):
            figures.setdefault("api", {})[name] = {k: phase["api"][k] for k in ("count", "failures", "p50_ms", "p95_ms", "max_ms", "rps")}
        for key in ("start notice (by server_time)", "start notice (by local clock)", "join notice (by server_time)", "WS connect", "WS reconnect", "WHEP join"):
            if key in series and series[key].get("count"):
                figures.setdefault(key, {})[name] = series[key]
        for key in ("national meeting participants", "joined (server live state)", "online communes when booking"):
            if key in maxima:
                figures.setdefault(key, {})[name] = maxima[key]
        steps = media_steps(samples)
        if steps:
            figures.setdefault("media_steps", {})[name] = steps
        figures.setdefault("failures", {})[name] = phase["totals"]["real_failures"]
        figures.setdefault("probes_as_expected", {})[name] = phase["totals"]["probes_as_expected"]
    return figures


def write_report(directory: Path, phases: list[dict[str, Any]], *, command: str, notes: list[str]) -> None:
    """summary.json (everything) and summary.md (what ops read first) in `directory`."""
    figures = headline(phases)
    report = {"command": command, "machine": machine(), "figures": figures, "notes": notes, "phases": phases}
    (directory / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (directory / "summary.md").write_text(markdown(report))


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": memory, "python": platform.python_version(), "system": platform.platform()}


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Load test summary", "", f"Command: `{report['command']}`", ""]
    m = report["machine"]
    lines += [f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory']}, Python {m['python']}", ""]
    lines += ["| phase | requests | real failures | probes as expected | duration |", "|---|---:|---:|---:|---:|"]
    for phase in report["phases"]:
        t = phase["totals"]
        lines.append(f"| {phase['phase']} | {t['requests']:,} | {t['real_failures']:,} | {t['probes_as_expected']:,} | {phase['duration_s']:.0f} s |")
    lines.append("")
    for phase in report["phases"]:
        lines += _phase_lines(phase)
    if report["notes"]:
        lines += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    return "\n".join(lines)


def _phase_lines(phase: dict[str, Any]) -> list[str]:
    samples = phase.get("samples", {})
    series, maxima, counters = samples.get("series", {}), samples.get("maxima", {}), samples.get("counters", {})
    lines = [f"## {phase['phase']}", ""]
    users = ", ".join(f"{n:,} {cls}" for cls, n in phase.get("users", {}).items() if n)
    if users:
        lines += [f"Users: {users}.", ""]
    for key, value in maxima.items():
        lines.append(f"- {key}: {value:,.0f}")
    for key, value in counters.items():
        if not key.startswith("media packets"):
            lines.append(f"- {key}: {value:,}")
    if maxima or counters:
        lines.append("")
    timed = [(k, v) for k, v in series.items() if v.get("count") and not k.startswith("media kbps @")]
    if timed:
        lines += ["| exact samples | count | p50 | p95 | max |", "|---|---:|---:|---:|---:|"]
        for key, v in timed:
            unit = (lambda x: f"{x:,.1f}") if ("kbps" in key or "%" in key) else _ms
            lines.append(f"| {key} | {v['count']:,} | {unit(v['p50'])} | {unit(v['p95'])} | {unit(v['max'])} |")
        lines.append("")
        start = series.get("start notice (by server_time)")
        if start and start.get("count"):
            verdict = "met" if start["max"] <= TARGET_START_NOTICE_MS else "NOT met"
            lines += [f"Target \"every start notice within 5 s of T\": {verdict} (max {_ms(start['max'])}).", ""]
    if phase.get("api"):
        api = phase["api"]
        verdict = "met" if (api["p95_ms"] or 0) <= TARGET_API_P95_MS else "NOT met"
        lines += [f"API (organizers): {api['count']:,} requests, p50 {_ms(api['p50_ms'])}, p95 {_ms(api['p95_ms'])}, "
                  f"max {_ms(api['max_ms'])}, {api['failures']} failures; target p95 < 200 ms {verdict}.", ""]
    steps = media_steps(samples)
    if steps:
        lines += ["| media subscribers | loss | bitrate p50 | windows | tiers received (windows) |", "|---:|---:|---:|---:|---|"]
        for s in steps:
            tiers = ", ".join(f"{t} {n}" for t, n in s["tiers"].items())
            lines.append(f"| {s['subscribers']} | {s['loss_pct']} % | {s['kbps_p50']} kbps | {s['windows']} | {tiers} |")
        lines.append("")
    lines += ["| type | name | count | failures | p50 | p95 | max | req/s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in phase["requests"]:
        lines.append(f"| {r['type']} | {r['name']} | {r['count']:,} | {r['failures']:,} | {_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | {_ms(r['max_ms'])} | {r['rps']} |")
    lines.append("")
    if phase["errors"]:
        lines += ["Failures:", ""] + [f"- {e['occurrences']} × {e['type']} {e['name']}: {e['error']}" for e in phase["errors"]] + [""]
    return lines
