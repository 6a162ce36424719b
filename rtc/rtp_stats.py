"""Counting received RTP without decoding it: packets, bytes, loss, video frames and size.

`RtpCounter.add` runs once per received packet, so it does a few integer
operations and looks into the payload only for the first packet of a VP8
keyframe (whose header carries the picture size, RFC 6386 section 9.1).
`StatsWindow` turns two readings of the counters into the `stats` message's
`bitrate_kbps` and `loss_pct`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiortc.rtp import RtpPacket

__all__ = ["RtpCounter", "StatsWindow", "vp8_keyframe_size"]

_KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) when `payload` is the first RTP packet of a VP8 keyframe, else None."""
    n = len(payload)
    if n < 1:
        return None
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # not the start of partition 0
        return None
    pos = 1
    if first & 0x80:  # extended control bits
        if n < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # picture id, 7 or 15 bits
            if n <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # TL0PICIDX
            pos += 1
        if ext & 0x30:  # TID / KEYIDX
            pos += 1
    if n < pos + 10 or payload[pos] & 0x01 or payload[pos + 3 : pos + 6] != _KEYFRAME_START_CODE:
        return None
    width = int.from_bytes(payload[pos + 6 : pos + 8], "little") & 0x3FFF
    height = int.from_bytes(payload[pos + 8 : pos + 10], "little") & 0x3FFF
    return width, height


class RtpCounter:
    """What one receiver got: every packet and byte, and the media packets' sequence span per SSRC."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.packets = 0
        self.bytes = 0
        self.media_packets = 0  # excluding retransmissions
        self.frames = 0  # video: media packets with the marker bit, which ends a frame
        self.width: int | None = None
        self.height: int | None = None
        self.rtx_types: set[int] = set()
        self._spans: dict[int, list[int]] = {}  # ssrc => [first extended seq, highest extended seq]

    def add(self, packet: RtpPacket) -> None:
        self.packets += 1
        self.bytes += len(packet.payload) + 12
        if packet.payload_type in self.rtx_types:
            return
        self.media_packets += 1
        seq = packet.sequence_number
        span = self._spans.get(packet.ssrc)
        if span is None:
            self._spans[packet.ssrc] = [seq, seq]
        else:
            highest = span[1]
            delta = (seq - highest) & 0xFFFF
            if 0 < delta < 0x8000:  # newer, possibly across a wrap
                span[1] = highest + delta
        if self.kind != "video":
            return
        if packet.marker:
            self.frames += 1
        if packet.payload and packet.payload[0] & 0x10:
            size = vp8_keyframe_size(packet.payload)
            if size is not None:
                self.width, self.height = size

    @property
    def expected(self) -> int:
        return sum(high - low + 1 for low, high in self._spans.values())

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.media_packets)


@dataclass(frozen=True)
class _Reading:
    at: float
    bytes: int
    expected: int
    received: int


class StatsWindow:
    """Bitrate and loss between the previous call of `sample` and this one."""

    def __init__(self) -> None:
        self._last: _Reading | None = None

    def sample(self, counters: Iterable[RtpCounter], at: float) -> tuple[float, float]:
        """(kbps, loss %) of what `counters` received since the last sample; zeros the first time."""
        counters = list(counters)
        reading = _Reading(at, sum(c.bytes for c in counters), sum(c.expected for c in counters), sum(c.media_packets for c in counters))
        last, self._last = self._last, reading
        if last is None or reading.at <= last.at:
            return 0.0, 0.0
        expected = reading.expected - last.expected
        lost = expected - (reading.received - last.received)
        loss_pct = 100.0 * lost / expected if expected > 0 and lost > 0 else 0.0
        return self._kbps(last, reading), round(loss_pct, 2)

    def sample_bytes(self, total_bytes: int, at: float) -> float:
        """kbps of a byte counter (what a publisher sent) since the last sample."""
        reading = _Reading(at, total_bytes, 0, 0)
        last, self._last = self._last, reading
        return 0.0 if last is None or reading.at <= last.at else self._kbps(last, reading)

    @staticmethod
    def _kbps(last: _Reading, reading: _Reading) -> float:
        return round((reading.bytes - last.bytes) * 8 / (reading.at - last.at) / 1000, 1)
