"""An organizer in a browser: book for two provinces, meet a conflict, watch the live view fill, hand the floor, host."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from scheduler.live import LiveState
from scheduler.meeting import format_utc
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from tests.waiting import eventually
from tests.web.ui.slots import local_slot
from vcs import audit
from vcs.divisions import communes
from vcs.presence import Presence
from vcs.registry import Registry

HANOI = [c.code for c in communes() if c.province_code == "01"]
HAIPHONG = [c.code for c in communes() if c.province_code == "31"]


async def test_book_for_two_provinces_then_meet_a_conflict(page, add_user, sign_in, redis):
    await add_user("tochuc", "organizer", full_name="Trần Thị Bình")
    await sign_in(page, "tochuc")
    day = local_slot(days=3).date()

    await page.click("nav.mainnav >> text=Cuộc họp")
    await page.click("#book-link")
    await page.wait_for_url("**/meetings/new")
    await page.fill("#f-title", "Hội nghị triển khai nhiệm vụ")
    await page.fill("#f-date", day.isoformat())
    await page.fill("#f-time", "08:00")
    await page.fill("#f-duration", "90")
    await page.check("#who-provinces")
    await page.check("input[name=province][value='01']")
    await page.check("input[name=province][value='31']")
    assert not await page.is_visible("#f-q")  # the commune picker is for "single communes"
    await page.click("#preview-button")
    await page.wait_for_selector("#preview")
    assert await page.text_content("#preview-participants") == str(len(HANOI) + len(HAIPHONG))
    assert await page.is_visible("#no-conflicts")
    assert await page.locator("#trunks tbody tr").count() == 2
    assert await page.input_value("#f-title") == "Hội nghị triển khai nhiệm vụ"
    await page.click("#save-button")
    await page.wait_for_url("**/meetings/m*")
    assert "Đã đặt lịch cuộc họp Hội nghị triển khai nhiệm vụ" in await page.text_content(".flash")
    [first] = (await MeetingStore(redis).all()).values()

    # the week shows it on its day
    await page.goto(f"/meetings?view=week&week={day.isoformat()}")
    block = page.locator(".day-today, .day").nth(day.weekday()).locator(".occ")
    assert await block.count() == 1 and "08:00–09:30" in await block.text_content()

    # a second booking for one ward of Hà Nội an hour later overlaps the first
    await page.click("#book-link")
    await page.fill("#f-title", "Họp phường Hoàn Kiếm")
    await page.fill("#f-date", day.isoformat())
    await page.fill("#f-time", "09:00")
    await page.check("#who-communes")
    await page.fill("#f-q", "hoan kiem")
    await page.click("#search-button")
    await page.check("#search-results input[value='00070']")
    await page.click("#preview-button")
    warning = page.locator("#conflict-warning")
    await warning.wait_for()
    assert "Giao ban" not in await warning.text_content()
    assert "Hội nghị triển khai nhiệm vụ" in await warning.text_content() and "Phường Hoàn Kiếm" in await warning.text_content()
    assert not await page.is_visible("#f-override")  # only an admin may book over it
    await page.click("#save-button")
    assert "Chưa lưu" in await page.text_content("#form-notice")
    assert list((await MeetingStore(redis).all())) == [first.id]


async def test_the_live_view_fills_as_rooms_join_and_the_floor_needs_an_sfu(page, add_user, sign_in, book, redis):
    await add_user("tochuc", "organizer")
    meeting = await book(title="Giao ban hai thành phố", start=local_slot(days=1), selector={"kind": "provinces", "province_codes": ["01", "31"]})
    registry = Registry(redis)
    live = LiveState(redis, Roster(MeetingStore(redis), registry, Groups(redis)), registry, Presence(redis, 30))
    occurrence = format_utc(meeting.occurrences(limit=1)[0])

    async def join(ids, **fields):
        for endpoint_id in ids:
            now = time.time()
            await live.presence.heartbeat(endpoint_id, now)
            await live.report(meeting.id, occurrence, endpoint_id, "joined", {"tier": "720p", **fields}, now)

    await sign_in(page, "tochuc")
    await page.goto(f"/meetings/{meeting.id}/live")
    await page.wait_for_selector("#live.is-live")  # the event stream is open
    assert await page.text_content("#live-joined") == "0"
    assert "share-0" in await page.get_attribute("li[data-code='01']", "class")

    await join(HANOI[:10])
    await page.wait_for_selector("#live-joined:text-is('10')")  # (selectors, not wait_for_function: the CSP forbids eval)
    assert "share-1" in await page.get_attribute("li[data-code='01']", "class")
    assert await page.text_content("li[data-code='01'] .tile-joined") == "10"
    await join(HAIPHONG, loss_pct=9.5, rtt_ms=700)
    await page.wait_for_selector("li[data-code='31'].share-4")
    assert await page.text_content("#live-joined") == str(10 + len(HAIPHONG))
    assert await page.locator("#live-worst tbody tr").count() == 10
    assert "share-none" in await page.get_attribute("li[data-code='79']", "class")

    # no SFU node runs in this test (web/app.py does not mount /sfu): the page says so plainly
    await page.select_option("#f-endpoint_id", "00070")
    await page.click("#floor-form button[type=submit]")
    await page.wait_for_selector(".flash-error")
    assert "Chưa trao được quyền phát biểu" in await page.text_content(".flash-error")
    assert await page.text_content("#floor-holder") == "điểm cầu chủ trì"
    assert await audit.recent(redis, action="meeting.floor") == []


async def open_host_console(page, add_user, sign_in, book) -> None:
    """An organizer opens the host console of a meeting in ten minutes; the page has the fake camera and microphone."""
    await add_user("tochuc", "organizer")
    start = (datetime.now(UTC) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    meeting = await book(title="Họp ngay", start=start, selector={"kind": "communes", "commune_ids": ["00070"]})
    await sign_in(page, "tochuc")
    await page.goto(f"/meetings/{meeting.id}/host")
    await page.wait_for_selector("#host-status:has-text('Camera và micro đã sẵn sàng')")


async def test_the_host_console_opens_the_camera(page, add_user, sign_in, book, redis):
    await open_host_console(page, add_user, sign_in, book)
    tracks = await page.locator("#host-local").evaluate("video => [video.srcObject.getVideoTracks().length, video.srcObject.getAudioTracks().length]")
    assert tracks == [1, 1]
    assert await page.locator("#host-camera option").count() >= 1
    # publishing needs an SFU at the room's whip_url; none runs here, and the page says so
    await page.click("#host-start")
    await page.wait_for_selector("#host-status:has-text('Không bắt đầu phát được')")
    assert "404" in await page.text_content("#host-status")
    assert await page.is_enabled("#host-start") and not await page.is_enabled("#host-stop")
    [entry] = await audit.recent(redis, action="meeting.host")
    assert entry.actor == "tochuc"


async def test_the_host_console_broadcasts_through_an_sfu_node(page, add_user, sign_in, book, redis, sfu_node):
    await open_host_console(page, add_user, sign_in, book)
    await page.click("#host-start")
    await page.wait_for_selector("#host-status:has-text('Đang phát')", timeout=20_000)
    await page.wait_for_selector("#host-connection:text-is('connected')", timeout=20_000)
    [room] = sfu_node.node.rooms.values()
    assert [p.identity for p in room.publishers.values()] == ["central"] and room.program_identity == "central"
    program = page.locator("#host-program")
    # the program comes back over WHEP, encoded by the node
    await eventually(lambda: program.evaluate("video => video.videoWidth"), what="the program video plays")
    await page.click("#host-stop")
    await page.wait_for_selector("#host-status:has-text('Đã dừng')")
    await eventually(lambda: not sfu_node.node.resources, what="both WHIP and WHEP resources are deleted")
