"""Organizers at work: sign in, search the registry, read the schedule and live state, book and cancel.

Each `OrganizerUser` waits until Locust has started every user of the phase
(the agents log in as they start), signs in with an account from the organizers file
(`POST /api/v1/auth/token`) and then, between pauses, lists endpoints with
filters and diacritic-free search, lists meetings, looks at a meeting's live
state and province counts, and now and then books a small meeting a few
hours ahead for a few communes of its own (so organizers never clash) and
looks at it; the next time round it cancels it (the agents of those communes
time how long the booking took to reach their schedule). Request names group
by what was asked, not by the URL.

Probes: it renews its session now and then (sign out, then the revoked token
must get 401); the first few organizers of a process try a wrong password for
an account that does not exist (expected 401). Those sign-in failures count
against the server's throttle, 20 per client address in 15 minutes, so they
come from their own client address in 198.18.0.0/15 (the benchmarking range,
RFC 2544) through `X-Forwarded-For`, which uvicorn honours from 127.0.0.1, and
they are few (`--vcs-bad-password-probes`).
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import gevent
from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

from vcs.divisions import communes, provinces

from loadtests.run import expect_refusal, run_of

__all__ = ["OrganizerUser", "REQUEST_NAMES", "TITLE_PREFIX"]

log = logging.getLogger(__name__)

TITLE_PREFIX = "[loadtest]"
OWN_COMMUNES = 4  # communes per organizer: its bookings never overlap another organizer's
SEARCHES = ("hoan kiem", "Ba Đình", "phuong", "xa tan", "Đặc khu", "son", "an", "long bien", "thanh", "bac")
ACCESS = ("gov_fiber", "4g", "satellite")
# the names this user's requests carry: the summary's "API (organizers)" figure aggregates them
REQUEST_NAMES = frozenset({
    "sign in", "sign out", "endpoints ?province&kind", "endpoints ?status&kind", "endpoints ?access&province",
    "endpoints ?q (search)", "endpoint /{id}", "meetings ?province", "meetings ?from&to", "meeting /{id}/live",
    "provinces", "province /{code}", "book meeting", "meeting /{id}", "cancel meeting",
})


class OrganizerUser(FastHttpUser):
    wait_time = between(2, 6)
    connection_timeout = 20.0
    network_timeout = 30.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.shared = run_of(environment)
        self.number = self.shared.number("organizer")
        self.username, self.password = "", ""
        self.token = ""
        self.listed: list[dict] = []
        self.booked: str | None = None
        # its own province hall hosts its meetings; two organizers of one province book two hours apart
        self.province_codes = [p.code for p in provinces()]
        self.home = self.province_codes[self.number % len(self.province_codes)]
        self.slot = self.number // len(self.province_codes)
        mine = [c.code for c in communes() if c.province_code == self.home]
        # a different window each run, so a meeting left over from an earlier run rarely overlaps
        first = (self.shared.organizer_seed + self.slot * OWN_COMMUNES) % max(1, len(mine) - OWN_COMMUNES)
        self.own_communes = mine[first : first + OWN_COMMUNES]
        self.first_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def on_start(self) -> None:
        if not self.shared.organizers:
            log.error("OrganizerUser needs --vcs-organizers (CSV username,password)")
            raise StopUser()
        # the working day starts with every agent connected: the agents' own login
        # storm (all of them in half a minute) is the join storm's subject, not the API's
        runner = self.environment.runner
        while runner is not None and runner.state == "spawning":
            gevent.sleep(1)
        if self.shared.bad_passwords_left > 0:
            self.shared.bad_passwords_left -= 1
            self.probe_wrong_password()
        self.username, self.password = self.shared.organizers[self.number % len(self.shared.organizers)]
        self.sign_in()

    def on_stop(self) -> None:
        if self.booked:
            self.cancel(self.booked)

    def sign_in(self) -> None:
        """Sign in, retrying a busy server a few times; a refused password stops the user."""
        body = {"username": self.username, "password": self.password}
        for attempt in range(5):
            with self.client.post("/api/v1/auth/token", json=body, name="sign in", catch_response=True) as response:
                if response.status_code == 200:
                    self.token = response.json()["token"]
                    return
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:120]}")
                if response.status_code in (401, 403):
                    raise StopUser()
            gevent.sleep(2**attempt * random.uniform(0.5, 1.5))
        raise StopUser()

    # --- reading --------------------------------------------------------

    @task(4)
    def list_endpoints(self) -> None:
        choice = random.random()
        params: dict[str, Any] = {"per_page": random.choice((20, 50, 100))}
        if choice < 0.35:
            params.update(province=random.choice(self.province_codes), kind="commune")
            name = "endpoints ?province&kind"
        elif choice < 0.55:
            params.update(status=random.choice(("online", "offline")), kind="commune")
            name = "endpoints ?status&kind"
        elif choice < 0.7:
            params.update(access=random.choice(ACCESS), province=random.choice(self.province_codes))
            name = "endpoints ?access&province"
        else:
            params.update(q=random.choice(SEARCHES), page=random.choice((1, 1, 2)))
            name = "endpoints ?q (search)"
        self.client.get("/api/v1/endpoints", params=params, headers=self.auth, name=name)

    @task(1)
    def view_endpoint(self) -> None:
        endpoint_id = random.choice(self.own_communes)
        self.client.get(f"/api/v1/endpoints/{endpoint_id}", headers=self.auth, name="endpoint /{id}")

    @task(3)
    def list_meetings(self) -> None:
        if random.random() < 0.3:
            params = {"province": random.choice(self.province_codes)}
            name = "meetings ?province"
        else:
            now = datetime.now(UTC)
            params = {"from": _iso(now - timedelta(hours=1)), "to": _iso(now + timedelta(days=7))}
            name = "meetings ?from&to"
        with self.client.get("/api/v1/meetings", params=params, headers=self.auth, name=name, catch_response=True) as response:
            if response.status_code == 200:
                self.listed = [m for m in response.json().get("items", []) if not m["title"].startswith(f"{TITLE_PREFIX} organizer")]

    @task(2)
    def view_live(self) -> None:
        """Live state of a meeting not booked by a load organizer (those come and go)."""
        if not self.listed:
            return
        meeting = random.choice(self.listed)
        with self.client.get(f"/api/v1/meetings/{meeting['meeting_id']}/live", headers=self.auth, name="meeting /{id}/live", catch_response=True) as response:
            if response.status_code == 404:  # cancelled meanwhile by whoever booked it
                response.success()
                self.listed.remove(meeting)

    @task(1)
    def view_provinces(self) -> None:
        self.client.get("/api/v1/provinces", headers=self.auth, name="provinces")
        self.client.get(f"/api/v1/provinces/{random.choice(self.province_codes)}", headers=self.auth, name="province /{code}")

    # --- booking --------------------------------------------------------

    @task(1)
    def book_or_cancel(self) -> None:
        """Book a small meeting a few hours ahead and look at it; the next time round, cancel it."""
        if self.booked:
            self.cancel(self.booked)
            return
        # from the hour this user started: a run that crosses an hour keeps each slot's window
        start = self.first_hour + timedelta(hours=3 + 2 * self.slot, minutes=random.randrange(0, 55, 5))
        body = {
            "title": f"{TITLE_PREFIX} organizer {self.number} briefing",
            "host_endpoint_id": f"hall-{self.home}",
            "start": _iso(start),
            "duration_minutes": 60,
            "selector": {"kind": "communes", "commune_ids": random.sample(self.own_communes, min(3, len(self.own_communes)))},
            "media": {"max_tier": "360p"},
        }
        with self.client.post("/api/v1/meetings", json=body, headers=self.auth, name="book meeting", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            self.booked = response.json()["meeting"]["id"]
        self.shared.booked[self.booked] = time.time()  # the communes' agents time their schedule update
        self.client.get(f"/api/v1/meetings/{self.booked}", headers=self.auth, name="meeting /{id}")
        self.client.get(f"/api/v1/meetings/{self.booked}/live", headers=self.auth, name="meeting /{id}/live")

    def cancel(self, meeting_id: str) -> None:
        with self.client.delete(f"/api/v1/meetings/{meeting_id}", headers=self.auth, name="cancel meeting", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
        self.booked = None

    # --- the edges ------------------------------------------------------

    @task(1)
    def renew_session(self) -> None:
        """Sign out and in again; the old token must be refused at once."""
        if random.random() > 0.2:
            return
        old = self.token
        with self.client.delete("/api/v1/auth/token", headers=self.auth, name="sign out", catch_response=True) as response:
            if response.status_code != 204:
                response.failure(f"HTTP {response.status_code}")
                return
        expect_refusal(self, "GET", "/api/v1/endpoints?per_page=1", 401, "revoked API token", headers={"Authorization": f"Bearer {old}"})
        self.sign_in()

    def probe_wrong_password(self) -> None:
        address = f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"
        body = {"username": f"lt-nobody-{secrets.token_hex(3)}", "password": secrets.token_urlsafe(12)}
        expect_refusal(self, "POST", "/api/v1/auth/token", 401, "sign in, wrong password", json=body, headers={"X-Forwarded-For": address})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
