"""Synthetic media that compresses like a real scene, for tests and the bench.

The picture is drifting colour gradients with two moving boxes over a thin
grid, rendered once by FFmpeg's lavfi and played back and forth (no jump at
the loop), so it costs nothing per frame. Random noise would make VP8
overshoot its target many times over and measure nothing real. The sound is
a 400 Hz tone (a whole number of periods per 20 ms frame).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import struct
import time

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["SyntheticAudioTrack", "SyntheticVideoTrack", "render_scene"]

VIDEO_CLOCK = 90000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
AUDIO_RATE = 48000
AUDIO_PTIME = 0.02


def _scene(width: int, height: int, fps: int) -> str:
    box = max(8, height // 3) & ~1
    small = max(8, height // 5) & ~1
    travel_x = width - box
    travel_small = width - small
    return (
        f"gradients=s={width}x{height}:r={fps}:speed=0.015:n=4:"
        "c0=0x1f4e79:c1=0xc55a11:c2=0x548235:c3=0x7f6000,"
        f"drawbox=x='mod(t*{width // 4},{travel_x})':y='{height // 3}+{height // 4}*sin(t*1.7)':"
        f"w={box}:h={box}:color=0xf2f2f2:t=fill,"
        f"drawbox=x='{travel_small}-mod(t*{width // 7},{travel_small})':y='{height // 9}+{height // 12}*sin(t*0.9)':"
        f"w={small}:h={small * 3 // 4 & ~1}:color=0xc00000:t=fill,"
        f"drawgrid=w={width // 8}:h={width // 8}:t=1:c=0x202020@0.5"
    )


def render_scene(width: int, height: int, fps: int = 30, frames: int = 90) -> list[av.VideoFrame]:
    """Render ``frames`` yuv420p frames of the moving scene."""
    container = av.open(_scene(width, height, fps), format="lavfi")
    try:
        out: list[av.VideoFrame] = []
        for frame in container.decode(video=0):
            out.append(frame.reformat(format="yuv420p"))
            if len(out) >= frames:
                break
        return out
    finally:
        container.close()


class SyntheticVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, frames: int = 90) -> None:
        super().__init__()
        rendered = render_scene(width, height, fps, frames)
        self._frames = rendered + rendered[-2:0:-1]  # back and forth
        self._fps = fps
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._index / self._fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        source = self._frames[self._index % len(self._frames)]
        frame = av.VideoFrame(source.width, source.height, "yuv420p")
        for dst, src in zip(frame.planes, source.planes):
            dst.update(bytes(src))
        frame.pts = int(self._index * VIDEO_CLOCK / self._fps)
        frame.time_base = VIDEO_TIME_BASE
        self._index += 1
        return frame


class SyntheticAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, frequency: int = 400) -> None:
        super().__init__()
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        tone = [int(6000 * math.sin(2 * math.pi * frequency * i / AUDIO_RATE)) for i in range(samples)]
        self._pcm = struct.pack(f"<{samples}h", *tone)
        self._samples = samples
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._index * AUDIO_PTIME - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._index * self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._index += 1
        return frame


def encode_scene(
    width: int, height: int, *, fps: int = 30, kbps: int = 500, seconds: float = 10.0
) -> list[tuple[bytes, bool]]:
    """The scene encoded once as VP8 at about ``kbps``: ``(frame, keyframe)``.

    The target is calibrated over up to three passes; the first frame is the
    only keyframe, so the sequence loops cleanly.
    """
    frames = render_scene(width, height, fps, int(fps * seconds) // 2)
    frames = frames + frames[::-1]
    scale = 1.0
    encoded: list[tuple[bytes, bool]] = []
    for _ in range(3):
        bitrate = int(kbps * 1000 * scale)
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = VIDEO_TIME_BASE
        codec.bit_rate = bitrate
        codec.gop_size = len(frames) + 1
        codec.qmin, codec.qmax = 2, 56
        codec.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
            "undershoot-pct": "100",
            "overshoot-pct": "15",
        }
        encoded = []
        for i, frame in enumerate(frames):
            frame.pts = i * VIDEO_CLOCK // fps
            frame.time_base = VIDEO_TIME_BASE
            frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame I
            for packet in codec.encode(frame):
                encoded.append((bytes(packet), packet.is_keyframe))
        actual = sum(len(p) for p, _ in encoded) * 8 / (len(frames) / fps) / 1000
        if abs(actual / kbps - 1) < 0.08:
            break
        scale *= kbps / actual
    return encoded


def encode_tone(seconds: float = 1.0, frequency: int = 400) -> list[bytes]:
    """A tone encoded as 20 ms Opus packets (48 kHz stereo, voip)."""
    from aiortc.codecs.opus import OpusEncoder

    encoder = OpusEncoder()
    encoder.codec.bit_rate = 32000
    source = SyntheticAudioTrack(frequency)
    packets: list[bytes] = []
    count = int(seconds / AUDIO_PTIME)
    while len(packets) < count:
        frame = av.AudioFrame(format="s16", layout="mono", samples=source._samples)
        frame.planes[0].update(source._pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = len(packets) * source._samples
        payloads, _ = encoder.encode(frame)
        packets.extend(payloads)
    return packets[:count]


class PacketTrack(MediaStreamTrack):
    """Plays pre-encoded packets in a loop; aiortc sends them without encoding."""

    def __init__(self, kind: str, packets: list[bytes], interval: float, clock_rate: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._interval = interval
        self._clock_rate = clock_rate
        self._time_base = fractions.Fraction(1, clock_rate)
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._index * self._interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        packet = av.Packet(self._packets[self._index % len(self._packets)])
        packet.pts = int(self._index * self._interval * self._clock_rate)
        packet.time_base = self._time_base
        self._index += 1
        return packet
