"""The one WHIP/WHEP client: one peer connection per direction, real ICE/DTLS/SRTP.

Agents, the fleet, the load tests, the benchmark and the SFU tests all use it.
`subscribe()` offers to receive audio and video (WHEP), `publish()` offers to
send the given tracks (WHIP); both POST the offer with the media token as a
Bearer token and expect `201`, the answer and a `Location` that `close()`
DELETEs. One transport per connection (max-bundle), VP8 and Opus only.

By default a subscriber never decodes: every RTP packet is counted (packets,
bytes, loss from sequence numbers) on its way into aiortc, which still sends
receiver reports and NACKs as a real client would, but assembles no frame,
runs no decoder thread and no bandwidth estimator. The size of the first VP8
keyframe tells which tier arrives. With `decode=True` (tests that look at the
pictures) the packets are counted too, and the received tracks in
`session.tracks` yield decoded frames. Every subscriber offers transport-wide
congestion control and, when the answer keeps it, tells the SFU when each
packet arrived (`rtc.transport_feedback`, with the kernel's arrival times:
`rtc.udp_reader`); the SFU fits the tier to the link from that. A
publisher's PLIs go to its track's `request_keyframe()` (a shared encoder),
since aiortc's pack path ignores them.
`forward()` publishes senders without tracks whose RTP the caller writes
itself (the SFU's uplink forwards a commune's packets to the origin).

    MediaError   signaling failed: unreachable, or an HTTP status (`status`, `retry_after`)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from urllib.parse import urljoin

import httpx
from aiortc import RTCBundlePolicy, RTCCertificate, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from rtc.aiortc_adapter import (
    local_transports,
    offer_header_extension,
    peer_connection_with,
    replace_keyframe_hook,
    replace_rtp_handler,
    sender_ssrcs,
    stop_decoder,
    take_out_receiver_parts,
)
from rtc.rtp_stats import RtpCounter
from rtc.transport_cc import TWCC_URI
from rtc.transport_feedback import ArrivalLog, is_rtp, send_feedback
from rtc.udp_reader import unwatch_arrivals, watch_arrivals

__all__ = ["MediaError", "MediaSession", "forward", "peer_connection", "publish", "subscribe"]

log = logging.getLogger(__name__)

CODECS = {"audio": "audio/opus", "video": "video/vp8"}
TWCC_ID = 5  # the transport-cc extension's id in our offers (aiortc's own take 1-3)
UDP_IP_BYTES = 28  # what a datagram costs the link beyond its payload (IPv4)


class MediaError(Exception):
    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def peer_connection(certificate: RTCCertificate | None = None) -> RTCPeerConnection:
    """A peer connection as this client makes them: host candidates only, one transport for all media;
    its DTLS ``certificate`` shared with other sessions of the process when given (else a new one)."""
    return peer_connection_with(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE), certificate)


def _codecs(kind: str) -> list:
    caps = RTCRtpSender.getCapabilities(kind).codecs
    wanted = [c for c in caps if c.mimeType.lower() == CODECS[kind]]
    return wanted + [c for c in caps if kind == "video" and c.mimeType.lower() == "video/rtx"]


class MediaSession:
    """One WHIP or WHEP resource: its peer connection, tracks, counters and the URL to DELETE."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, token: str, direction: str, certificate: RTCCertificate | None = None
    ) -> None:
        self.http, self.url, self.direction = http, url, direction
        self._token = token
        self.pc = peer_connection(certificate)
        self.resource_url: str | None = None
        self.counters: dict[str, RtpCounter] = {}
        self.tracks: list[MediaStreamTrack] = []  # what we send, or (decoding subscribers) what we receive
        self.first_media = asyncio.Event()  # first RTP packet received (subscribe) or connected (publish)
        self.dropped = asyncio.Event()  # the connection failed or closed
        self._closed = False
        self.arrivals: ArrivalLog | None = None  # transport-cc negotiated (subscribe): each packet's arrival
        self.transport_cc = direction == "subscribe"  # offer it (a subscriber may decline: `subscribe`)
        self._cap: _RateCap | None = None
        self._watched: list = []  # the transports (sockets) whose datagrams `_on_datagram` sees
        self._feedback: asyncio.Task | None = None
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.direction == "publish":
            self.first_media.set()
        elif state in ("failed", "closed"):
            self.dropped.set()
            self._stop_feedback()  # nothing more arrives (also when the peer is closed without `close()`)

    @property
    def tier(self) -> str | None:
        """What arrives: "720p", "360p", "180p" (from the last keyframe's size), "audio", or None yet."""
        video = self.counters.get("video")
        if video is not None and video.height:
            return f"{video.height}p"
        return "audio" if self.counters.get("audio") and self.counters["audio"].packets else None

    def _add_receivers(self, kinds: Sequence[str], decode: bool, cap: _RateCap | None = None) -> None:
        if decode:
            self.pc.on("track", self.tracks.append)
        self._cap = cap
        for kind in kinds:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(_codecs(kind))
            self.counters[kind] = counter = RtpCounter(kind)
            _tap_receiver(transceiver, counter, self.first_media, decode)

    def _add_senders(self, tracks: Sequence[MediaStreamTrack]) -> None:
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(_codecs(track.kind))
            self.tracks.append(track)
            request = getattr(track, "request_keyframe", None)
            if request is not None:
                replace_keyframe_hook(transceiver.sender, request)

    async def negotiate(self, params: dict[str, str] | None = None) -> None:
        offer = await self.pc.createOffer()
        receiving = self.direction == "subscribe"
        if self.transport_cc:
            offer = offer_header_extension(offer, TWCC_URI, TWCC_ID, feedback="transport-cc")
        await self.pc.setLocalDescription(offer)
        if receiving:  # the sockets are gathered: see each datagram as it arrives
            for transport in local_transports(self._dtls):
                watch_arrivals(transport, self._on_datagram)
                self._watched.append(transport)
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/sdp"}
        try:
            response = await self.http.post(self.url, content=self.pc.localDescription.sdp, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise MediaError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 201:
            raise MediaError(
                f"{self.direction} refused: HTTP {response.status_code} {response.text[:200]!r}",
                status=response.status_code,
                retry_after=_retry_after(response),
            )
        location = response.headers.get("location")
        if location:
            self.resource_url = urljoin(self.url, location)
        else:
            log.warning("%s answer from %s has no Location: the session cannot be deleted", self.direction, self.url)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        except Exception as exc:  # aiortc raises many types for a bad answer
            raise MediaError(f"unusable answer from {self.url}: {type(exc).__name__}: {exc}") from None
        if receiving:
            self._start_feedback(response.text)

    @property
    def _dtls(self):  # type: ignore[no-untyped-def]
        """The one DTLS transport (max-bundle) all media shares."""
        return self.pc.getTransceivers()[0].receiver.transport

    def _start_feedback(self, answer: str) -> None:
        """Report arrivals when the answer kept transport-cc (with the id it gives it)."""
        found = re.search(rf"^a=extmap:(\d+)(?:/\w+)? {re.escape(TWCC_URI)}\s*$", answer, re.MULTILINE)
        if found is None or not 1 <= int(found.group(1)) <= 14:
            return
        sender_ssrc = sender_ssrcs(self.pc.getTransceivers()[-1].sender)[0]
        self.arrivals = ArrivalLog(int(found.group(1)), sender_ssrc)
        self._feedback = asyncio.create_task(send_feedback(self.arrivals, self._dtls), name="transport-cc-feedback")

    def _stop_feedback(self) -> None:
        for transport in self._watched:
            unwatch_arrivals(transport)
        self._watched.clear()
        if self._feedback is not None:
            self._feedback.cancel()

    def _on_datagram(self, data: bytes, arrival: float) -> bool:
        """Each datagram as the socket yields it: past the emulated link's rate an RTP packet is dropped
        (never seen, so reported lost); else its arrival is noted."""
        cap = self._cap
        if cap is not None and is_rtp(data) and not cap.admit(len(data) + UDP_IP_BYTES, arrival):
            return False
        arrivals = self.arrivals
        if arrivals is not None:
            arrivals.record(data, arrival)
        return True

    async def rtt_ms(self) -> float | None:
        """Round-trip time from the receiver reports on what we send (publish sessions only)."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is None:
                continue
            with contextlib.suppress(Exception):
                for stats in (await transceiver.sender.getStats()).values():
                    rtt = getattr(stats, "roundTripTime", None)
                    if rtt is not None:
                        return round(rtt * 1000, 1)
        return None

    async def heard_at(self) -> float | None:
        """When the far end last sent a receiver report on what we send (unix seconds; publish sessions), None before the first."""
        heard = None
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is None:
                continue
            with contextlib.suppress(Exception):
                for stats in (await transceiver.sender.getStats()).values():
                    if getattr(stats, "type", "") == "remote-inbound-rtp":
                        heard = max(heard or 0.0, stats.timestamp.timestamp())
        return heard

    async def bytes_sent(self) -> int:
        """RTP payload bytes sent so far on every track (publish sessions)."""
        total = 0
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is None:
                continue
            with contextlib.suppress(Exception):
                for stats in (await transceiver.sender.getStats()).values():
                    if getattr(stats, "type", "") == "outbound-rtp":
                        total += stats.bytesSent or 0
        return total

    async def close(self, token: str | None = None) -> None:
        """DELETE the resource (best effort; with `token` when the first one may have expired),
        close the connection, stop our tracks. Safe twice."""
        if self._closed:
            return
        self._closed = True
        feedback = self._feedback
        self._stop_feedback()
        if feedback is not None:
            await asyncio.gather(feedback, return_exceptions=True)
        if self.resource_url is not None:
            auth = {"Authorization": f"Bearer {token or self._token}"}
            try:
                await self.http.delete(self.resource_url, headers=auth, timeout=5)
            except httpx.HTTPError as exc:
                log.info("could not delete %s: %s", self.resource_url, exc)
        await self.pc.close()
        for track in self.tracks:
            track.stop()
        self.dropped.set()


async def subscribe(
    http: httpx.AsyncClient,
    whep_url: str,
    token: str,
    *,
    max_tier: str | None = None,
    source: str | None = None,
    tier: str | None = None,
    kinds: Sequence[str] = ("audio", "video"),
    decode: bool = False,
    rate_cap_kbps: float | None = None,
    certificate: RTCCertificate | None = None,
    transport_cc: bool = True,
) -> MediaSession:
    """Receive the room over WHEP; media is counted, and decoded only with `decode`.

    `rate_cap_kbps` emulates a narrow downlink: RTP datagrams past that rate
    (a token bucket of 200 ms) are dropped as the socket yields them, as a
    full link would (and reported lost).

    `max_tier` ("180p", "audio", ...) goes to the SFU as `?max_tier=`, `source`
    (one publisher's identity, for the host's view of a commune) as
    `?source=`. The offer has an audio and a video section by default, as
    browsers' do; "audio" only asks the SFU to send no video. `tier` (a
    relay's credential only) pins the subscription to one tier, as `?tier=`.
    `certificate`: a DTLS certificate the process's sessions share
    (`rtc.aiortc_adapter.ReusableCertificate`), as a process of many does.
    `transport_cc=False`: do not offer transport-wide congestion control (a
    receiver that never looks at its packets has nothing to report).
    """
    session = MediaSession(http, whep_url, token, "subscribe", certificate)
    session.transport_cc = transport_cc
    params = {name: value for name, value in (("max_tier", max_tier), ("source", source), ("tier", tier)) if value}
    try:
        session._add_receivers(kinds, decode, _RateCap(rate_cap_kbps) if rate_cap_kbps else None)
        await session.negotiate(params or None)
    except BaseException:
        await session.close()
        raise
    return session


async def publish(http: httpx.AsyncClient, whip_url: str, token: str, tracks: Sequence[MediaStreamTrack]) -> MediaSession:
    """Send `tracks` over WHIP; the session stops them when it closes."""
    session = MediaSession(http, whip_url, token, "publish")
    try:
        session._add_senders(tracks)
        await session.negotiate()
    except BaseException:
        await session.close()
        raise
    return session


async def forward(
    http: httpx.AsyncClient,
    whip_url: str,
    token: str,
    kinds: Sequence[str],
    adopt: Callable[[RTCPeerConnection], None],
    *,
    params: dict[str, str] | None = None,
) -> MediaSession:
    """Publish over WHIP with one track-less sender per kind; `adopt(pc)` takes
    the senders over before the answer is applied, and writes their RTP itself."""
    session = MediaSession(http, whip_url, token, "publish")
    try:
        for kind in kinds:
            session.pc.addTransceiver(kind, direction="sendonly").setCodecPreferences(_codecs(kind))
        adopt(session.pc)
        await session.negotiate(params)
    except BaseException:
        await session.close()
        raise
    return session


class _RateCap:
    """A token bucket shared by a session's receivers: what a link of `kbps` lets through."""

    def __init__(self, kbps: float, burst_s: float = 0.2) -> None:
        self._rate = kbps * 1000 / 8  # bytes a second
        self._burst = self._rate * burst_s
        self._tokens = self._burst
        self._at: float | None = None

    def admit(self, size: int, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < size:
            return False
        self._tokens -= size
        return True


def _tap_receiver(transceiver, counter: RtpCounter, first_media: asyncio.Event, decode: bool) -> None:  # type: ignore[no-untyped-def]
    """Count every RTP packet before aiortc handles it; unless decoding, take out what decoding and REMB would cost.

    Without decoding, aiortc still keeps per-SSRC statistics (its receiver
    reports), NACKs gaps and unwraps retransmissions; the frame assembly, the
    decoder thread and the bandwidth estimator (REMB) are gone. The SFU
    adapts from transport-cc feedback (``MediaSession._start_feedback``).
    """
    receiver = transceiver.receiver
    receive = receiver.receive
    if not decode:
        take_out_receiver_parts(receiver)

    def counting(handle):  # type: ignore[no-untyped-def]
        async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            counter.add(packet)
            first_media.set()
            await handle(packet, arrival_time_ms=arrival_time_ms)

        return handle_rtp_packet

    async def receive_and_count(parameters) -> None:  # type: ignore[no-untyped-def]
        counter.rtx_types = {c.payloadType for c in parameters.codecs if is_rtx(c)}
        await receive(parameters)
        if not decode:
            stop_decoder(receiver)
            if receiver.track is not None:
                receiver.track.stop()

    replace_rtp_handler(receiver, counting)
    receiver.receive = receive_and_count


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None
