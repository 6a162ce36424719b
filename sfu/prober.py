"""Probing a subscriber's link before a step up.

A probe adds padding to what the subscriber already receives, up to the next
tier's cost, for a short window (``PROBE_S``). The padding goes as RTX
packets carrying only RTP padding (as libwebrtc pads): they take the
transport-wide sequence number like any packet, every receiver drops them
after counting them (receiver reports cover the RTX stream too), and the
media's sequence numbers are untouched. ``ProbeMeasure`` sums what the
transport-cc feedback says of the packets sent in the window: the rate that
got through and the loss.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable

from .downtrack import DownTrack
from .transport_cc import EXTENSION

__all__ = ["PROBE_S", "SCOUT_S", "ProbeMeasure", "send_padding"]

PROBE_S = 0.8
# a scout (``allocator.Probe.scout``): at a step's cost for this long, a narrow link queues the excess
# (a 1 Mbps link with 200 ms of queue holds a scout for 720p) instead of losing it
SCOUT_S = 0.08
TICK_S = 0.01
PADDING = 255  # the most one RTP packet's padding can say
_HEADER = struct.Struct("!BBHII")
_PAYLOAD = bytes(PADDING - 1) + bytes([PADDING])


async def send_padding(
    dt: DownTrack,
    extra_bps: float,
    duration: float,
    *,
    wanted: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Send ``extra_bps`` of padding on ``dt``'s RTX stream for ``duration`` seconds
    (stopping early when no longer ``wanted``); returns bytes sent."""
    if dt.rtx_pt is None or extra_bps <= 0:
        return 0
    start = clock()
    sent = 0
    size = _HEADER.size + len(EXTENSION) + PADDING
    while True:
        now = clock()
        elapsed = now - start
        if elapsed >= duration or not dt.active or not wanted():
            return sent
        due = extra_bps / 8 * elapsed
        while sent < due:
            packet = _HEADER.pack(0xB0, dt.rtx_pt, dt.rtx_seq, dt.rtp_timestamp_now(now), dt.rtx_ssrc) + EXTENSION + _PAYLOAD
            dt.rtx_seq = (dt.rtx_seq + 1) & 0xFFFF
            if not dt.send_rtp(packet):
                return sent
            sent += size
        await asyncio.sleep(TICK_S)


class ProbeMeasure:
    """What the transport-cc feedback reports of the packets sent in ``[start, end]``."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.min_span = min(0.1, 0.5 * (end - start))  # rates over shorter spans than this say nothing
        self.reported = 0
        self.lost = 0
        self.sent_bytes = 0
        self.received_bytes = 0
        self.first_sent: float | None = None
        self.last_sent: float | None = None
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.newest_reported = float("-inf")  # send time of the newest packet feedback covered

    def add(self, sent: float, size: int, arrival: float | None) -> None:
        self.newest_reported = max(self.newest_reported, sent)
        if not self.start <= sent <= self.end:
            return
        self.reported += 1
        self.sent_bytes += size
        self.first_sent = sent if self.first_sent is None else min(self.first_sent, sent)
        self.last_sent = sent if self.last_sent is None else max(self.last_sent, sent)
        if arrival is None:
            self.lost += 1
            return
        self.received_bytes += size
        self.first_arrival = arrival if self.first_arrival is None else min(self.first_arrival, arrival)
        self.last_arrival = arrival if self.last_arrival is None else max(self.last_arrival, arrival)

    @property
    def complete(self) -> bool:
        return self.newest_reported >= self.end

    @property
    def loss(self) -> float:
        return self.lost / self.reported if self.reported else 1.0

    @property
    def sent_bps(self) -> float:
        span = (self.last_sent or 0) - (self.first_sent or 0)
        return self.sent_bytes * 8 / span if span > self.min_span else 0.0

    @property
    def delivered_bps(self) -> float:
        """The rate at which the window's packets arrived."""
        span = (self.last_arrival or 0) - (self.first_arrival or 0)
        sent_span = (self.last_sent or 0) - (self.first_sent or 0)
        # a queue that let a burst through at once still delivers no faster than it was sent
        span = max(span, sent_span)
        return self.received_bytes * 8 / span if span > self.min_span else 0.0

    def carried(self, target_bps: float, max_loss: float) -> bool:
        """Did the link carry (nearly) ``target_bps`` without loss?"""
        return self.sent_bps >= 0.8 * target_bps and self.delivered_bps >= 0.9 * self.sent_bps and self.loss <= max_loss
