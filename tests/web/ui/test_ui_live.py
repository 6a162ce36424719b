"""The live view: tiles and counters from the live state, its event stream, and handing the floor."""

import asyncio
import json
import re
import time

import pytest

from scheduler.live import LiveState
from scheduler.meeting import format_utc
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.store import MeetingStore
from tests.conftest import TEST_SECRET
from tests.web.ui.slots import local_slot
from vcs import audit
from vcs.divisions import communes
from vcs.presence import Presence
from vcs.registry import Registry

HANOI = [c.code for c in communes() if c.province_code == "01"]
HAIPHONG = [c.code for c in communes() if c.province_code == "31"]
TWO = {"kind": "provinces", "province_codes": ["01", "31"]}


@pytest.fixture
def live_state(redis):
    registry = Registry(redis)
    return LiveState(redis, Roster(MeetingStore(redis), registry, Groups(redis)), registry, Presence(redis, 30))


async def join(live_state, meeting, ids, state="joined", **fields):
    occurrence = format_utc(meeting.occurrences(limit=1)[0])
    now = time.time()
    for endpoint_id in ids:
        await live_state.presence.heartbeat(endpoint_id, now)
        await live_state.report(meeting.id, occurrence, endpoint_id, state, fields, now)


def tile(html: str, code: str) -> str:
    return re.search(rf'<li class="tile [^"]*" data-code="{code}".*?</li>', html, re.S).group(0)


async def test_the_tiles_and_counters_show_who_joined(signed_in, book, live_state):
    meeting = await book(start=local_slot(days=1), selector=TWO)
    await join(live_state, meeting, HANOI[:3])
    await join(live_state, meeting, HANOI[3:4], state="failed")
    await join(live_state, meeting, HAIPHONG, tier="360p")
    await join(live_state, meeting, HANOI[4:6], loss_pct=7.5, rtt_ms=640, tier="audio")
    html = (await (await signed_in("viewer")).get(f"/meetings/{meeting.id}/live")).text
    assert html.count('class="tile r') == 34
    hanoi, haiphong, hue = tile(html, "01"), tile(html, "31"), tile(html, "46")
    assert "share-1" in hanoi and f'<span class="tile-joined">5</span>/<span class="tile-expected">{len(HANOI)}</span>' in hanoi
    assert "r3 c3" in hanoi and "share-4" in haiphong and "share-none" in hue and "—" in hue
    assert f'id="live-expected">{len(HANOI) + len(HAIPHONG)}<' in html and f'id="live-joined">{5 + len(HAIPHONG)}<' in html
    assert 'id="live-failed">1<' in html and f'id="live-online">{6 + len(HAIPHONG)}<' in html
    worst = html.split('id="live-worst"')[1].split("</table>")[0]
    assert "7,5" in worst and "640" in worst and "Chỉ âm thanh" in worst
    tiers = html.split('id="live-tiers"')[1].split("</table>")[0]
    assert re.search(r'data-tier="360p"><td>360p</td><td class="num tier-count">' + str(len(HAIPHONG)), tiers)
    assert 'src="/static/live.js"' in html and f'data-events-url="/meetings/{meeting.id}/live/events?occurrence=' in html
    assert 'id="floor-form"' not in html  # a viewer watches, never hands the floor


async def test_the_event_stream_follows_joins(signed_in, new_client, book, live_state):
    meeting = await book(start=local_slot(days=1), selector=TWO)
    viewer = await signed_in("viewer")
    occurrence = format_utc(meeting.occurrences(limit=1)[0])

    async def next_summary(lines) -> dict:
        async for line in lines:
            if line.startswith("data: "):
                return json.loads(line[6:])
        raise AssertionError("the stream ended")

    url = f"/meetings/{meeting.id}/live/events"
    async with viewer.stream("GET", url, params={"occurrence": occurrence}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        first = await asyncio.wait_for(next_summary(lines), 10)
        assert first["joined"] == 0 and first["expected"] == len(HANOI) + len(HAIPHONG)
        await join(live_state, meeting, HANOI[:2])
        second = await asyncio.wait_for(next_summary(lines), 10)
        while second["joined"] < 2:
            second = await asyncio.wait_for(next_summary(lines), 10)
        assert second["provinces"]["01"]["joined"] == 2
    # a visitor without a session is sent to sign in, not given the stream
    anonymous = await new_client().get(url, params={"occurrence": occurrence})
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


async def test_handing_the_floor_without_an_sfu_says_so(signed_in, post_form, book, redis):
    meeting = await book(start=local_slot(days=1), selector=TWO)
    organizer = await signed_in("organizer", "binh")
    page = f"/meetings/{meeting.id}/live"
    html = (await organizer.get(page)).text
    assert 'id="floor-form"' in html and html.count("<option value=") == len(HANOI) + len(HAIPHONG)
    occurrence = format_utc(meeting.occurrences(limit=1)[0])
    response = await post_form(organizer, page, f"/meetings/{meeting.id}/floor", {"endpoint_id": "00070", "occurrence": occurrence})
    assert response.status_code == 303 and response.headers["location"].startswith(page)
    after = (await organizer.get(response.headers["location"])).text
    assert "Chưa trao được quyền phát biểu: máy chủ truyền hình (SFU) của cuộc họp chưa nhận lệnh." in after
    assert "the room is not open on its SFU node yet" in after  # the detail, for whoever investigates
    assert 'class="flash flash-error"' in after and "Đang phát biểu: <strong" in after and "điểm cầu chủ trì</strong>" in after
    assert await audit.recent(redis, action="meeting.floor") == []


async def test_handing_the_floor_through_an_sfu_node(signed_in, post_form, book, redis, sfu_node):
    from scheduler.rooms import assign_room
    from scheduler.sfu_control import SfuControl

    meeting = await book(start=local_slot(days=1), selector=TWO)
    start = meeting.occurrences(limit=1)[0]
    room = await assign_room(redis, meeting.id, start, start + meeting.duration, "http://unused")
    assert room.node_url == sfu_node.url  # the live node took the room
    await SfuControl(TEST_SECRET).open_room(room, meeting.host_endpoint_id)  # what the warm-up does
    camera = await sfu_node.publish(room.room, "00070")  # the commune's own camera, as its agent sends it
    organizer = await signed_in("organizer", "binh")
    page = f"/meetings/{meeting.id}/live"

    searched = (await organizer.get(page, params={"q": "hoan kiem"})).text
    matches = searched.split('id="floor-matches"')[1].split("</ul>")[0]
    assert matches.count("<li>") == 1 and 'value="00070"' in matches and "Phường Hoàn Kiếm" in matches

    given = await post_form(organizer, page, f"/meetings/{meeting.id}/floor", {"endpoint_id": "00070"})
    assert given.status_code == 303
    html = (await organizer.get(given.headers["location"])).text
    assert "Đã trao quyền phát biểu cho Phường Hoàn Kiếm." in html and "Đang phát biểu: <strong" in html
    assert re.search(r'id="floor-holder"[^>]*>Phường Hoàn Kiếm<', html) and 'id="floor-take-form"' in html
    assert sfu_node.node.room(room.room).floor == "00070"

    taken = await post_form(organizer, page, f"/meetings/{meeting.id}/floor/take", {})
    assert taken.status_code == 303 and sfu_node.node.room(room.room).floor is None
    assert "Quyền phát biểu đã trở về điểm cầu chủ trì." in (await organizer.get(taken.headers["location"])).text
    entries = await audit.recent(redis, action="meeting.floor")
    assert [(e.details["action"], e.details["endpoint_id"]) for e in entries] == [("take", None), ("give", "00070")]

    outsider = next(c.code for c in communes() if c.province_code == "79")
    refused = await post_form(organizer, page, f"/meetings/{meeting.id}/floor", {"endpoint_id": outsider})
    assert "Hãy chọn một xã, phường tham dự cuộc họp này." in (await organizer.get(refused.headers["location"])).text
    assert sfu_node.node.room(room.room).floor is None  # the outsider never reached the node
    await camera.close()


async def test_the_live_view_of_a_meeting_without_occurrences(signed_in, post_form, book):
    meeting = await book(start=local_slot(days=1))
    admin = await signed_in("admin", "an")
    await post_form(admin, f"/meetings/{meeting.id}/cancel", f"/meetings/{meeting.id}/cancel", {"scope": "series"})
    html = (await admin.get(f"/meetings/{meeting.id}/live")).text
    assert "Cuộc họp này không có buổi nào đang hoặc sắp diễn ra." in html and "live.js" not in html
    assert (await admin.get(f"/meetings/{meeting.id}/live/events")).status_code == 404
    assert (await admin.get(f"/meetings/{meeting.id}/live?occurrence=garbage")).status_code == 404


async def test_the_api_floor_route_runs_the_same_code(http, mint_token, book, redis, sfu_node):
    from scheduler.rooms import assign_room
    from scheduler.sfu_control import SfuControl

    meeting = await book(start=local_slot(days=1), selector=TWO)
    start = meeting.occurrences(limit=1)[0]
    room = await assign_room(redis, meeting.id, start, start + meeting.duration, "http://unused")
    await SfuControl(TEST_SECRET).open_room(room, meeting.host_endpoint_id)
    camera = await sfu_node.publish(room.room, "00070")
    headers = await mint_token("organizer")
    url = f"/api/v1/meetings/{meeting.id}/floor"
    given = await http.post(url, json={"endpoint_id": "00070"}, headers=headers)
    assert given.status_code == 200 and given.json()["floor"] == "00070" and sfu_node.node.room(room.room).floor == "00070"
    for bad in ({"endpoint_id": "79999"}, {"endpoint_id": 70}, {}):
        assert (await http.post(url, json=bad, headers=headers)).status_code == 422
    assert (await http.post(url, json={"endpoint_id": "00070"}, headers=await mint_token("viewer"))).status_code == 403
    assert (await http.post(url, json={"endpoint_id": "00070"}, headers=await mint_token("organizer", "79"))).status_code == 403
    taken = await http.delete(url, headers=headers)
    assert taken.status_code == 200 and taken.json()["floor"] is None and sfu_node.node.room(room.room).floor is None
    await camera.close()
    # the same audit action as the UI's, told apart by `via`
    entries = await audit.recent(redis, action="meeting.floor")
    assert [(e.details["via"], e.details["action"], e.details["endpoint_id"]) for e in entries] == [("api", "take", None), ("api", "give", "00070")]
