"""The fan-out path on its own: real SRTP, real UDP sockets on loopback.

A downtrack is wired the way the node wires it once DTLS is up (an SRTP
session and a connected socket), and a receiver unprotects what arrives, so
each test sees exactly the packets a subscriber would.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport, RTCRtpSender

from sfu.downtrack import DownTrack, udp_gso_supported
from sfu.packet_stream import PacketStream

from .srtp_sessions import PROTECTIONS, protect, session

PAYLOAD_SIZE = 1200  # what aiortc's VP8 packetizer produces for a large frame


class Receiver:
    """A subscriber's socket: unprotects and records (sequence, timestamp, marker)."""

    def __init__(self, protection: str = "aes-gcm") -> None:
        self.protection = protection
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(1.0)
        self.srtp = session(protection)
        self.senders: list[object] = []  # the sending sockets and SRTP sessions, kept alive

    def take(self, count: int) -> list[tuple[int, int, bool]]:
        got = []
        for _ in range(count):
            packet = self.srtp.unprotect(self.sock.recv(4096))
            _, second, seq, ts = struct.unpack_from("!BBHI", packet)
            got.append((seq, ts, bool(second & 0x80)))
        return got

    def nothing_more(self) -> bool:
        self.sock.settimeout(0.2)
        try:
            self.sock.recv(4096)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()
        for sender in self.senders:
            if isinstance(sender, socket.socket):
                sender.close()


def wired_downtrack(receiver: Receiver, *, gso: bool, rtx: tuple[int, int] | None = None) -> DownTrack:
    """A video downtrack sending to ``receiver`` on a connected socket, protected as the receiver expects;
    ``rtx``: its RTX payload type and SSRC."""
    # (aiortc's transports want an event loop: the tests using this are async)
    transport = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()])
    dt = DownTrack("video", RTCRtpSender("video", transport))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(receiver.sock.getsockname())
    dt.send = sock.send
    dt.sendmsg = sock.sendmsg if gso else None
    if rtx is not None:
        dt.rtx_pt, dt.rtx_ssrc = rtx
    receiver.senders += [sock, protect(dt, receiver.protection)]
    dt.pt = 96
    dt.active = True
    return dt


def frame(packets: int) -> list[bytes]:
    return [os.urandom(PAYLOAD_SIZE) for _ in range(packets)]


@pytest.fixture(params=PROTECTIONS)
def receiver(request):
    r = Receiver(request.param)
    yield r
    r.close()


@pytest.mark.parametrize("gso", [True, False])
@pytest.mark.parametrize("packets", [1, 20, 53, 64, 80])
async def test_a_frame_of_any_size_arrives_whole(receiver, gso, packets):
    if gso and not udp_gso_supported():
        pytest.skip("this kernel has no UDP GSO")
    stream = PacketStream("video", "t/720p", clock_rate=90000)
    dt = wired_downtrack(receiver, gso=gso)
    stream.attach(dt, at_keyframe=False)
    stream.push_frame(frame(packets), 1000, 90_000, keyframe=True)
    got = receiver.take(packets)
    first = got[0][0]
    assert [seq for seq, _, _ in got] == [(first + i) & 0xFFFF for i in range(packets)]
    assert [marker for _, _, marker in got] == [False] * (packets - 1) + [True]
    assert stream.send_errors == 0
    assert dt.packets_sent == packets


async def test_a_tier_switch_keeps_sequence_numbers_contiguous(receiver):
    high = PacketStream("video", "t/720p", clock_rate=90000)
    low = PacketStream("video", "t/360p", clock_rate=90000)
    dt = wired_downtrack(receiver, gso=udp_gso_supported())
    high.attach(dt, at_keyframe=False)
    other = Receiver(receiver.protection)  # someone already on the low tier
    low.attach(wired_downtrack(other, gso=udp_gso_supported()), at_keyframe=False)
    high_seq, low_seq, ts = 40_000, 7, 0

    def both_tiers(keyframe_on_low: bool) -> None:
        nonlocal high_seq, low_seq, ts
        ts += 3000
        high_seq = high.push_frame(frame(6), high_seq, ts, keyframe=False)
        low_seq = low.push_frame(frame(55 if keyframe_on_low else 2), low_seq, ts, keyframe=keyframe_on_low)

    both_tiers(False)
    low.attach(dt, at_keyframe=True)  # the switch waits for the low tier's keyframe
    both_tiers(False)
    assert dt.stream is high and dt.pending is low
    both_tiers(True)  # a keyframe of 55 packets: more than one GSO send
    both_tiers(False)
    got = receiver.take(3 * 6 + 55 + 2)  # high until the low keyframe, then low
    assert receiver.nothing_more()
    sequence = [seq for seq, _, _ in got]
    assert sequence == [(sequence[0] + i) & 0xFFFF for i in range(len(sequence))]
    timestamps = [ts for _, ts, _ in got]
    assert timestamps == sorted(timestamps)
    assert dt.stream is low and dt.pending is None and len(high) == 0
    assert len(other.take(3 * 2 + 55)) == 61 and other.nothing_more()
    other.close()


async def test_a_switch_called_off_before_the_keyframe_stays_put(receiver):
    high = PacketStream("video", "t/720p", clock_rate=90000)
    low = PacketStream("video", "t/360p", clock_rate=90000)
    dt = wired_downtrack(receiver, gso=False)
    high.attach(dt, at_keyframe=False)
    low.attach(dt, at_keyframe=True)
    high.attach(dt, at_keyframe=True)  # back up before the low tier's keyframe came
    assert dt.stream is high and dt.pending is None and len(low) == 0
    low.push_frame(frame(2), 0, 3000, keyframe=True)
    assert dt.stream is high
    high.push_frame(frame(3), 500, 3000, keyframe=False)
    assert len(receiver.take(3)) == 3 and receiver.nothing_more()


async def test_nacks_for_packets_of_the_previous_tier_are_served_after_a_switch(receiver):
    high = PacketStream("video", "t/720p", clock_rate=90000)
    low = PacketStream("video", "t/360p", clock_rate=90000)
    dt = wired_downtrack(receiver, gso=False, rtx=(97, 0x5157))  # as every subscriber negotiates
    high.attach(dt, at_keyframe=False)
    high_frame = frame(4)
    high.push_frame(high_frame, 100, 3000, keyframe=False)
    sent = [receiver.srtp.unprotect(receiver.sock.recv(4096)) for _ in range(4)]
    low.attach(dt, at_keyframe=True)
    low.push_frame(frame(2), 9, 6000, keyframe=True)  # the switch, congestion having destroyed high's last packets
    receiver.take(2)
    assert dt.stream is low
    lost = [struct.unpack_from("!H", p, 2)[0] for p in sent[2:]]
    assert low.retransmit(dt, lost) == 2
    for original, packet in zip(sent[2:], (receiver.srtp.unprotect(receiver.sock.recv(4096)) for _ in range(2))):
        assert packet[1] & 0x7F == 97 and struct.unpack_from("!I", packet, 8)[0] == 0x5157
        assert packet[20:22] == original[2:4]  # the original sequence number, then the payload
        assert packet[22:] == original[20:]
        assert packet[4:8] == original[4:8]  # the timestamp the receiver saw
    # older than the last two streams: nothing to serve
    assert low.retransmit(dt, [(lost[0] - 10) & 0xFFFF]) == 0
    # over the subscriber's repair budget: only what the limit allows is resent
    assert low.retransmit(dt, lost, limit=1) == 1 and dt.repairs_refused == 1
    assert struct.unpack_from("!H", receiver.srtp.unprotect(receiver.sock.recv(4096)), 20)[0] == lost[0]
