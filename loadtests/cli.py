"""`python -m loadtests` (`make loadtest`; `vcs loadtest`): provision, run the scenarios, write reports/.

Against a running deployment (`--url`, default the deployment's public URL,
http://127.0.0.1:8000) whose data directory is local (`--data-dir`, default
`VCS_DATA_DIR` or ./var), or against a private one it starts itself
(`--serve`). It provisions credentials (`loadtests.provision`), then runs each
phase as a headless Locust process with a hard time limit, writing Locust's
HTML and CSV reports and a JSON summary per phase to `--reports`, and at the
end summary.md and summary.json.

Phases (`--profile full`): `day` (every commune's agent and the organizers),
`storm` (the national meeting's join storm), `restart` (the reconnect storm;
only when the runner can restart the orchestrator: `--serve` or
`--restart-command`), `media` (the media ramp; only when the deployment
embeds the SFU or `--media-url` names one). `--profile smoke` runs everything
small and short. Exit status 0 when every phase ran without real failures.

`add_loadtest_command(subparsers)` registers `loadtest` in a `vcs`-style
parser: its handler takes `(args, settings)`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from loadtests.provision import Provisioned, ProvisionError, find_sfu, provision, revoke
from loadtests.report import write_report

__all__ = ["PROFILES", "Profile", "add_loadtest_command", "main", "run_loadtest"]

SCENARIOS = Path(__file__).parent / "scenarios"
READY_TIMEOUT = 60.0
ONLINE_WAIT = 120.0  # loadtests.admin.ONLINE_WAIT (not imported: that module imports Locust)
RECONNECT_DEADLINE = 120.0  # seconds a dropped agent has to be back (loadtests.settings' default)
SERVED_DRAIN_TIMEOUT = 2  # seconds a served deployment's SFU waits for rooms to empty when stopped
SPAWNED = b"All users spawned"  # what Locust logs once the shape's users are all started


@dataclass(frozen=True)
class Profile:
    endpoints: int  # 0: every commune
    organizers: int
    accounts: int
    spawn_rate: float
    heartbeat: float
    probe_every: int
    hold: float  # the day's (or the smoke run's) hold
    storm_lead: float
    storm_hold: float
    restart_hold: float
    restart_after: float  # seconds into the restart phase's hold
    canary_every: float  # seconds between canary meetings in the working day
    canary_lead: float
    media_users: int  # media subscribers in the smoke run
    storm_media_users: int  # of the storm's agents, how many really subscribe at warm-up (WHEP)
    media_steps: str
    media_step_seconds: float
    phases: tuple[str, ...]


PROFILES = {
    "full": Profile(
        endpoints=0, organizers=50, accounts=10, spawn_rate=100, heartbeat=10, probe_every=100, hold=240,
        storm_lead=180, storm_hold=30, restart_hold=150, restart_after=20, canary_every=90, canary_lead=70, media_users=0, storm_media_users=20,
        media_steps="5,10,20,30,40,60", media_step_seconds=30, phases=("day", "storm", "restart", "media"),
    ),
    "smoke": Profile(
        endpoints=12, organizers=3, accounts=2, spawn_rate=20, heartbeat=2, probe_every=5, hold=10,
        storm_lead=8, storm_hold=3, restart_hold=14, restart_after=2, canary_every=6, canary_lead=5, media_users=2, storm_media_users=0,
        media_steps="2", media_step_seconds=10, phases=("smoke", "restart"),
    ),
}


# --- the deployment ---------------------------------------------------------


def wait_ready(url: str, timeout: float = READY_TIMEOUT) -> float:
    """Seconds until /readyz answers 200; raises TimeoutError."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url}/readyz did not answer within {timeout:.0f} s")


class ServedDeployment:
    """A private `vcs serve` on a free loopback port, started, restarted and stopped by the runner."""

    def __init__(self, data_dir: Path, env: dict[str, str], log: Path) -> None:
        # a restart should not wait the SFU's default 30 s for rooms to drain
        self.env = {"VCS_SFU_DRAIN_TIMEOUT": str(SERVED_DRAIN_TIMEOUT), **env, "VCS_DATA_DIR": str(data_dir)}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)], env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()
        return wait_ready(self.url)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> float:
        started = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- one phase --------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    scenario: str
    options: tuple[str, ...]
    bound: float  # seconds Locust may take before it is stopped
    restart_after: float | None = None  # restart the orchestrator this long after Locust spawned every user
    processes: int = 1


def _phases(profile: Profile, endpoints: int, *, restartable: bool, media: bool, processes: int, placed: bool = False) -> list[Phase]:
    """`placed`: the media users are agents of a meeting on the deployment's own nodes (relays too), not of a room's tokens."""
    users = endpoints + profile.organizers + 3
    spawn = users / profile.spawn_rate
    found = []
    for name in profile.phases:
        if name == "day":
            found.append(Phase(name, "day", ("--vcs-organizer-users", str(profile.organizers), "--vcs-hold", str(profile.hold),
                                             "--vcs-canary-every", str(profile.canary_every), "--vcs-canary-lead", str(profile.canary_lead)),
                               spawn + profile.hold + 90, processes=processes))
        elif name == "storm":
            bound = spawn + ONLINE_WAIT + profile.storm_lead + profile.storm_hold + 120
            options = ("--vcs-storm-lead", str(profile.storm_lead), "--vcs-storm-hold", str(profile.storm_hold))
            if placed and profile.storm_media_users:
                options += ("--vcs-media-users", str(min(profile.storm_media_users, endpoints)))
            found.append(Phase(name, "storm", options, bound, processes=processes))
        elif name == "restart" and restartable:
            # the hold waits for every agent to be back: room for a slow restart and the reconnect deadline
            found.append(Phase(name, "day", ("--vcs-organizer-users", "0", "--vcs-expect-restart", "--vcs-hold", str(profile.restart_hold),
                                             "--vcs-reconnect-deadline", str(RECONNECT_DEADLINE)),
                               spawn + profile.restart_hold + READY_TIMEOUT + RECONNECT_DEADLINE + 30, restart_after=profile.restart_after,
                               processes=processes))
        elif name == "media" and media:
            steps = [s for s in profile.media_steps.split(",") if s.strip()]
            options = ("--vcs-media-steps", profile.media_steps, "--vcs-media-step-seconds", str(profile.media_step_seconds))
            found.append(Phase(name, "media", options + (("--vcs-media-meeting",) if placed else ()),
                               len(steps) * profile.media_step_seconds + 90, processes=processes))
        elif name == "smoke":
            options = ["--vcs-organizer-users", str(profile.organizers), "--vcs-hold", str(profile.hold),
                       "--vcs-canary-every", str(profile.canary_every), "--vcs-canary-lead", str(profile.canary_lead),
                       "--vcs-storm-lead", str(profile.storm_lead), "--vcs-storm-hold", str(profile.storm_hold)]
            if media:
                # a smoke run checks the wiring: a media window fails only when nothing arrives
                options += ["--vcs-media-users", str(profile.media_users), "--vcs-loss-threshold", "100"]
            found.append(Phase(name, "smoke", tuple(options), spawn + profile.hold + 90))
    return found


def _locust_command(phase: Phase, url: str, reports: Path, creds: Provisioned, profile: Profile, endpoints: int, *, placed: bool = False) -> list[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(SCENARIOS / f"{phase.scenario}.py"),
        "--headless", "--only-summary", "--host", url,
        "--html", str(reports / f"{phase.name}.html"), "--csv", str(reports / phase.name),
        "--vcs-phase", phase.name, "--vcs-summary", str(reports / f"{phase.name}.json"),
        "--vcs-secrets", str(creds.secrets), "--vcs-admin-token-file", str(creds.admin_token_file),
        "--vcs-endpoints", str(endpoints), "--vcs-spawn-rate", str(profile.spawn_rate),
        "--vcs-heartbeat", str(profile.heartbeat), "--vcs-probe-every", str(profile.probe_every),
        *phase.options,
    ]
    if creds.organizers:
        command += ["--vcs-organizers", str(creds.organizers)]
    if creds.expired_agent_token_file:
        command += ["--vcs-expired-agent-token-file", str(creds.expired_agent_token_file)]
    if creds.media_target and phase.name in ("media", "smoke") and not placed:
        command += ["--vcs-media-target", str(creds.media_target), "--vcs-studio"]
    if phase.processes > 1:
        command += ["--processes", str(phase.processes)]
    return command


def run_phase(phase: Phase, command: list[str], reports: Path, restart: Any, notes: list[str]) -> dict[str, Any] | None:
    """Run Locust for one phase within its bound; returns its summary, or None when it wrote none."""
    print(f"loadtest: phase {phase.name} (at most {phase.bound:.0f} s)", file=sys.stderr, flush=True)
    summary = reports / f"{phase.name}.json"
    summary.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (reports / f"{phase.name}.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started = time.monotonic()
        spawned_at: float | None = None
        restarted = False
        try:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if phase.restart_after is not None and not restarted:
                    if spawned_at is None and SPAWNED in (reports / f"{phase.name}.log").read_bytes():
                        spawned_at = elapsed
                    if spawned_at is not None and elapsed >= spawned_at + phase.restart_after:
                        restarted = True
                        took = restart()
                        notes.append(f"{phase.name}: the orchestrator was restarted {elapsed:.0f} s into the phase; ready again after {took:.1f} s")
                if elapsed > phase.bound:
                    notes.append(f"{phase.name}: Locust overran its {phase.bound:.0f} s bound and was stopped")
                    process.send_signal(signal.SIGINT)  # Locust writes its reports on SIGINT
                    try:
                        process.wait(60)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                    break
                time.sleep(0.5)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    if not summary.exists():
        notes.append(f"{phase.name}: no summary written (Locust exit status {process.returncode}; see {phase.name}.log)")
        return None
    return json.loads(summary.read_text())


# --- the whole run ----------------------------------------------------------


def run_loadtest(args: argparse.Namespace, env: dict[str, str], default_url: str) -> int:
    reports = Path(args.reports).resolve()
    reports.mkdir(parents=True, exist_ok=True)
    profile = PROFILES[args.profile]
    if args.phases:
        profile = replace(profile, phases=tuple(p.strip() for p in args.phases.split(",") if p.strip()))
    overrides = {k: getattr(args, k) for k in ("organizers", "hold", "storm_lead", "spawn_rate") if getattr(args, k) is not None}
    profile = replace(profile, **overrides)
    if args.media_steps:
        profile = replace(profile, media_steps=args.media_steps)
    if args.data_dir:
        env = {**env, "VCS_DATA_DIR": str(Path(args.data_dir).resolve())}
    notes: list[str] = []
    run_id = time.strftime("%Y%m%d%H%M%S")
    served = None
    url = (args.url or default_url).rstrip("/")
    if args.serve:
        data_dir = reports / "deployment" / "var"
        served = ServedDeployment(data_dir, env, reports / "deployment.log")
        env = served.env
        url = served.url
        took = served.start()
        notes.append(f"a private deployment was served from {data_dir} on {url} (ready after {took:.1f} s)")
    try:
        wait_ready(url, 15)
        media_base = args.media_url.rstrip("/") if args.media_url else find_sfu(url)
        # the deployment's own nodes: media users are agents of meetings, each joining where the placement puts it
        placed = media_base is not None and not args.media_url
        if media_base is None and args.media_fallback_url:
            media_base = args.media_fallback_url.rstrip("/")
            notes.append(f"no SFU at /sfu/whep/ on this deployment: media users went to {media_base}")
        if media_base is None:
            notes.append("no SFU at /sfu/whep/ on this deployment and no --media-url: the media figures are left for later")
        creds = provision(
            reports / "provision", env, run_id=run_id, organizer_accounts=min(profile.accounts, max(profile.organizers, 1)),
            secrets_file=Path(args.secrets) if args.secrets else None, media_base=media_base,
            media_subscribers=max([profile.media_users] + [int(n) for n in profile.media_steps.split(",") if n.strip()]),
        )
        notes += creds.notes
        communes = sum(1 for line in creds.secrets.read_text().splitlines() if line[:1].isdigit())
        endpoints = min(args.endpoints or profile.endpoints or communes, communes)
        restart = served.restart if served else (_shell_restart(args.restart_command, url) if args.restart_command else None)
        if args.storm_media_users is not None:
            profile = replace(profile, storm_media_users=args.storm_media_users)
        phases = _phases(profile, endpoints, restartable=restart is not None, media=media_base is not None, processes=args.processes, placed=placed)
        if "restart" in profile.phases and restart is None:
            notes.append("restart phase skipped: give --restart-command or use --serve")
        results = []
        for phase in phases:
            wait_ready(url)
            result = run_phase(phase, _locust_command(phase, url, reports, creds, profile, endpoints, placed=placed), reports, restart, notes)
            if result is not None:
                results.append(result)
            try:
                wait_ready(url, 30)
                notes.append(f"{phase.name}: /readyz answered after the phase")
            except TimeoutError:
                notes.append(f"{phase.name}: /readyz did NOT answer within 30 s after the phase")
        if revoke(url, creds.admin_token):
            notes.append("the run's admin token was revoked")
    except (ProvisionError, TimeoutError) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2
    finally:
        if served is not None:
            served.stop()
    command = "python -m loadtests " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    write_report(reports, results, command=command, notes=notes)
    failures = sum(r["totals"]["real_failures"] for r in results)
    missing = len(phases) - len(results)
    print(f"loadtest: {len(results)} phase(s), {failures} real failure(s); see {reports / 'summary.md'}", file=sys.stderr)
    return 0 if failures == 0 and missing == 0 else 1


def _shell_restart(command: str, url: str):  # type: ignore[no-untyped-def]
    def restart() -> float:
        started = time.monotonic()
        subprocess.run(command, shell=True, check=False, timeout=120)
        wait_ready(url, 120)
        return time.monotonic() - started

    return restart


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the deployment (default VCS_PUBLIC_URL or http://127.0.0.1:8000)")
    parser.add_argument("--data-dir", help="its data directory, for provisioning (default VCS_DATA_DIR or ./var)")
    parser.add_argument("--serve", action="store_true", help="start a private `vcs serve` under REPORTS/deployment instead")
    parser.add_argument("--reports", default="reports", help="where reports go (default ./reports)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full", help="which phases and sizes (default full; smoke is short)")
    parser.add_argument("--phases", help="comma-separated subset of the profile's phases")
    parser.add_argument("--endpoints", type=int, help="endpoint users (default: every commune)")
    parser.add_argument("--organizers", type=int, help="organizer users (default 50)")
    parser.add_argument("--hold", type=float, help="seconds the working day holds after the spawn")
    parser.add_argument("--storm-lead", type=float, help="seconds between booking the national meeting and its start")
    parser.add_argument("--spawn-rate", type=float, help="users started per second")
    parser.add_argument("--processes", type=int, default=1, help="Locust processes for the agent and media phases (default 1)")
    parser.add_argument("--secrets", help="reuse this endpoint_id,secret CSV instead of rotating every secret")
    parser.add_argument("--media-url", help="SFU base URL, e.g. http://127.0.0.1:8000/sfu (default: the deployment's, if any)")
    parser.add_argument("--media-fallback-url", help="SFU base URL to use only when the deployment has none (tests)")
    parser.add_argument("--media-steps", help="media subscribers per step, e.g. 5,10,20,40")
    parser.add_argument("--storm-media-users", type=int,
                        help="of the storm's agents, how many subscribe for real at warm-up (default 20; the deployment's own SFU only)")
    parser.add_argument("--restart-command", help="shell command that restarts the orchestrator (restart phase)")


def add_loadtest_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `loadtest` in a `vcs`-style parser; the handler is called as func(args, settings)."""
    command = subparsers.add_parser("loadtest", help="provision and run the Locust load tests headless; reports in ./reports")
    add_arguments(command)
    command.set_defaults(func=_from_vcs)


def _from_vcs(args: argparse.Namespace, settings: Any) -> int:
    return run_loadtest(args, dict(os.environ), settings.public_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    env = dict(os.environ)
    default_url = env.get("VCS_PUBLIC_URL") or f"http://{env.get('VCS_HOST', '127.0.0.1')}:{env.get('VCS_PORT', '8000')}"
    return run_loadtest(args, env, default_url)
