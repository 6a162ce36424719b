"""Recording a room's program into one WebM file, as encoded: no decode, no re-encode.

The recorder taps two packet streams of the room (``PacketStream.taps``): the
best video tier in use (the tier encoders' VP8) and the program audio (the
speakers' Opus, made continuous across floor changes). A tap only queues the
packet; a writer thread reassembles VP8 frames from the RTP payloads and muxes
them and the Opus packets with PyAV (``add_mux_stream``: no codec is opened).
Both streams are put on one clock: each stream's RTP time from its first
packet, anchored at the moment that packet arrived.

The tier followed can change (a better one comes into use, the one followed
is retired): the recorder moves to it at its next keyframe; all tiers share
one timestamp base, so the file's times stay continuous. Who holds the
program is noted each tick as a list of floor changes, written next to the
file (``<file>.json``). The room opens at warm-up, before the meeting: the
recorder takes nothing before the start it is given (``delay_s``), then asks
for a keyframe so that the file begins with the meeting. A write that fails (a full disk) stops the recording
for good with ``state`` "failed" and the reason; the meeting goes on.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from .packet_stream import PacketStream
from .transport_cc import HEADER_BYTES
from .vp8 import depacketize, keyframe_size

__all__ = ["Recorder"]

logger = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
TIME_BASE = Fraction(1, 1000)  # Matroska's millisecond
MAX_QUEUE = 4096  # packets waiting for the writer (a few seconds): beyond, the recording is behind and fails
# the Opus identification header Matroska keeps as the track's codec private data (RFC 7845 section 5.1)
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + (312).to_bytes(2, "little") + AUDIO_CLOCK.to_bytes(4, "little") + b"\x00\x00\x00"


class _Clock:
    """One RTP stream's times in milliseconds of the recording: unwrapped, anchored at its first packet's arrival."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.first: int | None = None
        self.last = 0
        self.unwrapped = 0
        self.anchor_ms = 0.0

    def ms(self, ts: int, arrival_ms: float) -> int:
        if self.first is None:
            self.first, self.last, self.anchor_ms = ts, ts, arrival_ms
        delta = (ts - self.last) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 1 << 32
        self.unwrapped += delta
        self.last = ts
        return int(self.anchor_ms + self.unwrapped * 1000 / self.rate)


class Recorder:
    def __init__(
        self, path: Path, tier_order: tuple[str, ...], *, clock: Callable[[], float] = time.monotonic, delay_s: float = 0.0
    ) -> None:
        self.path = path
        self.tier_order = tier_order  # video tier names, best first
        self._clock = clock
        self.started = clock() + max(0.0, delay_s)  # the meeting's start: nothing before it is recorded
        self._begun = delay_s <= 0
        self.state = "recording"
        self.reason = ""
        self.cpu_s = 0.0  # the writer thread's CPU time, once closed (docs/recordings.md: the cost per meeting)
        self.packets = 0
        self.frames = 0  # pictures written
        self.gaps = 0  # pictures left out: a packet missing or out of order (then the next keyframe is awaited)
        self.dropped = 0  # packets the writer could not take (its queue full)
        self.duration_s = 0.0  # of the file written so far, from its first picture
        self.floor: list[dict] = []
        self.tier: str | None = None
        self._program: str | None = None
        self._video: PacketStream | None = None
        self._source: Any = None  # the tier source followed, to ask it for keyframes
        self._audio: PacketStream | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._queued = 0
        self._thread = threading.Thread(target=self._write, name=f"recorder-{path.name}", daemon=True)
        self._thread.start()

    @property
    def bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    # the taps (event loop, the packet path: queue and return) -------------------

    def _tap_video(self, packet: bytes, seq: int, ts: int, marker: bool, keyframe: bool) -> None:
        self._put(("v", packet, seq, ts, marker))

    def _tap_audio(self, packet: bytes, seq: int, ts: int, marker: bool, keyframe: bool) -> None:
        self._put(("a", packet, seq, ts, marker))

    def _put(self, item: tuple) -> None:
        at_ms = (self._clock() - self.started) * 1000
        if at_ms < 0:
            return  # before the start
        if self._queued >= MAX_QUEUE:
            self.dropped += 1  # the writer is stuck (a slow or full disk): it fails the recording itself
            return
        self._queued += 1
        self._queue.put((*item, at_ms))

    # following the room (event loop, once a tick) -------------------------------------

    def follow(self, room: Any) -> None:
        """Tap the program audio and the best video tier the room now encodes; note who holds the program."""
        if self.state != "recording":
            self.detach()
            return
        if self._audio is None:
            self._audio = room.audio
            room.audio.taps.append(self._tap_audio)
        in_use = room.tiers.sources
        best = next((name for name in self.tier_order if name in in_use), None)
        if best is not None and best != self.tier:
            source = in_use[best]
            if self._video is not None and self._tap_video in self._video.taps:
                self._video.taps.remove(self._tap_video)
            self._video, self.tier, self._source = source.stream, best, source
            source.stream.taps.append(self._tap_video)
            self._put(("switch", b"", 0, 0, False))
            source.request_keyframe()
        if not self._begun and self._clock() >= self.started:
            self._begun = True
            if self._source is not None:
                self._source.request_keyframe()  # the file starts with a picture at the start, not at the next periodic keyframe
        program = room.program_identity
        if program != self._program:
            self._program = program
            self.floor.append({"at_s": max(0.0, round(self._clock() - self.started, 1)), "program": program, "floor": room.floor})

    def detach(self) -> None:
        for stream, tap in ((self._video, self._tap_video), (self._audio, self._tap_audio)):
            if stream is not None and tap in stream.taps:
                stream.taps.remove(tap)
        self._video = self._audio = None

    def close(self) -> None:
        """Stop taking packets, finish the file and its floor list (blocking: run it in a thread)."""
        self.detach()
        self._queue.put(None)
        self._thread.join()
        if self.state == "recording":
            self.state = "done"
        try:
            sidecar = {"file": self.path.name, "tier": self.tier, "floor": self.floor, "state": self.state, "reason": self.reason,
                       "writer_cpu_s": round(self.cpu_s, 3), "packets": self.packets, "duration_s": round(self.duration_s, 1),
                       "frames": self.frames, "gaps": self.gaps, "dropped": self.dropped}  # fmt: skip
            self.path.with_suffix(self.path.suffix + ".json").write_text(json.dumps(sidecar, ensure_ascii=False, indent=1))
        except OSError as exc:
            logger.warning("recording %s: floor list not written: %s", self.path, exc)

    # the writer thread ----------------------------------------------------------------

    def _write(self) -> None:
        container = None
        video_stream = audio_stream = None
        video_clock, audio_clock = _Clock(VIDEO_CLOCK), _Clock(AUDIO_CLOCK)
        parts: list[bytes] = []
        frame_ts: int | None = None
        expected_seq: int | None = None
        need_keyframe = True
        last_pts = {"v": -1, "a": -1}
        first_pts: int | None = None
        try:
            import av

            while True:
                item = self._queue.get()
                if item is None:
                    break
                self._queued -= 1
                if self.state != "recording":
                    continue
                kind, packet, seq, ts, marker, arrival_ms = item
                self.packets += 1
                if kind == "switch":
                    need_keyframe, parts = True, []
                    continue
                payload = packet[HEADER_BYTES:]  # past the header and its transport-cc extension
                if kind == "a":
                    if container is None:
                        continue  # the file starts with the first picture
                    self._mux(av, audio_stream, payload, audio_clock.ms(ts, arrival_ms), last_pts, "a", container, keyframe=True)
                    self.duration_s = (max(last_pts.values()) - first_pts) / 1000  # sound after the last picture counts too
                    continue
                starts, data = depacketize(payload)
                if starts:
                    parts, frame_ts, expected_seq = [data], ts, (seq + 1) & 0xFFFF
                elif parts and ts == frame_ts and seq == expected_seq:
                    parts.append(data)
                    expected_seq = (seq + 1) & 0xFFFF
                else:
                    if not need_keyframe:
                        self.gaps += 1
                    parts, need_keyframe = [], True  # a gap: wait for the next keyframe
                    continue
                if not marker:
                    continue
                frame, parts = b"".join(parts), []
                size = keyframe_size(frame)
                if need_keyframe and size is None:
                    continue
                need_keyframe = False
                if container is None:
                    container = av.open(str(self.path), "w", format="webm")
                    video_stream = container.add_mux_stream("vp8", width=size[0], height=size[1])
                    audio_stream = container.add_mux_stream("opus", rate=AUDIO_CLOCK)
                    _set_extradata(audio_stream, OPUS_HEAD)
                    for stream in (video_stream, audio_stream):
                        stream.time_base = TIME_BASE
                self._mux(av, video_stream, frame, video_clock.ms(ts, arrival_ms), last_pts, "v", container, keyframe=size is not None)
                self.frames += 1
                if first_pts is None:
                    first_pts = last_pts["v"]
                self.duration_s = (max(last_pts.values()) - first_pts) / 1000
            if container is not None:
                container.close()
            self.cpu_s = time.thread_time()
        except Exception as exc:  # a full disk, above all: the meeting goes on without its recording
            self.state, self.reason = "failed", _reason(exc)
            logger.error("recording %s stopped: %s", self.path, self.reason)
            if container is not None:
                try:
                    container.close()
                except Exception:
                    pass
            while self._queue.get() is not None:  # let the taps' items go until close()
                pass

    @staticmethod
    def _mux(av: Any, stream: Any, data: bytes, pts: int, last_pts: dict, kind: str, container: Any, *, keyframe: bool) -> None:
        pts = max(pts, last_pts[kind] + 1)  # strictly increasing, as the muxer requires
        last_pts[kind] = pts
        packet = av.Packet(data)
        packet.stream = stream
        packet.pts = packet.dts = pts
        packet.time_base = TIME_BASE
        packet.is_keyframe = keyframe
        container.mux(packet)


def _set_extradata(stream: Any, data: bytes) -> None:
    try:
        stream.codec_context.extradata = data
    except AttributeError:
        pass


def _reason(exc: Exception) -> str:
    text = str(exc)
    if getattr(exc, "errno", None) == 28 or "No space" in text:
        return "disk full"
    return text or type(exc).__name__
