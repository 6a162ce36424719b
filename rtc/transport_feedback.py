"""The receiving side of transport-wide congestion control: when each packet arrived, told to the sender.

A WHEP subscriber that offers the transport-cc extension (``rtc.transport_cc``)
gets every packet numbered in one sequence for the whole transport. The
``ArrivalLog`` reads that number from each datagram as the socket yields it,
before SRTP (which leaves header extensions in clear), and keeps its arrival
time (the kernel's, ``rtc.udp_reader``) in a flat ring indexed by sequence
number: no object per packet. ``send_feedback`` writes, about every
``FEEDBACK_INTERVAL_S`` as libwebrtc does, one feedback packet on every
packet since the last, those never received reported lost, and sends it as
SRTCP on the session's transport. The node's estimator then fits the
subscriber's downlink from these arrivals (``sfu.bandwidth_estimator``).

Sequence numbers are unwrapped (65535 is followed by 65536, sent as 0); a
packet that comes after its number was reported is left out (it was
reported lost: the sender already judged it). Datagrams without the
extension, RTCP, and malformed extensions are skipped. A lone number far
ahead of the others (``AHEAD_LIMIT``: a corrupt or forged datagram) is
skipped too; two in a row start the log afresh there (the link was down).
"""

from __future__ import annotations

import asyncio
import contextlib
from array import array
from typing import Any

from rtc.aiortc_adapter import send_rtcp_packet
from rtc.transport_cc import DELTA_UNIT_S, build_feedback

__all__ = ["FEEDBACK_INTERVAL_S", "ArrivalLog", "is_rtp", "send_feedback", "transport_sequence"]

FEEDBACK_INTERVAL_S = 0.1  # libwebrtc's default; each one costs the node a parse
RING = 1 << 12  # arrivals kept between two feedback packets: seconds of media at any tier
AHEAD_LIMIT = 1 << 10  # a packet further ahead than this is believed only when the next one follows it
MAX_STATUSES = 256  # packets one feedback packet reports (about 500 bytes at most)
MAX_DELTA_S = 0x7FFF * DELTA_UNIT_S  # the largest receive delta a feedback packet can carry
_ZEROS = array("d", bytes(8 * RING))


def is_rtp(data: bytes) -> bool:
    """An RTP (or SRTP) datagram: version 2 and not an RTCP packet type (RFC 5761)."""
    return len(data) >= 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223


def transport_sequence(data: bytes, element: int) -> int:
    """The transport-wide sequence number of an RTP datagram, -1 without one.

    ``element`` is the extension element's first byte, ``id << 4 | 1`` (two
    bytes of data). Only one-byte-header extensions (RFC 8285) are read; the
    node writes the element first, so the loop usually stops at once.
    """
    n = len(data)
    first = data[0] if n else 0
    if first & 0xD0 != 0x90 or n < 20 or 192 <= data[1] <= 223:  # not RTP version 2 with an extension
        return -1
    pos = 12 + 4 * (first & 0x0F)  # past the CSRCs
    if pos + 4 > n or data[pos] != 0xBE or data[pos + 1] != 0xDE:
        return -1
    end = pos + 4 + 4 * (data[pos + 2] << 8 | data[pos + 3])
    if end > n:
        return -1
    pos += 4
    while pos < end:
        byte = data[pos]
        if byte == element:
            return data[pos + 1] << 8 | data[pos + 2] if pos + 3 <= end else -1
        if byte == 0:  # padding
            pos += 1
        elif byte >> 4 == 15:  # id 15: the rest is not to be read
            return -1
        else:
            pos += 2 + (byte & 0x0F)
    return -1


class ArrivalLog:
    """Each arriving packet's transport-wide sequence number and arrival time, until reported.

    Arrival times are wall-clock seconds (what the kernel stamps), greater
    than zero; feedback counts them from the first packet's, so the 24-bit
    reference time of the wire format does not wrap for days.
    """

    __slots__ = ("_element", "_epoch", "_far", "_far_at", "_high", "_next", "_times", "count", "media_ssrc", "sender_ssrc")

    def __init__(self, ext_id: int, sender_ssrc: int) -> None:
        self._element = ext_id << 4 | 1
        self._times = array("d", _ZEROS)  # by sequence number modulo RING; 0.0: not arrived
        self._high = -1  # the highest (unwrapped) sequence number recorded; -1: none yet
        self._next = 0  # the first not yet reported
        self._epoch = 0.0
        self._far = -1  # the last sequence number skipped for being far ahead, and its arrival
        self._far_at = 0.0
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = 0
        self.count = 0  # feedback packets written (the wire's 8-bit count)

    def record(self, data: bytes, arrival: float) -> None:
        """Note ``data``'s arrival, if it is an RTP packet with the extension (the datagram handler: never raises)."""
        seq = transport_sequence(data, self._element)
        if seq < 0:
            return
        high = self._high
        if high < 0:  # the first packet: numbers and times count from here
            self._high = self._next = seq
            self._epoch = arrival
            self._times[seq & (RING - 1)] = arrival
            self.media_ssrc = int.from_bytes(data[8:12], "big")
            return
        unwrapped = high + ((seq - high + 0x8000) & 0xFFFF) - 0x8000
        if unwrapped - high > AHEAD_LIMIT:
            far, far_at = self._far, self._far_at
            self._far, self._far_at = seq, arrival
            if far < 0 or seq != (far + 1) & 0xFFFF:
                return
            # two in a row: the stream jumped there; what was not reported yet is forgotten
            self._far = -1
            self._times[:] = _ZEROS
            high = self._next = unwrapped - 1
            self._times[high & (RING - 1)] = far_at
        elif unwrapped < self._next:
            return  # already reported lost
        if unwrapped > high:
            self._high = unwrapped
        self._times[unwrapped & (RING - 1)] = arrival

    def feedback(self) -> list[bytes]:
        """Feedback packets on every packet since the last call (none when nothing arrived); what they report is forgotten."""
        high, start = self._high, self._next
        if high < start:
            return []
        start = max(start, high - RING + 1)  # numbers whose slots were taken again: not reported
        times, epoch, mask = self._times, self._epoch, RING - 1
        packets: list[bytes] = []
        arrivals: list[float | None] = []
        base = start
        last: float | None = None
        for seq in range(start, high + 1):
            index = seq & mask
            at = times[index]
            times[index] = 0.0
            arrival = at - epoch if at else None
            too_far = arrival is not None and last is not None and abs(arrival - last) > MAX_DELTA_S
            if arrivals and (len(arrivals) >= MAX_STATUSES or too_far):
                packets.append(self._build(base, arrivals))
                base, arrivals, last = seq, [], None
            arrivals.append(arrival)
            if arrival is not None:
                last = arrival
        packets.append(self._build(base, arrivals))
        self._next = high + 1
        return packets

    def _build(self, base: int, arrivals: list[float | None]) -> bytes:
        packet = build_feedback(self.sender_ssrc, self.media_ssrc, base & 0xFFFF, arrivals, count=self.count)
        self.count = (self.count + 1) & 0xFF
        return packet


async def send_feedback(arrivals: ArrivalLog, dtls: Any, interval: float = FEEDBACK_INTERVAL_S) -> None:
    """Send ``arrivals``' feedback on ``dtls`` (an ``RTCDtlsTransport``) every ``interval`` until cancelled."""
    while True:
        await asyncio.sleep(interval)  # the receiver's cadence, as libwebrtc's
        for packet in arrivals.feedback():
            with contextlib.suppress(ConnectionError):  # not connected yet, or closing: nothing to tell
                await send_rtcp_packet(dtls, packet)
