"""End to end over loopback: WHIP publish, WHEP subscribe, real aiortc peers."""

from __future__ import annotations

import time

import pytest

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import publish, subscribe
from tests.waiting import eventually

from .conftest import publish_scene as host_publishes
from .conftest import recv_frames, small_config, track_of


async def test_publish_then_subscribe_receives_video_and_audio(sfu):
    pub = await host_publishes(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "commune-1", "subscribe"), decode=True)
    try:
        kinds = {t.kind: t for t in sub.tracks}
        assert set(kinds) == {"audio", "video"}
        frames = await recv_frames(kinds["video"], 10)
        assert frames[-1].width == 320 and frames[-1].height == 180
        audio = await recv_frames(kinds["audio"], 10)
        assert audio[0].sample_rate == 48000
        room = sfu.node.room("r1")
        stats = room.stats()
        assert stats["host"] == "studio"
        [sub_stats] = stats["subscribers"]
        assert sub_stats["tier"] == "360p"
        assert [t["tier"] for t in stats["tiers"]] == ["360p"]
    finally:
        await sub.close()
        await pub.close()


async def test_subscriber_may_join_before_the_host(sfu):
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/early", sfu.token("early", "commune-1", "subscribe"), decode=True)
    pub = await host_publishes(sfu, room="early")
    try:
        video = next(t for t in sub.tracks if t.kind == "video")
        frames = await recv_frames(video, 5)
        assert frames
    finally:
        await sub.close()
        await pub.close()


async def test_location_and_delete(sfu):
    pub = await host_publishes(sfu)
    assert "/sfu/whip/r1/" in pub.resource_url
    resource_id = pub.resource_url.rsplit("/", 1)[1]
    assert resource_id in sfu.node.resources
    response = await sfu.http.delete(pub.resource_url, headers=sfu.auth("r1", "studio", "publish"))
    assert response.status_code == 200
    assert resource_id not in sfu.node.resources
    await pub.pc.close()
    response = await sfu.http.delete(pub.resource_url, headers=sfu.auth("r1", "studio", "publish"))
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["PATCH", "PUT", "GET"])
async def test_unsupported_methods_on_resource(sfu, method):
    pub = await host_publishes(sfu)
    try:
        response = await sfu.http.request(method, pub.resource_url, headers=sfu.auth("r1", "studio", "publish"))
        assert response.status_code == 405
        assert "DELETE" in response.headers["allow"]
    finally:
        await pub.close()


async def test_a_late_subscriber_gets_a_keyframe_promptly(node_factory):
    # periodic keyframes only every 60 s: a join must force one
    sfu = await node_factory(small_config(keyframe_interval_s=60.0, keyframe_min_interval_s=0.5))
    pub = await host_publishes(sfu)
    first = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    second = None
    try:
        await recv_frames(track_of(first, "video"), 30)
        started = time.monotonic()
        second = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), decode=True)
        await recv_frames(track_of(second, "video"), 1, timeout=5)
        assert time.monotonic() - started < 3.0
        [encoder] = sfu.node.room("r1").encoders.values()
        assert encoder.forced_keyframes >= 2
    finally:
        for session in (second, first, pub):
            if session is not None:
                await session.close()


async def test_a_commune_that_publishes_first_does_not_take_the_program(sfu):
    """Only a publish token that names the host makes its holder the programme; a commune's never does."""
    commune = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "c1", "publish"), [SyntheticAudioTrack()])
    try:
        room = sfu.node.room("r1")
        assert "c1" in room.publishers and room.host is None and room.program_identity is None
        studio = await host_publishes(sfu)
        try:
            await eventually(lambda: room.host == "studio", what="the host's token makes it the programme")
            assert room.program_identity == "studio"
        finally:
            await studio.close()
    finally:
        await commune.close()
