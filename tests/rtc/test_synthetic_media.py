"""The shared test pattern: encoded once, read by any number of tracks, at a plausible size."""

from __future__ import annotations

import asyncio
import time

import pytest

from rtc.packet_track import Broadcast, PacketTrack
from rtc.synthetic_media import AudioPattern, VideoLoop, VideoPattern
from tests.waiting import eventually, scaled, stays


async def test_video_is_encoded_once_for_every_track():
    video = VideoPattern.for_tier("180p")
    tracks = [video.track() for _ in range(50)]
    await video.start()
    try:
        for _ in range(20):
            packets = await asyncio.gather(*(t.recv() for t in tracks))
            assert all(p is packets[0] for p in packets)  # the same object, not a copy or a re-encode
        assert video.frames_encoded <= 22
    finally:
        for track in tracks:
            track.stop()
        await video.stop()
        await video.stop()  # safe twice
    assert video.broadcast.readers == 0


@pytest.mark.parametrize("tier, kbps", [("180p", 250), ("360p", 800)])
async def test_compressed_size_is_plausible_for_the_bitrate(tier, kbps):
    video = VideoPattern.for_tier(tier)
    track = video.track()
    await video.start()
    try:
        sizes, keyframes = [], 0
        for _ in range(60):  # 4 s at 15 fps
            packet = await asyncio.wait_for(track.recv(), 5)
            sizes.append(packet.size)
            keyframes += packet.is_keyframe
        measured = sum(sizes) * 8 / 4 / 1000
        assert 0.5 * kbps < measured < 1.5 * kbps, measured  # a real-looking scene: near the target, not 5x over
        assert 1 <= keyframes <= 3  # the first, then one every 3 s
        assert len(set(sizes)) > 30  # the scene moves: frames differ
    finally:
        track.stop()
        await video.stop()


async def test_encoding_pauses_without_readers_and_keyframe_requests_are_rate_limited():
    video = VideoPattern.for_tier("180p")
    await video.start()
    try:
        await stays(lambda: video.frames_encoded == 0, 0.3, what="nobody reads: nothing is encoded")
        track = video.track()
        keyframes = 0
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            packet = await asyncio.wait_for(track.recv(), 5)
            keyframes += packet.is_keyframe
            track.request_keyframe()  # a PLI storm from many subscribers
        assert 2 <= keyframes <= 3  # at most one a second
        track.stop()
        seen: list[int] = []

        def paused() -> bool:  # the last reader left: no frame between two looks 0.3 s apart
            seen.append(video.frames_encoded)
            return len(seen) > 1 and seen[-1] == seen[-2]

        await eventually(paused, interval=0.3, what="encoding pauses once the last reader leaves")
    finally:
        await video.stop()


def _is_vp8_keyframe(frame: bytes) -> bool:
    return not frame[0] & 0x01  # RFC 6386 9.1: the frame tag's first bit is 0 for a key frame


def test_a_video_loop_is_encoded_once_near_its_bitrate_with_one_keyframe():
    loop = VideoLoop(320, 180, bitrate_kbps=300, fps=30, seconds=2)
    assert len(loop.packets) == 60  # a second forth, a second back
    assert 0.8 * 300 < loop.kbps < 1.2 * 300, loop.kbps
    assert [i for i, p in enumerate(loop.packets) if _is_vp8_keyframe(p)] == [0]
    assert len(set(loop.packets)) > 30  # the scene moves


async def test_a_video_loop_replays_and_restarts_at_its_keyframe_on_request():
    loop = VideoLoop(320, 180, bitrate_kbps=300, fps=30, seconds=2)
    track = loop.track()
    await loop.start()
    try:
        first = await asyncio.wait_for(track.recv(), 5)
        assert first.is_keyframe and bytes(first) == loop.packets[0]
        for _ in range(5):
            await asyncio.wait_for(track.recv(), 5)
        track.request_keyframe()  # a PLI: the loop starts over, not sooner than a second after the last keyframe
        packet = await asyncio.wait_for(track.recv(), 5)
        while not packet.is_keyframe:
            packet = await asyncio.wait_for(track.recv(), 5)
        assert bytes(packet) == loop.packets[0]
        assert 30 <= packet.pts < 60  # frames (1/30 s): after the limit, before the loop's own end
    finally:
        track.stop()
        await loop.stop()
    assert loop.broadcast.readers == 0


async def test_audio_tone_and_muted_tracks_share_packets():
    audio = AudioPattern()
    loud, quiet, also_loud = audio.track(muted=False), audio.track(muted=True), audio.track(muted=False)
    await audio.start()
    try:
        started = time.monotonic()
        tones = [await loud.recv() for _ in range(50)]
        assert 0.8 < time.monotonic() - started < scaled(1.5)  # paced at 50 packets a second
        assert [p.pts for p in tones] == sorted(p.pts for p in tones)
        assert all(p.pts % 960 == 0 and p.time_base.denominator == 48000 for p in tones)
        silent = await asyncio.wait_for(quiet.recv(), 2)  # a muted track sends silence every 400 ms
        assert silent.size < tones[0].size
        latest = await also_loud.recv()
        assert latest is not None
    finally:
        for track in (loud, quiet, also_loud):
            track.stop()
        await audio.stop()


async def test_a_video_reader_starts_at_a_keyframe_and_resyncs_after_falling_behind():
    broadcast = Broadcast()
    requests = []
    track = PacketTrack("video", broadcast, on_keyframe_request=lambda: requests.append(1))
    broadcast.push("p0", keyframe=False)  # type: ignore[arg-type]
    broadcast.push("k1", keyframe=True)  # type: ignore[arg-type]
    broadcast.push("p2", keyframe=False)  # type: ignore[arg-type]
    assert [await track.recv(), await track.recv()] == ["k1", "p2"]  # p0 cannot be decoded without k1
    for n in range(Broadcast.HISTORY + 10):
        broadcast.push(f"p{n + 3}", keyframe=False)  # type: ignore[arg-type]
    broadcast.push("k", keyframe=True)  # type: ignore[arg-type]
    assert await track.recv() == "k" and requests == [1]  # fell out of the ring: asked for, and waited for, a keyframe
    broadcast.close()
    with pytest.raises(Exception):
        await track.recv()
    track.stop()
    assert broadcast.readers == 0
