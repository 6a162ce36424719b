"""The whole chain on loopback: book through the API, the scheduler runs the steps, real agents join real media."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx

from agent.control import Agent, AgentConfig
from agent.fleet import Fleet, FleetConfig, choose_members
from agent.media import PatternMedia
from rtc.ice import restrict_host_addresses
from tests.waiting import eventually, scaled, stays
from vcs.credentials import EndpointCredentials
from vcs.divisions import communes
from vcs.endpoints import national_endpoints

restrict_host_addresses(["127.0.0.1"])


async def book(server_url: str, headers: dict, ids: list[str], seconds_ahead: float) -> tuple[str, datetime]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=round(seconds_ahead))  # the API takes whole seconds
    body = {"title": "Giao ban tự động", "start": start.isoformat(), "duration_minutes": 10, "selector": {"kind": "communes", "commune_ids": ids}}
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        response = await client.post("/api/v1/meetings", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["meeting"]["id"], start


async def live(server_url: str, headers: dict, meeting_id: str) -> dict:
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        return (await client.get(f"/api/v1/meetings/{meeting_id}/live", headers=headers)).json()


async def test_a_fleet_of_50_has_joined_by_the_start(start_server, redis, mint_token, tmp_path):
    server = start_server(run_scheduler=True, sfu=True)
    ids = [c.code for c in communes()[:50]]
    secrets = await EndpointCredentials(redis).rotate(ids + ["central"])
    config = FleetConfig(server.url, 50, with_host=True, publish_tier="audio", state_root=tmp_path, start_spread=2.0)
    fleet = Fleet(config, choose_members(national_endpoints(), secrets, config))
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop, out=lambda line: None))
    try:
        headers = await mint_token("organizer")
        # the promise: 25 s of notice is enough for 50 rooms (on a machine as fast as the reference one)
        meeting_id, start = await book(server.url, headers, ids, seconds_ahead=scaled(25))
        await asyncio.sleep(max(0.0, start.timestamp() - time.time()))  # the start is the moment under test
        state = await live(server.url, headers, meeting_id)
        assert (state["expected"], state["joined"], state["failed"]) == (50, 50, 0), state
        assert state["host"] == "joined" and set(state["tiers"]) <= {"180p", "360p", "audio"}

        async def all_live() -> bool:
            state = await live(server.url, headers, meeting_id)
            return state["status"] == "live" and state["joined"] == 50

        await stays(all_live, 2, what="all 50 stay joined into the meeting", interval=0.5)
    finally:
        stop.set()
        await running


async def test_an_agent_offline_at_the_start_joins_when_it_comes_back(start_server, redis, mint_token, tmp_path):
    server = start_server(run_scheduler=True, sfu=True)
    late, present = "00070", "00004"
    secrets = await EndpointCredentials(redis).rotate([late, present, "central"])
    http = httpx.AsyncClient(timeout=30)
    media = PatternMedia()
    agents = [Agent(AgentConfig(server.url, e, secrets[e], state_dir=tmp_path / e), http, media) for e in ("central", present)]
    for agent in agents:
        await agent.start()
    try:
        headers = await mint_token("organizer")
        meeting_id, start = await book(server.url, headers, [late, present], seconds_ahead=6)
        await asyncio.sleep(max(0.0, start.timestamp() - time.time()))

        async def under_way() -> dict | None:
            state = await live(server.url, headers, meeting_id)
            return state if state["status"] == "live" and state["joined"] == 1 else None

        state = await eventually(under_way, what="the meeting is under way with one room")  # one room is missing
        assert state["joined"] == 1 and state["online"] == 1
        comeback = Agent(AgentConfig(server.url, late, secrets[late], state_dir=tmp_path / late), http, media)
        agents.append(comeback)
        await comeback.start()
        async def both_joined() -> dict | None:
            state = await live(server.url, headers, meeting_id)
            return state if state["joined"] == 2 else None

        state = await eventually(both_joined, timeout=30, interval=0.5, what="the late room joins")
        assert state["online"] == 2
    finally:
        for agent in agents:
            await agent.stop()
        await media.stop()
        await http.aclose()
