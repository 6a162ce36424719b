"""A minimal WHIP/WHEP server for the agent's tests: real aiortc peers, tiny semantics.

WHEP subscribers receive a shared 180p test pattern and a tone; WHIP
publishers' video is decoded (proving the packets are real VP8) and counted.
Tokens are checked with `vcs.media_tokens` like the real SFU does. Not the SFU.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rtc.synthetic_media import AudioPattern, VideoPattern
from vcs.media_tokens import MediaTokenError, verify_media_token


@dataclass
class Resource:
    id: str
    kind: str  # "whip" or "whep"
    room: str
    identity: str
    pc: RTCPeerConnection
    params: dict
    frames: int = 0
    frame_size: tuple[int, int] | None = None
    deleted: bool = False
    tasks: list[asyncio.Task] = field(default_factory=list)


class FakeSfu:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.resources: dict[str, Resource] = {}
        self.refuse_with: int | None = None  # answer every POST with this status
        self.refusals = 0  # POSTs answered with refuse_with
        self.video: VideoPattern | None = None
        self.audio: AudioPattern | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/sfu/whip/{room}", self.post, methods=["POST"]),
                Route("/sfu/whep/{room}", self.post, methods=["POST"]),
                Route("/sfu/resource/{rid}", self.delete, methods=["DELETE"]),
            ],
            lifespan=self.lifespan,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app):  # type: ignore[no-untyped-def]
        self.loop = asyncio.get_running_loop()
        self.video, self.audio = VideoPattern.for_tier("180p"), AudioPattern()
        await self.video.start()
        await self.audio.start()
        yield
        for resource in list(self.resources.values()):
            await self._close(resource)
        await self.video.stop()
        await self.audio.stop()

    def of(self, kind: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.kind == kind]

    async def post(self, request: Request) -> Response:
        kind = "whip" if "/whip/" in request.url.path else "whep"
        room = request.path_params["room"]
        if self.refuse_with:
            self.refusals += 1
            return Response("refused", status_code=self.refuse_with, headers={"Retry-After": "1"})
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = verify_media_token(self.secret, token, room=room, role="publish" if kind == "whip" else "subscribe")
        except MediaTokenError as exc:
            return Response(str(exc), status_code=exc.status_code)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        resource = Resource(uuid.uuid4().hex[:12], kind, room, claims.identity, pc, dict(request.query_params))
        if kind == "whip":
            pc.on("track", lambda track: resource.tasks.append(asyncio.ensure_future(self._consume(resource, track))))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=(await request.body()).decode(), type="offer"))
        if kind == "whep":
            for transceiver in pc.getTransceivers():
                track = self.video.track() if transceiver.kind == "video" else self.audio.track(muted=False)
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
        await pc.setLocalDescription(await pc.createAnswer())
        self.resources[resource.id] = resource
        return Response(pc.localDescription.sdp, status_code=201, media_type="application/sdp", headers={"Location": f"/sfu/resource/{resource.id}"})

    async def kick(self, kind: str, identity: str) -> None:
        """Close that peer's resources from the server side (from the test's loop)."""
        victims = [r for r in self.of(kind) if r.identity == identity and not r.deleted]

        async def close_all() -> None:
            for resource in victims:
                await self._close(resource)

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(close_all(), self.loop))

    async def _consume(self, resource: Resource, track) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    resource.frames += 1
                    resource.frame_size = (frame.width, frame.height)

    async def delete(self, request: Request) -> Response:
        resource = self.resources.get(request.path_params["rid"])
        if resource is None:
            return Response(status_code=404)
        await self._close(resource)
        return Response(status_code=204)

    async def _close(self, resource: Resource) -> None:
        resource.deleted = True
        for transceiver in resource.pc.getTransceivers():
            if transceiver.sender.track is not None:
                transceiver.sender.track.stop()
        await resource.pc.close()
        for task in resource.tasks:
            task.cancel()
        await asyncio.gather(*resource.tasks, return_exceptions=True)
