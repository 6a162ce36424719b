"""A relay's upstream: one WHEP subscription to its origin, forwarded as packets.

A relay node decodes nothing. For each tier its room's subscribers use it
holds one subscription to the origin pinned to that tier (`?tier=NAME`, a
relay credential), plus one for the program audio (`?tier=audio`). The
subscription is the project's one WHEP client (`rtc.whip_client`, not
decoding); every RTP packet it receives is tapped on its way into aiortc and
pushed once into a local `PacketStream`, which the relay's subscribers'
downtracks attach to, exactly as a publisher's packets are (`sfu.publisher`):
one bytes object per packet, keyframes found from the VP8 payload header.

RTCP ends at each hop. aiortc's receiver sends the origin receiver reports and
NACKs for what was lost on the way (RTX comes back and is forwarded too); the
relay's subscribers' NACKs are served from the local stream's history and
their PLIs come here, where they are coalesced: at most one PLI goes upstream
per `keyframe_min_interval_s`, and a request inside the interval is sent when
it ends.

Video is pushed a frame at a time, as the origin's encoders push it: the
packets of one frame (one timestamp, consecutive sequence numbers, up to the
marker bit) are held until the marker arrives and go out together
(`PacketStream.push_frame`: one GSO send per subscriber instead of one send
per packet). The origin sends a frame's packets back to back, so holding them
costs the first packets the time the rest take to arrive. A gap, a packet out
of order or a new timestamp before the marker sends what was held one packet
at a time; retransmissions (RTX) go out one by one as they come.

Each subscription's sequence numbers and timestamps are rebased onto the
local stream when it (re)connects, so a reconnection looks to subscribers like
a short gap, not a jump. A subscription that cannot be made or is lost is
retried with backoff (1, 2, 4 ... `relay_retry_max_s` seconds). An origin that
says the room ended there (410) makes the upstream `gone` at once, which ends
the relay room. One that does not know the room (404: it restarted, and the
room comes back when the host publishes to it again) or refuses the
credential is asked again every `REFUSED_RETRY_MAX_S` at most, so the relay
follows within seconds of the room's return; refused for `relay_give_up_s` in
a row (the time the origin could not be reached does not count), the upstream
is `gone` too.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.codecs import is_rtx
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from rtc.aiortc_adapter import replace_rtp_handler, sender_ssrcs, transceiver_codecs
from rtc.whip_client import MediaError, MediaSession
from vcs.tiers import TierSpec

from .downtrack import send_rtcp
from .packet_stream import PacketStream, make_packet
from .vp8 import is_keyframe_start

__all__ = ["HopTimes", "OpenSession", "Upstream"]

logger = logging.getLogger(__name__)

OpenSession = Callable[[str, str], Awaitable[MediaSession]]  # (tier name, kind) -> a connected WHEP session
CODECS = {"video": "video/vp8", "audio": "audio/opus"}
HOP_SAMPLE_MASK = 31  # time one packet in 32 (audio, retransmissions)
FRAME_SAMPLE_MASK = 7  # and one video frame in 8
REFUSED_RETRY_MAX_S = 2.0  # a refused upstream is asked again this often at most: the room may be back any moment
GONE = 410  # the origin ended the room
_perf = time.perf_counter
_monotonic = time.monotonic


class HopTimes:
    """Sampled time packets spend in this relay: from the upstream tap to the end of their fan-out push."""

    WINDOW_S = 30.0

    def __init__(self, size: int = 1024) -> None:
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=size)

    def add(self, started: float) -> None:
        now = _perf()
        self._samples.append((now, (now - started) * 1000))

    def p95_ms(self) -> float | None:
        """The 95th percentile over the last `WINDOW_S` seconds; None without traffic."""
        since = _perf() - self.WINDOW_S
        recent = sorted(ms for at, ms in self._samples if at >= since)
        if not recent:
            return None
        return round(recent[min(len(recent) - 1, int(0.95 * len(recent)))], 3)


class Upstream:
    """One tier (or the program audio) pulled from the origin into `stream`; a `TierSource` on a relay."""

    batch_frames = True  # video pushed a whole frame at a time (`vcs bench relay` turns it off to compare)

    def __init__(
        self,
        tier: TierSpec,
        stream: PacketStream,
        open_session: OpenSession,
        *,
        keyframe_min_interval_s: float,
        connect_timeout_s: float,
        retry_max_s: float,
        give_up_s: float,
        hops: HopTimes,
        on_gone: Callable[[Upstream], None],
        owns_stream: bool,
        room: str,
    ) -> None:
        self.tier = tier
        self.kind = "audio" if tier.audio_only else "video"
        self.stream = stream
        self._open = open_session
        self._kf_min = keyframe_min_interval_s
        self._connect_timeout = connect_timeout_s
        self._retry_max = retry_max_s
        self._give_up = give_up_s
        self._hops = hops
        self._on_gone = on_gone
        self._owns_stream = owns_stream
        self._room = room
        self._video = self.kind == "video"
        # the current subscription
        self._session: MediaSession | None = None
        self._dtls: Any = None
        self._rtcp_ssrc = 0
        self._media_ssrc: int | None = None
        self._pt: int | None = None
        self._rtx_pt: int | None = None
        self._rebase = True
        self._seq_off = 0
        self._ts_off = 0
        # the video frame arriving: its payloads so far, its first (local) sequence number and timestamp
        self._frame: list[bytes] = []
        self._frame_seq = 0
        self._frame_ts = 0
        self._frame_started = 0.0  # when its first packet was tapped, if timed
        # keyframe requests
        self._last_pli = -1e9
        self._pli_timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._refused_since: float | None = None  # the first of the refusals in a row
        self.state = "idle"  # connecting, connected, retrying, gone, closed
        self.error: str | None = None
        self.retry_in_s: float | None = None
        self.failures = 0
        self.packets = 0
        self.bytes = 0
        self.frames = 0  # marker bits: the end of a video frame
        self.duplicates = 0  # packets that came again after they were forwarded (dropped)
        self.keyframe_requests = 0  # PLIs sent to the origin
        self.closed = False

    # lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._task = asyncio.ensure_future(self._run())

    async def restart(self) -> None:
        """Drop the current subscription and subscribe again (the origin changed)."""
        await self._stop_task()
        self._refused_since = None
        self.start()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._stop_task()
        self.state = "closed"
        if self._owns_stream:
            self.stream.close()

    async def _stop_task(self) -> None:
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        delay = 1.0
        while not self.closed:
            self.state, self.retry_in_s = "connecting", None
            refused = await self._subscribe_once()
            if self.state == "connected":  # it worked for a while: start the backoff over
                delay = 1.0
            now = _monotonic()
            self.failures += 1
            if refused is None:
                self._refused_since = None
            elif self._refused_since is None:
                self._refused_since = now
            if refused == GONE or (refused is not None and now - self._refused_since >= self._give_up):
                self.state = "gone"
                logger.warning("relay room %s: the origin refused the %s upstream for %.0f s (%s); giving up",
                               self._room, self.tier.name, now - self._refused_since, self.error)  # fmt: skip
                self._on_gone(self)
                return
            wait = delay if refused is None else min(delay, REFUSED_RETRY_MAX_S)
            self.state, self.retry_in_s = "retrying", wait
            logger.info("relay room %s: %s upstream: %s; retrying in %.0f s", self._room, self.tier.name, self.error, wait)
            await asyncio.sleep(wait)
            delay = min(self._retry_max, delay * 2)

    async def _subscribe_once(self) -> int | None:
        """One subscription, until it ends; the status when the origin refused it (4xx but 429), else None."""
        try:
            session = await self._open(self.tier.name, self.kind)
        except MediaError as exc:
            self.error = str(exc)
            refused = exc.status is not None and 400 <= exc.status < 500 and exc.status != 429
            return exc.status if refused else None
        except Exception as exc:  # aiortc raises many types for a bad answer
            self.error = f"{type(exc).__name__}: {exc}"
            return None
        try:
            self._tap(session)
            if await self._connected(session):
                self.state, self.error = "connected", None
                logger.info("relay room %s: %s upstream connected", self._room, self.tier.name)
                await session.dropped.wait()
                self.error = "the origin closed the connection"
            else:
                self.error = f"not connected within {self._connect_timeout:.0f} s"
        finally:
            self._session = self._dtls = None
            self._rebase = True
            self._flush_frame()
            await session.close()
        return None

    async def _connected(self, session: MediaSession) -> bool:
        up = asyncio.Event()

        def on_state() -> None:
            if session.pc.connectionState == "connected":
                up.set()

        session.pc.on("connectionstatechange", on_state)
        on_state()
        waiters = [asyncio.ensure_future(up.wait()), asyncio.ensure_future(session.dropped.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return up.is_set() and not session.dropped.is_set()

    # packets -----------------------------------------------------------------------

    def _tap(self, session: MediaSession) -> None:
        transceiver = next(t for t in session.pc.getTransceivers() if t.kind == self.kind)
        self._pt = self._rtx_pt = None
        codecs = transceiver_codecs(transceiver)
        for codec in codecs:
            if codec.mimeType.lower() == CODECS[self.kind] and self._pt is None:
                self._pt = codec.payloadType
        for codec in codecs:
            if is_rtx(codec) and codec.parameters.get("apt") == self._pt:
                self._rtx_pt = codec.payloadType
        self._rtcp_ssrc, _ = sender_ssrcs(transceiver.sender)
        self._session = session
        self._dtls = transceiver.receiver.transport
        tap = self._on_rtp

        def wrap(original):  # type: ignore[no-untyped-def]
            async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
                if self._session is not session:
                    return  # a packet of a subscription being closed must not be taken as the next one's first
                try:
                    tap(packet)
                except Exception:
                    logger.exception("relay upstream tap failed")
                await original(packet, arrival_time_ms=arrival_time_ms)

            return handle_rtp_packet

        replace_rtp_handler(transceiver.receiver, wrap)

    def _on_rtp(self, packet: RtpPacket) -> None:
        started = 0.0 if self.packets & HOP_SAMPLE_MASK else _perf()
        payload = packet.payload
        seq = packet.sequence_number
        pt = packet.payload_type
        retransmitted = pt == self._rtx_pt and pt is not None
        if retransmitted:
            if len(payload) < 3 or self._rebase:
                return
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
        elif pt != self._pt or not payload:
            return
        elif self._rebase:
            self._rebase_at(packet.ssrc, seq, packet.timestamp)
        seq = (seq + self._seq_off) & 0xFFFF
        if self.stream.original(seq) is not None:
            # already forwarded: a retransmission of a packet that was late, not lost (or a datagram twice). Sent
            # again it would reach the subscribers as a replay, which their SRTP refuses.
            self.duplicates += 1
            return
        ts = (packet.timestamp + self._ts_off) & 0xFFFFFFFF
        marker = bool(packet.marker)
        self.packets += 1
        self.bytes += len(payload)
        if marker:
            self.frames += 1
        if self._video and not retransmitted and self.batch_frames:
            self._add_to_frame(payload, seq, ts, marker)
            return
        self.stream.push(make_packet(payload, seq, ts, marker), seq, ts, marker, self._video and is_keyframe_start(payload))
        if started:
            self._hops.add(started)

    def _add_to_frame(self, payload: bytes, seq: int, ts: int, marker: bool) -> None:
        frame = self._frame
        if frame and (ts != self._frame_ts or seq != (self._frame_seq + len(frame)) & 0xFFFF):
            self._flush_frame()  # a packet lost or out of order: what was held goes one by one
        if not frame:  # one frame in FRAME_SAMPLE_MASK + 1 timed, from its first packet
            self._frame_seq, self._frame_ts = seq, ts
            self._frame_started = 0.0 if self.frames & FRAME_SAMPLE_MASK else _perf()
        frame.append(payload)
        if marker:
            self.stream.push_frame(frame, self._frame_seq, ts, is_keyframe_start(frame[0]))
            frame.clear()
            if self._frame_started:
                self._hops.add(self._frame_started)

    def _flush_frame(self) -> None:
        """Send the packets held of a frame whose end did not come in order, one at a time."""
        seq, ts = self._frame_seq, self._frame_ts
        for i, payload in enumerate(self._frame):
            self.stream.push(make_packet(payload, seq, ts, False), seq, ts, False, i == 0 and is_keyframe_start(payload))
            seq = (seq + 1) & 0xFFFF
        self._frame.clear()

    def _rebase_at(self, ssrc: int, seq: int, ts: int) -> None:
        """A new subscription's first packet: continue the local stream's numbering after its last packet."""
        stream = self.stream
        self._media_ssrc = ssrc
        self._rebase = False
        if stream.last_time is None:
            self._seq_off = self._ts_off = 0
            return
        elapsed = max(0.001, _monotonic() - stream.last_time)
        self._seq_off = (stream.last_seq + 1 - seq) & 0xFFFF
        self._ts_off = (stream.last_ts + int(elapsed * stream.clock_rate) - ts) & 0xFFFFFFFF

    # keyframes -----------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """A subscriber joined, switched or asked: one PLI upstream per interval, the rest coalesced."""
        if self._pli_timer is not None or self.kind != "video":
            return
        wait = self._last_pli + self._kf_min - _monotonic()
        if wait <= 0:
            self._send_pli()
        else:
            self._pli_timer = asyncio.get_running_loop().call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_timer = None
        if self._dtls is None or self._media_ssrc is None:
            return  # not connected: the origin starts a new subscription on a keyframe anyway
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self._rtcp_ssrc, media_ssrc=self._media_ssrc)
        if send_rtcp(self._dtls, bytes(pli)):
            self._last_pli = _monotonic()
            self.keyframe_requests += 1

    # reporting -------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "tier": self.tier.name,
            "state": self.state,
            "error": self.error,
            "retry_in_s": self.retry_in_s,
            "failures": self.failures,
            "subscribers": len(self.stream),
            "packets": self.packets,
            "bytes": self.bytes,
            "keyframes": self.stream.keyframes,
            "duplicates": self.duplicates,
            "keyframe_requests": self.keyframe_requests,
        }
