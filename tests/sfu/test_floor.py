"""Floor control end to end: the commune with the floor reaches everyone."""

from __future__ import annotations

import asyncio
import fractions

import av
from aiortc.mediastreams import MediaStreamTrack

from rtc.synthetic_media import SyntheticAudioTrack
from rtc.whip_client import MediaError, publish, subscribe
from tests.waiting import eventually
from vcs.media_tokens import mint_media_token

from .conftest import SECRET, publish_scene, recv_frames, track_of


class FlatVideoTrack(MediaStreamTrack):
    """A commune camera that is easy to recognise: a flat bright picture."""

    kind = "video"

    def __init__(self, width: int = 160, height: int = 90, luma: int = 220) -> None:
        super().__init__()
        self._size = (width, height)
        self._luma = luma
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(1 / 30)
        width, height = self._size
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.planes[0].update(bytes([self._luma]) * (frame.planes[0].line_size * height))
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * (plane.line_size * (height // 2)))
        frame.pts = self._index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self._index += 1
        return frame


def mean_luma(frame: av.VideoFrame) -> float:
    plane = frame.planes[0]
    data = bytes(plane)
    rows = [data[y * plane.line_size : y * plane.line_size + frame.width] for y in range(frame.height)]
    return sum(sum(row) for row in rows) / (frame.width * frame.height)


async def luma_becomes(track, predicate, timeout: float = 10.0) -> float:
    async def read() -> float:
        while True:
            value = mean_luma((await recv_frames(track, 1))[0])
            if predicate(value):
                return value

    return await asyncio.wait_for(read(), timeout)


def control(sfu, room: str = "r1") -> dict[str, str]:
    token = mint_media_token(SECRET, room=room, identity="orchestrator", role="control")
    return {"Authorization": f"Bearer {token}"}


async def test_floor_hand_over(sfu):
    # the orchestrator opens the room and names the host
    response = await sfu.http.put(f"{sfu.base}/rooms/r1", json={"host": "studio"}, headers=control(sfu))
    assert response.status_code == 200
    host = await publish_scene(sfu)
    commune = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "c1", "publish"), [SyntheticAudioTrack(600), FlatVideoTrack()])
    watcher = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), decode=True)
    c1_watching = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    try:
        video = track_of(watcher, "video")
        scene = await luma_becomes(video, lambda y: y < 180)
        room = sfu.node.room("r1")
        assert room.program_identity == "studio"
        # a commune's camera is forwarded as packets, never decoded, until it holds the floor
        await eventually(lambda: room.publishers["c1"].video_packets > 30)
        assert room.publishers["c1"].frames == 0 and room.publishers["studio"].frames > 0

        response = await sfu.http.post(f"{sfu.base}/rooms/r1/floor", json={"identity": "c1"}, headers=control(sfu))
        assert response.status_code == 200
        assert response.json() == {"room": "r1", "floor": "c1", "program": "c1"}
        await luma_becomes(video, lambda y: y > 200)
        assert room.publishers["c1"].frames > 0
        # its audio goes to everyone, except back to itself
        await eventually(lambda: room._audio_source is not None and room._audio_source.identity == "c1")
        c2 = next(s for s in room.subscribers.values() if s.identity == "c2")
        c1 = next(s for s in room.subscribers.values() if s.identity == "c1")
        assert c2.audio.stream is room.audio
        assert c1.audio.stream is None
        packets = c2.audio.packets_sent
        await eventually(lambda: c2.audio.packets_sent > packets, what="c1's audio reaches c2")

        state = (await sfu.http.get(f"{sfu.base}/rooms/r1", headers=control(sfu))).json()
        assert state["floor"] == "c1" and state["host"] == "studio"

        response = await sfu.http.delete(f"{sfu.base}/rooms/r1/floor", headers=control(sfu))
        assert response.json()["program"] == "studio"
        back = await luma_becomes(video, lambda y: y < 180)
        assert abs(back - scene) < 40
        await eventually(lambda: room._audio_source.identity == "studio")
        assert c1.audio.stream is room.audio
    finally:
        for session in (c1_watching, watcher, commune, host):
            await session.close()


async def test_floor_api_guards(sfu):
    host = await publish_scene(sfu)
    try:
        url = f"{sfu.base}/rooms/r1/floor"
        assert (await sfu.http.post(url, json={"identity": "c1"})).status_code == 401
        assert (await sfu.http.post(url, json={"identity": "c1"}, headers=control(sfu, "r2"))).status_code == 403
        assert (await sfu.http.post(url, json={"identity": "c1"}, headers=sfu.auth("r1", "studio", "publish"))).status_code == 403
        response = await sfu.http.post(url, json={"identity": "nobody"}, headers=control(sfu))
        assert response.status_code == 409
        assert (await sfu.http.post(url, content=b"[1,2]", headers=control(sfu))).status_code == 400
        assert (await sfu.http.post(url, content=b"{nope", headers=control(sfu))).status_code == 400
        assert (await sfu.http.post(f"{sfu.base}/rooms/r9/floor", json={"identity": "x"}, headers=control(sfu, "r9"))).status_code == 404
        star = {"Authorization": "Bearer " + mint_media_token(SECRET, room="*", identity="ops", role="control")}
        rooms = (await sfu.http.get(f"{sfu.base}/rooms", headers=star)).json()["rooms"]
        assert [r["room"] for r in rooms] == ["r1"]
        assert (await sfu.http.get(f"{sfu.base}/rooms", headers=control(sfu))).status_code == 403
        assert (await sfu.http.get(f"{sfu.base}/node", headers=star)).json()["id"] == "sfu-test"
    finally:
        await host.close()


async def test_only_the_host_receives_a_commune_camera(sfu):
    host = await publish_scene(sfu)
    commune = await publish(sfu.http, f"{sfu.base}/whip/r1", sfu.token("r1", "c1", "publish"), [FlatVideoTrack()])
    try:
        try:
            await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c2", "subscribe"), source="c1")
        except MediaError as exc:
            assert exc.status == 403
        else:
            raise AssertionError("a commune received another commune's camera")
        view = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "studio", "subscribe"), source="c1", decode=True)
        try:
            frames = await recv_frames(track_of(view, "video"), 10)
            # forwarded as the commune sent it: its own size, no re-encode
            assert (frames[-1].width, frames[-1].height) == (160, 90)
            assert mean_luma(frames[-1]) > 200
            assert "c1" not in [e.tier.name for e in sfu.node.room("r1").encoders.values()]
        finally:
            await view.close()
    finally:
        await commune.close()
        await host.close()


async def test_ending_the_room_closes_every_peer(sfu):
    host = await publish_scene(sfu)
    sub = await subscribe(sfu.http, f"{sfu.base}/whep/r1", sfu.token("r1", "c1", "subscribe"), decode=True)
    await recv_frames(track_of(sub, "video"), 3)
    response = await sfu.http.delete(f"{sfu.base}/rooms/r1", headers=control(sfu))
    assert response.status_code == 204
    assert "r1" not in sfu.node.rooms and not sfu.node.resources
    # the clients see their connections end
    await eventually(lambda: sub.pc.connectionState in ("closed", "failed"), timeout=10)
    await eventually(lambda: host.pc.connectionState in ("closed", "failed"), timeout=10)
    await sub.close()
    await host.close()
