"""A WHEP subscriber: two downtracks, its bandwidth estimate, tier allocation and RTCP.

The subscriber answers RTCP from its receiver. Transport-cc feedback is taken
out of each compound RTCP datagram before aiortc parses the rest
(``transport_cc.split_compound``; a malformed one is dropped and counted) and
feeds its ``BandwidthEstimator``; so do REMB (receivers that only send REMB)
and the loss in receiver reports (receivers that send neither; their NACKs
over half a second count as such a report too). A repeated video packet's
second copy, which the receiver drops as a duplicate, counts as arrived with
its first (``sfu.video_repeat``). The estimate
and the reports' loss go to its ``TierAllocation``; when that asks for a probe
the subscriber pads its RTX stream up to the next tier's cost
(``sfu.prober``) and tells it whether the link carried it. PLI/FIR go to the
stream it receives (the tier encoder, rate-limited there); NACKs are served
from the stream's history (or the previous stream's, after a switch). Once a
second the room asks it for a compound sender report (SR per stream + SDES)
and the sent bitrates (all, and the audio the tier costs) are measured.
"""

from __future__ import annotations

import asyncio
import logging
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

from rtc.aiortc_adapter import replace_rtcp_handler
from rtc.transport_cc import Feedback, split_compound
from vcs.tiers import TierSpec

from .allocator import Probe, TierAllocation
from .bandwidth_estimator import BandwidthEstimator
from .downtrack import DownTrack
from .prober import PROBE_S, SCOUT_S, ProbeMeasure, send_padding
from .transport_cc import HEADER_BYTES, SendHistory

__all__ = ["Subscriber"]

logger = logging.getLogger(__name__)

PACKET_OVERHEAD_BYTES = HEADER_BYTES + 10 + 28  # RTP header and extension, SRTP tag, UDP/IPv4
PROBE_SETTLE_S = 2.5  # after a probe, how long its feedback may take
PROBE_MAX_LOSS = 0.05
SCOUT_DRAIN_S = 0.4  # packets sent this soon after a scout still meet the queue it left
# a receiver without transport-cc: the video packets it NACKs over this long, of those sent, read as
# a receiver report's loss (NACKs come at once, reports about once a second: a link that narrowed is fitted sooner)
NACK_WINDOW_S = 0.5
# retransmissions may add this share of the budget (and save up half a second of it): after a
# drop, the packets the old tier lost would otherwise go again into the link that just lost them
REPAIR_SHARE = 0.25
REPAIR_BURST_S = 0.5
REPAIR_PACKET_BYTES = 1200


def _copy_arrival(sent: float, original: tuple[float, int] | None, original_arrival: float) -> float | None:
    """When a repeated packet's second copy would have arrived: its first copy arrived, so the
    receiver dropped this one as a duplicate (the link carried it, with the same delay)."""
    return None if original is None else original_arrival + (sent - original[0])


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
        srtp: str = "compiled",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resource_id = resource_id
        self.identity = identity
        self.pc = pc
        self.allocation = allocation
        self.source = source  # None: the program; else a contributor's identity
        self.pinned = pinned  # a relay's upstream: its tier never moves, whatever its RTCP says
        self._own_srtp = srtp == "compiled"  # VCS_SFU_SRTP (sfu.srtp_out)
        self._monotonic = monotonic  # the monotonic clock it reads (``vcs bench feedback`` drives its own)
        self.created = monotonic()
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
        self.cc = SendHistory(None)  # transport-wide: shared by both downtracks
        now = monotonic()
        self.estimator = BandwidthEstimator(allocation.cost_kbps(allocation.top) * 1000 * 1.5, now)
        self.feedback_packets = 0
        self.feedback_errors = 0
        self.audio_bitrate_bps: float | None = None
        self._audio_mark: tuple[float, int, int] | None = None
        self._rr_at: dict[int, float] = {}  # ssrc -> time of its last receiver report
        self._probe_task: asyncio.Task | None = None
        self._probe_window: tuple[float, float] | None = None  # the last probe's padding, start and end
        # the last scout: (start, end of the packets its queue delays, the estimator's rates before it)
        self._scout: tuple[float, float, tuple[float, float]] | None = None
        self._repair_bytes = float("inf")  # a full allowance to start with (``_repair_allowance`` caps it)
        self._repair_at = now
        self._probe_measure: ProbeMeasure | None = None
        self._probe_reports: list[tuple[float, float]] | None = None  # (time, loss) of the video and RTX streams
        self._nack_window: tuple[float, int, set[int]] | None = None  # (start, video packets sent by then, packets NACKed since)
        self.heard_at: float | None = None  # monotonic time of the receiver's last RTCP: its media is arriving
        self.ready = False
        self.closed = False

    def adopt(self) -> None:
        """Take over the senders of the negotiated transceivers."""
        for transceiver in self.pc.getTransceivers():
            dt = DownTrack(transceiver.kind, transceiver.sender, own_srtp=self._own_srtp)
            dt.cc = self.cc
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
            if dt.dtls is not None:
                replace_rtcp_handler(dt.dtls, self._taking_transport_feedback)
            self._on_ready(self)

    @property
    def downtracks(self) -> list[DownTrack]:
        return [d for d in (self.audio, self.video) if d is not None]

    # RTCP in -------------------------------------------------------------------

    def _taking_transport_feedback(self, handle_rtcp):  # type: ignore[no-untyped-def]
        """Wrap the transport's RTCP handler: transport-cc feedback here, the rest to aiortc."""

        async def handle_rtcp_data(data: bytes) -> None:
            feedback, rest, bad = split_compound(data)
            self.feedback_errors += bad
            for packet in feedback:
                try:
                    self._on_transport_feedback(packet)
                except Exception:  # one receiver's feedback never breaks its peer, let alone others
                    self.feedback_errors += 1
                    logger.debug("subscriber %s: transport-cc feedback failed", self.resource_id, exc_info=True)
            if rest:
                await handle_rtcp(rest)

        return handle_rtcp_data

    def _on_transport_feedback(self, feedback: Feedback) -> None:
        if self.closed:
            return
        now = self._monotonic()
        self.heard_at = now
        lookup = self.cc.lookup
        measure = self._probe_measure
        results = []
        packets = list(feedback.packets())
        copies = self.cc.copies
        arrived = {seq: arrival for seq, arrival in packets if arrival is not None} if copies else {}
        pairs = firsts_lost = 0  # repeated packets whose both copies this report covers; of those, first copies lost
        for seq, arrival in packets:
            sent = lookup(seq)
            if sent is None:
                continue  # not a sequence number we sent lately
            original = copies.pop(seq, None) if copies else None
            if original is not None:
                if (original - feedback.base_seq) & 0xFFFF < len(packets):
                    pairs += 1
                    first_arrival = arrived.get(original)
                    if first_arrival is None:
                        firsts_lost += 1  # this copy is the repair (or both were lost: a loss)
                    elif arrival is None:  # the receiver dropped this copy as a duplicate
                        arrival = _copy_arrival(sent[0], lookup(original), first_arrival)
                elif arrival is None:
                    continue  # its first copy's fate is in another report: this one says nothing
            results.append((sent[0], sent[1], arrival))
            if measure is not None:
                measure.add(sent[0], sent[1], arrival)
        if not results:
            return
        self.feedback_packets += 1
        self.allocation.bursts_measured = True
        estimator = self.estimator
        if self.rtt_ms is not None:
            estimator.rtt_s = self.rtt_ms / 1000
        estimator.on_packets(results, now)
        scout = self._scout
        if scout is not None and estimator.last_decrease == now and scout[0] <= (estimator.decreased_for or 0) <= scout[1]:
            # the queue of our own burst: the scout's verdict, not news of the link
            estimator.delay_bps, estimator.loss_bps = scout[2]
            return
        # loss as sent (a receiver report counts what NACKs repaired as received); of repeated packets, the first copies'
        self.allocation.on_link_loss(max(estimator.loss, firsts_lost / pairs if pairs else 0.0), now)
        self._retier(self.allocation.on_estimate(estimator.estimate_bps / 1000, now, sent_at=estimator.decreased_for))

    def _on_rtcp(self, dt: DownTrack, packet: AnyRtcpPacket) -> None:
        now = self._monotonic()
        self.heard_at = now
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            video = self.video
            for report in packet.reports:
                if self._probe_reports is not None and video is not None and report.ssrc in (video.ssrc, video.rtx_ssrc):
                    self._probe_reports.append((now, report.fraction_lost / 256))
                if report.ssrc != dt.ssrc:
                    continue
                rtt = self._rtt_ms(dt, report.lsr, report.dlsr)
                if rtt is not None:
                    self.rtt_ms = rtt
                if dt.kind == "video" or self.video is None or self.video.stream is None:
                    self.loss = report.fraction_lost / 256
                    since = self._rr_at.get(dt.ssrc)
                    self._rr_at[dt.ssrc] = now
                    if self._covers_probe(since, now):
                        continue  # the padding's loss is the probe's verdict, not the tier's
                    if not self.feedback_packets and self.remb_bps is None:
                        self.estimator.on_receiver_loss(self.loss, self.bitrate_bps, now)
                    moves = not self.feedback_packets  # with transport-cc the estimator judges loss, per packet
                    self._retier(self.allocation.on_receiver_report(self.loss, self.rtt_ms, now, sent_at=since, moves=moves))
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if dt.kind == "video":
                self.allocation.on_nack(now)
                if not self.feedback_packets:
                    self._nacked(dt, packet.lost, now)
            if dt.stream is not None:
                sent = dt.stream.retransmit(dt, packet.lost, limit=self._repair_allowance(now))
                self._repair_bytes -= sent * REPAIR_PACKET_BYTES
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
                    self.feedback_errors += 1
                    return
                if self.video is not None and self.video.ssrc in ssrcs or dt.ssrc in ssrcs:
                    self.remb_bps = bitrate
                    self.estimator.on_remb(bitrate, now)
                    self._retier(self.allocation.on_estimate(self.estimator.estimate_bps / 1000, now, bounds=True))

    def _nacked(self, dt: DownTrack, lost: list[int], now: float) -> None:
        """Video packets NACKed: over ``NACK_WINDOW_S``, their share of those sent is the loss a
        receiver report would show a second later (the same thresholds judge it). A receiver may
        ask again for what it still misses (aiortc repeats its whole list): each counts once."""
        start, sent_then, nacked = self._nack_window or (now, dt.packets_sent, set())
        nacked.update(lost)
        if now - start < NACK_WINDOW_S:
            self._nack_window = (start, sent_then, nacked)
            return
        self._nack_window = None
        sent = dt.packets_sent - sent_then
        if sent <= 0 or self._covers_probe(start, now):
            return  # the padding's loss is the probe's verdict
        fraction = min(1.0, len(nacked) / sent)
        if fraction >= self.allocation.downgrade_loss:
            self._retier(self.allocation.on_receiver_report(fraction, None, now, sent_at=start))

    def _covers_probe(self, since: float | None, now: float) -> bool:
        """Does a receiver report about what arrived from ``since`` to ``now`` cover the last probe's packets?"""
        window = self._probe_window
        if window is None or now <= window[0]:
            return False
        late = (self.rtt_ms or 0) / 1000  # the probe's last packets arrive up to a round trip later
        return since is None or since < window[1] + late

    def _repair_allowance(self, now: float) -> int:
        """How many packets a NACK may have resent now.

        A share of the budget, and never more than that share of what the current tier costs:
        a receiver without transport-cc or REMB gives no estimate, and its profile's budget
        (fibre: 50 Mbps) would let the retransmissions of a whole lost second refill the link."""
        allocation = self.allocation
        budget = allocation.cost_kbps(allocation.index)
        if allocation.budget_kbps is not None:
            budget = min(budget, allocation.budget_kbps)
        rate = REPAIR_SHARE * budget * 1000 / 8  # bytes a second
        elapsed = max(0.0, now - self._repair_at)
        self._repair_at = now
        self._repair_bytes = min(rate * REPAIR_BURST_S, self._repair_bytes + rate * elapsed)
        return max(0, int(self._repair_bytes // REPAIR_PACKET_BYTES))

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
        octets = sum(d.octets_sent for d in self.downtracks)
        if self._rate_mark is not None and now > self._rate_mark[0]:
            self.bitrate_bps = (octets - self._rate_mark[1]) * 8 / (now - self._rate_mark[0])
        self._rate_mark = (now, octets)
        self._measure_audio(now)
        self._retier(self.allocation.tick(now))
        probe = self.allocation.probe
        if probe is not None and self._probe_task is None:
            self._probe_task = asyncio.get_running_loop().create_task(self._run_probe(probe))
        self.send_reports(now)

    def _measure_audio(self, now: float) -> None:
        """The audio's cost in the fit: its payload and each packet's headers, as forwarded."""
        audio = self.audio
        if audio is None:
            return
        mark = (now, audio.octets_sent, audio.packets_sent)
        last, self._audio_mark = self._audio_mark, mark
        if last is None or now - last[0] < 0.5:
            return
        octets, packets = mark[1] - last[1], mark[2] - last[2]
        self.audio_bitrate_bps = (octets + packets * PACKET_OVERHEAD_BYTES) * 8 / (now - last[0])
        if packets:
            self.allocation.audio_kbps = self.audio_bitrate_bps / 1000

    async def _run_probe(self, probe: Probe) -> None:
        """Pad up to the probe's target, then tell the allocation whether the link carried it."""
        try:
            video = self.video
            if video is None or video.rtx_pt is None:
                ok, delivered = True, None  # nothing to pad with: the next tier itself is the probe
            else:
                start = self._monotonic()
                length = SCOUT_S if probe.scout else PROBE_S
                end = start + length
                self._probe_window = (start, end)
                twcc = self.feedback_packets > 0
                if twcc:
                    self._probe_measure = ProbeMeasure(start, end)
                else:
                    self._probe_reports = []
                if probe.scout:
                    self._scout = (start, end + SCOUT_DRAIN_S, (self.estimator.delay_bps, self.estimator.loss_bps))
                extra = probe.target_kbps * 1000 - self.bitrate_bps
                await send_padding(video, extra, length, wanted=lambda: self.allocation.probe is probe, clock=self._monotonic)
                ok = await self._probe_verdict(probe, end, twcc)
                measure = self._probe_measure
                delivered = measure.delivered_bps / 1000 if twcc and measure is not None and measure.complete else None
            self._retier(self.allocation.probe_result(ok, self._monotonic(), delivered_kbps=delivered))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("subscriber %s: probe failed", self.resource_id)
        finally:
            self._probe_measure = None
            self._probe_reports = None
            self._probe_task = None

    async def _probe_verdict(self, probe: Probe, end: float, twcc: bool) -> bool:
        deadline = end + PROBE_SETTLE_S
        while self._monotonic() < deadline and self.allocation.probe is probe and not self.closed:
            if twcc and self._probe_measure is not None and self._probe_measure.complete:
                break
            if not twcc and any(at > end for at, _ in self._probe_reports or ()):
                break
            await asyncio.sleep(0.05)
        if twcc:
            measure = self._probe_measure
            if measure is None or not measure.carried(probe.target_kbps * 1000, PROBE_MAX_LOSS):
                return False
            if probe.scout:
                return True
            decreased = self.estimator.last_decrease
            if decreased is not None and decreased >= measure.start:
                return False  # the queue grew (or loss showed) while probing
            self.estimator.on_probe(measure.delivered_bps, self._monotonic())
            return True
        reports = self._probe_reports or []
        after = [loss for at, loss in reports if at > end]
        # loss in any report covering the window, the video's or the padding's own stream
        return bool(after) and max(loss for _, loss in reports) < self._upgrade_loss

    @property
    def _upgrade_loss(self) -> float:
        return self.allocation.upgrade_loss

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
            "octets_sent": sum(d.octets_sent for d in self.downtracks),  # media bytes, for rates over a reader's own windows
            "loss_pct": round(self.loss * 100, 2),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "remb_bps": self.remb_bps,
            "estimate_kbps": round(self.estimator.estimate_bps / 1000),
            "audio_red": bool(self.audio is not None and self.audio.stream is not None and self.audio.stream.red),
            "audio_repeat": bool(self.audio is not None and self.audio.stream is not None and self.audio.stream.repeat),
            # video sent twice (``sfu.video_repeat``): a long lossy link
            "video_repeat": bool(self.video is not None and self.video.stream is not None and self.video.stream.repeat),
            "transport_cc": self.cc.enabled,
            "feedback_packets": self.feedback_packets,
            "feedback_errors": self.feedback_errors,
            "probes": self.allocation.probes,
            "scouts": self.allocation.scouts,
            "failed_probes": self.allocation.failed_probes,
            "audio_kbps": None if self.audio_bitrate_bps is None else round(self.audio_bitrate_bps / 1000, 1),
            "cap_kbps": self.allocation.cap_kbps,
            "packets_sent": sum(d.packets_sent for d in self.downtracks),
            "send_errors": sum(d.send_errors for d in self.downtracks),
            "nacks": sum(d.nacks for d in self.downtracks),
            "repairs_refused": sum(d.repairs_refused for d in self.downtracks),
            "retransmits": sum(d.retransmits for d in self.downtracks),
            "keyframe_requests": self.plis,
        }

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        task = self._probe_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for dt in self.downtracks:
            dt.close()
        await self.pc.close()
