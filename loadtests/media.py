"""The media plane under load: real WHEP subscribers (and a WHIP publisher) on aiortc, counted, never decoded.

`MediaUser` is an endpoint agent that really joins. Realistic mode (the
default): it speaks the control protocol like `EndpointUser` and, at the
`join` notice, subscribes with WHEP to the entry's `whep_url` with its
`subscribe_token`, then reports `joined` (with `join_ms`, notice to first RTP
packet) and every 10 s `stats` over the socket. Token mode
(`--vcs-media-target FILE`, tokens minted for the room, one per subscriber
and each for a commune of its own so that the SFU fits its tier to that
commune's link): it subscribes at once to that room, no agent protocol. Either way each window of
`--vcs-heartbeat` seconds becomes a Locust request "media window" whose size
is the bytes received (Locust's "average size" over the window length is the
bitrate) and which fails when more than `--vcs-loss-threshold` percent of the
packets were lost (gaps in RTP sequence numbers at the receiver) or nothing
arrived. Join time, bitrate and loss also go to the exact samples.

`StudioUser` is the host: as the central studio (agent mode) it publishes a
synthetic scene with WHIP at its entry's tier when its `join` comes; in token
mode it publishes to the target's `whip_url`.

The peer connections are `rtc.whip_client` sessions (the agent's own WHIP /
WHEP client), run on the process's `MediaLoop` (see there how aiortc and
gevent share the process).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gevent

from loadtests.endpoint import AgentUser, ProtocolError
from loadtests.identities import Identity
from loadtests.run import ramp_step, record
from rtc.rtp_stats import StatsWindow
from rtc.synthetic_media import AudioPattern, VideoPattern
from rtc.whip_client import MediaError, MediaSession, publish, subscribe

__all__ = ["MediaLossHigh", "MediaUser", "StudioUser", "node_of"]

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 30.0
NOT_YET = {404, 429, 503}  # the room is not open on that node yet, or the node is busy: the agent tries again too


def _until_taken(attempt: Any, deadline: float) -> Any:
    """`attempt()`, again a second later (or when the node says) while the node answers NOT_YET and time is left."""
    while True:
        try:
            return attempt()
        except MediaError as exc:
            wait = exc.retry_after or 1.0
            if exc.status not in NOT_YET or time.time() + wait >= deadline:
                raise
            gevent.sleep(wait)


def node_of(url: str) -> str:
    """host:port of a WHIP/WHEP URL: which node a user went to."""
    return urlsplit(url).netloc


class MediaLossHigh(Exception):
    """A media window lost more packets than allowed, or received none."""


@dataclass(frozen=True)
class Window:
    kbps: float
    loss_pct: float
    bytes: int
    expected: int  # media packets the sequence numbers say were sent
    lost: int
    tier: str | None


class _Subscription:
    """A greenlet's handle on one WHEP session living on the media loop."""

    def __init__(self, user: AgentUser) -> None:
        self.user = user
        self.loop = user.shared.media_loop()
        self.session: MediaSession | None = None
        self.window = StatsWindow()
        self.totals = (0, 0, 0)  # bytes, expected packets, received media packets

    def open(self, whep_url: str, token: str, max_tier: str | None) -> float:
        """Subscribe and wait for the first RTP packet; returns seconds taken."""
        async def join() -> tuple[MediaSession, float]:
            started = time.monotonic()
            session = await subscribe(self.loop.http, whep_url, token, max_tier=max_tier)
            try:
                await session.first_media.wait()
            except BaseException:
                await session.close()
                raise
            return session, time.monotonic() - started

        deadline = time.time() + JOIN_TIMEOUT
        self.session, took = _until_taken(lambda: self.loop.call(join(), max(1.0, deadline - time.time())), deadline)
        self.sample()  # the first reading starts the first window
        return took

    def sample(self) -> Window:
        """What arrived since the previous sample."""
        session = self.session
        if session is None:
            return Window(0.0, 0.0, 0, 0, 0, None)

        async def read() -> Window:
            counters = list(session.counters.values())
            kbps, loss = self.window.sample(counters, time.monotonic())
            totals = (sum(c.bytes for c in counters), sum(c.expected for c in counters), sum(c.media_packets for c in counters))
            (size, expected, received), self.totals = (a - b for a, b in zip(totals, self.totals)), totals
            return Window(kbps, loss, size, expected, max(0, expected - received), session.tier)

        return self.loop.call(read(), 5)

    @property
    def dropped(self) -> bool:
        return self.session is not None and self.session.dropped.is_set()

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None and self.loop.loop is not None:
            try:
                self.loop.call(session.close(), 10)
            except Exception as exc:  # closing is best effort
                log.info("closing a media session: %s", exc)


class MediaUser(AgentUser):
    """A commune room that receives the meeting for real (WHEP), or a bare subscriber of a room (token mode)."""

    joins_from_schedule = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.subscription: _Subscription | None = None
        self.entry: dict | None = None
        self.last_window = 0.0
        self.direct = self.settings.media_target is not None

    def on_start(self) -> None:
        if not self.direct:
            super().on_start()
            return
        target = self.settings.media_target
        assert target is not None
        self.join_media(target.whep_url, target.token_for(self.shared.number("subscriber")), None, time.time())

    def on_stop(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        super().on_stop()

    def tick(self) -> None:
        if not self.direct:
            super().tick()
        if self.subscription is not None:
            self.media_window()

    # --- joining ----------------------------------------------------------

    def on_join(self, entry: dict[str, Any], arrival: float) -> None:
        # the reader greenlet must keep reading: the join runs in its own greenlet
        self.entry = entry
        gevent.spawn(self.join_media, entry["whep_url"], entry["subscribe_token"], entry.get("max_tier"), arrival)

    def join_media(self, whep_url: str, token: str, max_tier: str | None, since: float) -> None:
        if self.subscription is not None:  # one meeting at a time: a later join takes over
            self.subscription.close()
            self.subscription = None
        subscription = _Subscription(self)
        started = time.time()
        try:
            subscription.open(whep_url, token, max_tier)
        except (MediaError, TimeoutError, gevent.Timeout, OSError) as exc:
            record(self.environment, "WHEP", "WHEP join", (time.time() - started) * 1000, exception=exc)
            if self.entry is not None:
                self.reply("failed", self.entry, reason=str(exc)[:200])
            return
        join_ms = (time.time() - since) * 1000
        record(self.environment, "WHEP", "WHEP join", join_ms, sample=True)
        self.shared.samples.count(f"WHEP joined on node {node_of(whep_url)}")
        self.subscription = subscription
        self.last_window = time.time()
        if self.entry is not None:
            self.status = "in_meeting"
            self.reply("joined", self.entry, tier=subscription.session.tier if subscription.session else None, join_ms=round(join_ms, 1))

    def on_leave(self, message: dict[str, Any]) -> None:
        if self.subscription is not None:
            gevent.spawn(self.subscription.close)
            self.subscription = None
        super().on_leave(message)

    # --- receiving --------------------------------------------------------

    def media_window(self) -> None:
        subscription = self.subscription
        assert subscription is not None
        now = time.time()
        if now - self.last_window < self.settings.heartbeat * 0.9:
            return
        seconds, self.last_window = now - self.last_window, now
        window = subscription.sample()
        samples = self.shared.samples
        samples.add("media kbps per subscriber", window.kbps)
        samples.add("media loss % per window", window.loss_pct)
        # per step of the ramp: how many subscribers the whole run is asked for now
        running = ramp_step(self.environment, type(self).__name__)
        samples.count(f"media packets expected @{running}", window.expected)
        samples.count(f"media packets lost @{running}", window.lost)
        samples.count(f"media windows at tier {window.tier or 'none'} @{running}")
        samples.add(f"media kbps @{running}", window.kbps)
        error: Exception | None = None
        if subscription.dropped:
            error = ProtocolError("the peer connection failed or closed")
            self.subscription = None
        elif window.bytes == 0:
            error = MediaLossHigh(f"nothing received in {seconds:.0f} s")
        elif window.loss_pct > self.settings.loss_threshold:
            error = MediaLossHigh(f"{window.loss_pct:.2f} % lost (threshold {self.settings.loss_threshold} %)")
        record(self.environment, "RTP", "media window", 0, length=window.bytes, exception=error)
        if self.entry is not None and self.socket is not None:
            self.reply("stats", self.entry, tier=window.tier, bitrate_kbps=window.kbps, loss_pct=window.loss_pct)


class StudioUser(AgentUser):
    """The central studio: publishes a synthetic scene (WHIP) when its meeting warms up, or at once in token mode."""

    fixed_count = 1
    joins_from_schedule = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        # meeting id (None in token mode) -> its WHIP session and the patterns feeding it: the studio
        # hosts every meeting it is the host of (a canary beside the national meeting), each until its leave
        self.published: dict[str | None, tuple[MediaSession, list[Any]]] = {}
        self.direct = self.settings.media_target is not None

    def take_identity(self) -> Identity | None:
        return self.shared.pool.named("central") if self.shared.pool is not None else None

    def on_start(self) -> None:
        if not self.direct:
            super().on_start()
            return
        target = self.settings.media_target
        assert target is not None
        if not target.whip_url:
            log.info("StudioUser: the media target has no whip_url; someone else publishes")
            return
        self.publish(target.whip_url, target.publish_token, "360p", time.time())

    def on_stop(self) -> None:
        for meeting_id in list(self.published):
            self.unpublish(meeting_id)
        super().on_stop()

    def tick(self) -> None:
        if not self.direct:
            super().tick()

    def on_join(self, entry: dict[str, Any], arrival: float) -> None:
        gevent.spawn(self.publish, entry["whip_url"], entry["publish_token"], entry.get("max_tier") or "720p", arrival, entry)

    def publish(self, whip_url: str, token: str, tier: str, since: float, entry: dict | None = None) -> None:
        meeting_id = entry.get("meeting_id") if entry is not None else None
        self.unpublish(meeting_id)  # joined again (a re-placement): the new session replaces the old
        loop = self.shared.media_loop()

        async def start() -> tuple[MediaSession, list[Any]]:
            video, audio = VideoPattern.for_tier(tier if tier in ("720p", "360p", "180p") else "360p"), AudioPattern()
            await video.start()
            await audio.start()
            try:
                session = await publish(loop.http, whip_url, token, [video.track(), audio.track(muted=False)])
                await session.first_media.wait()
            except BaseException:
                await video.stop()
                await audio.stop()
                raise
            return session, [video, audio]

        started = time.time()
        deadline = started + JOIN_TIMEOUT
        try:
            self.published[meeting_id] = _until_taken(lambda: loop.call(start(), max(1.0, deadline - time.time())), deadline)
        except (MediaError, TimeoutError, gevent.Timeout, OSError) as exc:
            record(self.environment, "WHIP", "WHIP publish", (time.time() - started) * 1000, exception=exc)
            return
        join_ms = (time.time() - since) * 1000
        record(self.environment, "WHIP", "WHIP publish", join_ms, sample=True)
        if entry is not None:
            self.current, self.status = entry, "in_meeting"
            self.reply("joined", entry, tier=tier, join_ms=round(join_ms, 1))

    def on_leave(self, message: dict[str, Any]) -> None:
        gevent.spawn(self.unpublish, message.get("meeting_id"))
        super().on_leave(message)

    def unpublish(self, meeting_id: str | None) -> None:
        session, patterns = self.published.pop(meeting_id, (None, []))
        loop = self.shared.media
        if loop is None or loop.loop is None or (session is None and not patterns):
            return

        async def stop() -> None:
            if session is not None:
                await session.close()
            for pattern in patterns:
                await pattern.stop()

        try:
            loop.call(stop(), 15)
        except Exception as exc:
            log.info("stopping the studio: %s", exc)
