"""Transport-wide congestion control's wire format, shared by the node (which reads feedback) and the client (which writes it).

draft-holmer-rmcat-transport-wide-cc-extensions-01: every RTP packet a sender
sends carries a transport-wide sequence number (one per peer connection,
shared by its audio and video) in a one-byte header extension (RFC 8285,
``TWCC_URI``); the receiver reports, per packet, whether and when it arrived
(RTCP RTPFB, PT 205, FMT 15): ``build_feedback`` writes such a packet as
libwebrtc does, ``parse_feedback`` reads one, ``split_compound`` takes them
out of a compound RTCP datagram.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["DELTA_UNIT_S", "FMT_TWCC", "RTPFB", "TWCC_URI", "Feedback", "build_feedback", "parse_feedback", "split_compound"]

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTPFB = 205
FMT_TWCC = 15
DELTA_UNIT_S = 250e-6  # receive deltas count 250 µs
_REFERENCE_UNIT = 0.064  # the reference time counts 64 ms


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
        t += delta * DELTA_UNIT_S
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
        ticks = round((arrival - t) / DELTA_UNIT_S)
        t += ticks * DELTA_UNIT_S
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
