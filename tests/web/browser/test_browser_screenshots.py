"""Screenshots of the main pages: into a temporary folder, or docs/screenshots/ with VCS_SCREENSHOTS=1 (`make screenshots`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vcs import audit, keys
from vcs.divisions import communes

DOCS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("VCS_SCREENSHOTS") == "1" else tmp_path


async def _seed_presence(redis) -> None:
    """Most communes online, a few provinces lagging, so the tables look like a morning before a meeting."""
    now = time.time()
    online = {}
    for index, commune in enumerate(communes()):
        lagging = int(commune.province_code) % 7 == 0
        if index % (3 if lagging else 20) != 0:
            online[commune.code] = now
    online.update({f"hall-{c}": now for c in {c.province_code for c in communes()} if int(c) % 11})
    online["central"] = now
    await redis.zadd(keys.PRESENCE, online)


async def test_screenshots_of_the_main_pages(page, add_user, sign_in, redis, screenshots):
    SCREENSHOTS = screenshots
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await add_user("admin", "admin", full_name="Nguyễn Văn An")
    await add_user("tochuc.hanoi", "organizer", "01", full_name="Trần Thị Bình")
    await add_user("vanhanh", "ops", full_name="Lê Minh Cường")
    await add_user("theodoi", "viewer", full_name="Phạm Thu Dung")
    await _seed_presence(redis)
    await audit.record(redis, "vanhanh", "endpoint.link_edit", "00070", {"via": "ui", "changes": {"down_kbps": [200000, 100000]}})
    await audit.record(redis, "tochuc.hanoi", "auth.login_failed", details={"client": "127.0.0.1"})

    await page.goto("/login")
    await page.screenshot(path=SCREENSHOTS / "signin.png")

    await sign_in(page, "admin")
    await page.screenshot(path=SCREENSHOTS / "today.png")

    await page.goto("/endpoints?province=01")
    await page.screenshot(path=SCREENSHOTS / "endpoints.png")

    await page.goto("/endpoints/00070")
    await page.fill("#f-down_kbps", "200 Mbps")
    await page.click("#link-form button[type=submit]")
    await page.wait_for_selector("#err-down_kbps")
    await page.screenshot(path=SCREENSHOTS / "endpoint-edit.png")

    await page.goto("/users")
    await page.screenshot(path=SCREENSHOTS / "users.png")

    await page.goto("/audit")
    await page.screenshot(path=SCREENSHOTS / "audit.png")

    for name in ("signin", "today", "endpoints", "endpoint-edit", "users", "audit"):
        path = SCREENSHOTS / f"{name}.png"
        assert path.stat().st_size < 400_000, f"{path} is too large"
