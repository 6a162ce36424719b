"""Transport-wide congestion control: the sequence numbers we send, the feedback we get.

draft-holmer-rmcat-transport-wide-cc-extensions-01: every RTP packet the node
sends to a subscriber carries a transport-wide sequence number (one per peer
connection, shared by its audio and video) in a one-byte header extension
(RFC 8285); the receiver reports, per packet, whether and when it arrived
(RTCP RTPFB, PT 205, FMT 15).

The extension is reserved in the packet a ``PacketStream`` builds once
(``EXTENSION``: 8 bytes after the 12-byte header), and the forwarding loop
writes the subscriber's extension id and sequence number with the same
``pack_into`` that rewrites the header. A subscriber that did not negotiate
the extension gets the 4 bytes as RFC 8285 padding (zeros). ``SendHistory``
remembers each sequence number's send time and size in one flat buffer
(which the compiled fan-out, ``sfu.fanout``, writes in place), so the hot
loop creates no object per packet; feedback is parsed once per RTCP
packet (``parse_feedback``) and looked up there.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "EXTENSION_BYTES",
    "HEADER_BYTES",
    "TWCC_URI",
    "Feedback",
    "SendHistory",
    "build_feedback",
    "parse_feedback",
]

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTPFB = 205
FMT_TWCC = 15
# 0xBEDE, one 32-bit word: [id<<4 | (2 - 1)] [seq hi] [seq lo] [padding]
EXTENSION = struct.pack("!HHI", 0xBEDE, 1, 0)
EXTENSION_BYTES = len(EXTENSION)
HEADER_BYTES = 12 + EXTENSION_BYTES  # what precedes the payload of a stream packet
RING = 1 << 13  # sequence numbers remembered: seconds of packets at any tier
RING_BYTES = 10 * RING + 8  # times (double), sizes (uint16), next, ext, 4 spare bytes: sfu/_fanout.c's vcs_cc
_DELTA_UNIT = 250e-6  # receive deltas count 250 µs
_REFERENCE_UNIT = 0.064  # the reference time counts 64 ms


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


@dataclass(frozen=True)
class Feedback:
    """One transport-cc feedback packet: for each reported sequence number, its arrival (s, receiver clock) or None."""

    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    count: int  # the feedback packet count, 8 bits
    arrivals: list[float | None]

    def packets(self):
        for i, arrival in enumerate(self.arrivals):
            yield (self.base_seq + i) & 0xFFFF, arrival


def parse_feedback(data: bytes | memoryview, offset: int = 0) -> Feedback:
    """Parse one RTCP packet (header included) as transport-cc feedback; ValueError when malformed."""
    if len(data) - offset < 20:
        raise ValueError("transport-cc feedback too short")
    first, pt, words = struct.unpack_from("!BBH", data, offset)
    if first >> 6 != 2 or pt != RTPFB or first & 0x1F != FMT_TWCC:
        raise ValueError("not a transport-cc feedback packet")
    end = offset + 4 + 4 * words
    if end > len(data):
        raise ValueError("transport-cc feedback longer than its datagram")
    if first & 0x20:  # padding: the last byte counts it
        end -= data[end - 1]
    sender, media, base, status_count, ref_and_count = struct.unpack_from("!IIHHI", data, offset + 4)
    if status_count == 0:
        raise ValueError("transport-cc feedback without packets")
    reference = ref_and_count >> 8
    if reference & 0x800000:
        reference -= 1 << 24
    pos = offset + 20
    symbols = bytearray()
    while len(symbols) < status_count:
        if pos + 2 > end:
            raise ValueError("transport-cc feedback: status chunks cut short")
        (chunk,) = struct.unpack_from("!H", data, pos)
        pos += 2
        if not chunk & 0x8000:  # run length
            run = chunk & 0x1FFF
            if run == 0:
                raise ValueError("transport-cc feedback: empty run")
            symbols += bytes([(chunk >> 13) & 3]) * min(run, status_count - len(symbols))
        elif not chunk & 0x4000:  # 14 one-bit symbols
            symbols += bytes((chunk >> (13 - i)) & 1 for i in range(14))
        else:  # 7 two-bit symbols
            symbols += bytes((chunk >> (12 - 2 * i)) & 3 for i in range(7))
    del symbols[status_count:]
    arrivals: list[float | None] = []
    t = reference * _REFERENCE_UNIT
    for symbol in symbols:
        if symbol == 0:
            arrivals.append(None)
            continue
        if symbol == 1:
            if pos + 1 > end:
                raise ValueError("transport-cc feedback: receive deltas cut short")
            delta = data[pos]
            pos += 1
        elif symbol == 2:
            if pos + 2 > end:
                raise ValueError("transport-cc feedback: receive deltas cut short")
            (delta,) = struct.unpack_from("!h", data, pos)
            pos += 2
        else:
            raise ValueError("transport-cc feedback: reserved status symbol")
        t += delta * _DELTA_UNIT
        arrivals.append(t)
    return Feedback(sender, media, base, ref_and_count & 0xFF, arrivals)


def build_feedback(sender_ssrc: int, media_ssrc: int, base_seq: int, arrivals: list[float | None], *, count: int = 0) -> bytes:
    """A transport-cc feedback packet as libwebrtc writes one: two-bit status vectors, or runs when all alike."""
    first = next((a for a in arrivals if a is not None), 0.0)
    reference = int(first // _REFERENCE_UNIT)
    symbols = []
    deltas = b""
    t = reference * _REFERENCE_UNIT
    for arrival in arrivals:
        if arrival is None:
            symbols.append(0)
            continue
        ticks = round((arrival - t) / _DELTA_UNIT)
        t += ticks * _DELTA_UNIT
        if 0 <= ticks <= 255:
            symbols.append(1)
            deltas += bytes([ticks])
        else:
            symbols.append(2)
            deltas += struct.pack("!h", ticks)
    chunks = b""
    if len(set(symbols)) == 1:
        chunks = struct.pack("!H", symbols[0] << 13 | len(symbols))
    else:
        for i in range(0, len(symbols), 7):
            group = symbols[i : i + 7] + [0] * (7 - len(symbols[i : i + 7]))
            chunk = 0xC000
            for j, symbol in enumerate(group):
                chunk |= symbol << (12 - 2 * j)
            chunks += struct.pack("!H", chunk)
    body = struct.pack("!IIHHI", sender_ssrc, media_ssrc, base_seq, len(arrivals), (reference & 0xFFFFFF) << 8 | count)
    body += chunks + deltas
    pad = -len(body) % 4
    first_byte = 0x80 | FMT_TWCC
    if pad:
        first_byte |= 0x20
        body += bytes(pad - 1) + bytes([pad])
    return struct.pack("!BBH", first_byte, RTPFB, len(body) // 4) + body


def split_compound(data: bytes) -> tuple[list[Feedback], bytes, int]:
    """Take the transport-cc packets out of a compound RTCP datagram.

    Returns the parsed feedback, the other packets (for aiortc's parser) and
    how many transport-cc packets were malformed and dropped.
    """
    feedback: list[Feedback] = []
    rest = []
    bad = 0
    pos = 0
    n = len(data)
    while pos + 4 <= n:
        first, pt, words = struct.unpack_from("!BBH", data, pos)
        end = pos + 4 + 4 * words
        if pt == RTPFB and first & 0x1F == FMT_TWCC:
            try:
                feedback.append(parse_feedback(data[:end] if end <= n else data, pos))
            except ValueError:
                bad += 1
        else:
            rest.append(data[pos:end])
        pos = end
    return feedback, b"".join(rest), bad
