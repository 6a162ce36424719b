"""Fault drills: a meeting's end runs exactly once when the leader dies or Redis freezes around it.

Each drill counts the end's three effects where a user sees them: the status
written ("ended"), the agents' `leave` notice, and the SFU node's room-end call
(a small control server on loopback records the calls it receives). Set
`VCS_DRILL_TRIALS=N` to repeat each drill N times (the figures in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler.actions import LifecycleActions
from scheduler.lifecycle import Phase
from scheduler.meeting import Meeting, OccurrenceStatus, ParticipantSelector, format_utc
from scheduler.participants import Groups
from scheduler.roster import Roster
from scheduler.runner import SchedulerRole
from scheduler.sfu_control import SfuControl
from scheduler.store import MeetingStore
from tests.conftest import TEST_SECRET, LiveServer, free_port
from tests.scheduler.test_runner import scheduler_process
from tests.waiting import eventually
from vcs import keys
from vcs.redis_server import EmbeddedRedis, connected
from vcs.registry import Registry

TRIALS = range(int(os.environ.get("VCS_DRILL_TRIALS", "1")))
QUIET = 1.5  # seconds watched after the step is done, for a second run that must not come


class RoomControl:
    """An SFU node's room control as the scheduler sees it: it records the rooms it ends.

    Like a node, it answers 404 to the end of a room already ended: a leader that
    died between the node's answer and its record of it calls again, and the room
    still ends once. `calls` counts every end call; `on_end` runs inside the first.
    """

    def __init__(self) -> None:
        self.rooms: set[str] = set()
        self.ends: list[str] = []
        self.calls = 0
        self.on_end = lambda: None

        async def room(request: Request) -> Response:
            name = request.path_params["room"]
            if request.method == "PUT":
                self.rooms.add(name)
                return Response(status_code=204)
            self.calls += 1
            if self.calls == 1:
                self.on_end()
            if name not in self.rooms:
                return Response(status_code=404)
            self.rooms.discard(name)
            self.ends.append(name)
            return Response(status_code=204)

        self.server = LiveServer(Starlette(routes=[Route("/sfu/rooms/{room}", room, methods=["PUT", "DELETE"])]), free_port())


@pytest.fixture
def room_control():
    control = RoomControl()
    control.server.start()
    yield control
    control.server.stop()


async def meeting_ending_in(redis, seconds: float, meeting_id: str, control: RoomControl) -> Meeting:
    """A live meeting whose earlier steps are done and whose room is open on `control`: only its end is owed."""
    node_url = control.server.url
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=1)
    meeting = Meeting(meeting_id, "Diễn tập", "admin", "central", start, timedelta(minutes=1, seconds=seconds), ParticipantSelector("communes", commune_ids=("00070",)))
    meeting = meeting.with_status(start, OccurrenceStatus.LIVE, now=now)
    occ = format_utc(start)
    for phase in (Phase.READINESS, Phase.WARMUP, Phase.LIVE):
        await redis.set(keys.phase_done(meeting_id, occ, phase.value), 0)
    await redis.hset(keys.occurrence_room(meeting_id, occ), mapping={"node_url": node_url, "room": f"{meeting_id}-room"})
    await MeetingStore(redis).create(meeting)
    control.rooms.add(f"{meeting_id}-room")
    return meeting


class Effects:
    """The end's effects as Redis carries them: status writes of the meeting and `leave` notices."""

    def __init__(self, redis, meeting_id: str) -> None:
        self.redis = redis
        self.meeting_id = meeting_id
        self.status_writes = 0
        self.notices: list[str] = []
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Effects:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(keys.MEETINGS_CHANGED, keys.AGENT_NOTIFY)
        self._task = asyncio.create_task(self._listen(pubsub))
        return self

    async def _listen(self, pubsub) -> None:
        try:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                data = json.loads(message["data"])
                if message["channel"] == keys.MEETINGS_CHANGED and data.get("meeting") == self.meeting_id:
                    self.status_writes += 1
                elif message["channel"] == keys.AGENT_NOTIFY and data["event"]["meeting_id"] == self.meeting_id:
                    self.notices.append(data["event"]["type"])
        finally:
            await pubsub.aclose()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def ended_once(redis, meeting: Meeting, effects: Effects, control: RoomControl, timeout: float) -> int:
    """Wait for the end's done marker, watch a little longer, check each effect happened once; returns its fence."""
    occ = format_utc(meeting.start)
    fence = int(await eventually(lambda: redis.get(keys.phase_done(meeting.id, occ, "ended")), timeout))
    await asyncio.sleep(QUIET)
    stored = await MeetingStore(redis).get(meeting.id)
    assert stored.status_of(meeting.start) is OccurrenceStatus.ENDED
    assert (effects.status_writes, effects.notices, len(control.ends)) == (1, ["leave"], 1), "status writes, notices, rooms ended"
    assert not await redis.exists(keys.phase_claim(meeting.id, occ, "ended"))
    log = [json.loads(e) for e in await redis.lrange(keys.LIFECYCLE_LOG, 0, -1)]
    assert [e["phase"] for e in log if e["meeting"] == meeting.id] == ["ended"]
    print(f"drill {meeting.id}: ended once; room end calls {control.calls}")
    return fence


@pytest.mark.parametrize("trial", TRIALS)
async def test_the_end_runs_once_when_the_leader_is_killed_just_before_it(redis, redis_url, tmp_path, room_control, trial):
    meeting = await meeting_ending_in(redis, 5, f"kill-{trial}", room_control)
    end = meeting.start + meeting.duration
    leader = scheduler_process(redis_url, tmp_path)
    standby = None
    try:
        first = await eventually(lambda: redis.get(keys.SCHEDULER_LEASE), 20)
        standby = scheduler_process(redis_url, tmp_path)
        async with Effects(redis, meeting.id) as effects:
            await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds() - 1.0))
            assert not await redis.exists(keys.phase_done(meeting.id, format_utc(meeting.start), "ended"))
            leader.send_signal(signal.SIGKILL)  # no goodbye: the lease expires after its TTL, after the end
            leader.wait(5)
            fence = await ended_once(redis, meeting, effects, room_control, 20)
        assert fence > int(first.split(":")[-1]), "the end was run by the new leader"
    finally:
        for process in (leader, standby):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)


def server_pid(server: EmbeddedRedis) -> int:
    return int((server.dir / "server.pid").read_text())


def freeze(pid: int, seconds: float) -> None:
    """SIGSTOP the Redis server for `seconds`: every client hangs, and the leader's lease expires meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("trial", TRIALS)
@pytest.mark.parametrize("when", ["after-the-claim", "at-the-end"])
async def test_the_end_runs_once_when_redis_freezes_across_its_claim(tmp_path, room_control, when, trial):
    """Two schedulers in this process (leader and standby, lease TTL 1 s); Redis stops for 2 s.

    after-the-claim: inside the SFU call, so the step is claimed and its room ended, and its status
    and notice are still to come when the lease expires. at-the-end: from just before the end's
    instant, so the claim itself is sent to a frozen server.
    """
    server = EmbeddedRedis(tmp_path)
    server.start()
    roles: list[SchedulerRole] = []
    try:
        async with connected(server.url) as redis:
            await Registry(redis).seed()
            meeting = await meeting_ending_in(redis, 4, f"freeze-{trial}", room_control)
            end = meeting.start + meeting.duration
            pid = server_pid(server)
            if when == "after-the-claim":
                room_control.on_end = lambda: freeze(pid, 2.0)
            for name in ("a", "b"):
                store = MeetingStore(redis)
                actions = LifecycleActions(store, Roster(store, Registry(redis), Groups(redis)), public_url="http://127.0.0.1", sfu=SfuControl(TEST_SECRET, timeout=10))
                roles.append(SchedulerRole(store, actions, lease_ttl=1.0, renew_every=0.2, holder=name))
            try:
                for role in roles:
                    await role.start()
                await eventually(lambda: asyncio.sleep(0, any(r.is_leader for r in roles)), 10)
                async with Effects(redis, meeting.id) as effects:
                    if when == "at-the-end":
                        await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds() - 0.2))
                        thread = threading.Thread(target=freeze, args=(pid, 2.0))
                        thread.start()
                        await asyncio.to_thread(thread.join)
                    await ended_once(redis, meeting, effects, room_control, 20)
            finally:
                for role in roles:
                    await role.stop()
    finally:
        server.stop()


async def test_a_leader_that_starts_after_an_occurrence_ended_runs_its_end_only(redis, room_control):
    """The whole scheduler was down for the meeting: on start it ends it, and tells nobody to join it."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    meeting = Meeting("missed", "Bỏ lỡ", "admin", "central", start, timedelta(hours=1), ParticipantSelector("communes", commune_ids=("00070",)))
    await MeetingStore(redis).create(meeting.with_status(start, OccurrenceStatus.LIVE, now=now))
    occ = format_utc(start)
    await redis.hset(keys.occurrence_room("missed", occ), mapping={"node_url": room_control.server.url, "room": "missed-room"})
    room_control.rooms.add("missed-room")
    await Registry(redis).seed()
    store = MeetingStore(redis)
    role = SchedulerRole(store, LifecycleActions(store, Roster(store, Registry(redis), Groups(redis)), public_url="http://127.0.0.1", sfu=SfuControl(TEST_SECRET)))
    async with Effects(redis, "missed") as effects:
        await role.start()
        try:
            await ended_once(redis, meeting, effects, room_control, 15)
        finally:
            await role.stop()
    assert [await redis.exists(keys.phase_done("missed", occ, p)) for p in ("readiness", "warmup", "live")] == [0, 0, 0]
