"""Synthetic media encoded once and shared: what simulated agents and the host publish.

`VideoPattern` renders a scene that compresses like a real one (slowly moving
colour gradients under a fixed grain, three shapes moving at their own pace;
FFmpeg's lavfi draws it, no per-pixel Python) and encodes it once with VP8 at
a given size and bitrate, in its own thread. Any number of `PacketTrack`s
(rtc.packet_track) read the same `av.Packet` objects: aiortc's sender packetizes a packet
without re-encoding it, so a thousand publishers cost one encoder. A keyframe
comes every few seconds and on `request_keyframe()` (at most one a second):
the pack path ignores PLI, so `rtc.whip_client` routes PLIs here.

`AudioPattern` encodes one second of a quiet tone and one silent frame with
Opus at start, then replays them every 20 ms. A muted track sends only a
silent frame every 400 ms, as Opus DTX would, so a muted fleet stays cheap.
Both sources idle while no track reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from array import array
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av

from rtc.packet_track import Broadcast, PacketTrack
from vcs.tiers import PUBLISH_TIERS

__all__ = ["AudioPattern", "TIERS", "VideoPattern"]

log = logging.getLogger(__name__)

# name => video tier a pattern can be encoded at: the default ladder plus 1080p
TIERS = {t.name: t for t in PUBLISH_TIERS if not t.audio_only}


def _scene(width: int, height: int, fps: int) -> str:
    w, h = width, height
    return (
        f"gradients=s={w}x{h}:r={fps}:speed=0.015:nb_colors=4:seed=7"
        ":c0=0x1f4e79:c1=0xd9a441:c2=0x2e8b57:c3=0x8b3a3a[bg];"
        f"[bg]drawbox=x='mod(t*{w // 6},{w})':y='{h // 3}+{h // 5}*sin(t)':w={w // 8}:h={h // 5}:c=white@0.9:t=fill,"
        f"drawbox=x='{w // 2}+{w // 4}*cos(t*0.7)':y='mod(t*{h // 5},{h})':w={w // 10}:h={w // 10}:c=0x202020:t=fill,"
        f"drawbox=x='{w // 5}':y='{h // 2}+{h // 4}*sin(t*1.3)':w={w // 12}:h={h // 3}:c=red@0.8:t=fill,"
        "noise=alls=6,format=yuv420p[out0]"
    )


class _Pacer:
    """A loop that calls `tick(index)` `rate` times a second while a track reads, started and stopped explicitly."""

    def __init__(self, rate: float, name: str) -> None:
        self.broadcast = Broadcast()
        self._rate = rate
        self._name = name
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.broadcast.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        index = 0  # never goes back: packet timestamps stay monotonic across pauses
        try:
            while True:
                await self.broadcast.wait_for_readers()
                origin = loop.time() - index / self._rate
                while self.broadcast.readers:
                    late = loop.time() - (origin + index / self._rate)
                    if late < 0:
                        await asyncio.sleep(-late)
                    elif late > 1.0:  # starved of CPU: skip ahead rather than burst
                        index += int(late * self._rate)
                    await self.tick(index)
                    index += 1
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s stopped", self._name)

    async def tick(self, index: int) -> None:
        raise NotImplementedError


class VideoPattern(_Pacer):
    def __init__(self, width: int, height: int, *, bitrate_kbps: int, fps: int = 15, keyframe_interval_s: float = 3.0) -> None:
        super().__init__(fps, f"video-pattern-{height}p")
        self.width, self.height, self.fps, self.bitrate_kbps = width, height, fps, bitrate_kbps
        self._min_keyframe_gap = max(1, fps)  # frames: at most one requested keyframe a second
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._container = av.open(_scene(width, height, fps), format="lavfi")
        self._frames = self._container.decode(video=0)
        self._encoder = self._make_encoder(keyframe_interval_s)
        self._keyframe_wanted = True
        self._last_keyframe = -self._min_keyframe_gap
        self.frames_encoded = 0
        self.bytes_encoded = 0

    @classmethod
    def for_tier(cls, tier: str, fps: int = 15) -> VideoPattern:
        spec = TIERS[tier]
        return cls(spec.width, spec.height, bitrate_kbps=spec.video_kbps, fps=fps)

    def _make_encoder(self, keyframe_interval_s: float) -> av.VideoCodecContext:
        bps = self.bitrate_kbps * 1000
        encoder = av.CodecContext.create("libvpx", "w")
        encoder.width, encoder.height, encoder.pix_fmt = self.width, self.height, "yuv420p"
        encoder.time_base = Fraction(1, self.fps)
        encoder.framerate = Fraction(self.fps)
        encoder.bit_rate = bps
        encoder.gop_size = max(1, round(keyframe_interval_s * self.fps))
        encoder.qmin, encoder.qmax = 2, 56
        # the realtime CBR settings aiortc's own VP8 encoder uses
        encoder.options = {
            "bufsize": str(bps), "minrate": str(bps), "maxrate": str(bps), "cpu-used": "-6", "deadline": "realtime",
            "lag-in-frames": "0", "noise-sensitivity": "4", "overshoot-pct": "15", "partitions": "0",
            "static-thresh": "1", "undershoot-pct": "100",
        }  # fmt: skip
        return encoder

    def track(self) -> PacketTrack:
        track = PacketTrack("video", self.broadcast, on_keyframe_request=self.request_keyframe)
        self.request_keyframe()  # a new reader starts decoding at the next keyframe
        return track

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    async def tick(self, index: int) -> None:
        packet = await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, index)
        if packet is not None:
            self.broadcast.push(packet, packet.is_keyframe)

    def _encode(self, index: int) -> av.Packet | None:
        frame = next(self._frames)
        frame.pts, frame.time_base = index, self._encoder.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame as intra
        if self._keyframe_wanted and index - self._last_keyframe >= self._min_keyframe_gap:
            frame.pict_type = av.video.frame.PictureType.I
            self._keyframe_wanted = False
        packets = self._encoder.encode(frame)
        if not packets:
            return None
        packet = packets[0]
        packet.pts, packet.time_base = index, self._encoder.time_base
        if packet.is_keyframe:
            self._last_keyframe = index
        self.frames_encoded += 1
        self.bytes_encoded += packet.size
        return packet

    async def stop(self) -> None:
        await super().stop()
        self._executor.shutdown(wait=True)
        self._container.close()


class AudioPattern(_Pacer):
    RATE = 48000
    FRAME = 960  # 20 ms
    MUTED_EVERY = 20  # a muted track sends one silent frame in 20 (every 400 ms)

    def __init__(self, *, tone_hz: float = 440.0, level: float = 0.03) -> None:
        super().__init__(self.RATE / self.FRAME, "audio-pattern")
        tone = array("h", (round(32767 * level * math.sin(2 * math.pi * tone_hz * i / self.RATE)) for i in range(self.RATE)))
        self._tone = _encode_opus(tone, seconds=1)
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
    encoder.sample_rate, encoder.layout, encoder.format = AudioPattern.RATE, "mono", "s16"
    encoder.bit_rate = 24000
    encoder.time_base = Fraction(1, AudioPattern.RATE)
    encoder.options = {"application": "voip", "frame_duration": "20"}
    frames_per_pass = seconds * AudioPattern.RATE // AudioPattern.FRAME
    out: list[bytes] = []
    raw = samples.tobytes()
    step = 2 * AudioPattern.FRAME
    for n in range(2 * frames_per_pass):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AudioPattern.FRAME)
        offset = (n % frames_per_pass) * step
        frame.planes[0].update(raw[offset : offset + step])
        frame.sample_rate, frame.pts, frame.time_base = AudioPattern.RATE, n * AudioPattern.FRAME, encoder.time_base
        out.extend(bytes(p) for p in encoder.encode(frame))
    return out[-frames_per_pass:]
