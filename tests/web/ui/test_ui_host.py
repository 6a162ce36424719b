"""The host console: who may open it, its CSP, and the media tokens it hands the browser."""

import time
from datetime import UTC, datetime, timedelta

from scheduler.meeting import format_utc
from scheduler.rooms import assign_room
from tests.conftest import TEST_SECRET
from tests.web.ui.slots import local_slot
from vcs import audit, keys
from vcs.media_tokens import verify_media_token


def soon(minutes: int) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(second=0, microsecond=0)


async def test_the_console_is_for_organizers_in_scope(signed_in, book):
    hanoi_meeting = await book(start=local_slot(days=1), selector={"kind": "provinces", "province_codes": ["01"]}, host="hall-01")
    allowed = [await signed_in("admin", "an"), await signed_in("organizer", "binh"), await signed_in("organizer", "hanoi", province="01")]
    for client in allowed:
        response = await client.get(f"/meetings/{hanoi_meeting.id}/host")
        assert response.status_code == 200
        assert 'id="host-console"' in response.text and 'src="/static/host.js"' in response.text and "<noscript>" in response.text
    for client in (await signed_in("viewer"), await signed_in("ops"), await signed_in("organizer", "haiphong", province="31")):
        assert (await client.get(f"/meetings/{hanoi_meeting.id}/host")).status_code == 403


async def test_the_csp_lets_the_page_reach_the_rooms_sfu_node(signed_in, book, redis):
    # a node elsewhere, announced in Redis as every node announces itself
    await redis.zadd(keys.SFU_NODES, {"sfu-1": time.time()})
    await redis.hset(keys.sfu_node("sfu-1"), mapping={"id": "sfu-1", "url": "https://sfu-1.example.vn:8443", "capacity": 5000, "load": 0})
    meeting = await book(start=local_slot(days=1))
    response = await (await signed_in("admin", "an")).get(f"/meetings/{meeting.id}/host")
    csp = response.headers["content-security-policy"]
    assert "connect-src 'self' https://sfu-1.example.vn:8443;" in csp and "script-src 'self';" in csp and "unsafe" not in csp
    # a node URL that could smuggle a directive in is left out
    other = await book(start=local_slot(days=2))
    start = other.occurrences(limit=1)[0]
    await assign_room(redis, other.id, start, start + other.duration, "http://unused")
    await redis.hset(keys.occurrence_room(other.id, format_utc(start)), "node_url", "https://evil.example; script-src *")
    csp = (await (await signed_in("admin", "an2")).get(f"/meetings/{other.id}/host")).headers["content-security-policy"]
    assert "script-src *" not in csp and "connect-src 'self';" in csp


async def test_tokens_are_minted_for_the_host_shortly_before_the_start(signed_in, csrf_of, book, redis):
    later = await book(start=soon(120))
    meeting = await book(title="Họp ngay", start=soon(10), selector={"kind": "communes", "commune_ids": ["00070"]})
    organizer = await signed_in("organizer", "binh")
    page = (await organizer.get(f"/meetings/{meeting.id}/host")).text
    token = csrf_of(page)

    early = await organizer.post(f"/meetings/{later.id}/host/session", data={"csrf": token})
    assert early.status_code == 409 and "30 phút trước giờ họp" in early.json()["error"]

    response = await organizer.post(f"/meetings/{meeting.id}/host/session", data={"csrf": token})
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    info = response.json()
    assert info["identity"] == "central" and info["whip_url"].endswith(f"/sfu/whip/{info['room']}")
    assert info["whep_url"].endswith(f"/sfu/whep/{info['room']}")
    published = verify_media_token(TEST_SECRET, info["publish_token"], room=info["room"], role="publish")
    watched = verify_media_token(TEST_SECRET, info["subscribe_token"], room=info["room"], role="subscribe")
    assert published.identity == watched.identity == "central"
    assert published.host and not watched.host  # the console publishes as the room's host
    end = meeting.occurrences(limit=1)[0] + meeting.duration
    assert abs(published.expires_at - (end + timedelta(minutes=5)).timestamp()) < 5
    # the same room the agents are told about
    start = meeting.occurrences(limit=1)[0]
    assert (await assign_room(redis, meeting.id, start, end, "http://unused")).room == info["room"]
    [entry] = await audit.recent(redis, action="meeting.host")
    assert entry.actor == "binh" and entry.target == meeting.id and entry.details["room"] == info["room"]


async def test_a_tile_gets_the_hosts_view_of_one_participant(signed_in, csrf_of, book):
    meeting = await book(start=soon(10), selector={"kind": "communes", "commune_ids": ["00070", "10510"]}, host="hall-01")
    organizer = await signed_in("organizer", "binh")
    page = (await organizer.get(f"/meetings/{meeting.id}/host")).text
    assert 'id="communes-data"' in page and "10510" in page and 'src="/static/host_grid.js"' in page
    token = csrf_of(page)
    url = f"/meetings/{meeting.id}/host/watch"

    response = await organizer.post(url, data={"csrf": token, "endpoint_id": "00070"})
    assert response.status_code == 200
    info = response.json()
    assert info["endpoint_id"] == "00070" and info["whep_url"].endswith("?source=00070")
    claims = verify_media_token(TEST_SECRET, info["token"], room=info["whep_url"].split("/")[-1].split("?")[0], role="subscribe")
    assert claims.identity == "hall-01" and not claims.host

    refused = await organizer.post(url, data={"csrf": token, "endpoint_id": "79999"})
    assert refused.status_code == 422 and "không tham gia" in refused.json()["error"]
    assert (await organizer.post(url, data={"endpoint_id": "00070"})).status_code == 403  # no CSRF token
    outsider = await signed_in("organizer", "haiphong", province="31")
    other_token = csrf_of((await outsider.get("/")).text)
    assert (await outsider.post(url, data={"csrf": other_token, "endpoint_id": "10510"})).status_code == 403
