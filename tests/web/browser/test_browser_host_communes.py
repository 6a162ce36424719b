"""The host console's commune tiles in a browser: paging, the province filter, a tile that plays, and stopping."""

from datetime import UTC, datetime, timedelta

from scheduler.rooms import assign_room
from scheduler.sfu_control import SfuControl
from tests.conftest import TEST_SECRET
from tests.waiting import eventually
from vcs.routing import NodeRouter

HANOI = ["00004", "00008", "00025", "00070", "00073", "00091", "00097", "00103", "00127", "00130"]
HAIPHONG = ["10510", "10525"]


def watchers(sfu_node, source: str) -> int:
    """The node's subscribers that view `source`'s own camera."""
    return sum(1 for room in sfu_node.node.rooms.values() for sub in room.subscribers.values() if sub.source == source)


async def test_the_host_pages_through_the_communes_and_sees_one_play(page, add_user, sign_in, book, redis, sfu_node):
    await add_user("tochuc", "organizer")
    start = (datetime.now(UTC) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    meeting = await book(title="Họp ngay", start=start, selector={"kind": "communes", "commune_ids": HANOI + HAIPHONG})
    router = NodeRouter(redis)

    async def node_is_live() -> bool:  # its heartbeat may lag on a busy machine
        return any(n.url == sfu_node.url for n in await router.live_nodes())

    await eventually(node_is_live, what="the SFU node announces itself")
    room = await assign_room(redis, meeting.id, start, start + meeting.duration, "http://unused")
    assert room.node_url == sfu_node.url
    await SfuControl(TEST_SECRET).open_room(room, meeting.host_endpoint_id)  # as the lifecycle does before the start
    camera = await sfu_node.publish(room.room, "10510")  # a Hai Phong commune sends its own camera
    try:
        await sign_in(page, "tochuc")
        await page.goto(f"/meetings/{meeting.id}/host")
        tiles = page.locator("#communes-tiles .commune-tile")
        # 12 communes, 9 a page, Hanoi first
        await page.wait_for_selector("#communes-page:text-is('Trang 1/2')")
        assert await tiles.count() == 9
        assert await page.is_disabled("#communes-prev") and await page.is_enabled("#communes-next")

        await page.click("#communes-next")
        await page.wait_for_selector("#communes-page:text-is('Trang 2/2')")
        shown = [await t.get_attribute("data-endpoint") for t in await tiles.all()]
        assert len(shown) == 3 and set(HAIPHONG) < set(shown)
        playing = page.locator(".commune-tile[data-endpoint='10510']")
        await page.wait_for_selector(".commune-tile[data-endpoint='10510'][data-state='playing']", timeout=20_000)
        assert await playing.locator("video").evaluate("video => video.videoWidth") > 0
        assert "Đang nhận hình" in await playing.text_content()
        assert watchers(sfu_node, "10510") == 1
        # a commune that sends nothing says so on its tile
        await page.wait_for_selector(".commune-tile[data-endpoint='10525'][data-state='failed']")

        # back to page 1: the tile's subscription ends
        await page.click("#communes-prev")
        await page.wait_for_selector("#communes-page:text-is('Trang 1/2')")
        await eventually(lambda: watchers(sfu_node, "10510") == 0, what="the tile's WHEP resource is deleted")

        # Hai Phong only, then 16 a page: one page each
        await page.select_option("#communes-province", "31")
        await page.wait_for_selector("#communes-page:text-is('Trang 1/1')")
        assert sorted([await t.get_attribute("data-endpoint") for t in await tiles.all()]) == HAIPHONG
        await page.wait_for_selector(".commune-tile[data-endpoint='10510'][data-state='playing']", timeout=20_000)
        await page.select_option("#communes-province", "")
        await page.select_option("#communes-per", "16")
        await page.wait_for_selector("#communes-page:text-is('Trang 1/1')")
        assert await tiles.count() == 12
        await page.wait_for_selector(".commune-tile[data-endpoint='10510'][data-state='playing']", timeout=20_000)

        # leaving the page stops the tiles
        await page.goto("/")
        await eventually(lambda: watchers(sfu_node, "10510") == 0, what="leaving deletes the tiles' subscriptions")
    finally:
        await camera.close()
