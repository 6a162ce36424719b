"""An uplink: a commune's own camera and microphone, forwarded from its relay to the origin.

A commune publishes to the relay it was placed on; its camera goes no further
unless the origin needs it (the commune holds the floor, or the host watches
it). Then the orchestrator asks the relay for an uplink, and the relay
publishes the commune upstream over WHIP with its relay credential and
``?identity=<commune>``: the origin sees publisher X as if X had published
there directly.

Packets are forwarded as received, never decoded or re-encoded: the uplink's
peer connection is a WHIP client whose two senders are taken over by
downtracks (``sfu.downtrack``) fed from the commune publisher's own packet
streams, exactly as the host's ``source=X`` view is fed. The RTCP coming back
is the origin's: a PLI reaches the commune's publisher on this relay
(``Publisher.request_keyframe``, rate-limited there) and NACKs are served from
the stream's history; that handling is ``sfu.subscriber.Subscriber``'s, reused
here with a fixed "camera" tier.

An uplink ends when the relay is told so (``DELETE .../uplinks/X``), when X
stops publishing here, when the relay room ends, or when the origin deletes
its side (nobody watched X there for a while): its connection then drops and
the node forgets it, so a later request starts a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
from aiortc import RTCPeerConnection

from rtc.whip_client import MediaError, MediaSession, forward

from .allocator import TierAllocation
from .config import SfuConfig
from .errors import Unavailable
from .publisher import Publisher
from .subscriber import Subscriber

__all__ = ["Uplink"]

logger = logging.getLogger(__name__)


class Uplink:
    def __init__(self, room: str, publisher: Publisher, origin_url: str, config: SfuConfig) -> None:
        self.room = room
        self.publisher = publisher
        self.identity = publisher.identity
        self.whip_url = f"{origin_url.rstrip('/')}/sfu/whip/{room}"
        self._config = config
        self.session: MediaSession | None = None
        self.feed: Subscriber | None = None
        self.started = time.monotonic()  # the node sets it from its own clock
        self.closed = False

    async def start(self, http: httpx.AsyncClient, token: str, on_drop: Callable[[Uplink], None]) -> None:
        """Publish to the origin; raises ``Unavailable`` when the origin refuses or cannot be reached."""
        kinds = [t.kind for t in self.publisher.pc.getTransceivers() if t.kind in ("audio", "video")]
        try:
            self.session = await forward(http, self.whip_url, token, kinds, self._adopt, params={"identity": self.identity})
        except MediaError as exc:
            await self.close()
            raise Unavailable(f"the origin did not take {self.identity}'s uplink: {exc}") from None
        pc = self.session.pc

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and not self.closed:
                on_drop(self)

    def _adopt(self, pc: RTCPeerConnection) -> None:
        allocation = TierAllocation(self._config, None, time.monotonic())
        self.feed = Subscriber(
            f"uplink-{self.identity}",
            self.identity,
            pc,
            allocation,
            source=self.identity,
            on_ready=self._on_ready,
            on_tier=lambda sub, tier: None,  # the camera is sent as it comes: no tier to choose
            srtp=self._config.srtp,
        )
        self.feed.adopt()

    def _on_ready(self, feed: Subscriber) -> None:
        """DTLS is up towards the origin: feed the downtracks from the commune's streams."""
        if self.closed or self.publisher.closed:
            return
        if feed.audio is not None:
            self.publisher.audio.attach(feed.audio, at_keyframe=False)
        if feed.video is not None:
            self.publisher.video.attach(feed.video, at_keyframe=True)  # asks the commune for a keyframe
        feed.tier_name = "camera"

    def tick(self, now: float) -> None:
        """Sender reports to the origin (its receiver measures RTT and loss from them)."""
        if self.feed is not None:
            self.feed.tick(now)

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.pc.connectionState == "connected"

    def stats(self) -> dict:
        feed = self.feed
        return {
            "identity": self.identity,
            "state": self.session.pc.connectionState if self.session is not None else "new",
            "packets": sum(d.packets_sent for d in feed.downtracks) if feed is not None else 0,
            "bytes": sum(d.octets_sent for d in feed.downtracks) if feed is not None else 0,
            "keyframe_requests": feed.plis if feed is not None else 0,
        }

    async def close(self, token: str | None = None) -> None:
        """Stop forwarding and delete the origin's resource (best effort). Safe twice."""
        if self.closed:
            return
        self.closed = True
        if self.feed is not None:
            self.feed.closed = True
            for dt in self.feed.downtracks:
                dt.close()
        if self.session is not None:
            try:
                await self.session.close(token)
            except Exception:
                logger.warning("closing the uplink of %s in %s failed", self.identity, self.room, exc_info=True)
