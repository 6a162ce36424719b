"""Where a room gets a tier's packets: the seam between who speaks and what is sent.

A `TierSource` puts one tier's packets into a `PacketStream` that subscribers'
downtracks attach to, and answers keyframe requests. On an origin the source
is a `TierEncoder` fed with the program's decoded frames (`EncodedTiers`); on
a relay it will be an upstream subscription to the origin's tier, with no
decode (`sfu.relay_tiers`). A `TierSources` is the set a room keeps: one
source per tier in use, made on first use and retired once nobody receives it
(the node closes retired sources outside the packet path).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from vcs.tiers import TierSpec

from .config import SfuConfig
from .packet_stream import PacketStream
from .tier_encoder import TierEncoder

__all__ = ["EncodedTiers", "TierSource", "TierSources"]

VIDEO_CLOCK = 90000


class TierSource(Protocol):
    tier: TierSpec
    stream: PacketStream

    def request_keyframe(self) -> None: ...

    async def close(self) -> None: ...


class TierSources(Protocol):
    sources: dict[str, TierSource]  # by tier name, the tiers in use
    ended: bool  # the tiers' source is gone for good (a relay's origin ended the room): end the room
    # the room makes its program from its own publishers (decodes the speaker, forwards its sound);
    # a relay's program comes whole from its origin
    makes_program: bool

    def source(self, tier: TierSpec) -> TierSource:
        """The source of `tier`, made on first use."""
        ...

    def program_frame(self, frame: Any) -> None:
        """A decoded frame of the program (ignored by sources that do not encode)."""
        ...

    def program_changed(self) -> None:
        """Someone else speaks now: every tier starts again on a keyframe."""
        ...

    def retire_idle(self) -> list[TierSource]: ...

    def take_retired(self) -> list[TierSource]: ...

    async def close(self) -> None:
        """Close every source, in use or retired."""
        ...

    def stats(self) -> list[dict]: ...

    def room_stats(self) -> dict:
        """What the room's stats add (a relay: its origin and upstream subscriptions)."""
        ...


class EncodedTiers:
    """An origin's tiers: one `TierEncoder` per tier in use, all fed the program's frames."""

    def __init__(self, room: str, config: SfuConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._room = room
        self._config = config
        self._clock = clock
        self._ts_base = random.randrange(0, 1 << 31)
        self.sources: dict[str, TierEncoder] = {}
        self._retired: list[TierEncoder] = []
        self.ended = False
        self.makes_program = True

    def source(self, tier: TierSpec) -> TierEncoder:
        encoder = self.sources.get(tier.name)
        if encoder is None:
            config = self._config
            encoder = TierEncoder(
                tier,
                self._room,
                frame_rate=config.frame_rate,
                keyframe_min_interval_s=config.keyframe_min_interval_s,
                keyframe_interval_s=config.keyframe_interval_s,
                speed=config.encoder_speed,
                fanout=config.fanout,
                clock=self._clock,
            )
            self.sources[tier.name] = encoder
        return encoder

    def program_frame(self, frame: Any) -> None:
        if not self.sources:
            return
        # one timestamp for every tier: a subscriber switching tiers sees the same pictures at the same times
        ts = (self._ts_base + int(self._clock() * VIDEO_CLOCK)) & 0xFFFFFFFF
        for encoder in self.sources.values():
            encoder.submit(frame, ts)

    def program_changed(self) -> None:
        for encoder in self.sources.values():
            encoder.request_keyframe()

    def retire_idle(self) -> list[TierEncoder]:
        idle = [e for e in self.sources.values() if not len(e.stream)]
        for encoder in idle:
            del self.sources[encoder.tier.name]
        self._retired.extend(idle)
        return idle

    def take_retired(self) -> list[TierEncoder]:
        retired, self._retired = self._retired, []
        return retired

    async def close(self) -> None:
        encoders = list(self.sources.values()) + self.take_retired()
        self.sources.clear()
        for encoder in encoders:
            await encoder.close()

    def room_stats(self) -> dict:
        return {}

    def stats(self) -> list[dict]:
        return [
            {
                "tier": e.tier.name,
                "subscribers": len(e.stream),
                "frames": e.frames,
                "dropped": e.dropped,
                "keyframes": e.stream.keyframes,
                "forced_keyframes": e.forced_keyframes,
                "keyframe_requests": e.keyframe_requests,
                "bytes": e.bytes,
                "encode_ms": round(1000 * e.encode_seconds / max(1, e.frames), 2),
            }
            for e in self.sources.values()
        ]
