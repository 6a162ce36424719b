"""Create and negotiate the node's side of one WHIP/WHEP peer connection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from rtc.aiortc_adapter import ReusableCertificate, peer_connection_with, replace_header_extensions, transceiver_codecs
from rtc.ice import _Network, guard_peer
from rtc.transport_cc import TWCC_URI

from .errors import BadRequest, NotAcceptable, Unavailable
from .offer import Offer
from .udp_mux import UdpMux

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


def create_peer(certificate: ReusableCertificate | None = None) -> RTCPeerConnection:
    """A peer connection of the node with its shared `certificate` (None: one of its own, as aiortc makes)."""
    # no STUN/TURN server: the node is reachable at its host candidates
    return peer_connection_with(RTCConfiguration(iceServers=[]), certificate)


def add_transceiver(pc: RTCPeerConnection, kind: str, direction: str) -> RTCRtpTransceiver:
    transceiver = pc.addTransceiver(kind, direction=direction)
    transceiver.setCodecPreferences(VIDEO_CODECS if kind == "video" else AUDIO_CODECS)
    return transceiver


async def negotiate(pc: RTCPeerConnection, offer: Offer, networks: Sequence[_Network], mux: UdpMux | None = None) -> str:
    """Apply ``offer`` and return the answer (all candidates gathered): on the node's shared socket
    when ``mux`` is given, else on sockets of the peer's own."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.text, type="offer"))
    except Exception as exc:  # aiortc raises many types for hostile input
        name = type(exc).__name__
        if name == "OperationError":
            raise NotAcceptable(f"no usable codec: {exc}") from None
        raise BadRequest(f"the offer was refused: {name}: {exc}") from None
    guard_peer(pc, networks)
    if mux is not None:
        mux.attach(pc)
    _send_only_what_we_write(pc, offer)
    try:
        answer = await pc.createAnswer()
        await asyncio.wait_for(pc.setLocalDescription(answer), NEGOTIATION_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise Unavailable("timed out gathering candidates") from None
    except Exception as exc:
        raise BadRequest(f"cannot answer the offer: {type(exc).__name__}: {exc}") from None
    return pc.localDescription.sdp


def _send_only_what_we_write(pc: RTCPeerConnection, offer: Offer) -> None:
    """The node's sending sections advertise only the header extension its packets
    carry (transport-cc, when offered) and the ``transport-cc`` feedback it reads."""
    media = {m.rtp.muxId: m for m in offer.description.media}
    for transceiver in pc.getTransceivers():
        if transceiver.direction != "sendonly":
            continue
        offered = media.get(transceiver.mid)
        if offered is None:
            continue
        if transceiver.kind == "audio":
            _accept_red(transceiver, offered.rtp.codecs)
        twcc = [e for e in offered.rtp.headerExtensions if e.uri == TWCC_URI]
        replace_header_extensions(transceiver, twcc)
        if not twcc:
            continue
        wanted = {c.payloadType for c in offered.rtp.codecs if any(f.type == "transport-cc" for f in c.rtcpFeedback)}
        for codec in transceiver_codecs(transceiver):
            if codec.payloadType in wanted and not any(f.type == "transport-cc" for f in codec.rtcpFeedback):
                codec.rtcpFeedback.append(RTCRtcpFeedback(type="transport-cc"))


def _accept_red(transceiver: RTCRtpTransceiver, offered: list[RTCRtpCodecParameters]) -> None:
    """Answer RED (RFC 2198) over our Opus when offered (``red/48000/2``, fmtp ``<opus>/<opus>``).

    Opus stays first, what the downtrack sends; RED is what it may switch to
    on a long link (``sfu.red``)."""
    codecs = transceiver_codecs(transceiver)
    opus = next((c for c in codecs if c.mimeType.lower() == "audio/opus"), None)
    if opus is None:
        return
    for codec in offered:
        if codec.mimeType.lower() != "audio/red" or codec.clockRate != 48000:
            continue
        if any(name.split("/")[0] == str(opus.payloadType) for name in codec.parameters):
            codecs.append(
                RTCRtpCodecParameters(
                    mimeType="audio/red", clockRate=48000, channels=2, payloadType=codec.payloadType, parameters=dict(codec.parameters)
                )
            )
            return
