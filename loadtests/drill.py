"""`python -m loadtests.drill`: how long a drill of N rooms takes, and how many of its tests fail or show loss.

    python -m loadtests.drill [--rooms 50] [--concurrency 10] [--seconds 10]

A private `vcs serve` (web app and its embedded SFU node, its own data
directory, `VCS_READINESS_CONCURRENCY=--concurrency`) and, in this process,
a fleet of `--rooms` agents of Hà Nội on loopback with healthy links. Once
they are all connected, an admin starts a drill for Hà Nội; the board is read
until every room has a result. One line:

    rooms=50 concurrency=10 seconds_to_last_result=... ready=... at_risk=... failed=... lossy=...

Timings are figures, not a verdict (docs/readiness.md has the ones measured
here); the exit status is 0 when every room got a result in time.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from agent.fleet import Fleet, FleetConfig, FleetMember
from loadtests.cli import ServedDeployment
from rtc.ice import restrict_host_addresses
from vcs.endpoints import national_endpoints

HANOI = "01"
BOUND = 900.0  # seconds for the whole run, on a busy machine


def _vcs(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=True).stdout


async def run(served: ServedDeployment, rooms: int) -> dict:
    ids = [e.id for e in national_endpoints() if e.kind.value == "commune" and e.province_code == HANOI][:rooms]
    secret_csv = _vcs(["endpoint", "rotate-secret", *ids], served.env)
    secret_of = {row[0]: row[1] for row in csv.reader(io.StringIO(secret_csv)) if len(row) == 2}  # "id,secret" lines
    headers = {"Authorization": "Bearer " + _vcs(["token", "create", "--role", "admin", "--name", "drill-bench"], served.env).strip()}
    fleet = Fleet(FleetConfig(served.url, rooms, start_spread=5.0), [FleetMember(e, secret_of[e], "180p") for e in ids])
    await fleet.start()
    try:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            while fleet.counts()["connected"] < rooms:
                await asyncio.sleep(0.5)
            started = time.monotonic()
            drill = (await http.post("/api/v1/drills", json={"province": HANOI}, headers=headers)).raise_for_status().json()
            while True:
                board = (await http.get(f"/api/v1/drills/{drill['id']}/readiness", headers=headers)).raise_for_status().json()
                tested = [r for r in board["rooms"] if r["tested_at"]]
                if len(tested) >= rooms:
                    break
                await asyncio.sleep(0.5)
            took = time.monotonic() - started
            return {
                "seconds_to_last_result": round(took, 1),
                **{s: board["counts"][s] for s in ("ready", "at_risk", "failed")},
                "lossy": sum("loss" in r["reasons"] for r in tested),
                "below_plan": sum("tier_below_plan" in r["reasons"] for r in tested),
                "planned": sorted({r["planned_tier"] for r in tested}),
            }
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.drill", description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50, help="agents of Hà Nội (default 50)")
    parser.add_argument("--concurrency", type=int, default=10, help="rooms testing at once on the node (default 10)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds each test receives (default 10)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="vcs-drill-"))
    env = {**os.environ, "VCS_SECRET_KEY": secrets.token_urlsafe(40), "VCS_READINESS_CONCURRENCY": str(args.concurrency),
           "VCS_READINESS_TEST_SECONDS": str(args.seconds), "VCS_LOG_LEVEL": "WARNING"}  # fmt: skip
    env.pop("VCS_REDIS_URL", None)  # the private server starts its own
    served = ServedDeployment(workdir / "var", env, workdir / "serve.log")
    restrict_host_addresses(["127.0.0.1"])
    try:
        served.start()
        figures = asyncio.run(asyncio.wait_for(run(served, args.rooms), BOUND))
    except (TimeoutError, httpx.HTTPError, subprocess.CalledProcessError, OSError) as exc:
        print(f"drill: {type(exc).__name__}: {exc} (server log: {workdir / 'serve.log'})", file=sys.stderr)
        return 2
    finally:
        served.stop()
    print(f"rooms={args.rooms} concurrency={args.concurrency} " + " ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
