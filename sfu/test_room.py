"""Test rooms: a media test against this node with no host present (docs/readiness.md).

A room whose name starts with ``test:`` is a test room. Its program is the
node's own test pattern: the synthetic scene (``rtc.synthetic_media``) fed to
the room's tier encoders like a host's decoded picture, so the pattern is
encoded once per tier in use and every tester of the room receives the same
packets, and a quiet tone as program audio. A tester subscribes with WHEP at
its planned tier (``?max_tier=``) and measures what arrives.

A tester also publishes its camera and microphone for a few seconds. The node
looks at what it sees (``PublishProbe``): frames decoded and their mean
brightness, and the loudness of the microphone (decoded here: a test lasts
seconds, a meeting never pays for it). ``GET`` on the WHIP resource answers
those findings, so the tester reports what the node saw, not what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from array import array
from typing import Any

import av

from rtc.synthetic_media import AudioPattern, SyntheticVideoTrack

from .packet_stream import make_packet

__all__ = ["PublishProbe", "TEST_ROOM_PREFIX", "TestPattern", "is_test_room"]

log = logging.getLogger(__name__)

TEST_ROOM_PREFIX = "test:"
BLACK_LUMA = 24.0  # mean luma (0-255) under which a picture counts as black
SILENT_DBFS = -60.0  # loudness under which a microphone counts as silent
LUMA_SAMPLES = 997  # bytes of the luma plane looked at per frame (a prime stride avoids row patterns)


def is_test_room(name: str) -> bool:
    return name.startswith(TEST_ROOM_PREFIX)


class TestPattern:
    """The program of a test room: the scene at the ladder's top size and a tone, while anybody receives."""

    __test__ = False  # not a pytest class

    def __init__(self, room: Any, *, width: int, height: int, fps: int) -> None:
        self._room = room
        self._size = (width, height)
        self._fps = fps
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._video(), name=f"test-video-{self._room.name}"),
                asyncio.create_task(self._audio(), name=f"test-audio-{self._room.name}"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _video(self) -> None:
        track = SyntheticVideoTrack(*self._size, fps=self._fps, frames=self._fps * 2)
        try:
            while True:
                frame = await track.recv()  # paced at fps
                if self._room.encoders:  # nobody receives video: nothing to encode
                    self._room.tiers.program_frame(frame)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("test room %s: pattern stopped", self._room.name)
        finally:
            track.stop()

    async def _audio(self) -> None:
        pattern = AudioPattern(level=0.1)
        track = pattern.track(muted=False)
        await pattern.start()
        seq, ts = random.randrange(1 << 15), random.randrange(1 << 31)
        try:
            while True:
                packet = await track.recv()
                seq, ts = (seq + 1) & 0xFFFF, (ts + AudioPattern.FRAME) & 0xFFFFFFFF
                self._room.audio.push(make_packet(bytes(packet), seq, ts, False), seq, ts, False, False)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("test room %s: tone stopped", self._room.name)
        finally:
            track.stop()
            await pattern.stop()


class PublishProbe:
    """What the node sees of one tester's camera and microphone."""

    def __init__(self) -> None:
        self.frames = 0
        self.width = self.height = 0
        self._luma_sum = 0.0
        self.audio_packets = 0
        self._power_sum = 0.0
        self._power_frames = 0
        self._decoder: Any = None

    def on_frame(self, frame: av.VideoFrame) -> None:
        self.frames += 1
        self.width, self.height = frame.width, frame.height
        if self.frames % 5 == 1:  # a sample of the pictures is enough to tell black from a scene
            plane = bytes(frame.planes[0])
            step = max(1, len(plane) // LUMA_SAMPLES)
            sample = plane[::step]
            self._luma_sum += sum(sample) / max(1, len(sample))

    def on_audio(self, payload: bytes) -> None:
        self.audio_packets += 1
        if self.audio_packets % 5:
            return
        try:
            if self._decoder is None:
                self._decoder = av.CodecContext.create("opus", "r")
            for frame in self._decoder.decode(av.Packet(payload)):
                samples = array("f", bytes(frame.planes[0])[: frame.samples * 4])
                if samples:
                    self._power_sum += sum(s * s for s in samples[::4]) / len(samples[::4])
                    self._power_frames += 1
        except (av.FFmpegError, ValueError):
            pass  # a packet the decoder does not take: the count still says audio arrived

    @property
    def luma(self) -> float | None:
        sampled = (self.frames + 4) // 5
        return round(self._luma_sum / sampled, 1) if sampled else None

    @property
    def audio_dbfs(self) -> float | None:
        if not self._power_frames:
            return None
        power = self._power_sum / self._power_frames
        return round(10 * math.log10(power), 1) if power > 0 else -120.0

    def findings(self) -> dict:
        luma, dbfs = self.luma, self.audio_dbfs
        return {
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "luma": luma,
            "audio_packets": self.audio_packets,
            "audio_dbfs": dbfs,
            "camera_ok": self.frames > 0 and luma is not None and luma >= BLACK_LUMA,
            "mic_ok": self.audio_packets > 0 and dbfs is not None and dbfs >= SILENT_DBFS,
        }


async def stop_quietly(pattern: TestPattern | None) -> None:
    if pattern is not None:
        with contextlib.suppress(Exception):
            await pattern.stop()
