"""The agent end to end: a stand-in orchestrator in this loop, a small real WebRTC peer as the SFU."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from agent.control import Agent, AgentConfig
from agent.media import PatternMedia
from agent.room import RoomOptions
from agent.schedule_cache import ScheduleCache, parse_entries
from tests.agent.fake_orchestrator import FakeOrchestrator, iso
from tests.agent.fake_orchestrator import schedule_entry as entry
from tests.conftest import TEST_SECRET, LiveServer, free_port
from tests.fake_sfu import FakeSfu
from tests.sfu_process import SfuProcess
from tests.waiting import eventually, scaled, stays

SECRET = "right-secret-0123456789"
FAST = RoomOptions(stats_interval=1.0, media_timeout=3.0, host_tier="360p")


@pytest.fixture
async def orchestrator() -> AsyncIterator[FakeOrchestrator]:
    fake = FakeOrchestrator({"00070": SECRET, "central": SECRET}, max_failures=1, retry_after=3)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def media() -> AsyncIterator[PatternMedia]:
    patterns = PatternMedia()
    yield patterns
    await patterns.stop()


def make_agent(server_url: str, http, media, tmp_path, *, secret: str = SECRET, endpoint: str = "00070", **kwargs) -> Agent:
    config = AgentConfig(server_url, endpoint, secret, state_dir=tmp_path / endpoint, room=FAST, heartbeat_interval=0.5)
    return Agent(config, http, media, rand=lambda: 0.5, **kwargs)


async def test_logs_in_caches_state_heartbeats_joins_at_warmup_and_leaves_at_end(orchestrator, sfu, http, media, tmp_path):
    fake_sfu, sfu_url = sfu
    orchestrator.schedules["00070"] = [entry(sfu_url, warmup_in=1.0, end_in=6.0)]
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: orchestrator.messages("00070", "heartbeat"))
        assert orchestrator.messages("00070", "heartbeat")[0]["status"] == "idle"
        assert [e.meeting_id for e in ScheduleCache(tmp_path / "00070").load("00070")] == ["m1"]
        await eventually(lambda: orchestrator.messages("00070", "joined"))
        joined = orchestrator.messages("00070", "joined")[0]
        assert joined["tier"] == "180p" and 0 <= joined["join_ms"] < 5000
        assert {r.kind for r in fake_sfu.resources.values()} == {"whep", "whip"}
        await eventually(lambda: any(m.get("status") == "in_meeting" for m in orchestrator.messages("00070", "heartbeat")))
        await eventually(lambda: orchestrator.messages("00070", "stats"))
        stats = orchestrator.messages("00070", "stats")[0]
        assert stats["tier"] == "180p" and stats["bitrate_kbps"] > 50 and stats["loss_pct"] < 5
        await eventually(lambda: fake_sfu.of("whip")[0].frames > 5)
        assert fake_sfu.of("whip")[0].frame_size == (320, 180)
        assert agent.room.muted is True  # participants join muted
        await eventually(lambda: orchestrator.messages("00070", "left"), timeout=10)
        assert all(r.deleted for r in fake_sfu.resources.values())
        assert agent.room.status == "idle"
    finally:
        await agent.stop()
        await agent.stop()  # safe twice
    assert not agent.connected


async def test_a_join_deferred_by_a_busy_sfu_waits_its_turn_without_failing(orchestrator, sfu, http, media, tmp_path):
    fake_sfu, sfu_url = sfu
    fake_sfu.refuse_with = 503  # with Retry-After: 1, as a node at its handshake bound answers
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: "00070" in orchestrator.sockets)
        await orchestrator.push("00070", {"type": "join", "entry": entry(sfu_url, warmup_in=600, end_in=1200)})
        await eventually(lambda: fake_sfu.refusals >= 2, what="the agent comes back after the Retry-After")
        assert agent.room.status == "joining" and agent.room.last_error is None
        fake_sfu.refuse_with = None
        await eventually(lambda: orchestrator.messages("00070", "joined"), what="the agent joins once the SFU has room")
        assert not orchestrator.messages("00070", "failed")  # waiting its turn is not a failure
    finally:
        await agent.stop()


async def test_skewed_clock_still_joins_on_server_time(orchestrator, sfu, http, media, tmp_path):
    _, sfu_url = sfu
    orchestrator.schedules["00070"] = [entry(sfu_url, warmup_in=1.5)]
    agent = make_agent(orchestrator.url, http, media, tmp_path, clock=lambda: time.time() - 3600)  # an hour slow
    started = time.monotonic()
    await agent.start()
    try:
        await eventually(lambda: orchestrator.messages("00070", "joined"))
        assert 1.0 < time.monotonic() - started < scaled(6.0)
        assert agent.clock.offset == pytest.approx(3600, abs=1)
        await orchestrator.push("00070", {"type": "start", "meeting_id": "m1", "occurrence": "x", "start": iso(time.time())})
        await eventually(lambda: orchestrator.messages("00070", "start_seen"))
        assert abs(orchestrator.messages("00070", "start_seen")[0]["delay_ms"]) < scaled(1500)
    finally:
        await agent.stop()


async def test_join_floor_drop_rejoin_and_leave_messages(orchestrator, sfu, http, media, tmp_path):
    fake_sfu, sfu_url = sfu
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: "00070" in orchestrator.sockets)
        future = entry(sfu_url, warmup_in=600, end_in=1200)  # warm-up far away: `join` means now
        await orchestrator.push("00070", {"type": "join", "entry": future})
        await eventually(lambda: orchestrator.messages("00070", "joined"))
        assert orchestrator.messages("00070", "joined")[0]["join_ms"] < scaled(5000)
        key = {"meeting_id": future["meeting_id"], "occurrence": future["occurrence"]}
        await orchestrator.push("00070", {"type": "floor", **key, "endpoint_id": "00070"})
        await eventually(lambda: agent.room.muted is False)
        await orchestrator.push("00070", {"type": "floor", **key, "endpoint_id": None})
        await eventually(lambda: agent.room.muted is True)
        await orchestrator.push("00070", {"type": "readiness", **key})
        await eventually(lambda: orchestrator.messages("00070", "probe"))
        assert orchestrator.messages("00070", "probe")[0]["rtt_ms"] >= 0
        await fake_sfu.kick("whep", "00070")  # the SFU drops us
        await eventually(lambda: orchestrator.messages("00070", "failed"), timeout=10)
        assert orchestrator.messages("00070", "failed")[0]["reason"] == "connection lost"
        await eventually(lambda: len(orchestrator.messages("00070", "joined")) == 2, timeout=15)
        await orchestrator.push("00070", {"type": "leave", **key})
        await eventually(lambda: orchestrator.messages("00070", "left"))
        # told to leave: no rejoin (a rejoin after a drop comes within the backoff's first step)
        await stays(lambda: len(orchestrator.messages("00070", "joined")) == 2, scaled(2.5), what="no rejoin after leave")
        assert all(r.deleted for r in fake_sfu.resources.values())
    finally:
        await agent.stop()


async def test_a_join_with_another_node_moves_the_agent_there(orchestrator, sfu, loopback_ice, http, media, tmp_path):
    """The orchestrator re-placed this commune (its relay failed): it leaves the old node and joins the new one at once."""
    old_sfu, old_url = sfu
    new_sfu = FakeSfu(TEST_SECRET)
    server = LiveServer(new_sfu.app, free_port())
    server.start()
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: "00070" in orchestrator.sockets)
        now = time.time()
        await orchestrator.push("00070", {"type": "join", "entry": entry(old_url, warmup_in=600, end_in=1200, now=now)})
        await eventually(lambda: orchestrator.messages("00070", "joined"))
        await orchestrator.push("00070", {"type": "join", "entry": entry(server.url, warmup_in=600, end_in=1200, now=now)})
        await eventually(lambda: len(orchestrator.messages("00070", "joined")) == 2, timeout=15)
        assert [r.identity for r in new_sfu.of("whep") if not r.deleted] == ["00070"]
        await eventually(lambda: all(r.deleted for r in old_sfu.resources.values()))
        assert not orchestrator.messages("00070", "left")  # a move, not a leave
    finally:
        await agent.stop()
        server.stop()


async def test_host_publishes_and_does_not_subscribe(orchestrator, sfu, http, media, tmp_path):
    fake_sfu, sfu_url = sfu
    orchestrator.schedules["central"] = [entry(sfu_url, warmup_in=0.2, role="host", endpoint="central")]
    agent = make_agent(orchestrator.url, http, media, tmp_path, endpoint="central")
    await agent.start()
    try:
        await eventually(lambda: orchestrator.messages("central", "joined"))
        assert orchestrator.messages("central", "joined")[0]["tier"] == "360p"  # capped by host_tier
        await eventually(lambda: fake_sfu.of("whip") and fake_sfu.of("whip")[0].frames > 5)
        assert fake_sfu.of("whip")[0].frame_size == (640, 360) and not fake_sfu.of("whep")
        assert agent.room.muted is None or agent.room.muted is False  # the host speaks
        await eventually(lambda: orchestrator.messages("central", "stats"))
        assert orchestrator.messages("central", "stats")[-1]["bitrate_kbps"] > 0
    finally:
        await agent.stop()


async def test_wrong_secret_backs_off_and_honours_retry_after(orchestrator, http, media, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    agent = make_agent(orchestrator.url, http, media, tmp_path, secret="wrong-secret-xyz")
    await agent.start()
    try:
        await eventually(lambda: len(orchestrator.logins) >= 3, timeout=10)
    finally:
        await agent.stop()
    statuses = [status for _, status, _ in orchestrator.logins]
    times = [at for _, _, at in orchestrator.logins]
    assert statuses[:3] == [401, 429, 429]
    assert times[1] - times[0] == pytest.approx(1.0, abs=0.4)  # backoff: 1 s
    assert times[2] - times[1] == pytest.approx(3.0, abs=0.4)  # Retry-After: 3 s beats the 2 s backoff
    assert "wrong endpoint id or secret" in caplog.text
    assert "wrong-secret-xyz" not in caplog.text
    assert not agent.connected and agent.login_failures >= 1


async def test_malformed_messages_are_logged_and_skipped(orchestrator, sfu, http, media, tmp_path, caplog):
    _, sfu_url = sfu
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: "00070" in orchestrator.sockets)
        for garbage in ("not json", "[1, 2]", '{"type": 5}', '{"type": "state", "schedule": "x"}', '{"type": "join", "entry": {}}',
                        '{"type": "start"}', '{"type": "floor"}', '{"type": "nonsense"}', '{"type": "state", "server_time": "soon"}'):  # fmt: skip
            await orchestrator.push("00070", garbage)
        await orchestrator.push("00070", {"type": "readiness", "meeting_id": "m9", "occurrence": "o"})
        await eventually(lambda: orchestrator.messages("00070", "probe"))
        assert agent.connected and len([m for m in orchestrator.logins if m[1] == 200]) == 1
        assert "ignoring" in caplog.text
    finally:
        await agent.stop()


async def test_relogin_when_the_token_is_revoked(orchestrator, http, media, tmp_path):
    agent = make_agent(orchestrator.url, http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: "00070" in orchestrator.sockets)
        orchestrator.revoke("00070")
        await orchestrator.sockets["00070"].close(1001)  # the server restarts; the old token is gone
        await eventually(lambda: len([m for m in orchestrator.logins if m[1] == 200]) == 2 and "00070" in orchestrator.sockets)
        assert orchestrator.ws_refusals == 1
        await eventually(lambda: orchestrator.messages("00070", "sync"))  # a reconnect asks for the full state
    finally:
        await agent.stop()


async def test_joins_from_the_cached_schedule_when_the_orchestrator_is_down(sfu, http, media, tmp_path):
    fake_sfu, sfu_url = sfu
    ScheduleCache(tmp_path / "00070").save("00070", parse_entries([entry(sfu_url, warmup_in=0.5)]), server_time=time.time())
    agent = make_agent(f"http://127.0.0.1:{free_port()}", http, media, tmp_path)  # nothing listens there
    await agent.start()
    try:
        await eventually(lambda: agent.room.status == "in_meeting")
        assert {(r.kind, r.identity) for r in fake_sfu.resources.values()} == {("whep", "00070"), ("whip", "00070")}
        assert not agent.connected
    finally:
        await agent.stop()
    assert all(r.deleted for r in fake_sfu.resources.values())


# --- against the real orchestrator (web.app) ------------------------------------------------


def _minutes_from_now(minutes: int) -> str:
    from datetime import timedelta

    moment = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def real_server(redis, settings, sfu, mint_token) -> AsyncIterator[tuple[LiveServer, FakeSfu, dict]]:
    """The real web app, whose rooms point at the small WHIP/WHEP peer; 00070 has a secret and a meeting."""
    from vcs.credentials import EndpointCredentials
    from web.app import create_app

    fake_sfu, sfu_url = sfu
    port = free_port()
    server = LiveServer(create_app(settings.with_overrides(port=port, public_url=sfu_url)), port)
    server.start()
    secret = (await EndpointCredentials(redis).rotate(["00070"]))["00070"]
    booking = {
        "title": "Hội nghị giao ban", "start": _minutes_from_now(2), "duration_minutes": 30,
        "selector": {"kind": "communes", "commune_ids": ["00070"]}, "media": {"max_tier": "720p"},
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        response = await client.post("/api/v1/meetings", json=booking, headers=await mint_token("organizer"))
    assert response.status_code == 201, response.text
    yield server, fake_sfu, {"secret": secret, "meeting_id": response.json()["meeting"]["id"]}
    server.stop()


async def test_real_server_state_heartbeat_online_and_join_with_a_skewed_clock(real_server, redis, http, media, tmp_path, caplog):
    from vcs import keys
    from vcs.presence import Presence

    server, fake_sfu, booked = real_server
    agent = make_agent(server.url, http, media, tmp_path, secret=booked["secret"], clock=lambda: time.time() - 3600)
    await agent.start()
    try:
        await eventually(lambda: agent.connected and ScheduleCache(tmp_path / "00070").load("00070"))
        cached = ScheduleCache(tmp_path / "00070").load("00070")
        assert [e.meeting_id for e in cached] == [booked["meeting_id"]] and cached[0].role == "participant"
        assert "malformed" not in caplog.text
        await eventually(lambda: agent.room.status == "in_meeting")  # warm-up has begun by the server's clock
        assert {(r.kind, r.identity) for r in fake_sfu.resources.values()} == {("whep", "00070"), ("whip", "00070")}
        assert "00070" in await Presence(redis, 30).online_ids(time.time())
        live_key = keys.live_state(booked["meeting_id"], cached[0].occurrence)

        async def live_state() -> dict:
            raw = await redis.hget(live_key, "00070")
            return json.loads(raw) if raw else {}

        async def joined() -> bool:
            return (await live_state()).get("state") == "joined"

        await eventually(joined, what="the live state shows the endpoint joined")
        assert (await live_state())["tier"] == "180p"
    finally:
        await agent.stop()


async def test_real_server_down_agent_joins_from_its_cached_schedule(real_server, http, media, tmp_path):
    server, fake_sfu, booked = real_server
    fake_sfu.refuse_with = 503  # the media room is not there yet: the agent only learns its schedule
    first = make_agent(server.url, http, media, tmp_path, secret=booked["secret"])
    await first.start()
    try:
        await eventually(lambda: first.connected and ScheduleCache(tmp_path / "00070").load("00070"))
    finally:
        await first.stop()
    server.stop()  # the orchestrator is gone
    fake_sfu.refuse_with = None
    second = make_agent(server.url, http, media, tmp_path, secret=booked["secret"])
    await second.start()
    try:
        await eventually(lambda: second.room.status == "in_meeting")
        assert not second.connected
        assert {(r.kind, r.identity) for r in fake_sfu.resources.values() if not r.deleted} == {("whep", "00070"), ("whip", "00070")}
    finally:
        await second.stop()


def _write_clip(path, seconds: int = 2) -> None:
    """A small WebM file (VP8 + Opus) made from FFmpeg's test sources."""
    import av

    source = av.open(f"testsrc2=s=320x180:r=15:d={seconds}", format="lavfi")
    tone = av.open(f"sine=f=440:r=48000:d={seconds}", format="lavfi")
    with av.open(str(path), "w", format="webm") as out:
        video = out.add_stream("libvpx", rate=15)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        audio = out.add_stream("libopus", rate=48000)
        for frame in source.decode(video=0):
            frame.pict_type = av.video.frame.PictureType.NONE
            out.mux(video.encode(frame))
        out.mux(video.encode())
        for frame in tone.decode(audio=0):
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


async def test_publishes_a_media_file_through_mediaplayer_muted(sfu, http, tmp_path):
    from agent.media import PlayerMedia

    fake_sfu, sfu_url = sfu
    clip = tmp_path / "clip.webm"
    _write_clip(clip)
    ScheduleCache(tmp_path / "00070").save("00070", parse_entries([entry(sfu_url, warmup_in=0.0)]), server_time=time.time())
    media = PlayerMedia(str(clip))
    agent = make_agent(f"http://127.0.0.1:{free_port()}", http, media, tmp_path)
    await agent.start()
    try:
        await eventually(lambda: agent.room.status == "in_meeting")
        await eventually(lambda: fake_sfu.of("whip") and fake_sfu.of("whip")[0].frames > 5)
        assert fake_sfu.of("whip")[0].frame_size == (320, 180)
        assert agent.room.muted is True
    finally:
        await agent.stop()
        await media.stop()


async def test_mutable_audio_track_sends_silence_of_the_same_shape_while_muted():
    import av
    from aiortc.mediastreams import AudioStreamTrack

    from agent.media import MutableAudioTrack

    class Loud(AudioStreamTrack):
        async def recv(self):
            frame = await super().recv()
            for plane in frame.planes:
                plane.update(b"\x10\x20" * (plane.buffer_size // 2))
            return frame

    track = MutableAudioTrack(Loud(), muted=True)
    silent = await track.recv()
    assert isinstance(silent, av.AudioFrame) and set(bytes(silent.planes[0])) == {0}
    track.muted = False
    loud = await track.recv()
    assert (loud.samples, loud.sample_rate, loud.format.name) == (silent.samples, silent.sample_rate, silent.format.name)
    assert set(bytes(loud.planes[0])) != {0} and loud.pts > silent.pts
    track.stop()
    assert track.source.readyState == "ended"


AGENT_COMMAND = (
    "import argparse, logging, sys; from agent.cli import add_agent_command; from vcs.config import Settings;"
    "logging.basicConfig(level='INFO', format='%(levelname)s %(name)s: %(message)s');"
    "p = argparse.ArgumentParser(); c = p.add_subparsers(); add_agent_command(c); a = p.parse_args(sys.argv[1:]);"
    "sys.exit(a.func(a, Settings.load()))"
)


async def test_agent_command_logs_a_wrong_secret_clearly_and_stops_on_sigterm(orchestrator, tmp_path):
    import os
    import signal
    import sys

    secret_file = tmp_path / "secret"
    secret_file.write_text("endpoint_id,secret\n00070,not-the-secret-42\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VCS_")}, "VCS_DATA_DIR": str(tmp_path / "var")}
    args = ["agent", "--server", orchestrator.url, "--endpoint", "00070", "--secret-file", str(secret_file), "--no-media"]
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", AGENT_COMMAND, *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    try:
        await eventually(lambda: len(orchestrator.logins) >= 2, timeout=20)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    text = err.decode()
    assert process.returncode == 0, text
    assert "login refused: wrong endpoint id or secret" in text
    assert "not-the-secret-42" not in text and "Traceback" not in text
    assert [status for _, status, _ in orchestrator.logins][:2] == [401, 429]


async def test_a_host_whose_node_dies_rejoins_before_ice_consent_would_say_so(orchestrator, redis_url, loopback_ice, http, media, tmp_path):
    """A publisher hears of its node only through receiver reports: when they stop, it counts as a drop (not ~30 s later)."""
    node = SfuProcess("origin-1", redis_url, tmp_path / "origin-1", role="origin")
    options = RoomOptions(stats_interval=1.0, host_tier="360p", report_timeout=3.0)
    config = AgentConfig(orchestrator.url, "central", SECRET, state_dir=tmp_path / "central", room=options, heartbeat_interval=0.5)
    agent = Agent(config, http, media, rand=lambda: 0.5)
    try:
        await eventually(node.answers, 30, interval=0.2, what=lambda: "the node up; log:\n" + node.text())
        orchestrator.schedules["central"] = [entry(node.url, warmup_in=0.2, role="host", endpoint="central")]
        await agent.start()
        await eventually(lambda: orchestrator.messages("central", "joined"), 20, what=lambda: f"the host joined: {orchestrator.messages('central', 'failed')} {agent.room.last_error}")
        await stays(lambda: not orchestrator.messages("central", "failed"), 2 * options.report_timeout, what="the node's reports keep it")
        node.kill()
        await eventually(lambda: orchestrator.messages("central", "failed"), 10, what="the host sees its node gone")  # ICE consent: ~30 s
        assert orchestrator.messages("central", "failed")[0]["reason"] == "connection lost"
    finally:
        await agent.stop()
        node.stop()
