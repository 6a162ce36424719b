"""Playwright against Debian's chromium and a live server.

Without /usr/bin/chromium (or the playwright package) these tests skip with
the reason, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

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

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # the host console asks for the camera: a synthetic camera and microphone, allowed without a prompt
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "correct horse battery staple"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser, live_server) -> AsyncIterator:
    context = await browser.new_context(base_url=live_server.url, viewport=VIEWPORT, timezone_id="Asia/Ho_Chi_Minh", locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        await context.close()


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Argon2id still, at the lowest cost: the default spends ~0.1 s of CPU per hash, many times per test."""
    monkeypatch.setattr(vcs.users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def add_user(redis):
    async def add(username: str, role: str = "admin", province: str | None = None, full_name: str = ""):
        return await Users(redis).add(username, PASSWORD, role, province, full_name)

    return add


async def _sign_in(page, username: str, password: str = PASSWORD) -> None:
    await page.goto("/login")
    await page.fill("#f-username", username)
    await page.fill("#f-password", password)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url("**/")


@pytest.fixture
def sign_in():
    """`await sign_in(page, username)`: through the sign-in form, landing on the home page."""
    return _sign_in


@pytest.fixture
def book(redis, live_server):
    """`await book(title=..., start=..., selector=...)`: a meeting booked by an admin through the booking rules."""
    service = BookingService(MeetingStore(redis), Registry(redis), Groups(redis))

    async def make(title: str = "Giao ban trực tuyến", start: datetime | None = None, minutes: int = 90, selector: dict | None = None, **extra):
        body = {
            "title": title,
            "start": (start or local_slot()).isoformat(),
            "duration_minutes": minutes,
            "selector": selector or {"kind": "provinces", "province_codes": ["01"]},
            **extra,
        }
        return (await service.create(Principal("admin", Role.ADMIN), body, datetime.now(UTC))).meeting

    return make
