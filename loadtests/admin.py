"""The join storm's admin: once every endpoint is online, book a national meeting a few minutes ahead.

`StormAdmin` waits for the spawn to complete and the registry to show every
endpoint user online, books one meeting for all communes (`selector: all`,
`override_conflicts: true`, so node capacity and the organizers' bookings do
not stop it) starting `--vcs-storm-lead` seconds later, follows its live state
until `--vcs-storm-hold` seconds past the start, then cancels it. The
scheduler sends readiness at once (T-15 min is past), `join` at warm-up
(T-2 min) and `start` at T to every endpoint; the endpoint users time them.

`MonitorUser` watches the deployment meanwhile: `/readyz` every 5 s and the
number of online communes every 10 s (kept as a maximum in the summary); in
the working day it also books canary meetings (see there).
"""

from __future__ import annotations

import logging
import math
import random
import time
from datetime import UTC, datetime
from typing import Any

import gevent
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from loadtests.organizer import TITLE_PREFIX
from loadtests.run import process_slot, run_of

__all__ = ["MediaAdmin", "MonitorUser", "StormAdmin", "online_communes"]

log = logging.getLogger(__name__)

ONLINE_WAIT = 120.0  # seconds past the spawn to wait for every endpoint to show online
CANARY_KEEP = 20.0  # seconds past its start before a canary is cancelled
LIVE_EVERY = 5.0


def online_communes(user: FastHttpUser, token: str, name: str = "endpoints ?status=online (count)") -> int | None:
    params = {"kind": "commune", "status": "online", "per_page": 1}
    with user.client.get("/api/v1/endpoints", params=params, headers={"Authorization": f"Bearer {token}"}, name=name, catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}")
            return None
        return int(response.json()["total"])


class StormAdmin(FastHttpUser):
    fixed_count = 1
    wait_time = constant(1)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = run_of(environment)
        self.settings = self.shared.settings
        self.done = False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def on_start(self) -> None:
        if not self.settings.admin_token:
            log.error("StormAdmin needs --vcs-admin-token-file")
            raise StopUser()

    @task
    def storm(self) -> None:
        if self.done:
            return
        self.done = True
        samples = self.shared.samples
        target = self.settings.endpoints or (len(self.shared.pool) if self.shared.pool else 0)
        self.shared.spawned.wait(ONLINE_WAIT + target / self.settings.spawn_rate)
        deadline = time.time() + ONLINE_WAIT
        online = 0
        while time.time() < deadline:
            online = online_communes(self, self.settings.admin_token) or 0
            if online >= target:
                break
            gevent.sleep(2)
        samples.high("online communes when booking", online)
        start = datetime.fromtimestamp(math.ceil(time.time() + self.settings.storm_lead), UTC)
        body = {
            "title": f"{TITLE_PREFIX} national meeting",
            "start": start.isoformat().replace("+00:00", "Z"),
            "duration_minutes": 60,
            "selector": {"kind": "all"},
            "override_conflicts": True,
        }
        with self.client.post("/api/v1/meetings", json=body, headers=self.auth, name="book national meeting", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            data = response.json()
        meeting_id = data["meeting"]["id"]
        samples.high("national meeting participants", data.get("participants", 0))
        log.info("national meeting %s booked for %s with %s participants", meeting_id, body["start"], data.get("participants"))
        until = start.timestamp() + self.settings.storm_hold
        while time.time() < until:
            self.look(meeting_id, start)
            gevent.sleep(max(0.0, min(LIVE_EVERY, until - time.time())))
        self.look(meeting_id, start)
        self.client.delete(f"/api/v1/meetings/{meeting_id}", headers=self.auth, name="cancel national meeting")

    def look(self, meeting_id: str, start: datetime) -> None:
        with self.client.get(f"/api/v1/meetings/{meeting_id}/live", headers=self.auth, name="national meeting /live", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            live = response.json()
        self.shared.samples.high("joined (server live state)", live.get("joined", 0))
        self.shared.samples.high("online of the expected (server live state)", live.get("online", 0))
        if time.time() >= start.timestamp():
            self.shared.samples.high("joined at or after T (server live state)", live.get("joined", 0))


class MediaAdmin(FastHttpUser):
    """The media ramp's meeting (`--vcs-media-meeting`): booked at once for the communes the media users will be.

    The media users take their identities province by province
    (`identities.across_provinces`), so the meeting spans as many provinces
    as it has subscribers, and the placement spreads them over the relays.
    It starts `--vcs-media-lead` seconds after booking, its warm-up past: the
    agents connected get `join` at once, the later ones join from their
    schedule. Its live view is read every 5 s (joined, and each node's
    subscribers); it is cancelled when the ramp ends.
    """

    fixed_count = 1
    wait_time = constant(LIVE_EVERY)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = run_of(environment)
        self.settings = self.shared.settings
        self.meeting_id: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def on_start(self) -> None:
        pool = self.shared.pool
        if not self.settings.admin_token or pool is None:
            log.error("MediaAdmin needs --vcs-admin-token-file and --vcs-secrets")
            raise StopUser()
        # every process takes every Nth identity: book enough of the order for the busiest process's share
        processes = process_slot(self.environment)[1]
        wanted = (math.ceil(max(self.settings.media_steps or (1,)) / processes) + 1) * processes
        seconds = len(self.settings.media_steps) * self.settings.media_step_seconds + self.settings.media_lead + 120
        body = {
            "title": f"{TITLE_PREFIX} media ramp",
            "start": datetime.fromtimestamp(math.ceil(time.time() + self.settings.media_lead), UTC).isoformat().replace("+00:00", "Z"),
            "duration_minutes": max(5, math.ceil(seconds / 60)),  # the API's shortest meeting
            "selector": {"kind": "communes", "commune_ids": pool.communes[:wanted]},
            "override_conflicts": True,
        }
        with self.client.post("/api/v1/meetings", json=body, headers=self.auth, name="book media meeting", catch_response=True) as response:
            if response.status_code != 201:  # the media users then wait in vain: their windows fail
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            self.meeting_id = response.json()["meeting"]["id"]
        self.shared.samples.high("media meeting participants", len(body["selector"]["commune_ids"]))

    @task
    def look(self) -> None:
        if self.meeting_id is None:
            return
        with self.client.get(f"/api/v1/meetings/{self.meeting_id}/live", headers=self.auth, name="media meeting /live", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
            live = response.json()
        samples = self.shared.samples
        samples.high("joined (server live state)", live.get("joined", 0))
        for node in live.get("nodes") or []:
            samples.high(f"subscribers on {node['role']} {node['id']} (live view)", node.get("subscribers", 0))
            samples.high(f"upstream streams of {node['role']} {node['id']} (live view)", node.get("upstream_streams", 0))

    def on_stop(self) -> None:
        if self.meeting_id is not None:
            self.look()
            self.client.delete(f"/api/v1/meetings/{self.meeting_id}", headers=self.auth, name="cancel media meeting")
            self.meeting_id = None


class MonitorUser(FastHttpUser):
    """Watches the deployment; with --vcs-canary-every it also books a canary now and then.

    A canary is a small meeting (three random communes) starting
    `--vcs-canary-lead` seconds after booking: its agents time the `join` and
    `start` notices, which shows how late lifecycle notices come while the
    rest of the load runs. It is cancelled shortly after its start.
    """

    fixed_count = 1
    wait_time = constant(5)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = run_of(environment)
        self.settings = self.shared.settings
        self.ticks = 0
        self.next_canary = time.time() + 5
        self.canary: tuple[str, float] | None = None  # meeting id, when to cancel it

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}

    def on_stop(self) -> None:
        if self.canary is not None:
            self.client.delete(f"/api/v1/meetings/{self.canary[0]}", headers=self.auth, name="cancel canary")
            self.canary = None

    @task
    def watch(self) -> None:
        restarting = self.settings.expect_restart
        with self.client.get("/readyz", name="readyz", catch_response=True) as response:
            if response.status_code == 0 and restarting:  # no connection: the orchestrator is restarting
                response.success()
                self.shared.samples.count("readyz refused while restarting")
                return
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
                return
        self.ticks += 1
        token = self.settings.admin_token
        if not token:
            return
        if self.ticks % 2 == 0:
            online = online_communes(self, token)
            if online is not None:
                self.shared.samples.high("online communes (max seen)", online)
        now = time.time()
        if self.canary is not None and now >= self.canary[1]:
            self.client.delete(f"/api/v1/meetings/{self.canary[0]}", headers=self.auth, name="cancel canary")
            self.canary = None
        if self.settings.canary_every and self.canary is None and now >= self.next_canary:
            self.next_canary = now + self.settings.canary_every
            self.book_canary()

    def book_canary(self) -> None:
        codes = self.shared.pool.communes if self.shared.pool is not None else []
        if len(codes) < 3:
            return
        start = math.ceil(time.time() + self.settings.canary_lead)
        body = {
            "title": f"{TITLE_PREFIX} canary",
            "start": datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z"),
            "duration_minutes": 5,
            "selector": {"kind": "communes", "commune_ids": random.sample(codes, 3)},
            "override_conflicts": True,
        }
        with self.client.post("/api/v1/meetings", json=body, headers=self.auth, name="book canary", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            self.canary = (response.json()["meeting"]["id"], start + CANARY_KEEP)
        self.shared.samples.count("canaries booked")
