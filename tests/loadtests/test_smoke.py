"""Every load user class against a real `vcs serve`, small and short, so the locustfiles cannot rot.

The runner (`python -m loadtests --serve --profile smoke`) starts `vcs serve`
on a free loopback port with its own data directory under tmp_path,
provisions it (endpoint secrets, an admin token, organizer accounts, media
tokens), then runs two headless Locust subprocesses: the smoke scenario (a
dozen endpoint agents, three organizers, the storm admin with a national
meeting a few seconds ahead, a monitor, two media subscribers and a studio)
and the reconnect storm (the orchestrator restarted mid-run). When `vcs
serve` embeds the SFU, the media users and the studio are agents of the
national meeting, joining the nodes their schedule names (a relay of `vcs
serve` on a machine of two cores or more); else media goes to the agent
tests' FakeSfu on another loopback port. Timings are never asserted here;
docs/loadtests.md has the measured figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rtc.ice import restrict_host_addresses
from tests.conftest import LiveServer, free_port
from tests.fake_sfu import FakeSfu
from tests.waiting import scaled

SECRET = "loadtest-smoke-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
RUN_LIMIT = scaled(180)  # seconds; the run takes about 45 on an idle machine

pytestmark = pytest.mark.timeout(RUN_LIMIT + 30)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the smoke profile once for the module; returns summary.json (with the report directory)."""
    reports = tmp_path_factory.mktemp("loadtest") / "reports"
    restrict_host_addresses(["127.0.0.1"])
    sfu = LiveServer(FakeSfu(SECRET).app, free_port())
    sfu.start()
    env = {**os.environ, "VCS_SECRET_KEY": SECRET, "VCS_LOG_LEVEL": "WARNING"}
    env.pop("VCS_REDIS_URL", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "loadtests", "--serve", "--profile", "smoke", "--reports", str(reports),
             "--media-fallback-url", f"{sfu.url}/sfu"],
            env=env, capture_output=True, text=True, timeout=RUN_LIMIT,
        )
    finally:
        sfu.stop()
        restrict_host_addresses([])
    summary_md = reports / "summary.md"
    shown = summary_md.read_text() if summary_md.exists() else done.stderr[-3000:]
    assert done.returncode == 0, f"the smoke run failed (exit {done.returncode}):\n{shown}"
    summary = json.loads((reports / "summary.json").read_text())
    summary["reports"] = reports
    return summary


def _phase(summary: dict, name: str) -> dict:
    phases = {p["phase"]: p for p in summary["phases"]}
    assert name in phases, f"phase {name} missing; have {sorted(phases)}"
    return phases[name]


def _requests(phase: dict) -> dict[str, dict]:
    return {r["name"]: r for r in phase["requests"]}


def test_every_user_class_ran_without_real_failures(smoke_run):
    smoke = _phase(smoke_run, "smoke")
    assert {cls for cls, n in smoke["users"].items() if n} == {
        "EndpointUser", "OrganizerUser", "StormAdmin", "MonitorUser", "MediaUser", "StudioUser",
    }
    assert smoke["totals"]["real_failures"] == 0, smoke["errors"]
    requests = _requests(smoke)
    wanted = [
        "agent login", "WS connect", "heartbeat", "start notice (by server_time)", "start notice (by local clock)",  # EndpointUser
        "sign in",  # OrganizerUser
        "book national meeting", "national meeting /live", "cancel national meeting",  # StormAdmin
        "readyz",  # MonitorUser
        "WHEP join", "media window",  # MediaUser
        "WHIP publish",  # StudioUser
    ]
    missing = [name for name in wanted if requests.get(name, {}).get("count", 0) == 0]
    assert not missing, f"no requests named {missing}"
    organizer_reads = [r for r in smoke["requests"] if r["name"].startswith(("endpoints ?", "meetings ?", "provinces", "endpoint /", "meeting /"))]
    assert sum(r["count"] for r in organizer_reads) > 0
    # every agent (endpoint users, media users and the studio) heard the national meeting start once, besides the
    # start of each canary the studio hosts (and any of its three communes online), and the server saw them all join
    endpoints = smoke["users"]["EndpointUser"]
    agents = endpoints + smoke["users"]["MediaUser"] + smoke["users"]["StudioUser"]
    canaries = requests.get("book canary", {}).get("count", 0)
    assert agents <= requests["start notice (by server_time)"]["count"] <= agents + 4 * canaries
    assert smoke["samples"]["maxima"]["joined (server live state)"] >= endpoints
    # the media users are agents of the national meeting: they subscribed on the node their entries named
    assert sum(n for k, n in smoke["samples"]["counters"].items() if k.startswith("WHEP joined on node")) == smoke["users"]["MediaUser"]


def test_probes_got_the_rejections_they_asked_for(smoke_run):
    smoke = _phase(smoke_run, "smoke")
    requests = _requests(smoke)
    for name in (
        "expected 401: agent login, wrong secret",
        "expected 401: heartbeat, expired agent token",
        "expected 403: socket, expired agent token",
        "expected 401: agent login, unknown endpoint",
        "expected 429: agent login after 5 failures",
        "expected error: malformed message",
        "expected 401: sign in, wrong password",
    ):
        assert requests.get(name, {}).get("count", 0) > 0, f"probe {name!r} did not run"
        assert requests[name]["failures"] == 0, f"probe {name!r} got an unexpected answer"
    assert smoke["totals"]["probes_not_as_expected"] == 0
    assert smoke["totals"]["probes_as_expected"] > 0


def test_agents_reconnect_after_the_orchestrator_restarts(smoke_run):
    restart = _phase(smoke_run, "restart")
    requests = _requests(restart)
    endpoints = restart["users"]["EndpointUser"]
    assert requests["expected drop: server restart"]["count"] >= endpoints
    assert requests["WS reconnect"]["count"] >= endpoints
    assert requests["WS reconnect"]["failures"] == 0
    assert restart["totals"]["real_failures"] == 0, restart["errors"]
    assert any("restarted" in note for note in smoke_run["notes"])


def test_reports_are_written(smoke_run):
    reports: Path = smoke_run["reports"]
    for name in ("summary.md", "summary.json", "smoke.html", "smoke_stats.csv", "restart.html", "restart_stats.csv"):
        assert (reports / name).is_file(), name
    assert "| smoke |" in (reports / "summary.md").read_text()
