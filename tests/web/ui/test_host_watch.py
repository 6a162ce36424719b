"""The host's view of a commune and the floor, through the commune's relay (the cascade)."""

import asyncio

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from rtc.whip_client import subscribe
from scheduler.meeting import format_utc
from scheduler.rooms import assign_room
from scheduler.sfu_control import SfuControl
from tests.conftest import TEST_SECRET, RunningSfu, free_port, loopback_sfu_config
from tests.waiting import eventually
from tests.web.ui.slots import local_slot
from vcs.media_tokens import mint_media_token

TWO = {"kind": "provinces", "province_codes": ["01", "31"]}


@pytest.fixture
async def relay_node():
    """A relay node on its own loopback port (not registered: the room's node stays the origin)."""
    from sfu import SfuNode, create_sfu_app

    port = free_port()
    node = SfuNode(loopback_sfu_config(f"http://127.0.0.1:{port}", role="relay"), secret=TEST_SECRET)
    await node.start()
    app = Starlette(routes=[Mount("/sfu", app=create_sfu_app(node))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 10, what="the relay's server to start")
    try:
        yield RunningSfu(node, f"http://127.0.0.1:{port}")
    finally:
        await node.stop()
        server.should_exit = True
        await task


async def test_watch_and_floor_through_a_relay(http, live_server, mint_token, book, redis, sfu_node, relay_node):
    meeting = await book(start=local_slot(days=1), selector=TWO)
    start = meeting.occurrences(limit=1)[0]
    room = await assign_room(redis, meeting.id, start, start + meeting.duration, "http://unused")
    assert room.node_url == sfu_node.url
    await SfuControl(TEST_SECRET).open_room(room, meeting.host_endpoint_id)
    control = {"Authorization": "Bearer " + mint_media_token(TEST_SECRET, room=room.room, identity="orchestrator", role="control")}
    pull = {"origin": sfu_node.url, "origin_node": sfu_node.node.config.node_id}
    assert (await http.put(f"{relay_node.url}/sfu/rooms/{room.room}", json=pull, headers=control)).status_code == 200
    camera = await relay_node.publish(room.room, "00070")  # the commune publishes to its relay

    async def relay_of(meeting_id, occurrence, endpoint_id):  # what the placement answers
        return relay_node.url if endpoint_id in ("00070", "00073") else None

    live_server.app.state.services.uplinks.relay_of = relay_of
    origin_room = sfu_node.node.room(room.room)
    headers = await mint_token("organizer")
    url = f"/api/v1/meetings/{meeting.id}/occurrences/{format_utc(start)}/watch"
    view = None
    try:
        watched = await http.post(url, json={"endpoint_id": "00070"}, headers=headers)
        assert watched.status_code == 200, watched.text
        body = watched.json()
        assert body["relay"] == relay_node.url and body["whep_url"] == f"{room.whep_url}?source=00070"
        assert "00070" in origin_room.publishers and origin_room.publishers["00070"].relay == relay_node.node.config.node_id
        async with httpx.AsyncClient(timeout=20) as media:
            view = await subscribe(media, body["whep_url"], body["token"])
            await eventually(lambda: view.tier == "180p", what="the host receives the commune's own camera")
            await view.close()

        for bad, status in (({"endpoint_id": "79999"}, 422), ({}, 422), ({"endpoint_id": "00073"}, 502)):
            assert (await http.post(url, json=bad, headers=headers)).status_code == status, bad
        assert (await http.post(url, json={"endpoint_id": "00070"}, headers=await mint_token("viewer"))).status_code == 403
        assert (await http.post(url, json={"endpoint_id": "00070"}, headers=await mint_token("organizer", "79"))).status_code == 403

        # the floor to the relayed commune: its camera is at the origin first, and taking the floor back stops the uplink
        floor = f"/api/v1/meetings/{meeting.id}/occurrences/{format_utc(start)}/floor"
        given = await http.post(floor, json={"endpoint_id": "00070"}, headers=headers)
        assert given.status_code == 200 and origin_room.floor == "00070"
        assert relay_node.node.room(room.room).floor == "00070"  # the relay does not send the speaker its own voice
        assert (await http.delete(floor, headers=headers)).status_code == 200
        assert relay_node.node.room(room.room).floor is None
        assert not relay_node.node.room(room.room).uplinks
        await eventually(lambda: "00070" not in origin_room.publishers, what="the origin's copy of the camera is gone")
    finally:
        if view is not None:
            await view.close()
        await camera.close()
