"""Helpers for the web UI tests: users, browsers (httpx clients with their own cookie jars), sign-in."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from argon2 import PasswordHasher

import vcs.users
from scheduler.booking import BookingService
from scheduler.participants import Groups
from scheduler.store import MeetingStore
from tests.web.ui.slots import local_slot
from vcs.registry import Registry
from vcs.roles import Principal, Role
from vcs.users import Users

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD, next_path: str = "/") -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"username": username, "password": password, "next": next_path, "csrf": _csrf_of(form.text)})


async def _post_form(client: httpx.AsyncClient, page: str, action: str, data: dict | None = None, **kwargs) -> httpx.Response:
    token = _csrf_of((await client.get(page)).text)
    return await client.post(action, data={**(data or {}), "csrf": token}, **kwargs)


@pytest.fixture
def csrf_of():
    """`csrf_of(html)`: the CSRF token in a page's forms."""
    return _csrf_of


@pytest.fixture
def sign_in():
    """`await sign_in(client, username, password=PASSWORD, next_path="/")`: the sign-in form, as a browser posts it."""
    return _sign_in


@pytest.fixture
def post_form():
    """`await post_form(client, page, action, data)`: open `page`, post `data` with its CSRF token to `action`."""
    return _post_form


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Argon2id still, at the lowest cost: the default spends ~0.1 s of CPU per hash, many times per test."""
    monkeypatch.setattr(vcs.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def add_user(redis):
    async def add(username: str, role: str = "admin", province: str | None = None, full_name: str = "", password: str = PASSWORD):
        return await Users(redis).add(username, password, role, province, full_name)

    return add


@pytest.fixture
def new_client(client_at):
    """A factory of browsers: each client keeps its own cookies."""
    return lambda: client_at("127.0.0.1")


@pytest.fixture
def signed_in(add_user, new_client):
    """A client signed in as a new user of this role."""

    async def make(role: str = "admin", username: str | None = None, province: str | None = None, full_name: str = "") -> httpx.AsyncClient:
        username = username or f"{role}-{province or 'all'}"
        await add_user(username, role, province, full_name)
        client = new_client()
        response = await _sign_in(client, username)
        assert response.status_code == 303, response.text
        return client

    return make


# --- meetings -----------------------------------------------------------------

@pytest.fixture
def booking_service(redis, live_server) -> BookingService:
    """The booking rules on the test server's store (the server has seeded the registry)."""
    return BookingService(MeetingStore(redis), Registry(redis), Groups(redis))


@pytest.fixture
def book(booking_service):
    """`await book(title=..., start=..., ...)`: a meeting booked by an admin through the booking rules, as the API does."""

    async def make(
        title: str = "Giao ban trực tuyến",
        start: datetime | None = None,
        minutes: int = 90,
        selector: dict | None = None,
        recurrence: str | None = None,
        host: str = "central",
        override: bool = False,
    ):
        body = {
            "title": title,
            "start": (start or local_slot()).isoformat(),
            "duration_minutes": minutes,
            "selector": selector or {"kind": "provinces", "province_codes": ["01"]},
            "recurrence": recurrence,
            "host_endpoint_id": host,
            "override_conflicts": override,
        }
        preview = await booking_service.create(Principal("admin", Role.ADMIN), body, datetime.now(UTC))
        return preview.meeting

    return make
