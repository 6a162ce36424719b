"""The origin records the program as it is encoded: a WebM file that plays, and a full disk that stops only the recording."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest

from rtc.synthetic_media import SyntheticAudioTrack, SyntheticVideoTrack
from rtc.whip_client import publish, subscribe
from scheduler.meeting import format_utc
from tests.waiting import eventually, scaled
from vcs import keys
from vcs.media_tokens import mint_media_token
from vcs.recordings import recording_path

from .conftest import SECRET, publish_scene, small_config

RECORD_S = 30.0  # seconds of meeting recorded, as in the issue
OCC = "2026-01-05T01:00:00Z"


def control(room: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_media_token(SECRET, room=room, identity='orchestrator', role='control')}"}


async def open_recorded_room(sfu, room: str, meeting_id: str, occurrence: str = OCC) -> None:
    body = {"host": "studio", "record": {"meeting_id": meeting_id, "occurrence": occurrence}}
    response = await sfu.http.put(f"{sfu.base}/rooms/{room}", json=body, headers=control(room))
    assert response.status_code == 200, response.text


async def test_a_recorded_meeting_plays_back_with_both_tracks(node_factory, redis, tmp_path):
    sfu = await node_factory(small_config(recording_dir=tmp_path / "rec"), redis=redis)
    # the room opens at warm-up, before the meeting's start: what it shows until then is not recorded
    begins = math.ceil(time.time() + 5)
    occ = format_utc(datetime.fromtimestamp(begins, UTC))
    await open_recorded_room(sfu, "r1", "m1", occ)
    host = await publish_scene(sfu)
    commune = await publish(
        sfu.http,
        f"{sfu.base}/whip/r1",
        sfu.token("r1", "c1", "publish"),
        [SyntheticAudioTrack(600), SyntheticVideoTrack(320, 180, frames=30)],
    )
    watcher = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"))
    try:
        await eventually(lambda: redis.hget(keys.recording("m1", occ), "state"), what="the node reports the recording")
        started = time.monotonic() + begins - time.time()
        await eventually(lambda: sfu.node.recordings.recorders["r1"][0].bytes > 10_000, timeout=35, what="the recording grows")
        # while the meeting is recorded, and in the same seconds: the commune holds the floor through its middle
        # third, and the subscriber receives pictures and sound in each third (the recording takes nothing from it)
        received = []
        for at, method in ((RECORD_S / 3, "POST"), (2 * RECORD_S / 3, "DELETE"), (RECORD_S, None)):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - started)))
            received.append((watcher.counters["video"].frames, watcher.counters["audio"].packets))
            if method is not None:
                response = await sfu.http.request(
                    method, f"{sfu.base}/rooms/r1/floor", json={"identity": "c1"} if method == "POST" else None, headers=control("r1")
                )
                assert response.status_code == 200, response.text
    finally:
        await host.close()
        await commune.close()
        await watcher.close()
    elapsed = time.monotonic() - started
    thirds = [(v - pv, a - pa) for (v, a), (pv, pa) in zip(received, [(0, 0), *received[:-1]], strict=True)]
    assert all(video > 0 and audio > 0 for video, audio in thirds), thirds
    response = await sfu.http.delete(f"{sfu.base}/rooms/r1", headers=control("r1"))
    assert response.status_code == 204
    state = await redis.hgetall(keys.recording("m1", occ))
    assert state["state"] == "done" and int(state["bytes"]) > 10_000 and state["floor_changes"] == "3", state
    # every picture the tier encoder made after the first is in the file: none left out, none dropped on the way
    assert state["gaps"] == "0" and state["dropped"] == "0", state

    path = tmp_path / "rec" / recording_path("m1", occ)
    with av.open(str(path)) as played:
        kinds = sorted(s.type for s in played.streams)
        assert kinds == ["audio", "video"]
        assert played.streams.video[0].codec_context.name == "vp8" and played.streams.audio[0].codec_context.name == "opus"
        video_frames = audio_frames = 0
        last_time = 0.0
        for frame in played.decode(played.streams.video[0], played.streams.audio[0]):
            if isinstance(frame, av.VideoFrame):
                video_frames += 1
            else:
                audio_frames += 1
            last_time = max(last_time, float(frame.time or 0))
    # from the start to the room's end (the five seconds before the start would be more), less the wait for a keyframe
    assert elapsed - scaled(5) <= last_time <= elapsed + 1, (last_time, elapsed)
    assert video_frames > 5 * last_time and audio_frames > 25 * last_time, (video_frames, audio_frames, last_time)
    assert abs(float(state["duration_s"]) - last_time) < 1, (state["duration_s"], last_time)
    assert int(state["frames"]) == video_frames, (state["frames"], video_frames)
    sidecar = json.loads(path.with_suffix(".webm.json").read_text())
    assert [f["program"] for f in sidecar["floor"]] == ["studio", "c1", "studio"] and sidecar["state"] == "done"
    handed, back = sidecar["floor"][1]["at_s"], sidecar["floor"][2]["at_s"]
    assert RECORD_S / 3 <= handed < back and back >= 2 * RECORD_S / 3, sidecar["floor"]


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a 64 KiB tmpfs here ({result.stderr.strip() or result.returncode}): the full-disk test needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_stops_the_recording_and_the_meeting_goes_on(node_factory, redis, tiny_disk):
    sfu = await node_factory(small_config(recording_dir=tiny_disk), redis=redis)
    await open_recorded_room(sfu, "r2", "m2")
    host = await publish_scene(sfu, room="r2")
    watcher = await subscribe(sfu.http, f"{sfu.base}/whep/r2", sfu.token("r2", "c1", "subscribe"), decode=True)
    try:

        async def failed() -> dict | None:
            state = await redis.hgetall(keys.recording("m2", OCC))
            return state if state.get("state") == "failed" else None

        state = await eventually(failed, timeout=60, interval=0.5, what="the full disk stops the recording")
        assert state["reason"] == "disk full"
        # the meeting goes on: the commune keeps receiving pictures after the recording stopped
        video = next(t for t in watcher.tracks if t.kind == "video")
        for _ in range(10):
            await asyncio.wait_for(video.recv(), scaled(10))
        assert sfu.node.room("r2").publishers["studio"].frames > 0
    finally:
        await host.close()
        await watcher.close()
