"""Synthetic media: one scene and one tone, as raw frames or encoded once and shared.

The scene compresses like a real one (slowly moving colour gradients under a
fixed grain, three shapes moving at their own pace; FFmpeg's lavfi draws it,
no per-pixel Python): random noise would make VP8 overshoot its target many
times over and measure nothing real. The sound is a tone with a whole number
of periods per 20 ms frame.

Raw frames, which aiortc encodes per connection (the SFU tests' cameras):

- `SyntheticVideoTrack` plays a few rendered frames back and forth (no jump
  at the loop), so it costs nothing per frame; `SyntheticAudioTrack` the tone.

Encoded once, read by any number of `PacketTrack`s (rtc.packet_track): aiortc's
sender packetizes a packet without re-encoding it, so a thousand publishers
cost one encoder. A keyframe request (`request_keyframe()`, at most one a
second) comes through `rtc.whip_client`, since the pack path ignores PLI.

- `VideoPattern` encodes the scene live with VP8 at a given size and bitrate,
  in its own thread, with a keyframe every few seconds and on request (what
  agents, the fleet and the load tests publish).
- `VideoLoop` encodes a few seconds of the scene once at start, back and forth,
  and replays them: no encoder runs while it plays (the benchmark's
  publisher). Its first frame is its only keyframe; a request restarts the loop.
- `AudioPattern` encodes one second of a quiet tone and one silent frame with
  Opus at start, then replays them every 20 ms. A muted track sends only a
  silent frame every 400 ms, as Opus DTX would, so a muted fleet stays cheap.

The encoded sources idle while no track reads them.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtc.packet_track import PacedSource, PacketTrack
from vcs.tiers import PUBLISH_TIERS

__all__ = [
    "AudioPattern",
    "SyntheticAudioTrack",
    "SyntheticVideoTrack",
    "TIERS",
    "VideoLoop",
    "VideoPattern",
    "render_scene",
]

# name => video tier a pattern can be encoded at: the default ladder plus 1080p
TIERS = {t.name: t for t in PUBLISH_TIERS if not t.audio_only}

AUDIO_RATE = 48000
AUDIO_FRAME = 960  # samples in 20 ms
VIDEO_CLOCK = 90000


def _scene(width: int, height: int, fps: int) -> str:
    """The lavfi graph of the scene (yuv420p)."""
    w, h = width, height
    return (
        f"gradients=s={w}x{h}:r={fps}:speed=0.015:nb_colors=4:seed=7"
        ":c0=0x1f4e79:c1=0xd9a441:c2=0x2e8b57:c3=0x8b3a3a[bg];"
        f"[bg]drawbox=x='mod(t*{w // 6},{w})':y='{h // 3}+{h // 5}*sin(t)':w={w // 8}:h={h // 5}:c=white@0.9:t=fill,"
        f"drawbox=x='{w // 2}+{w // 4}*cos(t*0.7)':y='mod(t*{h // 5},{h})':w={w // 10}:h={w // 10}:c=0x202020:t=fill,"
        f"drawbox=x='{w // 5}':y='{h // 2}+{h // 4}*sin(t*1.3)':w={w // 12}:h={h // 3}:c=red@0.8:t=fill,"
        "noise=alls=6,format=yuv420p[out0]"
    )


def render_scene(width: int, height: int, fps: int = 30, frames: int = 90) -> list[av.VideoFrame]:
    """The first `frames` frames of the scene."""
    container = av.open(_scene(width, height, fps), format="lavfi")
    try:
        out: list[av.VideoFrame] = []
        for frame in container.decode(video=0):
            out.append(frame)
            if len(out) >= frames:
                break
        return out
    finally:
        container.close()


def _tone(frequency: float, level: float, samples: int) -> array:
    """`samples` of a sine at `level` of full scale (mono s16 at 48 kHz)."""
    return array("h", (round(32767 * level * math.sin(2 * math.pi * frequency * i / AUDIO_RATE)) for i in range(samples)))


class _Clock:
    """Paces a raw track: the n-th frame is due n * interval after the first was read."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._start: float | None = None

    async def wait(self, index: int) -> None:
        if self._start is None:
            self._start = time.monotonic()
            return
        wait = self._start + index * self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


class SyntheticVideoTrack(MediaStreamTrack):
    """Raw frames of the scene: `frames` rendered once, played back and forth at `fps`."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, frames: int = 90) -> None:
        super().__init__()
        layout = av.VideoFrame(width, height, "yuv420p")
        rendered = [_plane_bytes(frame, layout) for frame in render_scene(width, height, fps, frames)]
        self._frames = rendered + rendered[-2:0:-1]  # back and forth
        self._size = (width, height)
        self._fps = fps
        self._clock = _Clock(1 / fps)
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.wait(self._index)
        frame = av.VideoFrame(*self._size, "yuv420p")  # a fresh frame each time: its pts is ours to set
        for plane, data in zip(frame.planes, self._frames[self._index % len(self._frames)]):
            plane.update(data)
        frame.pts = int(self._index * VIDEO_CLOCK / self._fps)
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return frame


def _plane_bytes(frame: av.VideoFrame, layout: av.VideoFrame) -> list[bytes]:
    """The planes of `frame` laid out as in `layout` (lavfi pads its rows differently)."""
    planes = []
    for src, dst in zip(frame.planes, layout.planes):
        data = bytes(src)
        rows = [data[y * src.line_size : y * src.line_size + src.width] for y in range(src.height)]
        planes.append(b"".join(row.ljust(dst.line_size, b"\0") for row in rows))
    return planes


class SyntheticAudioTrack(MediaStreamTrack):
    """Raw 20 ms frames of a tone (mono s16 at 48 kHz)."""

    kind = "audio"

    def __init__(self, frequency: int = 400, level: float = 0.18) -> None:
        super().__init__()
        self._pcm = _tone(frequency, level, AUDIO_FRAME).tobytes()
        self._clock = _Clock(AUDIO_FRAME / AUDIO_RATE)
        self._index = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.wait(self._index)
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._index * AUDIO_FRAME
        frame.time_base = Fraction(1, AUDIO_RATE)
        self._index += 1
        return frame


def _vp8_encoder(width: int, height: int, fps: int, kbps: int, gop: int) -> av.VideoCodecContext:
    """A realtime CBR VP8 encoder with the settings aiortc's own VP8 encoder uses; time base 1/fps."""
    bps = kbps * 1000
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.bit_rate = bps
    encoder.gop_size = gop
    encoder.qmin, encoder.qmax = 2, 56
    encoder.options = {
        "bufsize": str(bps), "minrate": str(bps), "maxrate": str(bps), "cpu-used": "-6", "deadline": "realtime",
        "lag-in-frames": "0", "noise-sensitivity": "4", "overshoot-pct": "15", "partitions": "0",
        "static-thresh": "1", "undershoot-pct": "100",
    }  # fmt: skip
    return encoder


class _EncodedVideo(PacedSource):
    """What the encoded video sources share: their tracks and the keyframe-request limit."""

    def __init__(self, width: int, height: int, fps: int, bitrate_kbps: int, name: str) -> None:
        super().__init__(fps, f"{name}-{height}p")
        self.width, self.height, self.fps, self.bitrate_kbps = width, height, fps, bitrate_kbps
        self._time_base = Fraction(1, fps)
        self._min_keyframe_gap = max(1, fps)  # frames: at most one requested keyframe a second
        self._keyframe_wanted = True
        self._last_keyframe = -self._min_keyframe_gap

    def track(self) -> PacketTrack:
        track = PacketTrack("video", self.broadcast, on_keyframe_request=self.request_keyframe)
        self.request_keyframe()  # a new reader starts decoding at the next keyframe
        return track

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    def _take_keyframe_request(self, index: int) -> bool:
        """Whether frame `index` should be a keyframe because one was asked for."""
        if self._keyframe_wanted and index - self._last_keyframe >= self._min_keyframe_gap:
            self._keyframe_wanted = False
            return True
        return False


class VideoPattern(_EncodedVideo):
    """The scene encoded live, once for every track reading it."""

    def __init__(self, width: int, height: int, *, bitrate_kbps: int, fps: int = 15, keyframe_interval_s: float = 3.0) -> None:
        super().__init__(width, height, fps, bitrate_kbps, "video-pattern")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._container = av.open(_scene(width, height, fps), format="lavfi")
        self._frames = self._container.decode(video=0)
        self._encoder = _vp8_encoder(width, height, fps, bitrate_kbps, gop=max(1, round(keyframe_interval_s * fps)))
        self.frames_encoded = 0
        self.bytes_encoded = 0

    @classmethod
    def for_tier(cls, tier: str, fps: int = 15) -> VideoPattern:
        spec = TIERS[tier]
        return cls(spec.width, spec.height, bitrate_kbps=spec.video_kbps, fps=fps)

    async def tick(self, index: int) -> None:
        packet = await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, index)
        if packet is not None:
            self.broadcast.push(packet, packet.is_keyframe)

    def _encode(self, index: int) -> av.Packet | None:
        frame = next(self._frames)
        frame.pts, frame.time_base = index, self._time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame as intra
        if self._take_keyframe_request(index):
            frame.pict_type = av.video.frame.PictureType.I
        packets = self._encoder.encode(frame)
        if not packets:
            return None
        packet = packets[0]
        packet.pts, packet.time_base = index, self._time_base
        if packet.is_keyframe:
            self._last_keyframe = index
        self.frames_encoded += 1
        self.bytes_encoded += packet.size
        return packet

    async def stop(self) -> None:
        await super().stop()
        self._executor.shutdown(wait=True)
        self._container.close()


class VideoLoop(_EncodedVideo):
    """`seconds` of the scene encoded once at about `bitrate_kbps` (back and forth), then replayed."""

    def __init__(self, width: int, height: int, *, bitrate_kbps: int, fps: int = 30, seconds: float = 10.0) -> None:
        super().__init__(width, height, fps, bitrate_kbps, "video-loop")
        self.packets = _encode_loop(width, height, fps, bitrate_kbps, seconds)
        self._loop_start = 0  # the index at which the loop last began

    @property
    def kbps(self) -> float:
        """The loop's bitrate as encoded."""
        return sum(len(p) for p in self.packets) * 8 * self.fps / len(self.packets) / 1000

    async def tick(self, index: int) -> None:
        if self._take_keyframe_request(index):
            self._loop_start = index
        position = (index - self._loop_start) % len(self.packets)
        if position == 0:
            self._last_keyframe = index
        packet = av.Packet(self.packets[position])
        packet.pts, packet.time_base, packet.is_keyframe = index, self._time_base, position == 0
        self.broadcast.push(packet, packet.is_keyframe)


def _encode_loop(width: int, height: int, fps: int, kbps: int, seconds: float) -> list[bytes]:
    """The scene as VP8 frames at about `kbps`, forth then back so that it loops cleanly; the first is the only keyframe.

    The target is calibrated over up to three passes.
    """
    frames = render_scene(width, height, fps, max(1, int(fps * seconds) // 2))
    frames = frames + frames[::-1]
    scale = 1.0
    encoded: list[bytes] = []
    for _ in range(3):
        encoder = _vp8_encoder(width, height, fps, max(1, int(kbps * scale)), gop=len(frames) + 1)
        encoded = []
        for i, frame in enumerate(frames):
            frame.pts, frame.time_base = i, encoder.time_base
            frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame as intra
            encoded.extend(bytes(p) for p in encoder.encode(frame))
        actual = sum(len(p) for p in encoded) * 8 / (len(frames) / fps) / 1000
        if abs(actual / kbps - 1) < 0.08:
            break
        scale *= kbps / actual
    return encoded


class AudioPattern(PacedSource):
    RATE = AUDIO_RATE
    FRAME = AUDIO_FRAME
    MUTED_EVERY = 20  # a muted track sends one silent frame in 20 (every 400 ms)

    def __init__(self, *, tone_hz: float = 440.0, level: float = 0.03) -> None:
        super().__init__(self.RATE / self.FRAME, "audio-pattern")
        self._tone = _encode_opus(_tone(tone_hz, level, self.RATE), seconds=1)
        self._silence = _encode_opus(array("h", bytes(2 * self.RATE)), seconds=1)[-1]
        self._time_base = Fraction(1, self.RATE)

    def track(self, muted: bool = True) -> PacketTrack:
        return PacketTrack("audio", self.broadcast, muted=muted)

    async def tick(self, index: int) -> None:
        tone = av.Packet(self._tone[index % len(self._tone)])
        tone.pts, tone.time_base = index * self.FRAME, self._time_base
        silent = None
        if index % self.MUTED_EVERY == 0:
            silent = av.Packet(self._silence)
            silent.pts, silent.time_base = tone.pts, self._time_base
        self.broadcast.push(tone, False, silent)


def _encode_opus(samples: array, seconds: int) -> list[bytes]:
    """Opus packets of `samples` (mono s16 at 48 kHz), encoded twice over so the second pass is steady."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = AUDIO_RATE, "mono", "s16"
    encoder.bit_rate = 24000
    encoder.time_base = Fraction(1, AUDIO_RATE)
    encoder.options = {"application": "voip", "frame_duration": "20"}
    frames_per_pass = seconds * AUDIO_RATE // AUDIO_FRAME
    out: list[bytes] = []
    raw = samples.tobytes()
    step = 2 * AUDIO_FRAME
    for n in range(2 * frames_per_pass):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        offset = (n % frames_per_pass) * step
        frame.planes[0].update(raw[offset : offset + step])
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, n * AUDIO_FRAME, encoder.time_base
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out[-frames_per_pass:]
