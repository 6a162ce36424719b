"""A tier's video sent twice, for long lossy links.

Above ``red_rtt_ms`` a NACK's repair arrives a round trip late, after the
frame was due, so a lost packet stalls the picture until the next keyframe
or repair. When the allocator protects a subscriber (``TierAllocation.protected``),
the room feeds it from the tier's ``RepeatedTier``: a second ``PacketStream``
(``repeat=True``) fed by a tap on the tier's stream, which sends each packet
as it comes and the whole frame again ``SPACING_S`` later, under the same
sequence numbers. A repetition code: one copy of each packet has to arrive,
and the receiver's SRTP replay check drops the other. Nothing waits for a
round trip.

The variant is built once per tier for every protected subscriber, and it is
numbered as the tier: a downtrack's position, its NACKs (served from the same
packets) and the tier's history stay valid across a switch between the two.
Keyframe requests go to the tier's source. While anyone receives the
variant it counts as a receiver of the tier (``PacketStream.variants``), so
the tier is not retired under it. Each copy's transport-wide number is noted
beside its first copy's (``SendHistory.note_copy``): the receiver drops the
second copy to arrive before its transport-cc feedback is written, and the
estimator must not read that as the link losing half the video.
"""

from __future__ import annotations

import asyncio

from .packet_stream import PacketStream
from .transport_cc import SendHistory

__all__ = ["MAX_FRAME_PACKETS", "SPACING_S", "RepeatedTier"]

SPACING_S = 0.010  # the second copy of a frame follows this long after the first: loss bursts up to that long cost nothing
MAX_FRAME_PACKETS = 256  # a frame whose last packet never came is repeated up to here and forgotten


class RepeatedTier:
    """The variant of one tier's stream that sends each packet twice."""

    def __init__(self, tier_stream: PacketStream, request_keyframe) -> None:  # type: ignore[no-untyped-def]
        self.tier_stream = tier_stream
        self.stream = PacketStream(
            tier_stream.kind,
            f"{tier_stream.name}/repeat",
            clock_rate=tier_stream.clock_rate,
            request_keyframe=request_keyframe,
            repeat=True,
        )
        # continue the tier's numbering: whoever switches between the two keeps its place
        self.stream.last_seq, self.stream.last_ts = tier_stream.last_seq, tier_stream.last_ts
        # the frame so far: each packet and, per subscriber, the transport-wide number its first copy went with
        self._frame: list[tuple[bytes, int, int, bool, list[tuple[SendHistory, int]]]] = []
        self.repeated = 0  # packets sent a second time (per packet, not per subscriber)
        tier_stream.taps.append(self._tap)
        tier_stream.variants.append(self.stream)

    def _tap(self, packet: bytes, seq: int, ts: int, marker: bool, keyframe: bool) -> None:
        """Every packet of the tier: on to the variant's subscribers now, and the frame again soon."""
        stream = self.stream
        before = [(dt.cc, dt.cc.next) for dt in stream.subscribers]  # a keyframe promotes the pending
        stream.push(packet, seq, ts, marker, keyframe)
        if not stream.downtracks:
            self._frame.clear()
            return
        self._frame.append((packet, seq, ts, marker, [(cc, tw) for cc, tw in before if cc.next != tw]))
        if marker or len(self._frame) >= MAX_FRAME_PACKETS:
            frame, self._frame = self._frame, []
            try:
                asyncio.get_running_loop().call_later(SPACING_S, self._again, frame)
            except RuntimeError:  # no loop (a synchronous caller): right away is the best left
                self._again(frame)

    def _again(self, frame: list[tuple[bytes, int, int, bool, list[tuple[SendHistory, int]]]]) -> None:
        stream = self.stream
        if stream.closed or not stream.downtracks:
            return
        # the copies are old packets: the stream's position stays at the newest (sender reports, joins)
        position = stream.last_seq, stream.last_ts, stream.last_time
        for packet, seq, ts, marker, firsts in frame:
            before = [(dt.cc, dt.cc.next) for dt in stream.downtracks]
            stream.push(packet, seq, ts, marker, False)
            for cc, first in firsts:  # tell transport-cc feedback which packet this one copies
                for same, tw in before:
                    if same is cc and cc.next != tw:
                        cc.note_copy(tw, first)
        stream.last_seq, stream.last_ts, stream.last_time = position
        self.repeated += len(frame)

    @property
    def idle(self) -> bool:
        return not len(self.stream)

    def close(self) -> None:
        """Stop taking the tier's packets and let every subscriber go."""
        if self._tap in self.tier_stream.taps:
            self.tier_stream.taps.remove(self._tap)
        if self.stream in self.tier_stream.variants:
            self.tier_stream.variants.remove(self.stream)
        self.stream.close()
        self._frame.clear()
