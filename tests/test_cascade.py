"""The cascade end to end on loopback.

The web app with its scheduler and its embedded origin node, two `vcs sfu
--role relay` processes registered with the provinces they sit near, and real
agents: a meeting of communes of three provinces is booked through the API,
each commune joins the node its province was placed on and receives the host;
each relay pulls one stream per tier in use; the floor, the host's view of a
commune and a relay killed with SIGKILL are followed through to the media.
An origin of its own (`vcs sfu --role origin`) killed and started again is
followed the same way: the host publishes again, the relay pulls again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiortc.mediastreams import MediaStreamTrack

from agent.control import Agent, AgentConfig
from agent.fleet import Fleet, FleetConfig, FleetMember, link_tier
from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import subscribe
from tests.conftest import TEST_SECRET
from tests.sfu.conftest import track_of
from tests.sfu.test_floor import FlatVideoTrack, luma_becomes
from tests.sfu_process import SfuProcess
from tests.waiting import eventually, scaled
from vcs.credentials import EndpointCredentials
from vcs.divisions import communes
from vcs.endpoints import national_endpoints
from vcs.media_tokens import mint_media_token
from vcs.routing import NodeRouter
from vcs.tiers import Ladder

TIERS = "360p:640x360@800,180p:320x180@250,audio"  # the embedded origin's ladder (tests.conftest.loopback_sfu_config)
LADDER = Ladder.from_environ({"VCS_SFU_TIERS": TIERS})
NEAR_1, NEAR_2, ELSEWHERE = "01", "79", "31"  # relay 1 sits near Hà Nội, relay 2 near TP. Hồ Chí Minh; Hải Phòng has none
RECOVERY_WITHIN_S = 30.0  # the bound for a dead relay's communes to be served again
ORIGIN_RESTART_WITHIN_S = 60.0  # and for a relay's communes to receive the host again after its origin restarts
SPEAKER_LUMA = 235  # the floor's commune shows a flat bright picture: easy to tell from the host's pattern


@pytest.fixture
def settings(settings):
    """The deployment's ladder is the nodes' ladder: the plan, the schedules and the nodes speak of the same tiers."""
    return settings.with_overrides(ladder=LADDER)


class SpeakerMedia:
    """A commune's camera and microphone: a flat bright picture and a tone."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def tracks(self, tier: str, *, host: bool) -> list[MediaStreamTrack]:
        return [SyntheticAudioTrack(), FlatVideoTrack(320, 180, luma=SPEAKER_LUMA)]


def communes_of(province: str, count: int) -> list[str]:
    return [c.code for c in communes() if c.province_code == province][:count]


async def api(http: httpx.AsyncClient, method: str, path: str, headers: dict, **kwargs) -> dict:
    response = await http.request(method, path, headers=headers, **kwargs)
    assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def video_frames(agent: Agent) -> int:
    receiving = agent.room.receiving
    return receiving.counters["video"].frames if receiving is not None and "video" in receiving.counters else 0


async def receives_more(agents: list[Agent], what: str) -> None:
    """Each agent's video frame count grows from what it is now: the media flows, not just flowed."""
    start = {a.config.endpoint_id: video_frames(a) for a in agents}
    for agent in agents:
        await eventually(lambda a=agent: video_frames(a) > start[a.config.endpoint_id] + 5, 30, what=f"{agent.config.endpoint_id} {what}")


async def test_a_meeting_through_two_relays_end_to_end(start_server, redis, redis_url, mint_token, tmp_path, loopback_ice, capsys):
    relays = [SfuProcess(node_id, redis_url, tmp_path / node_id, tiers=TIERS, provinces=near) for node_id, near in (("relay-hn", NEAR_1), ("relay-hcm", NEAR_2))]
    fleet: Fleet | None = None
    agents: list[Agent] = []
    http = httpx.AsyncClient(timeout=30)
    server = start_server(run_scheduler=True, sfu=True)
    server_http = httpx.AsyncClient(base_url=server.url, timeout=30)
    try:
        origin_id = f"sfu-test-{server.port}"

        async def all_live() -> bool:
            return {origin_id, *(r.node_id for r in relays)} <= {n.id for n in await NodeRouter(redis).live_nodes()}

        def logs() -> str:
            return "the origin and both relays registered; logs:\n" + "\n".join(r.text() for r in relays)

        await eventually(all_live, 60, interval=0.5, what=logs)

        near_1, near_2, elsewhere = communes_of(NEAR_1, 2), communes_of(NEAR_2, 3), communes_of(ELSEWHERE, 2)
        speaker, fleet_ids = near_2[-1], [*near_1, *near_2[:-1], *elsewhere]
        secrets = await EndpointCredentials(redis).rotate([*fleet_ids, speaker, "central"])
        endpoints = {e.id: e for e in national_endpoints()}
        members = [FleetMember("central", secrets["central"], "360p", host=True)]
        members += [FleetMember(e, secrets[e], link_tier(endpoints[e].link, LADDER), full_tier=True) for e in fleet_ids]
        fleet = Fleet(FleetConfig(server.url, len(fleet_ids), state_root=tmp_path / "fleet", start_spread=1.0), members, http=http)
        await fleet.start()
        agents.append(Agent(AgentConfig(server.url, speaker, secrets[speaker], state_dir=tmp_path / speaker), http, SpeakerMedia()))
        await agents[0].start()

        headers = await mint_token("organizer")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=round(scaled(15)))
        body = {"title": "Giao ban liên tỉnh", "start": start.isoformat(), "duration_minutes": 10, "media": {"max_tier": "360p"},
                "selector": {"kind": "communes", "commune_ids": [*fleet_ids, speaker]}}  # fmt: skip
        meeting_id = (await api(server_http, "POST", "/api/v1/meetings", headers, json=body))["meeting"]["id"]

        communes_agents = [a for a in [*fleet.agents, *agents] if a.config.endpoint_id != "central"]
        everyone = [*fleet.agents, *agents]

        def states() -> str:
            return f"everyone joined: { {a.config.endpoint_id: (a.room.status, a.room.last_error) for a in everyone} }"

        await eventually(lambda: all(a.room.status == "in_meeting" for a in everyone), 90, interval=0.5, what=states)
        await receives_more(communes_agents, "receives the host")
        room = fleet.agents[0].room.meeting.whep_url.rsplit("/", 1)[-1]
        occurrence = fleet.agents[0].room.meeting.occurrence
        by_id = {a.config.endpoint_id: a for a in communes_agents}
        relay_1, relay_2 = relays

        # each commune joined the node its province was placed on: its own province's relay, Hải Phòng one of them
        def node_url(endpoint_id: str) -> str:
            return by_id[endpoint_id].room.meeting.whep_url.split("/sfu/", 1)[0]

        assert {node_url(e) for e in near_1} == {relay_1.url}
        assert {node_url(e) for e in near_2} == {relay_2.url}
        assert {node_url(e) for e in elsewhere} <= {relay_1.url, relay_2.url}

        # one upstream stream per tier in use on each relay, the tiers the plan gives its communes, as the nodes report
        plan = (await api(server_http, "GET", f"/api/v1/meetings/{meeting_id}/plan", headers))["plan"]
        pulled: dict[str, set[str]] = {}
        seen: dict[str, dict | None] = {}  # each relay's entry in the live view
        for relay in relays:
            planned = {c["tier"] for c in plan["communes"] if c["node_id"] == relay.node_id}

            async def pulls_the_plan(relay=relay, planned=planned) -> bool:
                stats = await relay.room(http, room)
                upstream = [u["tier"] for u in stats.get("upstream", [])]
                in_use = {s["tier"] for s in stats.get("subscribers", []) if s["tier"]}
                pulled[relay.node_id] = set(upstream) - {"audio"}
                return len(upstream) == len(set(upstream)) and set(upstream) == {*in_use, "audio"} == {*planned, "audio"}

            await eventually(pulls_the_plan, 30, interval=0.5, what=f"{relay.node_id} pulls one stream per planned tier")

            async def reported(relay=relay, planned=planned) -> bool:
                live = await api(server_http, "GET", f"/api/v1/meetings/{meeting_id}/live", headers)
                node = next((n for n in live["nodes"] if n["id"] == relay.node_id), None)
                seen[relay.node_id] = node
                return node is not None and node["upstream_streams"] == len(planned) + 1 and node["bitrate_in_kbps"] > 0

            await eventually(reported, 30, interval=0.5, what=f"{relay.node_id} reports its upstream streams and bitrate")
        # a province with a relay: its trunk carries the tiers that relay pulls, one stream each (and the audio)
        for code, relay in ((NEAR_1, relay_1), (NEAR_2, relay_2)):
            trunk = next(t for t in plan["trunks"] if t["province_code"] == code)
            assert trunk["nodes"] == [relay.node_id] and set(trunk["tiers"]) == pulled[relay.node_id]
            assert trunk["cascade_kbps"] == sum(LADDER.cost_kbps(LADDER.tier(t)) for t in pulled[relay.node_id])
            with capsys.disabled():  # the nominal trunk against all the relay takes in, its communes' cameras too (a record, not asserted)
                measured = seen[relay.node_id]["bitrate_in_kbps"]
                print(f"\ncascade: trunk {code}: plan {trunk['cascade_kbps']} kbps, {relay.node_id} takes in {measured} kbps in all")

        # the floor to a commune on relay 2 reaches a subscriber on relay 1; relay 2 stops sending it its own voice
        observer_token = mint_media_token(TEST_SECRET, room=room, identity="observer", role="subscribe", node=relay_1.node_id)
        observer = await subscribe(http, f"{relay_1.url}/sfu/whep/{room}", observer_token, max_tier="180p", decode=True)
        try:
            await luma_becomes(track_of(observer, "video"), lambda y: y < SPEAKER_LUMA - 20)  # the host's pattern
            floor = f"/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/floor"
            await api(server_http, "POST", floor, headers, json={"endpoint_id": speaker})
            await luma_becomes(track_of(observer, "video"), lambda y: y > SPEAKER_LUMA - 20, timeout=20)
            assert (await relay_2.room(http, room))["floor"] == speaker
            await api(server_http, "DELETE", floor, headers)
            assert (await relay_2.room(http, room))["floor"] is None
            await luma_becomes(track_of(observer, "video"), lambda y: y < SPEAKER_LUMA - 20, timeout=20)
        finally:
            await observer.close()

        # the host watches a commune on relay 1: its camera comes up from the relay, and stops when nobody watches
        watched = near_1[0]
        view = await api(server_http, "POST", f"/api/v1/meetings/{meeting_id}/occurrences/{occurrence}/watch", headers,
                         json={"endpoint_id": watched})  # fmt: skip
        assert view["relay"] == relay_1.url
        assert [u["identity"] for u in (await relay_1.room(http, room)).get("uplinks", [])] == [watched]
        session = await subscribe(http, view["whep_url"], view["token"])
        try:
            await eventually(lambda: session.counters["video"].frames > 5, 20, what="the host sees the watched commune")
        finally:
            await session.close()

        async def uplink_stopped() -> bool:
            return not (await relay_1.room(http, room)).get("uplinks")

        await eventually(uplink_stopped, 40, interval=0.5, what="the uplink stops once the host stops watching")

        # relay 1 dies: its communes are told to join another node and receive the host again
        moved = [e for e in by_id if node_url(e) == relay_1.url]
        record = next(n for n in await NodeRouter(redis).nodes() if n.id == relay_1.node_id)
        killed_at = time.monotonic()
        relay_1.kill()
        beat_age = time.time() - record.heartbeat  # its last heartbeat: it is seen gone `ttl` after that

        def served_elsewhere() -> bool:
            return all(by_id[e].room.status == "in_meeting" and node_url(e) != relay_1.url for e in moved)

        await eventually(served_elsewhere, 2 * RECOVERY_WITHIN_S, interval=0.25, what=lambda: "relay 1's communes moved: " + str(
            {e: (by_id[e].room.status, node_url(e) if by_id[e].room.meeting else None) for e in moved}))  # fmt: skip
        joined_s = time.monotonic() - killed_at
        await receives_more([by_id[e] for e in moved], "receives the host through its new node")
        recovered_s = time.monotonic() - killed_at
        with capsys.disabled():
            print(f"\ncascade: {len(moved)} communes of a relay killed {beat_age:.1f} s after its last heartbeat (liveness {record.ttl} s):"
                  f" joined elsewhere after {joined_s:.1f} s, receiving the host after {recovered_s:.1f} s")
        assert recovered_s < scaled(RECOVERY_WITHIN_S)
    finally:
        for agent in agents:
            await agent.stop()
        if fleet is not None:
            await fleet.stop()
        for relay in relays:
            relay.stop()
        await http.aclose()
        await server_http.aclose()


async def test_an_origin_restart_the_host_republishes_and_the_relay_follows(start_server, redis, redis_url, mint_token, tmp_path, loopback_ice,
                                                                            capsys):  # fmt: skip
    """The origin (`vcs sfu --role origin`) is killed mid-meeting and started again on its port with its node id:
    the host publishes to it again, the relay subscribes again, and its communes receive the host within a minute."""
    async def live(*nodes: SfuProcess) -> bool:
        return {n.node_id for n in nodes} <= {n.id for n in await NodeRouter(redis).live_nodes()}

    origin = SfuProcess("origin-1", redis_url, tmp_path / "origin-1", tiers=TIERS, role="origin")
    relay: SfuProcess | None = None
    fleet: Fleet | None = None
    http = httpx.AsyncClient(timeout=30)
    server = start_server(run_scheduler=True)
    server_http = httpx.AsyncClient(base_url=server.url, timeout=30)
    try:
        await eventually(lambda: live(origin), 60, interval=0.5, what=lambda: "the origin registered; log:\n" + origin.text())
        relay = SfuProcess("relay-hn", redis_url, tmp_path / "relay-hn", tiers=TIERS, provinces=NEAR_1)  # it knows its origin's start from its own
        await eventually(lambda: live(relay), 60, interval=0.5, what=lambda: "the relay registered; log:\n" + relay.text())
        near = communes_of(NEAR_1, 2)
        secrets = await EndpointCredentials(redis).rotate([*near, "central"])
        members = [FleetMember("central", secrets["central"], "360p", host=True)]
        members += [FleetMember(e, secrets[e], "180p", full_tier=True) for e in near]
        fleet = Fleet(FleetConfig(server.url, len(near), state_root=tmp_path / "fleet", start_spread=1.0), members, http=http)
        await fleet.start()
        headers = await mint_token("organizer")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=round(scaled(15)))
        body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 10, "media": {"max_tier": "360p"},
                "selector": {"kind": "communes", "commune_ids": near}}  # fmt: skip
        await api(server_http, "POST", "/api/v1/meetings", headers, json=body)
        communes_agents = [a for a in fleet.agents if a.config.endpoint_id != "central"]
        await eventually(lambda: all(a.room.status == "in_meeting" for a in fleet.agents), 90, interval=0.5,
                         what=lambda: f"everyone joined: { {a.config.endpoint_id: (a.room.status, a.room.last_error) for a in fleet.agents} }")  # fmt: skip
        assert {a.room.meeting.whep_url.split("/sfu/", 1)[0] for a in communes_agents} == {relay.url}
        host = next(a for a in fleet.agents if a.config.endpoint_id == "central")
        assert host.room.meeting.whip_url.startswith(origin.url)
        await receives_more(communes_agents, "receives the host through the relay")

        killed_at = time.monotonic()
        origin.kill()
        before = {a.config.endpoint_id: (a.room.receiving, video_frames(a)) for a in communes_agents}
        origin.start()

        def receives_again(agent: Agent) -> bool:
            """More frames on the session it had, or a few on a new one (it rejoined the relay meanwhile)."""
            session, frames = before[agent.config.endpoint_id]
            now = video_frames(agent)
            return now > 5 and (agent.room.receiving is not session or now > frames + 5)

        def where() -> str:
            return f"receiving again: { {a.config.endpoint_id: (a.room.status, video_frames(a)) for a in communes_agents} }\n" + relay.text()

        await eventually(lambda: all(receives_again(a) for a in communes_agents), ORIGIN_RESTART_WITHIN_S, interval=0.25, what=where)
        recovered_s = time.monotonic() - killed_at
        with capsys.disabled():
            print(f"\ncascade: the origin killed and started again: {len(communes_agents)} communes on the relay"
                  f" receiving the host again after {recovered_s:.1f} s")
        assert recovered_s < scaled(ORIGIN_RESTART_WITHIN_S)
    finally:
        if fleet is not None:
            await fleet.stop()
        if relay is not None:
            relay.stop()
        origin.stop()
        await http.aclose()
        await server_http.aclose()
