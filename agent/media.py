"""What an agent publishes: the shared test pattern, a media file, or a capture device.

`PatternMedia` is the cheap one (a fleet's hundreds of agents share one
encoder per tier in use); `PlayerMedia` goes through aiortc's `MediaPlayer`,
which decodes and re-encodes for each session, as a real room's camera would.
Either returns fresh tracks per session; the session stops them on close.
Audio tracks have a `muted` attribute the agent flips when given the floor.
"""

from __future__ import annotations

import logging
from typing import Protocol

import av
from aiortc.mediastreams import MediaStreamTrack

from rtc.synthetic_media import TIERS, AudioPattern, VideoPattern
from vcs.tiers import NO_TIER, PUBLISH_TIERS

__all__ = ["BlackCameraMedia", "LADDER", "MutableAudioTrack", "PatternMedia", "PlayerMedia", "PublishMedia", "cap_tier", "media_from_option"]

log = logging.getLogger(__name__)

LADDER = (*(t.name for t in PUBLISH_TIERS), NO_TIER)  # best first


def cap_tier(tier: str, cap: str | None) -> str:
    """The lower of `tier` and `cap` on the ladder (an unknown tier counts as audio)."""
    rank = {name: i for i, name in enumerate(LADDER)}
    chosen = tier if tier in rank else "audio"
    return chosen if cap is None or cap not in rank or rank[chosen] >= rank[cap] else cap


class PublishMedia(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def tracks(self, tier: str, *, host: bool) -> list[MediaStreamTrack]:
        """Audio (muted unless `host`) and, when `tier` is a video tier, video."""
        ...


class PatternMedia:
    """Test patterns encoded once per tier and shared by every session of the process."""

    def __init__(self, fps: int = 15) -> None:
        self.fps = fps
        self._audio: AudioPattern | None = None
        self._video: dict[str, VideoPattern] = {}

    async def start(self) -> None:
        if self._audio is None:
            self._audio = AudioPattern()
            await self._audio.start()

    async def tracks(self, tier: str, *, host: bool) -> list[MediaStreamTrack]:
        await self.start()
        tracks: list[MediaStreamTrack] = [self._audio.track(muted=not host)]
        if tier in TIERS:
            if tier not in self._video:
                self._video[tier] = pattern = VideoPattern.for_tier(tier, fps=self.fps)
                await pattern.start()
            tracks.append(self._video[tier].track())
        return tracks

    async def stop(self) -> None:
        audio, self._audio = self._audio, None
        videos, self._video = list(self._video.values()), {}
        for source in [*videos, *([audio] if audio else [])]:
            await source.stop()


class MutableAudioTrack(MediaStreamTrack):
    """Another track's audio, replaced by silence of the same shape while `muted`."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, muted: bool) -> None:
        super().__init__()
        self.source, self.muted = source, muted

    async def recv(self) -> av.AudioFrame:
        frame = await self.source.recv()
        if not self.muted:
            return frame
        silent = av.AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=frame.samples)
        for plane in silent.planes:
            plane.update(bytes(plane.buffer_size))
        silent.pts, silent.time_base, silent.sample_rate = frame.pts, frame.time_base, frame.sample_rate
        return silent

    def stop(self) -> None:
        self.source.stop()
        super().stop()


class PlayerMedia:
    """A media file (looped) or a V4L2 device (`/dev/videoN`), one MediaPlayer per session."""

    def __init__(self, source: str, fallback_audio: PatternMedia | None = None) -> None:
        self.source = source
        self.device = source.startswith("/dev/video")
        self._pattern = fallback_audio or PatternMedia()

    async def start(self) -> None:
        await self._pattern.start()

    async def tracks(self, tier: str, *, host: bool) -> list[MediaStreamTrack]:
        from aiortc.contrib.media import MediaPlayer

        if self.device:
            size = TIERS.get(tier, TIERS["360p"])
            player = MediaPlayer(self.source, format="v4l2", options={"video_size": f"{size.width}x{size.height}"})
        else:
            player = MediaPlayer(self.source, loop=True)
        tracks: list[MediaStreamTrack] = []
        if player.audio is not None:
            tracks.append(MutableAudioTrack(player.audio, muted=not host))
        else:
            tracks += [t for t in await self._pattern.tracks("audio", host=host)]
        if player.video is not None and tier in TIERS:
            tracks.append(player.video)
        elif player.video is not None:
            player.video.stop()
        return tracks

    async def stop(self) -> None:
        await self._pattern.stop()


class BlackFrames(MediaStreamTrack):
    """A camera that sees nothing: black frames at 15 fps (a covered lens, a dead capture card)."""

    kind = "video"

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self._size = (width, height)
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        import asyncio
        import time
        from fractions import Fraction

        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._index / 15 - time.monotonic()))
        frame = av.VideoFrame(*self._size, "yuv420p")
        for plane, value in zip(frame.planes, (16, 128, 128)):  # video black: Y 16, neutral chroma
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = self._index * 6000, Fraction(1, 90000)
        self._index += 1
        return frame


class BlackCameraMedia(PatternMedia):
    """The test tone, and a black picture: what a room with a covered or dead camera publishes."""

    async def tracks(self, tier: str, *, host: bool) -> list[MediaStreamTrack]:
        await self.start()
        tracks: list[MediaStreamTrack] = [self._audio.track(muted=not host)]
        if tier in TIERS:
            tracks.append(BlackFrames(TIERS[tier].width, TIERS[tier].height))
        return tracks


def media_from_option(option: str | None) -> PublishMedia | None:
    """`--media`: "testpattern", "black" (a dead camera), a file path, a /dev/videoN device, or None/"none" to publish nothing."""
    if option is None or option == "none":
        return None
    if option == "testpattern":
        return PatternMedia()
    if option == "black":
        return BlackCameraMedia()
    return PlayerMedia(option)
