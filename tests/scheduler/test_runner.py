"""The scheduler end to end: jobs from the meeting store, lease failover, agents notified once."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from websockets.asyncio.client import connect

from scheduler.meeting import Meeting, ParticipantSelector, format_utc
from scheduler.store import MeetingStore
from tests.conftest import TEST_SECRET
from tests.waiting import eventually, scaled, stays
from vcs import keys
from vcs.credentials import EndpointCredentials
from vcs.redis_server import EmbeddedRedis, connected

COMMUNES = ["00070", "00004", "00008"]


async def agent_socket(server_url: str, endpoint_id: str, secret: str):
    async with httpx.AsyncClient(base_url=server_url) as client:
        token = (await client.post("/api/v1/agent/login", json={"endpoint_id": endpoint_id, "secret": secret})).json()["token"]
    ws_url = server_url.replace("http://", "ws://") + "/api/v1/agent/ws"
    return await connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"})


async def receive_until(socket, kind: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


def start_in(seconds: float) -> str:
    return format_utc(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds))


async def test_a_meeting_in_a_few_seconds_reaches_every_agent_once(start_server, redis, mint_token):
    server = start_server(run_scheduler=True)
    secrets = await EndpointCredentials(redis).rotate(COMMUNES)
    sockets = [await agent_socket(server.url, e, secrets[e]) for e in COMMUNES]
    try:
        for socket in sockets:
            state = await receive_until(socket, "state", 5)
            assert state["schedule"] == []
        body = {
            "title": "Giao ban nhanh",
            "start": start_in(4),
            "duration_minutes": 5,
            "selector": {"kind": "communes", "commune_ids": COMMUNES},
        }
        async with httpx.AsyncClient(base_url=server.url) as client:
            created = await client.post("/api/v1/meetings", json=body, headers=await mint_token("organizer"))
        assert created.status_code == 201, created.text
        meeting_id = created.json()["meeting"]["id"]
        for endpoint_id, socket in zip(COMMUNES, sockets):
            join = await receive_until(socket, "join", 10)
            entry = join["entry"]
            assert entry["meeting_id"] == meeting_id and entry["role"] == "participant"
            assert entry["whep_url"].endswith(f"/sfu/whep/{entry['room']}") and entry["subscribe_token"]
            start = await receive_until(socket, "start", 10)
            assert abs(start["server_time"] - datetime.fromisoformat(body["start"]).timestamp()) < 2.5
        log = [json.loads(e) for e in await redis.lrange(keys.LIFECYCLE_LOG, 0, -1)]
        phases = sorted(e["phase"] for e in log if e["meeting"] == meeting_id)
        assert phases == ["live", "readiness", "warmup"]
        stored = await MeetingStore(redis).get(meeting_id)
        assert stored.status_of(stored.start).value == "live"
    finally:
        for socket in sockets:
            await socket.close()


def scheduler_process(redis_url: str, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "VCS_REDIS_URL": redis_url, "VCS_SECRET_KEY": TEST_SECRET, "VCS_DATA_DIR": str(tmp_path), "VCS_LOG_LEVEL": "INFO"}
    return subprocess.Popen([sys.executable, "-m", "app.cli", "scheduler", "--lease-ttl", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_standby_starts_it_exactly_once_when_the_leader_dies(redis, redis_url, tmp_path):
    leader = scheduler_process(redis_url, tmp_path)
    standby = None
    try:
        first_lease = await eventually(lambda: redis.get(keys.SCHEDULER_LEASE), 20)
        clients = len(await redis.client_list())
        standby = scheduler_process(redis_url, tmp_path)

        async def standby_connected() -> bool:
            return len(await redis.client_list()) > clients

        await eventually(standby_connected, what="the standby is up and polling the lease")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
        meeting = Meeting("failover", "Chuyển đổi dự phòng", "admin", "central", start, timedelta(minutes=5), ParticipantSelector("communes", commune_ids=("00070",)))
        await MeetingStore(redis).create(meeting)
        await eventually(lambda: redis.exists(keys.phase_done("failover", format_utc(start), "warmup")), 10)
        delay = (start - datetime.now(UTC)).total_seconds() - 1.0
        await asyncio.sleep(max(0, delay))
        leader.send_signal(signal.SIGKILL)  # no goodbye: the lease must expire
        leader.wait(5)

        async def started():
            return await redis.get(keys.phase_done("failover", format_utc(start), "live"))

        fence = int(await eventually(started, 15))
        assert fence > int(first_lease.split(":")[-1]), "the start was run by the new leader"
        async def started_once() -> bool:
            log = [json.loads(e) for e in await redis.lrange(keys.LIFECYCLE_LOG, 0, -1)]
            return [e["phase"] for e in log if e["meeting"] == "failover"].count("live") == 1

        await stays(started_once, scaled(2), what="the start ran exactly once")
        log = [json.loads(e) for e in await redis.lrange(keys.LIFECYCLE_LOG, 0, -1)]
        late = (datetime.fromisoformat(next(e["at"] for e in log if e["phase"] == "live")) - start).total_seconds()
        assert late < scaled(5), f"started {late:.1f}s late"
    finally:
        for process in (leader, standby):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(10)


async def test_meetings_survive_a_redis_restart(tmp_path):
    server = EmbeddedRedis(tmp_path)
    server.start()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    meeting = Meeting("persist", "Lưu bền", "admin", "central", start, timedelta(minutes=30), ParticipantSelector("all"))
    try:
        async with connected(server.url) as redis:
            await MeetingStore(redis).create(meeting)
        server.stop()
        server.start()
        async with connected(server.url) as redis:
            assert await MeetingStore(redis).get("persist") == meeting
    finally:
        server.stop()


async def test_a_changed_meeting_gets_new_jobs_and_the_others_keep_theirs(redis):
    from dataclasses import replace

    from scheduler.actions import LifecycleActions
    from scheduler.participants import Groups
    from scheduler.roster import Roster
    from scheduler.runner import SchedulerRole
    from vcs.registry import Registry

    store = MeetingStore(redis)
    registry = Registry(redis)
    await registry.seed()
    role = SchedulerRole(store, LifecycleActions(store, Roster(store, registry, Groups(redis)), public_url="http://127.0.0.1"))
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    selector = ParticipantSelector("communes", commune_ids=("00070",))
    for meeting_id, start in (("ma", soon), ("mb", soon + timedelta(hours=2))):
        await store.create(Meeting(meeting_id, "Giao ban", "admin", "central", start, timedelta(minutes=30), selector))
    await role.start()
    try:
        def jobs(meeting_id: str) -> dict:
            scheduler = role._scheduler
            return {j.id: j for j in scheduler.get_jobs() if j.id.startswith(f"{meeting_id}:")} if scheduler else {}

        await eventually(lambda: len(jobs("ma")) == 4 and len(jobs("mb")) == 4, 10)
        kept = jobs("mb")
        await store.update("ma", lambda m: replace(m, start=soon + timedelta(hours=5)))
        moved = soon + timedelta(hours=5)
        await eventually(lambda: all(j.next_run_time > moved - timedelta(minutes=16) for j in jobs("ma").values()) and jobs("ma"), 5)
        assert jobs("mb") == kept and all(jobs("mb")[i] is kept[i] for i in kept)  # not derived again
        await store.update("ma", lambda m: m.cancel_series(now=datetime.now(UTC)))
        await eventually(lambda: not jobs("ma"), 5)
        assert len(jobs("mb")) == 4
    finally:
        await role.stop()
