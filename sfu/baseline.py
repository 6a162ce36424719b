"""Stock aiortc forwarding, for the benchmark's comparison.

A deliberately plain WHIP/WHEP node: the publisher's tracks go through
``aiortc.contrib.media.MediaRelay`` and each subscriber gets
``pc.addTrack(relay.subscribe(track))``, so aiortc's own sender path does all
the work per subscriber. Two flavours:

- ``reencode``: aiortc as it comes: the receiver decodes, and every
  subscriber's sender encodes the frames again (one encode per subscriber).
- ``packets``: the receiver's decoder is swapped (process-wide) for one that
  yields the encoded frames as ``av.Packet``, which aiortc's senders packetize
  without encoding; this is the cheapest stock path.
"""

from __future__ import annotations

import fractions
import secrets

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rtc.aiortc_adapter import replace_decoder_factory

from .peer import create_peer

__all__ = ["create_baseline_app", "use_packet_passthrough"]


class _PacketDecoder:
    """Stands in for a decoder: returns the encoded frame as one packet."""

    def __init__(self, clock_rate: int) -> None:
        self._time_base = fractions.Fraction(1, clock_rate)

    def decode(self, encoded_frame):  # type: ignore[no-untyped-def]
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self._time_base
        return [packet]


def use_packet_passthrough() -> None:
    """Make every aiortc receiver in this process yield packets, not frames."""
    replace_decoder_factory(lambda codec: _PacketDecoder(codec.clockRate))


def create_baseline_app() -> Starlette:
    relay = MediaRelay()
    tracks: dict[str, object] = {}
    peers: dict[str, RTCPeerConnection] = {}

    async def whip(request: Request) -> Response:
        pc = create_peer()

        @pc.on("track")
        def on_track(track) -> None:  # type: ignore[no-untyped-def]
            tracks[track.kind] = track

        await pc.setRemoteDescription(RTCSessionDescription((await request.body()).decode(), "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return _created(request, "whip", pc, peers)

    async def whep(request: Request) -> Response:
        pc = create_peer()
        await pc.setRemoteDescription(RTCSessionDescription((await request.body()).decode(), "offer"))
        for kind in ("audio", "video"):
            source = tracks.get(kind)
            if source is not None:
                pc.addTrack(relay.subscribe(source))  # the stock idiom
        await pc.setLocalDescription(await pc.createAnswer())
        return _created(request, "whep", pc, peers)

    async def delete(request: Request) -> Response:
        pc = peers.pop(request.path_params["resource"], None)
        if pc is not None:
            await pc.close()
        return Response(status_code=200)

    async def metrics(request: Request) -> Response:
        return Response("", media_type="text/plain")

    return Starlette(
        routes=[
            Route("/whip/{room}", whip, methods=["POST"]),
            Route("/whep/{room}", whep, methods=["POST"]),
            Route("/whip/{room}/{resource}", delete, methods=["DELETE"]),
            Route("/whep/{room}/{resource}", delete, methods=["DELETE"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def _created(request: Request, kind: str, pc: RTCPeerConnection, peers: dict) -> Response:
    resource = secrets.token_urlsafe(8)
    peers[resource] = pc
    room = request.path_params["room"]
    return Response(
        pc.localDescription.sdp,
        status_code=201,
        media_type="application/sdp",
        headers={"Location": f"{request.scope.get('root_path', '')}/{kind}/{room}/{resource}"},
    )
