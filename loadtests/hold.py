"""`python -m loadtests.hold`: a meeting of N commune rooms held for M minutes on a CPU-starved machine.

    python -m loadtests.hold [--rooms 50] [--minutes 5] [--hogs 2] [--out reports/hold.json]

The README's steps, scripted: a private `vcs serve` (its own data directory,
a free loopback port), `vcs fleet --count N --with-host` in another process,
and, with `--hogs`, that many processes spinning to keep the cores busy. It
books a meeting of those N communes a minute ahead, then reads the live view
every 5 s from the start for `--minutes`, and reports the fewest and most
rooms joined, the server's consent expiries and the fleet's media drops,
and the node's admission figures. Exit status 0 when every reading showed
all N rooms joined. docs/loadtests.md has the figures measured here.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from loadtests.cli import ServedDeployment
from vcs.divisions import communes

LEAD_S = 60.0  # the fleet connects and the scheduler sends the warm-up before the start
SAMPLE_S = 5.0


def _spin() -> None:
    while True:
        pass


def _admin_token(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "app.cli", "token", "create", "--role", "admin", "--name", "hold"],
                          env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def _count(path: Path, pattern: str) -> int:
    return len(re.findall(pattern, path.read_text(errors="replace"), flags=re.IGNORECASE)) if path.exists() else 0


def _metric(text: str, name: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(name):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name):]] = float(value)
    return found


def hold(rooms: int, minutes: float, hogs: int, workdir: Path) -> dict:
    env = {**os.environ, "VCS_SECRET_KEY": secrets.token_urlsafe(40), "VCS_LOG_LEVEL": "INFO"}
    env.pop("VCS_REDIS_URL", None)
    served = ServedDeployment(workdir / "var", env, workdir / "serve.log")
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(hogs)]
    fleet = None
    readings: list[dict] = []
    try:
        served.start()
        for spinner in spinners:
            spinner.start()
        with (workdir / "fleet.log").open("wb") as log:
            fleet = subprocess.Popen([sys.executable, "-m", "app.cli", "fleet", "--server", served.url, "--count", str(rooms),
                                      "--with-host", "--publish-tier", "audio"],
                                     env=served.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        headers = {"Authorization": f"Bearer {_admin_token(served.env)}"}
        ids = [c.code for c in communes()[:rooms]]
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_S)
        body = {"title": "Giữ kết nối khi máy bận", "start": start.isoformat(), "duration_minutes": int(minutes) + 5,
                "selector": {"kind": "communes", "commune_ids": ids}}  # fmt: skip
        with httpx.Client(base_url=served.url, timeout=30, headers=headers) as http:
            created = http.post("/api/v1/meetings", json=body)
            created.raise_for_status()
            meeting_id = created.json()["meeting"]["id"]
            time.sleep(max(0.0, start.timestamp() - time.time()))
            until = time.monotonic() + minutes * 60
            while time.monotonic() < until:
                state = http.get(f"/api/v1/meetings/{meeting_id}/live").json()
                readings.append({"at": round(time.time() - start.timestamp(), 1), "joined": state["joined"],
                                 "online": state["online"], "failed": state["failed"]})  # fmt: skip
                print(f"hold: +{readings[-1]['at']:.0f} s joined {state['joined']}/{rooms} online {state['online']} "
                      f"failed {state['failed']}", file=sys.stderr, flush=True)  # fmt: skip
                time.sleep(SAMPLE_S)
            metrics = http.get("/sfu/metrics").text
    finally:
        if fleet is not None:
            fleet.terminate()
            fleet.wait(60)
        for spinner in spinners:
            spinner.terminate()
        served.stop()
    joined = [r["joined"] for r in readings]
    return {
        "rooms": rooms, "minutes": minutes, "hogs": hogs, "cores": os.cpu_count(), "readings": len(readings),
        "joined_min": min(joined, default=0), "joined_max": max(joined, default=0),
        "all_joined_throughout": bool(joined) and min(joined) == rooms,
        "consent_expired (server log)": _count(workdir / "serve.log", r"consent to send expired"),
        "media lost, rejoining (fleet log)": _count(workdir / "fleet.log", r"lost the media"),
        "join failures (fleet log)": _count(workdir / "fleet.log", r"could not join"),
        "admission": _metric(metrics, "vcs_sfu_admission_total"),
        "consent_unanswered": sum(_metric(metrics, "vcs_sfu_consent_unanswered_total").values()),
        "loop_lag_s": sum(_metric(metrics, "vcs_sfu_loop_lag_seconds_total").values()),
        "work_dir": str(workdir),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.hold", description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2, help="spinning processes (default: one per core)")
    parser.add_argument("--out", type=Path, help="write the summary as JSON here too")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="vcs-hold-"))
    summary = hold(args.rooms, args.minutes, args.hogs, workdir)
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if summary["all_joined_throughout"] else 1


if __name__ == "__main__":
    sys.exit(main())
