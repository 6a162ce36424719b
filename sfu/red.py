"""RED (RFC 2198) for the program audio on long links.

Above ``red_rtt_ms`` a retransmission arrives too late to be played, so a
receiver that offered RED gets each Opus packet together with the previous
one: a single lost packet is rebuilt from the next. The RED packets are
built once per packet for all such receivers (``RedEncoder`` feeds a second
``PacketStream`` of the room, its sequence numbers and timestamps those of
the plain audio stream, so a downtrack moves between the two at any packet).
The Opus payload type is written inside each RED block header, so there is
one RED stream per Opus payload type in use (Chromium's is 111).
"""

from __future__ import annotations

import struct

from .packet_stream import make_packet

__all__ = ["MAX_OFFSET", "RedEncoder", "red_payload"]

MAX_OFFSET = (1 << 14) - 1  # a redundant block's timestamp offset has 14 bits
MAX_BLOCK = (1 << 10) - 1  # and its length 10


def red_payload(opus_pt: int, primary: bytes, previous: tuple[int, bytes] | None) -> bytes:
    """A RED payload: the previous block (timestamp offset, payload) when it fits, then the primary."""
    if previous is not None:
        offset, data = previous
        if 0 < offset <= MAX_OFFSET and len(data) <= MAX_BLOCK:
            header = struct.pack("!BHB", 0x80 | opus_pt, (offset << 2) | (len(data) >> 8), len(data) & 0xFF)
            return header + bytes([opus_pt]) + data + primary
    return bytes([opus_pt]) + primary


class RedEncoder:
    """Turns the program's Opus packets into RED packets for one Opus payload type."""

    def __init__(self, opus_pt: int) -> None:
        self.opus_pt = opus_pt
        self._previous: tuple[int, bytes] | None = None  # (timestamp, payload) of the last packet

    def packet(self, payload: bytes, seq: int, ts: int, marker: bool) -> bytes:
        previous = None
        if self._previous is not None:
            previous = ((ts - self._previous[0]) & 0xFFFFFFFF, self._previous[1])
        self._previous = (ts, payload)
        return make_packet(red_payload(self.opus_pt, payload, previous), seq, ts, marker)
