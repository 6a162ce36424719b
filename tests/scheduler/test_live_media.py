"""'Joined' means media now: the live view follows what the SFU node sees, not only what agents say."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from agent.control import Agent, AgentConfig
from agent.media import PatternMedia
from rtc.aiortc_adapter import ice_connection
from scheduler.live import MEDIA_FRESH_S
from tests.waiting import eventually
from vcs import keys
from vcs.credentials import EndpointCredentials
from vcs.routing import NodeRouter


def cut_off(sessions) -> None:
    """The commune's network is cut mid-meeting: nothing goes out or comes in, and nothing is said to anyone.

    Its peer connection stays "connected" (consent takes 30 s to notice), so the agent
    keeps reporting "joined": only the node can tell that no media arrives.
    """
    for transceiver in (t for session in sessions for t in session.pc.getTransceivers()):
        connection = ice_connection(transceiver.receiver.transport)
        for protocol in connection._protocols:
            protocol.datagram_received = lambda data, addr: None
            protocol.transport.sendto = lambda data, addr=None: None


async def test_a_room_whose_media_stops_shows_as_dropped(start_server, redis, mint_token, tmp_path):
    server = start_server(run_scheduler=True, sfu=True)
    commune = "00070"
    secrets = await EndpointCredentials(redis).rotate([commune, "central"])
    http = httpx.AsyncClient(timeout=30)
    media = PatternMedia()
    agents = {e: Agent(AgentConfig(server.url, e, secrets[e], state_dir=tmp_path / e), http, media) for e in ("central", commune)}
    for agent in agents.values():
        await agent.start()
    headers = await mint_token("organizer")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 10, "selector": {"kind": "communes", "commune_ids": [commune]}}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as api:
            created = await api.post("/api/v1/meetings", json=body)
            assert created.status_code == 201, created.text
            live_url = f"/api/v1/meetings/{created.json()['meeting']['id']}/live"

            async def live() -> dict:
                return (await api.get(live_url)).json()

            async def all_joined() -> dict | None:
                state = await live()
                return state if state["joined"] == 1 and state["host"] == "joined" else None

            state = await eventually(all_joined, timeout=30, interval=0.5, what="the commune and the host join")
            assert state["dropped"] == 0
            room = await redis.hget(keys.occurrence_room(state["meeting_id"], state["occurrence"]), "room")
            async def commune_heard() -> bool:
                return commune in (await NodeRouter(redis).room_media(room) or {})

            await eventually(commune_heard, what="the node reports the commune's media")

            cut_off(agents[commune].room._here.sessions)
            cut_at = time.monotonic()

            async def dropped() -> dict | None:
                state = await live()
                return state if state["joined"] == 0 and state["dropped"] == 1 else None

            # MEDIA_FRESH_S after its last RTCP report (a node heartbeat and a read later)
            state = await eventually(dropped, timeout=MEDIA_FRESH_S + 10, interval=0.5, what="the cut-off commune shows as dropped")
            # the agent itself has not noticed (consent takes 30 s): the view did not wait for its report
            assert agents[commune].room.joins == 1 and agents[commune].room.status == "in_meeting", f"{time.monotonic() - cut_at:.1f} s"
            assert state["host"] == "joined" and state["provinces"]["01"]["joined"] == 0
    finally:
        for agent in agents.values():
            await agent.stop()
        await media.stop()
        await http.aclose()
