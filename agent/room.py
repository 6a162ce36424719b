"""The meeting side of the agent: be in the right room at the right (server) time.

`Room` holds the schedule (from `state`, `join`, or the disk cache when the
orchestrator is away) and one loop that compares it with the server clock:
it joins at warm-up (or at once on `join`), leaves at the end or on `leave`,
sends `stats` every 10 s, and after a failed join or a dropped connection
tries again with jittered backoff until the occurrence ends. A busy SFU that
defers a join (429/503 with Retry-After) is not a failure: the room waits its
turn (the Retry-After, jittered) and reports nothing. A participant
subscribes over WHEP and publishes muted over WHIP; a host only publishes.
Reports go out through the `send` callable the agent gives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from agent.media import PublishMedia, cap_tier
from agent.schedule_cache import Backoff, ClockOffset, ScheduleCache, ScheduleEntry, due_entry, next_boundary
from rtc.consent import tolerate_load
from rtc.rtp_stats import StatsWindow
from rtc.whip_client import MediaError, MediaSession, publish, subscribe

__all__ = ["Room", "RoomOptions"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass(frozen=True)
class RoomOptions:
    receive_tier: str | None = None  # WHEP ?max_tier= hint ("180p", "audio"); None: the SFU picks for the link
    host_tier: str | None = None  # cap on what a host publishes (a small machine: "360p")
    publish_tier: str | None = None  # cap on what a participant publishes ("audio", "none": a light fleet)
    stats_interval: float = 10.0
    join_timeout: float = 20.0
    media_timeout: float = 60.0  # no packet at all for this long counts as a drop (a failed connection counts at once)
    # a host: no receiver report from its node for this long counts as a drop (a node restarted: sooner than ICE consent's ~30 s)
    report_timeout: float = 15.0
    link_cap_kbps: float | None = None  # emulate a narrow downlink: drop what arrives past this rate (tests, demos)


@dataclass
class _Attendance:
    entry: ScheduleEntry
    sessions: list[MediaSession]
    receiving: MediaSession | None
    sending: MediaSession | None
    tier: str
    window: StatsWindow = field(default_factory=StatsWindow)
    last_packets: int = 0
    last_packet_at: float = 0.0  # loop time
    joined_at: float = field(default_factory=time.time)  # unix seconds: a host's "last heard" before its node's first report
    next_stats: float | None = None


class Room:
    def __init__(self, endpoint_id: str, http: httpx.AsyncClient, clock: ClockOffset, send: Callable[[dict], Awaitable[None]], *,
                 media: PublishMedia | None, cache: ScheduleCache | None, options: RoomOptions = RoomOptions(),
                 on_tokens_rejected: Callable[[], None] = lambda: None, rand: Callable[[], float] = random.random) -> None:  # fmt: skip
        self.endpoint_id, self.http, self.clock, self._send = endpoint_id, http, clock, send
        self.media, self.cache, self.options = media, cache, options
        self._on_tokens_rejected = on_tokens_rejected
        self.entries: list[ScheduleEntry] = cache.load(endpoint_id) if cache else []
        self._forced: dict[Key, tuple[ScheduleEntry, float]] = {}  # `join` notices: entry, server time received
        self._left: set[Key] = set()  # told to leave: never rejoin
        self._rand = rand
        self._backoff = Backoff(rand=rand)
        self._retry_at = 0.0
        self._rejoin_from: float | None = None
        self._here: _Attendance | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.status = "idle"
        self.joins = self.failures = 0
        self.last_error: str | None = None  # why the last join failed or the media dropped; None once joined

    # --- what the control connection tells it ---------------------------------

    def set_schedule(self, entries: list[ScheduleEntry], server_time: float | None) -> None:
        self.entries = entries
        if self.cache is not None:
            self.cache.save(self.endpoint_id, entries, server_time)
        self._wake.set()

    def join_now(self, entry: ScheduleEntry) -> None:
        self._left.discard(entry.key)  # a join after a leave: the orchestrator wants us back
        self._forced[entry.key] = (entry, self.clock.now())
        self.entries = [e for e in self.entries if e.key != entry.key] + [entry]
        if self.cache is not None:
            self.cache.save(self.endpoint_id, self.entries, self.clock.now())
        self._wake.set()

    def leave_now(self, key: Key) -> None:
        self._left.add(key)
        self._forced.pop(key, None)
        self._wake.set()

    def set_floor(self, key: Key, endpoint_id: str | None) -> None:
        here = self._here
        if here is None or here.entry.key != key or here.sending is None or here.entry.role == "host":
            return
        for transceiver in here.sending.pc.getTransceivers():
            track = transceiver.sender.track
            if track is not None and track.kind == "audio" and hasattr(track, "muted"):
                track.muted = endpoint_id != self.endpoint_id

    @property
    def meeting(self) -> ScheduleEntry | None:
        return self._here.entry if self._here else None

    @property
    def receiving(self) -> MediaSession | None:
        """The session the meeting arrives on; None when not in a meeting (or the host, which only sends)."""
        return self._here.receiving if self._here else None

    @property
    def muted(self) -> bool | None:
        """Whether the published audio is muted; None when not publishing audio."""
        sending = self._here.sending if self._here else None
        tracks = [t.sender.track for t in sending.pc.getTransceivers()] if sending else []
        return next((t.muted for t in tracks if t is not None and t.kind == "audio" and hasattr(t, "muted")), None)

    # --- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            tolerate_load()  # a busy machine (a fleet of agents) keeps its media: prompt STUN answers, lag-tolerant consent
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"room-{self.endpoint_id}")

    async def stop(self) -> None:
        """Leave the media room (reporting `left`) and end the loop. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True  # ends the loop even if a library swallows the cancellation
            self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._leave(report=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                now = self.clock.now()
                wanted = self._wanted(now)
                if wanted is None:
                    self.last_error = None  # nothing to be in: an old failure no longer matters
                if self._here is not None and (wanted is None or wanted.key != self._here.entry.key):
                    await self._leave(report=True)
                if self._here is not None and (wanted.whep_url, wanted.whip_url) != (self._here.entry.whep_url, self._here.entry.whip_url):
                    log.info("endpoint %s: %s moved to %s", self.endpoint_id, wanted.meeting_id, wanted.whep_url)
                    await self._leave(report=False)  # placed on another node (its relay failed): join there now
                if self._here is not None and (why := self._drop_reason(loop.time()) or await self._unheard()) is not None:
                    await self._drop(why)
                if wanted is not None and self._here is None and now >= self._retry_at:
                    await self._join(wanted)
                if self._here is not None:
                    await self._maybe_stats(loop.time())
                await self._sleep(self._next_wake(self.clock.now()))
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("endpoint %s: room loop failed", self.endpoint_id)

    def _wanted(self, now: float) -> ScheduleEntry | None:
        forced = [e for e, _ in self._forced.values() if now < e.end and e.key not in self._left]
        if forced:
            return min(forced, key=lambda e: e.start)
        return due_entry(self.entries, now, skip=self._left)

    def _next_wake(self, now: float) -> float:
        if self._here is not None or self._wanted(now) is not None:
            return 1.0
        boundary = next_boundary(self.entries, now)
        return 30.0 if boundary is None else min(30.0, max(0.05, boundary - now))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    # --- joining and leaving ---------------------------------------------------

    async def _join(self, entry: ScheduleEntry) -> None:
        self.status = "joining"
        notice = self._forced.get(entry.key)
        since = self._rejoin_from or max(entry.warmup, notice[1] if notice else entry.warmup)
        try:
            async with asyncio.timeout(self.options.join_timeout):
                self._here = await self._connect(entry)
        except MediaError as exc:
            if exc.status in (429, 503) and exc.retry_after is not None:  # the SFU is busy: wait our turn
                delay = exc.retry_after * (1 + self._rand())  # spread: the deferred do not all come back at once
                self._retry_at = self.clock.now() + delay
                log.info("endpoint %s: join of %s deferred by the SFU (%s); again in %.1fs", self.endpoint_id, entry.meeting_id, exc, delay)
                return
            await self._join_failed(entry, exc)
            return
        except Exception as exc:  # timeouts, and whatever aiortc raises: report and retry
            await self._join_failed(entry, exc)
            return
        self._backoff.reset()
        self._rejoin_from = None
        self.last_error = None
        self.status = "in_meeting"
        self.joins += 1
        join_ms = max(0, round((self.clock.now() - since) * 1000))
        self._here.last_packet_at = asyncio.get_running_loop().time()
        log.info("endpoint %s: joined %s as %s at %s in %d ms", self.endpoint_id, entry.meeting_id, entry.role, self._here.tier, join_ms)
        key = {"meeting_id": entry.meeting_id, "occurrence": entry.occurrence}
        await self._send({"type": "joined", **key, "tier": self._here.tier, "join_ms": join_ms})

    async def _join_failed(self, entry: ScheduleEntry, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
        self.failures += 1
        self.last_error = reason
        self.status = "idle"
        delay = max(self._backoff.next(), getattr(exc, "retry_after", None) or 0.0)
        self._retry_at = self.clock.now() + delay
        log.warning("endpoint %s: could not join %s (%s); retrying in %.1fs", self.endpoint_id, entry.meeting_id, reason, delay)
        if getattr(exc, "status", None) in (401, 403):
            self._on_tokens_rejected()  # maybe stale tokens: ask the orchestrator for fresh ones
        await self._send({"type": "failed", "meeting_id": entry.meeting_id, "occurrence": entry.occurrence, "reason": reason[:300]})

    async def _connect(self, entry: ScheduleEntry) -> _Attendance:
        sessions: list[MediaSession] = []
        try:
            if entry.role == "host":
                tier = cap_tier(entry.publish_tier, self.options.host_tier)
                if self.media is None:
                    raise MediaError("a host needs media to publish (--media)")
                sending = await publish(self.http, entry.whip_url, entry.publish_token, await self.media.tracks(tier, host=True))
                sessions.append(sending)
                await sending.first_media.wait()
                return _Attendance(entry, sessions, None, sending, tier)
            options = self.options
            receiving = await subscribe(self.http, entry.whep_url, entry.subscribe_token, max_tier=options.receive_tier,
                                        rate_cap_kbps=options.link_cap_kbps)  # fmt: skip
            sessions.append(receiving)
            sending = None
            tier = cap_tier(entry.publish_tier, options.publish_tier)
            if self.media is not None and tier != "none":
                tracks = await self.media.tracks(tier, host=False)
                sending = await publish(self.http, entry.whip_url, entry.publish_token, tracks)
                sessions.append(sending)
            await receiving.first_media.wait()
            if options.receive_tier != "audio":
                with contextlib.suppress(TimeoutError):  # a keyframe tells the tier; audio-only has none
                    async with asyncio.timeout(2.0):
                        await self._tier_known(receiving)
            return _Attendance(entry, sessions, receiving, sending, receiving.tier or options.receive_tier or entry.max_tier)
        except BaseException:
            for session in sessions:
                await session.close()
            raise

    @staticmethod
    async def _tier_known(session: MediaSession) -> None:
        while session.tier in (None, "audio"):
            await asyncio.sleep(0.05)

    def _drop_reason(self, loop_now: float) -> str | None:
        """Why the media is gone (a connection failed, or nothing arrived for too long), or None."""
        here = self._here
        for session in here.sessions:
            if session.dropped.is_set():
                return f"{session.direction} connection {session.pc.connectionState}"
        if here.receiving is None:
            return None
        packets = sum(c.packets for c in here.receiving.counters.values())
        if packets != here.last_packets:
            here.last_packets, here.last_packet_at = packets, loop_now
        if loop_now - here.last_packet_at > self.options.media_timeout:
            return f"no media for {self.options.media_timeout:.0f}s"
        return None

    async def _unheard(self) -> str | None:
        """Why a host's node is gone (it sent no receiver report on the host's media for too long), or None."""
        here = self._here
        if here.receiving is not None or here.sending is None:
            return None
        silent = time.time() - (await here.sending.heard_at() or here.joined_at)
        return f"no report from the node for {silent:.0f}s" if silent > self.options.report_timeout else None

    async def _drop(self, why: str) -> None:
        entry = self._here.entry
        await self._leave(report=False)
        self.failures += 1
        self.last_error = "connection lost"
        delay = self._backoff.next()
        self._retry_at = self.clock.now() + delay
        self._rejoin_from = self.clock.now() + delay
        log.warning("endpoint %s: lost the media of %s (%s); rejoining in %.1fs", self.endpoint_id, entry.meeting_id, why, delay)
        await self._send({"type": "failed", "meeting_id": entry.meeting_id, "occurrence": entry.occurrence, "reason": "connection lost"})

    async def _leave(self, report: bool) -> None:
        here, self._here = self._here, None
        self.status = "idle"
        if here is None:
            return
        for session in here.sessions:
            await session.close()
        if report:
            log.info("endpoint %s: left %s", self.endpoint_id, here.entry.meeting_id)
            await self._send({"type": "left", "meeting_id": here.entry.meeting_id, "occurrence": here.entry.occurrence})

    async def _maybe_stats(self, loop_now: float) -> None:
        here = self._here
        if here.next_stats is not None and loop_now < here.next_stats:
            return
        first = here.next_stats is None
        here.next_stats = loop_now + self.options.stats_interval
        if here.receiving is not None:
            kbps, loss = here.window.sample(here.receiving.counters.values(), loop_now)
        else:  # a host: what it sends
            kbps, loss = here.window.sample_bytes(await here.sending.bytes_sent(), loop_now), 0.0
        if first:
            return
        rtt = await here.sending.rtt_ms() if here.sending is not None else None
        tier = here.receiving.tier if here.receiving is not None and here.receiving.tier else here.tier
        here.tier = tier
        await self._send({"type": "stats", "meeting_id": here.entry.meeting_id, "occurrence": here.entry.occurrence,
                          "tier": tier, "bitrate_kbps": kbps, "loss_pct": loss, "rtt_ms": rtt})  # fmt: skip
