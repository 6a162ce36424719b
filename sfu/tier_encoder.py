"""Encode once per tier: scale the program picture, encode VP8, packetize.

One ``TierEncoder`` per tier in use in a room. Each decoded program frame is
handed (on the event loop) to the tier's worker thread, which scales it to
the tier's size and encodes it (libvpx runs without the GIL); the encoded
frame comes back to the loop and is packetized once into the tier's
``PacketStream``: every subscriber of the tier receives those same packets.
The worker takes the next frame as soon as it is done, so a busy event loop
delays packets but never makes the encoder skip frames; only when the worker
itself falls ``QUEUE_DEPTH`` frames behind is the oldest waiting frame
dropped.

Keyframe requests (PLI/FIR from any subscriber of the tier, joins, switches)
are coalesced and rate-limited: at most one forced keyframe per
``keyframe_min_interval_s``; a request inside the interval is remembered and
served when it ends, so a storm costs one keyframe and a new subscriber waits
at most one interval.

Every frame's picture type is set explicitly: decoded frames (and lavfi
frames) may carry ``pict_type = I``, which libvpx obeys, and a stream of
keyframes is about twice the target bitrate.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import threading
import time
from fractions import Fraction

import av
from aiortc.codecs.vpx import Vp8Encoder
from av.video.reformatter import VideoReformatter

from vcs.tiers import TierSpec

from .packet_stream import PacketStream

__all__ = ["TierEncoder"]

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
QUEUE_DEPTH = 3
_TIME_BASE = Fraction(1, VIDEO_CLOCK)
_I = av.video.frame.PictureType.I
_NONE = av.video.frame.PictureType.NONE


class TierEncoder:
    def __init__(
        self,
        tier: TierSpec,
        room: str,
        *,
        frame_rate: int,
        keyframe_min_interval_s: float,
        keyframe_interval_s: float,
        speed: int,
        fanout: str = "compiled",
        clock=time.monotonic,
    ) -> None:
        self.tier = tier
        self.stream = PacketStream(
            "video",
            f"{room}/{tier.name}",
            clock_rate=VIDEO_CLOCK,
            request_keyframe=self.request_keyframe,
            fanout=fanout,
        )
        self._frame_rate = frame_rate
        self._kf_min = keyframe_min_interval_s
        self._gop = max(1, int(keyframe_interval_s * frame_rate))
        self._speed = speed
        self._clock = clock
        self._codec: av.CodecContext | None = None
        self._picture_id = random.randrange(0, 1 << 15)
        self._seq = random.randrange(0, 1 << 15)
        # frames waiting for the worker: (frame, ts, force keyframe)
        self._queue: collections.deque[tuple[av.VideoFrame, int, bool]] = collections.deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._want_keyframe = True
        self._last_forced = -1e9
        self.frames = 0
        self.dropped = 0
        self.forced_keyframes = 0
        self.keyframe_requests = 0
        self.bytes = 0
        self.encode_seconds = 0.0  # CPU time spent encoding
        self.closed = False

    # keyframes -----------------------------------------------------------

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._want_keyframe = True

    def _take_keyframe(self, now: float) -> bool:
        if self._want_keyframe and now - self._last_forced >= self._kf_min:
            self._want_keyframe = False
            self._last_forced = now
            self.forced_keyframes += 1
            return True
        return False

    # frames --------------------------------------------------------------------

    def submit(self, frame: av.VideoFrame, ts: int) -> None:
        """Offer a program frame (call on the event loop)."""
        if self.closed:
            return
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name=f"vp8-{self.stream.name}", daemon=True)
            self._thread.start()
        force = self._take_keyframe(self._clock())
        with self._wake:
            if len(self._queue) >= QUEUE_DEPTH:
                _, _, dropped_force = self._queue.popleft()
                force = force or dropped_force
                self.dropped += 1
            self._queue.append((frame, ts, force))
            self._wake.notify()

    def _run(self) -> None:
        """The worker thread: encode frames until closed."""
        assert self._loop is not None
        while True:
            with self._wake:
                while not self._queue and not self.closed:
                    self._wake.wait()
                if self.closed:
                    return
                frame, ts, force = self._queue.popleft()
            started = time.thread_time()
            try:
                payloads, keyframe = self._encode(frame, ts, force)
            except Exception:
                logger.exception("tier %s: encoding failed", self.tier.name)
                self._codec = None
                continue
            finally:
                self.encode_seconds += time.thread_time() - started
            if payloads:
                try:
                    self._loop.call_soon_threadsafe(self._emit, payloads, ts, keyframe)
                except RuntimeError:  # the loop is closed
                    return

    @functools.cached_property
    def _reformatter(self) -> VideoReformatter:
        return VideoReformatter()

    def _encode(self, frame: av.VideoFrame, ts: int, force: bool) -> tuple[list[bytes], bool]:
        tier = self.tier
        if frame.width != tier.width or frame.height != tier.height or frame.format.name != "yuv420p":
            # a new frame; at most one tier (the source's size) uses the
            # decoded frame itself, so no two workers write the same frame
            # our own reformatter: PyAV caches one per source frame, which the tiers'
            # threads would otherwise share (swscale contexts are not thread-safe)
            frame = self._reformatter.reformat(frame, width=tier.width, height=tier.height, format="yuv420p")
        frame.pts = ts
        frame.time_base = _TIME_BASE
        if self._codec is None:
            self._codec = self._open_codec()
            force = True
        frame.pict_type = _I if force else _NONE
        data = b""
        keyframe = False
        for packet in self._codec.encode(frame):
            data += bytes(packet)
            keyframe = keyframe or packet.is_keyframe
        if not data:
            return [], False
        payloads = Vp8Encoder._packetize(data, self._picture_id)
        self._picture_id = (self._picture_id + 1) & 0x7FFF
        return payloads, keyframe

    def _open_codec(self) -> av.CodecContext:
        bitrate = self.tier.video_kbps * 1000
        codec = av.CodecContext.create("libvpx", "w")
        codec.width = self.tier.width
        codec.height = self.tier.height
        codec.pix_fmt = "yuv420p"
        codec.time_base = _TIME_BASE
        codec.framerate = self._frame_rate
        codec.bit_rate = bitrate
        codec.gop_size = self._gop
        codec.qmin = 2
        codec.qmax = 56
        codec.thread_count = 2 if self.tier.width * self.tier.height > 640 * 480 else 1
        codec.options = {
            "bufsize": str(bitrate),
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "cpu-used": str(self._speed),
            "deadline": "realtime",
            "lag-in-frames": "0",
            "noise-sensitivity": "0",
            "overshoot-pct": "15",
            "undershoot-pct": "100",
            "partitions": "0",
            "static-thresh": "1",
            "error-resilient": "1",
        }
        return codec

    def _emit(self, payloads: list[bytes], ts: int, keyframe: bool) -> None:
        """On the loop: packetize the encoded frame into the tier's stream."""
        if self.closed:
            return
        self.frames += 1
        self.bytes += sum(len(p) for p in payloads)
        self._seq = self.stream.push_frame(payloads, self._seq, ts, keyframe)

    async def close(self) -> None:
        if self.closed:
            return
        with self._wake:
            self.closed = True
            self._queue.clear()
            self._wake.notify()
        self.stream.close()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        self._codec = None
