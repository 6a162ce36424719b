"""The agent hub: which agents a meeting change re-sends `state` to, and notices that never wait for it.

The hub runs on a real Redis with the real store, roster and schedule builder;
the sockets are a small fake of the one method it uses (`send_text`) that can
also hang, as a stalled agent's socket does. The last test goes through a real
server and real control sockets.
"""

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from websockets.asyncio.client import connect

from scheduler.actions import notify_agents
from scheduler.meeting import Meeting, OccurrenceStatus, ParticipantSelector
from tests.waiting import eventually, scaled
from vcs.credentials import EndpointCredentials
from web.services import Services

START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)  # within every agent's 24-hour schedule
# seconds a socket must stay silent to count as "not re-sent"; longer on a slow machine, where a
# resend would come later too (a longer watch can only catch more, never fail a correct hub)
QUIET = scaled(0.5)


class FakeSocket:
    """Records what the hub sends; while `hold()` is on, a send hangs until `release()`."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict] = asyncio.Queue()
        self.stuck = asyncio.Event()
        self._open = asyncio.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def send_text(self, text: str) -> None:
        if not self._open.is_set():
            self.stuck.set()
            await self._open.wait()
        await self.messages.put(json.loads(text))

    async def next(self, kind: str, timeout: float = 10) -> dict:
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message["type"] == kind:
                return message

    async def silent(self) -> bool:
        await asyncio.sleep(QUIET)
        return self.messages.empty()


def titles(state: dict) -> list[str]:
    return [entry["title"] for entry in state["schedule"]]


def meeting(meeting_id: str, *commune_ids: str, title: str = "Giao ban") -> Meeting:
    return Meeting(meeting_id, title, "admin", "central", START, timedelta(hours=1), ParticipantSelector("communes", commune_ids=commune_ids))


@pytest.fixture
async def svc(redis, settings):
    """The web process's services; the tests start the hub once their sockets are in (stopped here)."""
    services = Services.build(settings, redis)
    await services.registry.seed()
    yield services
    await services.hub.stop()


async def connected(svc: Services, endpoint_id: str) -> tuple[FakeSocket, dict]:
    """A socket as the control endpoint opens it: added, then sent its first `state`.

    (A socket that connects while a refresh runs may get its first state twice; the
    tests connect theirs before the hub starts, so every message they see is a change.)
    """
    socket = FakeSocket()
    svc.hub.add(endpoint_id, socket)
    await svc.hub.send_state(endpoint_id, socket)
    return socket, await socket.next("state")


async def settled(svc: Services, probe: FakeSocket) -> None:
    """Return once every refresh the hub began before this call has ended.

    The hub refreshes in rounds, one after another; a change that arrives during
    a round waits for the next. The probe is alone in meeting "probe", and its
    second change, made once the first had reached it, is refreshed in a round
    that began after every earlier one ended.
    """
    for _ in range(2):
        await svc.meetings.update("probe", lambda m: replace(m, title=f"{m.title}+"))
        await probe.next("state")


async def test_a_meeting_change_re_sends_state_to_its_endpoints_before_and_after_only(svc):
    await svc.meetings.create(meeting("a", "00070", "00004", title="A"))
    await svc.meetings.create(meeting("b", "00008", title="B"))
    await svc.meetings.create(meeting("probe", "00073"))
    sockets, first = {}, {}
    for endpoint_id in ("00070", "00004", "00008", "00025", "00073"):
        sockets[endpoint_id], first[endpoint_id] = await connected(svc, endpoint_id)
    await svc.hub.start()
    await settled(svc, sockets["00073"])  # the hub's first refresh, of everyone, is over
    # 00008's schedule changes without a meeting write (its uplink shrinks to 40 kbps): only a refresh shows it
    link = (await svc.registry.get("00008")).link
    await svc.registry.set_links([("00008", replace(link, up_kbps=40))])

    await svc.meetings.update("a", lambda m: replace(m, selector=ParticipantSelector("communes", commune_ids=("00070", "00025"))))
    assert titles(await sockets["00004"].next("state")) == []  # left the meeting
    assert titles(await sockets["00025"].next("state")) == ["A"]  # joined it
    assert await sockets["00070"].silent()  # still in it: its entry is the same
    assert await sockets["00008"].silent()  # not in it: not looked at

    await svc.meetings.update("b", lambda m: replace(m, title="B2"))
    [entry] = (await sockets["00008"].next("state"))["schedule"]
    assert entry["title"] == "B2" and entry["publish_tier"] != first["00008"]["schedule"][0]["publish_tier"]


async def test_a_lifecycle_status_write_re_sends_no_state(svc):
    await svc.meetings.create(meeting("a", "00070", "00004"))
    sockets = [(await connected(svc, e))[0] for e in ("00070", "00004", "central")]
    await svc.hub.start()
    await svc.meetings.update("a", lambda m: m.with_status(START, OccurrenceStatus.PREPARING, now=datetime.now(UTC)))
    await svc.meetings.update("a", lambda m: m.with_status(START, OccurrenceStatus.LIVE, now=datetime.now(UTC)))
    assert all([await s.silent() for s in sockets])


async def test_a_change_without_a_meeting_id_refreshes_everyone(svc):
    await svc.groups.save("ban-chi-dao", ["00070"], svc.registry)
    await svc.meetings.create(replace(meeting("g"), selector=ParticipantSelector("group", group="ban-chi-dao"), title="G"))
    await svc.meetings.create(meeting("probe", "00073"))
    socket, first = await connected(svc, "00004")
    probe, _ = await connected(svc, "00073")
    assert titles(first) == []
    await svc.hub.start()
    await settled(svc, probe)
    await svc.groups.save("ban-chi-dao", ["00070", "00004"], svc.registry)  # publishes {"group": ...}, no meeting
    assert titles(await socket.next("state")) == ["G"]


async def test_a_start_notice_goes_out_while_a_refresh_hangs_on_a_stalled_socket(svc):
    await svc.meetings.create(meeting("a", "00004", title="A"))
    await svc.meetings.create(meeting("b", "00008", title="B"))
    stalled, _ = await connected(svc, "00004")
    waiting, _ = await connected(svc, "00008")
    await svc.hub.start()
    stalled.hold()
    await svc.meetings.update("a", lambda m: replace(m, title="A2"))
    await asyncio.wait_for(stalled.stuck.wait(), 10)  # the refresh now hangs in its send (up to SEND_TIMEOUT)

    await notify_agents(svc.redis, ["00008"], {"type": "start", "meeting_id": "b", "occurrence": START.isoformat()})
    start = await waiting.next("start", timeout=1.0)
    assert start["meeting_id"] == "b" and stalled.messages.empty()
    stalled.release()
    assert titles(await stalled.next("state")) == ["A2"]


async def agent_socket(server_url: str, endpoint_id: str, secret: str):
    async with httpx.AsyncClient(base_url=server_url) as client:
        token = (await client.post("/api/v1/agent/login", json={"endpoint_id": endpoint_id, "secret": secret})).json()["token"]
    return await connect(server_url.replace("http://", "ws://") + "/api/v1/agent/ws", additional_headers={"Authorization": f"Bearer {token}"})


async def next_state(socket, timeout: float = 10) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] == "state":
            return message


async def test_agents_see_a_booking_its_edit_and_its_cancellation(live_server, redis, mint_token):
    secrets = await EndpointCredentials(redis).rotate(["00070", "00004"])
    member, bystander = [await agent_socket(live_server.url, e, secrets[e]) for e in ("00070", "00004")]
    try:
        assert titles(await next_state(member)) == [] and titles(await next_state(bystander)) == []
        headers = await mint_token("organizer")
        body = {"title": "Giao ban", "start": START.isoformat(), "duration_minutes": 30, "selector": {"kind": "communes", "commune_ids": ["00070"]}}
        async with httpx.AsyncClient(base_url=live_server.url, headers=headers) as client:
            created = await client.post("/api/v1/meetings", json=body)
            assert created.status_code == 201, created.text
            meeting_id = created.json()["meeting"]["id"]
            assert titles(await next_state(member)) == ["Giao ban"]
            assert (await client.patch(f"/api/v1/meetings/{meeting_id}", json={"title": "Giao ban (sửa)"})).status_code == 200
            assert titles(await next_state(member)) == ["Giao ban (sửa)"]
            assert (await client.delete(f"/api/v1/meetings/{meeting_id}")).status_code == 200
            assert titles(await next_state(member)) == []
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(bystander.recv(), QUIET)
    finally:
        await member.close()
        await bystander.close()


async def next_of(socket, kind: str, timeout: float = 10) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] == kind:
            return message


async def test_reports_go_only_to_a_real_occurrence_of_a_meeting_the_agent_is_in(live_server, redis, mint_token):
    from scheduler.meeting import format_utc
    from vcs import keys

    secrets = await EndpointCredentials(redis).rotate(["00070", "00004"])
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(minutes=10)  # about to start: reports (readiness probes) are taken
    body = {"title": "Giao ban", "start": start.isoformat(), "duration_minutes": 60, "selector": {"kind": "communes", "commune_ids": ["00070"]},
            "override_conflicts": True}
    async with httpx.AsyncClient(base_url=live_server.url, headers=await mint_token("admin")) as client:
        created = await client.post("/api/v1/meetings", json=body)
        assert created.status_code == 201, created.text
    meeting_id = created.json()["meeting"]["id"]
    member, bystander = [await agent_socket(live_server.url, e, secrets[e]) for e in ("00070", "00004")]
    try:
        made_up = [
            format_utc(start + timedelta(seconds=1)),  # not a start of the series
            format_utc(start + timedelta(days=30)),  # not a start either (a one-off meeting)
            "anything-at-all",
        ]
        for occurrence in made_up:
            await member.send(json.dumps({"type": "stats", "meeting_id": meeting_id, "occurrence": occurrence, "rtt_ms": 5}))
            assert (await next_of(member, "error"))["reason"] == "not an occurrence of that meeting under way"
        await member.send(json.dumps({"type": "joined", "meeting_id": "no-such-meeting", "occurrence": format_utc(start)}))
        assert (await next_of(member, "error"))["reason"] == "no such meeting"
        await bystander.send(json.dumps({"type": "joined", "meeting_id": meeting_id, "occurrence": format_utc(start)}))
        assert (await next_of(bystander, "error"))["reason"] == "not a participant of that meeting"
        # the real one, written under its canonical key, given in another spelling of the same instant
        await member.send(json.dumps({"type": "joined", "meeting_id": meeting_id, "occurrence": start.astimezone().isoformat(), "tier": "360p"}))
        key = keys.live_state(meeting_id, format_utc(start))
        await eventually(lambda: redis.hexists(key, "00070"), what="the report was recorded")
        assert sorted(await redis.keys(keys.live_state("*", "*"))) == [key]
    finally:
        await member.close()
        await bystander.close()


async def test_a_binary_frame_closes_the_socket_with_1003(live_server, redis):
    from websockets.exceptions import ConnectionClosed

    secrets = await EndpointCredentials(redis).rotate(["00070"])
    socket = await agent_socket(live_server.url, "00070", secrets["00070"])
    try:
        await next_state(socket)
        await socket.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    finally:
        await socket.close()


async def test_the_t15_readiness_notice_goes_to_everyone_and_the_test_orders_follow_paced(redis, settings):
    """The notice at once to every room; test orders to K rooms at once, the next one's when a result frees a slot."""
    from scheduler.meeting import format_utc
    from scheduler.readiness import Subject

    svc = Services.build(settings.with_overrides(readiness_concurrency=2), redis)
    await svc.registry.seed()
    try:
        rooms = ("00004", "00008", "00025")
        await svc.meetings.create(meeting("r", *rooms))
        await svc.meetings.create(meeting("probe", "00073"))
        sockets = {e: (await connected(svc, e))[0] for e in rooms}
        probe, _ = await connected(svc, "00073")
        await svc.hub.start()
        await settled(svc, probe)  # the hub listens
        occurrence = format_utc(START)
        await notify_agents(svc.redis, list(rooms), {"type": "readiness", "meeting_id": "r", "occurrence": occurrence})
        for socket in sockets.values():
            assert "test" not in await socket.next("readiness")
        first = {}
        for e, socket in sockets.items():
            try:
                first[e] = await socket.next("test", timeout=QUIET)
            except TimeoutError:
                pass
        assert len(first) == 2 and all(m["test"]["meeting_id"] == "r" and m["test"]["whep_url"] for m in first.values())
        [waiting] = set(rooms) - set(first)
        await svc.readiness.record(Subject("r", occurrence), next(iter(first)), {"tier": "360p", "planned_tier": "360p"}, svc.clock())
        order = await sockets[waiting].next("test")
        assert order["test"]["test_id"] == f"occ:r:{occurrence}"
    finally:
        await svc.hub.stop()
