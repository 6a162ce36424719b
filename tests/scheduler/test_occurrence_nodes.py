"""An occurrence's placement as agents, the plan and the failure watch see it, over the real Redis."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from scheduler.actions import LifecycleActions
from scheduler.placement import load_placement
from scheduler.runner import SchedulerRole
from tests.conftest import TEST_SECRET
from vcs import keys
from vcs.media_tokens import verify_media_token
from vcs.roles import Principal, Role
from vcs.routing import NodeInfo, NodeRouter
from web.services import Services

ADMIN = Principal("admin", Role.ADMIN)
HANOI, HAIPHONG = "01", "31"


def node(node_id: str, role: str, *near: str, ttl: int = 60, capacity: int = 500) -> NodeInfo:
    return NodeInfo(node_id, f"http://{node_id}.test:8090", role, capacity, heartbeat=time.time(), ttl=ttl, provinces=near)


def node_claim(entry: dict) -> str | None:
    return verify_media_token(TEST_SECRET, entry["subscribe_token"], room=entry["room"], role="subscribe").node


async def book(services: Services, communes: list[str], now: datetime) -> str:
    body = {
        "title": "Giao ban",
        "start": (now + timedelta(minutes=1)).isoformat(),  # warm-up already due: the tokens are valid now
        "duration_minutes": 60,
        "selector": {"kind": "communes", "commune_ids": communes},
    }
    preview = await services.booking.create(ADMIN, body, now)
    return preview.meeting.id


async def test_communes_join_their_relay_and_a_dead_relay_moves_them(redis, settings):
    services = Services.build(settings, redis)
    await services.registry.seed()
    hanoi = [e.id for e in await services.registry.communes_of(HANOI)][:3]
    haiphong = [e.id for e in await services.registry.communes_of(HAIPHONG)][:2]
    router = NodeRouter(redis)
    await router.register_node(node("origin", "origin"))
    await router.register_node(node("relay-hn", "relay", HANOI))
    await router.register_node(node("relay-any", "relay"))
    now = datetime.now(UTC).replace(microsecond=0)
    meeting_id = await book(services, hanoi + haiphong, now)

    async def entry(endpoint_id: str) -> dict:
        [found] = await services.schedules.schedule(await services.registry.get(endpoint_id), now)
        return found

    first = await entry(hanoi[0])
    assert first["whep_url"] == f"http://relay-hn.test:8090/sfu/whep/{first['room']}" and node_claim(first) == "relay-hn"
    assert first["whip_url"] == f"http://relay-hn.test:8090/sfu/whip/{first['room']}"
    other = await entry(haiphong[0])
    assert other["whep_url"].startswith("http://relay-any.test:8090/") and node_claim(other) == "relay-any"
    host = await entry("central")  # the host publishes on the origin
    assert host["whip_url"].startswith("http://origin.test:8090/") and node_claim(host) == "origin"

    # kept: a closer relay registered later changes nobody's join info
    await router.register_node(node("relay-hn-2", "relay", HANOI, capacity=5000))
    assert (await entry(hanoi[0]))["whep_url"] == first["whep_url"]

    # the plan shows that same placement
    meeting = await services.meetings.get(meeting_id)
    plan = (await services.booking.preview(ADMIN, meeting, now, is_new=False)).plan
    placed = {c.endpoint_id: c.node_id for c in plan.communes}
    assert {placed[i] for i in hanoi} == {"relay-hn"} and {placed[i] for i in haiphong} == {"relay-any"}

    await router.register_node(node("relay-hn", "relay", HANOI, ttl=2))  # its last heartbeat: dead 2 s from now
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.AGENT_NOTIFY)
    actions = LifecycleActions(services.meetings, services.roster, public_url=settings.public_url)
    role = SchedulerRole(services.meetings, actions, lease_ttl=2, renew_every=0.2)
    await role.start()
    try:
        moved = None
        deadline = time.monotonic() + 30  # relay-hn's 2 s liveness plus a few checks
        while moved is None and time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                notice = json.loads(message["data"])
                if notice["event"]["type"] == "join" and "central" not in notice["endpoints"]:  # not the warm-up's
                    moved = notice
        assert moved is not None, "the communes of the dead relay were not told to move"
        assert sorted(moved["endpoints"]) == sorted(hanoi)  # only they: Hai Phong stays on relay-any
        assert moved["event"]["meeting_id"] == meeting_id
        again = await entry(hanoi[0])
        assert node_claim(again) == "relay-hn-2" and again["whep_url"].startswith("http://relay-hn-2.test:8090/")
        assert (await entry(haiphong[0]))["whep_url"] == other["whep_url"]
        placement = await load_placement(redis, meeting_id, meeting.occurrences(limit=1)[0])
        assert "relay-hn" not in placement.relays
        occurrence = meeting.occurrences(limit=1)[0]
        assert await services.schedules.nodes.relay_of(meeting_id, occurrence, hanoi[1]) == "http://relay-hn-2.test:8090"
        assert await services.schedules.nodes.relay_of(meeting_id, occurrence, "central") is None
        # the live view lists the occurrence's nodes as placed now, with their records
        summary = await services.live.summary(meeting, meeting.occurrences(limit=1)[0], time.time())
        nodes = {n["id"]: n for n in summary["nodes"]}
        assert set(nodes) == {"origin", "relay-any", "relay-hn-2"}
        assert nodes["origin"]["role"] == "origin" and nodes["relay-hn-2"]["role"] == "relay"
        assert nodes["relay-hn-2"]["provinces"] == [HANOI] and nodes["relay-hn-2"]["placed"] == 3 and nodes["relay-any"]["placed"] == 2
    finally:
        await role.stop()
        await pubsub.aclose()


async def test_without_relays_the_origin_serves_everyone(redis, settings):
    services = Services.build(settings, redis)
    await services.registry.seed()
    await NodeRouter(redis).register_node(node("origin", "origin"))
    now = datetime.now(UTC).replace(microsecond=0)
    hanoi = [e.id for e in await services.registry.communes_of(HANOI)][:2]
    await book(services, hanoi, now)
    [entry] = await services.schedules.schedule(await services.registry.get(hanoi[0]), now)
    assert entry["whep_url"] == f"http://origin.test:8090/sfu/whep/{entry['room']}" and node_claim(entry) == "origin"

    # a relay that starts later is used from the warm-up on (its `join` notice carries the new entry), not before
    await NodeRouter(redis).register_node(node("relay-hn", "relay", HANOI))
    [entry] = await services.schedules.schedule(await services.registry.get(hanoi[0]), now)
    assert node_claim(entry) == "origin"
    [meeting] = (await services.meetings.all()).values()
    await services.schedules.nodes.placement(meeting, meeting.occurrences(limit=1)[0], warmup=True)
    [entry] = await services.schedules.schedule(await services.registry.get(hanoi[0]), now)
    assert node_claim(entry) == "relay-hn" and entry["whep_url"].startswith("http://relay-hn.test:8090/")
