"""The agent's media test: the path to the node it is placed on, measured (docs/readiness.md).

The orchestrator sends a `test` order (at readiness, on demand, in a drill)
naming a test room on the node the room will use, media tokens for it, the
planned tier and how long to measure. The agent subscribes to the node's
test pattern at that tier and measures what arrives (bitrate, loss, jitter,
the tier it ends on); meanwhile it publishes its camera and microphone for a
few seconds and asks the node what it saw of them (frames, brightness,
loudness), and the round-trip time from the node's receiver reports. The
result goes back as `test_result`; a test that could not connect reports its
`error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

import httpx

from agent.media import PublishMedia
from rtc.rtp_stats import StatsWindow
from rtc.whip_client import MediaError, MediaSession, publish, subscribe

__all__ = ["TestOrder", "run_media_test"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0
BUSY_WAIT_S = 60.0  # how long a test waits its turn at a busy node (429/503 with Retry-After) before failing
SETTLE_S = 0.5  # after the first packet, before the measured window: the first keyframe and the tier


@dataclass(frozen=True)
class TestOrder:
    __test__ = False  # not a pytest class

    test_id: str
    whep_url: str
    whip_url: str
    subscribe_token: str
    publish_token: str
    tier: str  # the planned tier: what the room should receive
    seconds: float = 10.0  # measured receiving
    publish_seconds: float = 3.0
    meeting_id: str | None = None
    occurrence: str | None = None
    drill_id: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> TestOrder:
        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
            return value

        def optional(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) and value else None

        seconds, publish_seconds = float(data.get("seconds", 10.0)), float(data.get("publish_seconds", 3.0))
        if not (0 < seconds <= 120 and 0 <= publish_seconds <= 60):
            raise ValueError("seconds must be in (0, 120], publish_seconds in [0, 60]")
        return cls(
            text("test_id"), text("whep_url"), text("whip_url"), text("subscribe_token"), text("publish_token"), text("tier"),
            seconds, publish_seconds, optional("meeting_id"), optional("occurrence"), optional("drill_id"),
        )  # fmt: skip

    @property
    def subject(self) -> dict:
        """What the result is about: the occurrence or the drill."""
        if self.drill_id:
            return {"drill_id": self.drill_id}
        return {"meeting_id": self.meeting_id, "occurrence": self.occurrence}


async def run_media_test(http: httpx.AsyncClient, order: TestOrder, media: PublishMedia | None, *,
                         publish_tier: str = "180p", link_cap_kbps: float | None = None) -> dict:  # fmt: skip
    """Measure; returns the result fields (`error` set when the test could not run)."""
    try:
        receiving, sending = await asyncio.gather(
            _receive(http, order, link_cap_kbps), _send(http, order, media, publish_tier), return_exceptions=True
        )
    except asyncio.CancelledError:
        raise
    result: dict = {"planned_tier": order.tier}
    if isinstance(receiving, BaseException):
        result["error"] = _reason("receive", receiving)
    else:
        result.update(receiving)
    if isinstance(sending, BaseException):
        result.setdefault("error", _reason("publish", sending))
        result.update(camera_ok=False, mic_ok=False)
    elif sending is not None:
        result.update(sending)
    return result


def _reason(what: str, exc: BaseException) -> str:
    return (f"{what}: {exc}" if isinstance(exc, MediaError) else f"{what}: {type(exc).__name__}: {exc}")[:300]


async def _receive(http: httpx.AsyncClient, order: TestOrder, link_cap_kbps: float | None) -> dict:
    session = await _in_turn(lambda: subscribe(http, order.whep_url, order.subscribe_token, max_tier=order.tier, rate_cap_kbps=link_cap_kbps))
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await session.first_media.wait()
        await asyncio.sleep(SETTLE_S)
        loop = asyncio.get_running_loop()
        window = StatsWindow()
        window.sample(session.counters.values(), loop.time())
        video = session.counters.get("video")
        frames_before = video.frames if video else 0
        await asyncio.sleep(order.seconds)
        if session.dropped.is_set():
            raise MediaError(f"connection {session.pc.connectionState} during the test")
        kbps, loss = window.sample(session.counters.values(), loop.time())
        frames = (video.frames - frames_before) if video else 0
        return {
            "tier": session.tier or "none",
            "bitrate_kbps": kbps,
            "loss_pct": loss,
            "jitter_ms": await _jitter_ms(session),
            "fps": round(frames / order.seconds, 1),
        }
    finally:
        await session.close()


async def _send(http: httpx.AsyncClient, order: TestOrder, media: PublishMedia | None, tier: str) -> dict | None:
    if media is None or order.publish_seconds <= 0:
        return None  # nothing to publish: no camera finding
    session = await _in_turn(lambda: _publish(http, order, media, tier))
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await session.first_media.wait()
        await asyncio.sleep(order.publish_seconds)
        findings = await _findings(http, session, order.publish_token)
        return {
            "rtt_ms": await session.rtt_ms(),
            "camera_ok": bool(findings.get("camera_ok")),
            "mic_ok": bool(findings.get("mic_ok")),
            "camera": {k: findings.get(k) for k in ("frames", "width", "height", "luma")},
            "mic": {k: findings.get(k) for k in ("audio_packets", "audio_dbfs")},
        }
    finally:
        await session.close()


async def _publish(http: httpx.AsyncClient, order: TestOrder, media: PublishMedia, tier: str) -> MediaSession:
    return await publish(http, order.whip_url, order.publish_token, await media.tracks(tier, host=True))


async def _in_turn(connect):  # type: ignore[no-untyped-def]
    """Connect; a node that defers the join (every room testing at once) is waited for, jittered, as a join would."""
    deadline = asyncio.get_running_loop().time() + BUSY_WAIT_S
    while True:
        try:
            return await connect()
        except MediaError as exc:
            if exc.status not in (429, 503) or exc.retry_after is None or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(exc.retry_after * (1 + random.random()))


async def _findings(http: httpx.AsyncClient, session: MediaSession, token: str) -> dict:
    if session.resource_url is None:
        raise MediaError("the node gave no resource to ask about")
    response = await http.get(session.resource_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if response.status_code != 200:
        raise MediaError(f"the node's findings: HTTP {response.status_code}", status=response.status_code)
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            return body
    raise MediaError("the node's findings are not JSON")


async def _jitter_ms(session: MediaSession) -> float | None:
    """Interarrival jitter of the video (RFC 3550), from aiortc's receiver statistics."""
    for transceiver in session.pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        with contextlib.suppress(Exception):
            for stats in (await transceiver.receiver.getStats()).values():
                if getattr(stats, "type", "") == "inbound-rtp" and stats.jitter is not None:
                    return round(stats.jitter / 90, 1)  # 90 kHz clock
    return None
