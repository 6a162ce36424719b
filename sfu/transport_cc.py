"""Transport-wide congestion control on the node: the sequence numbers it sends and when.

Every RTP packet the node sends to a subscriber carries a transport-wide
sequence number (one per peer connection, shared by its audio and video); the
receiver reports, per packet, whether and when it arrived. The wire format
(extension URI, feedback parse and build) is ``rtc.transport_cc``'s, shared
with the project's own receiver, which writes that feedback.

The extension is reserved in the packet a ``PacketStream`` builds once
(``EXTENSION``: 8 bytes after the 12-byte header), and the forwarding loop
writes the subscriber's extension id and sequence number with the same
``pack_into`` that rewrites the header. A subscriber that did not negotiate
the extension gets the 4 bytes as RFC 8285 padding (zeros). ``SendHistory``
remembers each sequence number's send time and size in one flat buffer
(which the compiled fan-out, ``sfu.fanout``, writes in place), so the hot
loop creates no object per packet; feedback is parsed once per RTCP
packet (``rtc.transport_cc.parse_feedback``) and looked up there.
"""

from __future__ import annotations

import struct

__all__ = ["EXTENSION", "EXTENSION_BYTES", "HEADER_BYTES", "RING", "RING_BYTES", "SendHistory"]

# 0xBEDE, one 32-bit word: [id<<4 | (2 - 1)] [seq hi] [seq lo] [padding]
EXTENSION = struct.pack("!HHI", 0xBEDE, 1, 0)
EXTENSION_BYTES = len(EXTENSION)
HEADER_BYTES = 12 + EXTENSION_BYTES  # what precedes the payload of a stream packet
RING = 1 << 13  # sequence numbers remembered: seconds of packets at any tier
RING_BYTES = 10 * RING + 8  # times (double), sizes (uint16), next, ext, 4 spare bytes: sfu/_fanout.c's vcs_cc


class SendHistory:
    """One peer connection's transport-wide sequence numbers: the next, and each one's send time and size.

    The ring is one flat buffer (``memory``) laid out as ``vcs_cc`` in
    ``sfu/_fanout.c``, so the compiled fan-out numbers packets and records
    them in place: send times (``times``), sizes (``sizes``), then the next
    sequence number and the extension's first byte (``head``).
    """

    __slots__ = ("copies", "head", "memory", "sizes", "times")

    def __init__(self, ext_id: int | None) -> None:
        self.memory = bytearray(RING_BYTES)
        view = memoryview(self.memory)
        self.times = view[: 8 * RING].cast("d")
        self.sizes = view[8 * RING : 10 * RING].cast("H")
        self.head = view[10 * RING : 10 * RING + 4].cast("H")  # [next, ext]
        self.next = 1
        self.enable(ext_id)
        # a repeated packet's second copy -> the first's (``sfu.video_repeat``): the receiver keeps one
        # copy and reports the other as never received, which is no loss of the link's
        self.copies: dict[int, int] = {}

    def note_copy(self, seq: int, original: int) -> None:
        """Packet ``seq`` was a second copy of packet ``original``."""
        copies = self.copies
        copies[seq] = original
        if len(copies) > RING:  # copies whose feedback never came
            del copies[next(iter(copies))]

    @property
    def next(self) -> int:
        return self.head[0]

    @next.setter
    def next(self, seq: int) -> None:
        self.head[0] = seq

    @property
    def ext(self) -> int:
        """The first byte of the extension element, 0 (padding) when not negotiated."""
        return self.head[1]

    @property
    def enabled(self) -> bool:
        return self.ext != 0

    def enable(self, ext_id: int | None) -> None:
        """Write the extension with this id (1-14), or as padding when None."""
        self.head[1] = (ext_id << 4 | 1) if ext_id and 1 <= ext_id <= 14 else 0

    def take(self, now: float, size: int) -> int:
        """The sequence number for a packet sent outside the hot loop (retransmissions, probes)."""
        head = self.head
        seq = head[0]
        head[0] = (seq + 1) & 0xFFFF
        index = seq & (RING - 1)
        self.times[index] = now
        self.sizes[index] = size
        return seq

    def lookup(self, seq: int) -> tuple[float, int] | None:
        """(send time, size) of ``seq``, or None when it is not one of the last ``RING`` sent."""
        if (self.next - 1 - seq) & 0xFFFF >= RING:
            return None
        index = seq & (RING - 1)
        sent = self.times[index]
        return (sent, self.sizes[index]) if sent else None
