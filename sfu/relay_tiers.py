"""A relay room's tiers: taken from the origin, one upstream subscription per tier in use.

The `TierSources` of a room on a relay node (`sfu.tier_source` has the origin's,
which encode). A tier's source is an `Upstream` (`sfu.upstream`): made when
the first subscriber of the relay room needs the tier, retired and closed as
soon as no subscriber receives it or is switching to it (the last one leaves,
or moves to another tier on that tier's keyframe), so the relay pulls exactly
one stream per tier in use. The program audio is pulled for as long as the
room is open, into the room's audio stream. The origin does the program, floor and keyframe work; the
relay only forwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vcs.tiers import TierSpec

from .config import SfuConfig
from .packet_stream import PacketStream
from .upstream import HopTimes, Upstream

__all__ = ["Origin", "RelayTiers"]

VIDEO_CLOCK = 90000


@dataclass(frozen=True)
class Origin:
    url: str  # the origin node's base URL: its WHEP endpoint is {url}/sfu/whep/{room}
    node_id: str


class RelayTiers:
    """The relay's `TierSources`: upstream subscriptions to `origin`, opened with `connect(room, origin, tier, kind)`."""

    def __init__(
        self,
        room: str,
        config: SfuConfig,
        origin: Origin,
        *,
        connect: Callable[[str, Origin, str, str], Any],
        hops: HopTimes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._room = room
        self._config = config
        self.origin = origin
        self._connect = connect
        self._hops = hops
        self._clock = clock
        self.sources: dict[str, Upstream] = {}
        self._closing: set[asyncio.Task] = set()  # retired upstreams being closed
        self.audio: Upstream | None = None
        self.ended = False  # the origin no longer has the room: the node ends it
        self.makes_program = False  # the program, video and audio, comes from the origin

    def _upstream(self, tier: TierSpec, stream: PacketStream, owns_stream: bool) -> Upstream:
        config = self._config
        upstream = Upstream(
            tier,
            stream,
            self._open,
            keyframe_min_interval_s=config.keyframe_min_interval_s,
            connect_timeout_s=config.connect_timeout_s,
            retry_max_s=config.relay_retry_max_s,
            give_up_s=config.relay_give_up_s,
            hops=self._hops,
            on_gone=self._gone,
            owns_stream=owns_stream,
            room=self._room,
        )
        upstream.start()
        return upstream

    async def _open(self, tier: str, kind: str) -> Any:
        return await self._connect(self._room, self.origin, tier, kind)

    def _gone(self, upstream: Upstream) -> None:
        self.ended = True

    def start(self, audio: PacketStream) -> None:
        """Pull the program audio into the room's `audio` stream (for as long as the room is open)."""
        tier = next((t for t in self._config.tiers if t.audio_only), None)
        if tier is not None and self.audio is None:
            self.audio = self._upstream(tier, audio, owns_stream=False)

    async def repoint(self, origin: Origin) -> None:
        """Take the tiers from another origin (the subscribers stay attached to the same streams)."""
        if origin == self.origin:
            return
        self.origin = origin
        await self.resubscribe()

    async def resubscribe(self) -> None:
        """Drop every upstream subscription and subscribe again (the origin changed, or restarted)."""
        await asyncio.gather(*(u.restart() for u in self.upstreams))

    @property
    def upstreams(self) -> list[Upstream]:
        return ([self.audio] if self.audio is not None else []) + list(self.sources.values())

    # TierSources -------------------------------------------------------------------

    def source(self, tier: TierSpec) -> Upstream:
        upstream = self.sources.get(tier.name)
        if upstream is None:
            # the stream's subscribers (joins, switches, PLIs) ask the upstream for keyframes
            # and its last subscriber leaving, or switching away on a keyframe, retires it at once
            stream = PacketStream("video", f"{self._room}/{tier.name}", clock_rate=VIDEO_CLOCK,
                                  request_keyframe=lambda: upstream.request_keyframe(),
                                  on_idle=lambda: self._retire(upstream), fanout=self._config.fanout)  # fmt: skip
            upstream = self._upstream(tier, stream, owns_stream=True)
            self.sources[tier.name] = upstream
        return upstream

    def program_frame(self, frame: Any) -> None:
        """Nothing is decoded on a relay."""

    def program_changed(self) -> None:
        """The origin follows the program; its tiers start again on a keyframe by themselves.

        (On a relay the floor only decides who must not hear the program audio: `Room`.)"""

    def retire_idle(self) -> list[Upstream]:
        idle = [u for u in self.sources.values() if not len(u.stream)]
        for upstream in idle:
            self._retire(upstream)
        return idle

    def _retire(self, upstream: Upstream) -> None:
        """Drop a tier nobody receives or switches to: its subscription to the origin is closed now.

        (Not at the node's next tick: a subscriber switching tiers leaves the old
        one when the new one's keyframe arrives, in the middle of a push.)"""
        if self.sources.get(upstream.tier.name) is not upstream or len(upstream.stream):
            return
        del self.sources[upstream.tier.name]
        task = asyncio.get_running_loop().create_task(upstream.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def take_retired(self) -> list[Upstream]:
        return []  # a retired upstream is closed as it is retired

    async def close(self) -> None:
        upstreams = self.upstreams
        self.sources.clear()
        self.audio = None
        await asyncio.gather(*(u.close() for u in upstreams), *self._closing)

    def stats(self) -> list[dict]:
        return [
            {
                "tier": u.tier.name,
                "subscribers": len(u.stream),
                "keyframes": u.stream.keyframes,
                "keyframe_requests": u.keyframe_requests,
                "packets": u.packets,
                "bytes": u.bytes,
                "upstream": u.state,
            }
            for u in self.sources.values()
        ]

    def room_stats(self) -> dict:
        return {
            "origin": self.origin.url,
            "origin_node": self.origin.node_id,
            "upstream": [u.stats() for u in self.upstreams],
        }
