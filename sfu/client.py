"""A minimal WHIP/WHEP client on aiortc (tests, the benchmark, agents).

``publish`` sends tracks to ``POST {base}/whip/{room}``; ``subscribe`` receives
from ``POST {base}/whep/{room}``. Both return a ``Session`` whose ``close()``
sends ``DELETE`` to the resource and closes the peer connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

__all__ = ["SignalingError", "Session", "peer_connection", "publish", "subscribe"]


class SignalingError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass
class Session:
    pc: RTCPeerConnection
    url: str  # the resource URL (from Location)
    token: str
    http: httpx.AsyncClient
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    closed: bool = False

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.http.delete(self.url, headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError:
            pass
        await self.pc.close()


def peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def _exchange(http: httpx.AsyncClient, url: str, token: str, pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(
        url,
        content=pc.localDescription.sdp.encode(),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
    )
    if response.status_code != 201:
        await pc.close()
        raise SignalingError(response.status_code, response.text.strip())
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return urljoin(url, response.headers["location"])


async def publish(
    http: httpx.AsyncClient, base: str, room: str, token: str, tracks: Sequence[MediaStreamTrack]
) -> Session:
    pc = peer_connection()
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    location = await _exchange(http, f"{base}/whip/{room}", token, pc)
    return Session(pc, location, token, http, list(tracks))


async def subscribe(
    http: httpx.AsyncClient,
    base: str,
    room: str,
    token: str,
    *,
    source: str | None = None,
    max_tier: str | None = None,
    kinds: Sequence[str] = ("audio", "video"),
) -> Session:
    pc = peer_connection()
    tracks: list[MediaStreamTrack] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tracks.append(track)

    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    query = urlencode({k: v for k, v in (("source", source), ("max_tier", max_tier)) if v})
    url = f"{base}/whep/{room}" + (f"?{query}" if query else "")
    location = await _exchange(http, url, token, pc)
    return Session(pc, location, token, http, tracks)
