"""Screenshots of the main pages: into a temporary folder, or docs/screenshots/ with VCS_SCREENSHOTS=1 (`make screenshots`)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.live import LiveState
from scheduler.meeting import Meeting, ParticipantSelector, format_utc
from scheduler.participants import Groups
from scheduler.recurrence import parse_rrule
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from tests.web.ui.slots import VN, local_slot
from vcs import audit, keys
from vcs.divisions import communes
from vcs.presence import Presence
from vcs.registry import Registry

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


async def _seed_week(redis) -> dict[str, Meeting]:
    """A realistic week: meetings held earlier, a national one under way, one about to start, more to come.

    Written straight to the store (the booking rules refuse a start in the past)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    monday = local_slot(days=-datetime.now(VN).weekday(), hour=8)
    two_cities = ParticipantSelector("provinces", province_codes=(1, 31))
    plans = {
        "quarter": ("Hội nghị triển khai nhiệm vụ quý IV", monday + timedelta(days=1), 180, ParticipantSelector("provinces", province_codes=(38, 40, 42)), None),
        "weekly": ("Giao ban trực tuyến Hà Nội - Hải Phòng", monday + timedelta(hours=6), 90, two_cities, parse_rrule("FREQ=WEEKLY;BYDAY=MO,TH;COUNT=8")),
        "live": ("Hội nghị toàn quốc phòng, chống thiên tai", now - timedelta(minutes=25), 120, ParticipantSelector("all"), None),
        "soon": ("Tập huấn chuyển đổi số cấp xã", now + timedelta(minutes=10), 60, ParticipantSelector("provinces", province_codes=(79, 92, 96)), None),
        "later": ("Họp Ban chỉ đạo cải cách hành chính", now + timedelta(hours=3), 90, ParticipantSelector("provinces", province_codes=(48, 56)), None),
        "weekend": ("Trực ban cuối tuần", monday + timedelta(days=5, hours=1), 60, ParticipantSelector("communes", commune_ids=("00070", "00004")), None),
    }
    meetings = {}
    for key, (title, start, minutes, selector, rule) in plans.items():
        meeting = Meeting(f"demo-{key}", title, "admin", "central", start.astimezone(UTC), timedelta(minutes=minutes), selector, rule, created_at=now, updated_at=now)
        statuses = {}
        for occurrence in meeting.occurrences(window_end=now + timedelta(days=8)):
            if occurrence + meeting.duration <= now:
                statuses[format_utc(occurrence)] = "ended"
            elif occurrence <= now:
                statuses[format_utc(occurrence)] = "live"
        meeting = replace(meeting, statuses=statuses)
        if key == "weekly":
            later = [o for o in meeting.occurrences() if o > now + timedelta(days=1)]
            if later:
                meeting = meeting.cancel_occurrence(later[0], now=now)
        await MeetingStore(redis).create(meeting)
        meetings[key] = meeting
    return meetings


async def _seed_live(redis, meeting: Meeting) -> None:
    """Most rooms in, a few provinces lagging, some links poor: a morning a quarter of an hour in."""
    registry = Registry(redis)
    state = LiveState(redis, Roster(MeetingStore(redis), registry, Groups(redis)), registry, Presence(redis, 30))
    occurrence = format_utc(meeting.occurrences(window_start=datetime.now(UTC) - meeting.duration, limit=1)[0])
    shares = (1.0, 0.97, 1.0, 0.9, 0.99, 0.7, 1.0, 0.96, 0.4, 1.0, 0.85, 0.0)
    now = time.time()
    by_province: dict[str, list[str]] = {}
    for commune in communes():
        by_province.setdefault(commune.province_code, []).append(commune.code)
    for index, (code, members) in enumerate(sorted(by_province.items())):
        joined = round(len(members) * shares[index % len(shares)])
        for position, endpoint_id in enumerate(members[:joined]):
            fields = {"tier": "720p" if position % 9 else "360p", "loss_pct": round(position % 11 * 0.2, 1), "rtt_ms": 12 + position % 30}
            if position % 97 == 5:
                fields = {"tier": "audio", "loss_pct": 6.0 + position % 5, "rtt_ms": 600 + position % 90}
            await state.report(meeting.id, occurrence, endpoint_id, "failed" if position % 211 == 7 else "joined", fields, now)


async def test_screenshots_of_the_meeting_pages(page, add_user, sign_in, redis, screenshots):
    screenshots.mkdir(parents=True, exist_ok=True)
    await add_user("admin", "admin", full_name="Nguyễn Văn An")
    await _seed_presence(redis)
    meetings = await _seed_week(redis)
    await sign_in(page, "admin")

    await page.goto("/meetings")
    await page.screenshot(path=screenshots / "meetings-week.png", full_page=True)
    await page.goto("/meetings?view=list")
    await page.screenshot(path=screenshots / "meetings-list.png", full_page=True)

    # a booking for two provinces during the national meeting under way
    await page.goto("/meetings/new")
    await page.fill("#f-title", "Họp khẩn ứng phó bão số 10")
    later = datetime.now(VN) + timedelta(minutes=30)
    await page.fill("#f-date", later.date().isoformat())
    await page.fill("#f-time", later.strftime("%H:%M"))
    await page.fill("#f-duration", "60")
    await page.check("#who-provinces")
    for code in ("01", "31"):
        await page.check(f"input[name=province][value='{code}']")
    await page.click("#preview-button")
    await page.wait_for_selector("#conflict-warning")
    await page.screenshot(path=screenshots / "booking-preview.png", full_page=True)

    live = meetings["live"]
    await _seed_live(redis, live)
    await page.goto(f"/meetings/{live.id}/live")
    await page.wait_for_selector("#live.is-live")
    await page.screenshot(path=screenshots / "meeting-live.png", full_page=True)

    await page.goto(f"/meetings/{live.id}/host")
    await page.wait_for_selector("#host-status:has-text('Camera và micro đã sẵn sàng')")
    await page.wait_for_timeout(500)  # a few frames of the synthetic camera
    await page.screenshot(path=screenshots / "meeting-host.png")

    for name in ("meetings-week", "meetings-list", "booking-preview", "meeting-live", "meeting-host"):
        path = screenshots / f"{name}.png"
        assert path.stat().st_size < 400_000, f"{path} is too large"
