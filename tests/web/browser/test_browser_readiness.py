"""An organizer of Hà Nội starts a drill for its province in a browser and watches the board fill in."""

from __future__ import annotations

import pytest

from agent.fleet import Fleet, FleetConfig, FleetMember
from rtc.ice import restrict_host_addresses
from tests.conftest import loopback_sfu_config
from tests.waiting import eventually, scaled
from tests.web.browser.conftest import VIEWPORT
from vcs import audit
from vcs.credentials import EndpointCredentials
from vcs.endpoints import national_endpoints
from vcs.link_profiles import AccessType, LinkProfile
from vcs.registry import Registry
from vcs.tiers import Ladder

restrict_host_addresses(["127.0.0.1"])

HANOI = [e.id for e in national_endpoints() if e.kind.value == "commune" and e.province_code == "01"][:3]
FIBER = LinkProfile(AccessType.GOV_FIBER, 200_000, 200_000, 10, 0.0)


@pytest.fixture
def settings(settings):
    ladder = Ladder(tiers=loopback_sfu_config("http://127.0.0.1:1").tiers)
    return settings.with_overrides(ladder=ladder, readiness_test_seconds=3, readiness_concurrency=2)


async def test_an_organizer_starts_a_drill_for_the_province_and_sees_its_board_fill_in(browser, start_server, redis, add_user, sign_in):
    server = start_server(sfu=True)
    await Registry(redis).set_links([(e, FIBER) for e in HANOI])
    await Registry(redis).set_contacts([(HANOI[0], "Nguyễn Văn An", "0912345678")])
    secrets = await EndpointCredentials(redis).rotate(HANOI)
    fleet = Fleet(FleetConfig(server.url, len(HANOI), start_spread=0.3), [FleetMember(e, secrets[e], "180p") for e in HANOI])
    await add_user("tochuc-hn", "organizer", "01", full_name="Trần Thị Bình")
    context = await browser.new_context(base_url=server.url, viewport=VIEWPORT, timezone_id="Asia/Ho_Chi_Minh", locale="vi-VN")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await fleet.start()
    try:
        await eventually(lambda: fleet.counts()["connected"] == len(HANOI), timeout=30, what="the agents connected")
        await sign_in(page, "tochuc-hn")
        await page.click("nav.mainnav >> text=Diễn tập")
        await page.wait_for_url("**/drills")
        # a province's organizer may start a drill only for its province: no "whole country" choice
        assert await page.locator("#f-province option").all_text_contents() == ["Thành phố Hà Nội"]
        await page.click("#drill-start-button")
        await page.wait_for_url("**/drills/*")
        assert "Đã bắt đầu diễn tập" in await page.text_content(".flash")

        async def filled() -> bool:  # the page reloads itself while rooms test; wait for the three ready rows
            return await page.locator("#board-rooms tr[data-status=ready]").count() == len(HANOI)

        await eventually(filled, timeout=scaled(90), what="the board shows the three rooms ready")
        first = page.locator(f"#board-rooms tr[data-endpoint='{HANOI[0]}']")
        assert await first.locator("a.contact-phone").get_attribute("href") == "tel:0912345678"
        assert "Nguyễn Văn An" in await first.text_content()
        assert await page.text_content("#board-ready") == "3"
        assert await page.locator("#board-pending").count() == 0  # nothing left to test: no more reloads
        tile = page.locator("#tilemap li[data-code='01']")
        assert "3/" in await tile.text_content()

        # one room again, from its row: the re-run is recorded with who asked
        await first.locator("button[type=submit]").click()
        await page.wait_for_selector(".flash")
        assert "1" in await page.text_content(".flash")
        runs = await audit.recent(redis, 10, action="readiness.run")
        assert runs and runs[0].actor == "tochuc-hn" and runs[0].details["endpoint_id"] == HANOI[0]
        assert (await audit.recent(redis, 10, action="drill.start"))[0].actor == "tochuc-hn"

        # the drill is on the list with its counts
        await page.goto("/drills")
        assert await page.locator("#drill-list tbody tr").count() == 1
    finally:
        await context.close()
        await fleet.stop()
