"""A WHIP publisher: the host, or a commune sending its own camera.

aiortc's receiver decodes the video of the program publisher only (the
picture for the tier encoders: the host, or the commune holding the floor);
every other publisher's video skips aiortc's receive path, jitter buffer and
decoder altogether, so hundreds of commune cameras cost a packet copy each.
Its RTP is also tapped: Opus packets go to the room (program audio, no transcode), and VP8
packets feed the publisher's own ``PacketStream``, which only the host may
subscribe to (``?source=<identity>`` on WHEP), forwarded without re-encoding.
Audio is never decoded: the tap stops the audio decoder thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from rtc.aiortc_adapter import replace_rtp_handler, sender_ssrcs, stop_decoder, transceiver_codecs

from .downtrack import send_rtcp
from .packet_stream import PacketStream, make_packet
from .vp8 import is_keyframe_start

__all__ = ["Publisher"]

logger = logging.getLogger(__name__)

UPSTREAM_PLI_MIN_INTERVAL_S = 0.5


class Publisher:
    def __init__(
        self,
        resource_id: str,
        identity: str,
        pc: RTCPeerConnection,
        *,
        on_frame: Callable[[Publisher, Any], None],
        on_audio: Callable[[Publisher, RtpPacket], None],
        fanout: str = "compiled",
    ) -> None:
        self.resource_id = resource_id
        self.identity = identity
        self.pc = pc
        self.created = time.monotonic()
        self._on_frame = on_frame
        self._on_audio = on_audio
        self.video = PacketStream("video", f"{identity}/camera", clock_rate=90000, request_keyframe=self.request_keyframe, fanout=fanout)
        self.audio = PacketStream("audio", f"{identity}/mic", clock_rate=48000, history=64, fanout=fanout)
        self._video_receiver: Any = None
        self._rtcp_ssrc = 0
        self._video_ssrc: int | None = None
        self._video_pt: int | None = None
        self._rtx_pt: int | None = None
        self._audio_pt: int | None = None
        self._last_pli = -1e9
        self._keyframe_wanted = False  # asked for too early (no SSRC yet) or too soon after the last PLI
        self._pump: asyncio.Task | None = None
        self.decoding = False  # set by the room: only the program publisher's video is decoded
        self.relay: str | None = None  # on an origin: the relay node forwarding this commune's camera
        self.frames = 0
        self.audio_packets = 0
        self.video_packets = 0
        self.closed = False

    def tap(self) -> None:
        """Hook the receivers; call after the offer was applied."""
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if transceiver.kind == "video":
                self._video_receiver = receiver
                self._rtcp_ssrc, _ = sender_ssrcs(transceiver.sender)
                codecs = transceiver_codecs(transceiver)
                for codec in codecs:
                    if codec.mimeType.lower() == "video/vp8" and self._video_pt is None:
                        self._video_pt = codec.payloadType
                for codec in codecs:
                    if is_rtx(codec) and codec.parameters.get("apt") == self._video_pt:
                        self._rtx_pt = codec.payloadType
                replace_rtp_handler(receiver, lambda original: self._wrap(original, self._on_video_rtp, lambda: self.decoding))
                if receiver.track is not None:
                    self._pump = asyncio.ensure_future(self._run_pump(receiver.track))
            elif transceiver.kind == "audio":
                for codec in transceiver_codecs(transceiver):
                    if codec.mimeType.lower() == "audio/opus":
                        self._audio_pt = codec.payloadType
                replace_rtp_handler(receiver, lambda original: self._wrap(original, self._on_audio_rtp, lambda: True))
                receiver.receive = self._without_decoder(receiver)

    @staticmethod
    def _wrap(original, tap, wanted):  # type: ignore[no-untyped-def]
        """Tap every packet; hand it on to aiortc's receive path only while `wanted()`."""

        async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            try:
                tap(packet)
            except Exception:
                logger.exception("RTP tap failed")
            if wanted():
                await original(packet, arrival_time_ms=arrival_time_ms)

        return handle_rtp_packet

    def set_decoding(self, decoding: bool) -> None:
        if decoding and not self.decoding:
            self.request_keyframe()  # the decoder starts cleanly at the next keyframe
        self.decoding = decoding

    @staticmethod
    def _without_decoder(receiver):  # type: ignore[no-untyped-def]
        original = receiver.receive

        async def receive(parameters) -> None:  # type: ignore[no-untyped-def]
            await original(parameters)
            stop_decoder(receiver)  # audio is forwarded as packets, never decoded

        return receive

    def _on_audio_rtp(self, packet: RtpPacket) -> None:
        if packet.payload_type != self._audio_pt or not packet.payload:
            return
        self.audio_packets += 1
        self._on_audio(self, packet)
        if len(self.audio):
            self.audio.push(
                make_packet(packet.payload, packet.sequence_number, packet.timestamp, bool(packet.marker)),
                packet.sequence_number,
                packet.timestamp,
                bool(packet.marker),
                False,
            )

    def _on_video_rtp(self, packet: RtpPacket) -> None:
        payload = packet.payload
        seq = packet.sequence_number
        if packet.payload_type == self._rtx_pt and self._rtx_pt is not None:
            if len(payload) < 3:
                return
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
        elif packet.payload_type != self._video_pt or not payload:
            return
        else:
            self._video_ssrc = packet.ssrc
        if self._keyframe_wanted:  # a viewer still waits: the next keyframe serves it, else ask again
            if is_keyframe_start(payload):
                self._keyframe_wanted = False
            else:
                self.request_keyframe()
        self.video_packets += 1
        if len(self.video) and len(payload) <= 1400:
            marker = bool(packet.marker)
            self.video.push(
                make_packet(payload, seq, packet.timestamp, marker),
                seq,
                packet.timestamp,
                marker,
                is_keyframe_start(payload),
            )

    async def _run_pump(self, track) -> None:  # type: ignore[no-untyped-def]
        """Consume decoded frames (always, so none pile up)."""
        try:
            while True:
                frame = await track.recv()
                self.frames += 1
                self._on_frame(self, frame)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            logger.exception("publisher %s: frame pump failed", self.identity)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (PLI), at most every 0.5 s.

        A request that cannot be sent yet (no video seen, or a PLI went out
        less than 0.5 s ago) is kept and sent with a later packet, unless a
        keyframe arrives first: a viewer waiting for one is never forgotten.
        """
        now = time.monotonic()
        if self._video_receiver is None or self._video_ssrc is None or now - self._last_pli < UPSTREAM_PLI_MIN_INTERVAL_S:
            self._keyframe_wanted = True
            return
        self._keyframe_wanted = False
        self._last_pli = now
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self._rtcp_ssrc, media_ssrc=self._video_ssrc)
        send_rtcp(self._video_receiver.transport, bytes(pli))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.video.close()
        self.audio.close()
        await self.pc.close()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
