"""A WHEP subscriber: two downtracks, its tier allocation and its RTCP.

The subscriber answers RTCP from its receiver: receiver reports (loss, RTT)
and REMB go to its ``TierAllocation``; PLI/FIR go to the stream it receives
(the tier encoder, rate-limited there); NACKs are served from the stream's
history. Once a second the room asks it for a compound sender report
(SR per stream + SDES) and the sent bitrate is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc import RTCPeerConnection, clock
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    unpack_remb_fci,
)

from vcs.tiers import TierSpec

from .allocator import TierAllocation
from .downtrack import DownTrack

__all__ = ["Subscriber"]


class Subscriber:
    def __init__(
        self,
        resource_id: str,
        identity: str,
        pc: RTCPeerConnection,
        allocation: TierAllocation,
        *,
        source: str | None,
        on_ready: Callable[[Subscriber], None],
        on_tier: Callable[[Subscriber, TierSpec], None],
        pinned: bool = False,
    ) -> None:
        self.resource_id = resource_id
        self.identity = identity
        self.pc = pc
        self.allocation = allocation
        self.source = source  # None: the program; else a contributor's identity
        self.pinned = pinned  # a relay's upstream: its tier never moves, whatever its RTCP says
        self.created = time.monotonic()
        self.tier_name: str | None = None  # the tier being received
        self.audio: DownTrack | None = None
        self.video: DownTrack | None = None
        self._on_ready = on_ready
        self._on_tier = on_tier
        self._lsr: dict[int, tuple[int, float]] = {}
        self._rate_mark: tuple[float, int] | None = None
        self.bitrate_bps = 0.0
        self.rtt_ms: float | None = None
        self.loss = 0.0
        self.remb_bps: int | None = None
        self.plis = 0
        self.heard_at: float | None = None  # monotonic time of the receiver's last RTCP: its media is arriving
        self.ready = False
        self.closed = False

    def adopt(self) -> None:
        """Take over the senders of the negotiated transceivers."""
        for transceiver in self.pc.getTransceivers():
            dt = DownTrack(transceiver.kind, transceiver.sender)
            dt.on_rtcp = self._on_rtcp
            dt.on_ready = self._on_downtrack_ready
            if transceiver.kind == "audio":
                self.audio = dt
            else:
                self.video = dt

    def _on_downtrack_ready(self, dt: DownTrack) -> None:
        if self.ready or self.closed:
            return
        if all(d is None or d.active for d in (self.audio, self.video)):
            self.ready = True
            self._on_ready(self)

    @property
    def downtracks(self) -> list[DownTrack]:
        return [d for d in (self.audio, self.video) if d is not None]

    # RTCP in -------------------------------------------------------------------

    def _on_rtcp(self, dt: DownTrack, packet: AnyRtcpPacket) -> None:
        now = time.monotonic()
        self.heard_at = now
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc != dt.ssrc:
                    continue
                rtt = self._rtt_ms(dt, report.lsr, report.dlsr)
                if rtt is not None:
                    self.rtt_ms = rtt
                if dt.kind == "video" or self.video is None or self.video.stream is None:
                    self.loss = report.fraction_lost / 256
                    self._retier(self.allocation.on_receiver_report(self.loss, self.rtt_ms, now))
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if dt.stream is not None:
                dt.stream.retransmit(dt, packet.lost)
        elif isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                self.plis += 1
                dt.keyframe_requests += 1
                stream = dt.pending or dt.stream
                if stream is not None:
                    stream.request_keyframe()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if self.video is not None and self.video.ssrc in ssrcs or dt.ssrc in ssrcs:
                    self.remb_bps = bitrate
                    self._retier(self.allocation.on_remb(bitrate, now))

    def _rtt_ms(self, dt: DownTrack, lsr: int, dlsr: int) -> float | None:
        sent = self._lsr.get(dt.ssrc)
        if not lsr or sent is None or sent[0] != lsr:
            return None
        rtt = time.time() - sent[1] - dlsr / 65536
        return max(0.0, rtt * 1000)

    def _retier(self, tier: TierSpec | None) -> None:
        if tier is not None and not self.closed and not self.pinned:
            self._on_tier(self, tier)

    def tick(self, now: float) -> None:
        """Periodic: allocation step-up, bitrate measurement, sender reports."""
        if not self.ready or self.closed:
            return
        self._retier(self.allocation.tick(now))
        octets = sum(d.octets_sent for d in self.downtracks)
        if self._rate_mark is not None and now > self._rate_mark[0]:
            self.bitrate_bps = (octets - self._rate_mark[1]) * 8 / (now - self._rate_mark[0])
        self._rate_mark = (now, octets)
        self.send_reports(now)

    # RTCP out ------------------------------------------------------------------

    def send_reports(self, now: float) -> None:
        ntp = clock.current_ntp_time()
        wall = time.time()
        packets: list[bytes] = []
        chunks = []
        for dt in self.downtracks:
            if dt.stream is None and not dt.packets_sent:
                continue
            sr = RtcpSrPacket(
                ssrc=dt.ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp,
                    rtp_timestamp=dt.rtp_timestamp_now(now),
                    packet_count=dt.packets_sent & 0xFFFFFFFF,
                    octet_count=dt.octets_sent & 0xFFFFFFFF,
                ),
            )
            packets.append(bytes(sr))
            chunks.append(RtcpSourceInfo(ssrc=dt.ssrc, items=[(1, dt.cname.encode())]))
            self._lsr[dt.ssrc] = ((ntp >> 16) & 0xFFFFFFFF, wall)
        if not packets:
            return
        packets.append(bytes(RtcpSdesPacket(chunks=chunks)))
        self.downtracks[0].send_rtcp(b"".join(packets))

    def stats(self) -> dict:
        return {
            "resource": self.resource_id,
            "identity": self.identity,
            "source": self.source or "program",
            "state": self.pc.connectionState,
            "tier": self.tier_name,
            "target_tier": self.allocation.tier.name,
            # `tier` is set when a switch starts; until the new tier's keyframe the old one is still received
            "switching": self.video is not None and self.video.pending is not None,
            "pinned": self.pinned,
            "bitrate_bps": round(self.bitrate_bps),
            "loss_pct": round(self.loss * 100, 2),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "remb_bps": self.remb_bps,
            "cap_kbps": self.allocation.cap_kbps,
            "packets_sent": sum(d.packets_sent for d in self.downtracks),
            "send_errors": sum(d.send_errors for d in self.downtracks),
            "nacks": sum(d.nacks for d in self.downtracks),
            "retransmits": sum(d.retransmits for d in self.downtracks),
            "keyframe_requests": self.plis,
        }

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for dt in self.downtracks:
            dt.close()
        await self.pc.close()
