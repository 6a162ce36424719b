"""Create and negotiate the node's side of one WHIP/WHEP peer connection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from rtc.ice import _Network, guard_peer

from .errors import BadRequest, NotAcceptable, Unavailable

__all__ = ["VIDEO_CODECS", "AUDIO_CODECS", "create_peer", "negotiate", "add_transceiver"]

NEGOTIATION_TIMEOUT_S = 10.0


def _codecs(kind: str, name: str) -> list:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in caps if c.mimeType.lower() == f"{kind}/{name}"]
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return chosen


VIDEO_CODECS = _codecs("video", "vp8")
AUDIO_CODECS = _codecs("audio", "opus")


def create_peer() -> RTCPeerConnection:
    # no STUN/TURN server: the node is reachable at its host candidates
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def add_transceiver(pc: RTCPeerConnection, kind: str, direction: str) -> RTCRtpTransceiver:
    transceiver = pc.addTransceiver(kind, direction=direction)
    transceiver.setCodecPreferences(VIDEO_CODECS if kind == "video" else AUDIO_CODECS)
    return transceiver


async def negotiate(pc: RTCPeerConnection, offer: str, networks: Sequence[_Network]) -> str:
    """Apply ``offer`` and return the answer (all candidates gathered)."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except Exception as exc:  # aiortc raises many types for hostile input
        name = type(exc).__name__
        if name == "OperationError":
            raise NotAcceptable(f"no usable codec: {exc}") from None
        raise BadRequest(f"the offer was refused: {name}: {exc}") from None
    guard_peer(pc, networks)
    try:
        answer = await pc.createAnswer()
        await asyncio.wait_for(pc.setLocalDescription(answer), NEGOTIATION_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise Unavailable("timed out gathering candidates") from None
    except Exception as exc:
        raise BadRequest(f"cannot answer the offer: {type(exc).__name__}: {exc}") from None
    return pc.localDescription.sdp
