"""A tier's video sent twice: real SRTP, real UDP on loopback, as a subscriber receives it."""

from __future__ import annotations

import struct
import time

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection

from sfu.packet_stream import PacketStream
from sfu.subscriber import Subscriber
from rtc.transport_cc import Feedback
from sfu.video_repeat import SPACING_S, RepeatedTier
from sfu.allocator import LinkInfo, TierAllocation
from sfu.config import SfuConfig
from sfu.downtrack import DownTrack
from tests.sfu.srtp_sessions import PROTECTIONS
from tests.sfu.test_packet_stream import Receiver, frame, wired_downtrack
from tests.waiting import eventually, stays


def repeating_downtrack(receiver: Receiver) -> DownTrack:
    """A wired downtrack; its SRTP protects an index again, as the node's does
    (within the last 1,024: retransmissions too)."""
    return wired_downtrack(receiver, gso=False)


@pytest.fixture(params=PROTECTIONS)
def receiver(request):
    r = Receiver(request.param)
    yield r
    r.close()


def arrivals(receiver: Receiver, count: int) -> list[tuple[int, bool]]:
    """(sequence number, kept by SRTP) of the next ``count`` datagrams: a copy already received is a replay."""
    got = []
    for _ in range(count):
        data = receiver.sock.recv(4096)
        seq = struct.unpack_from("!H", data, 2)[0]
        try:
            receiver.srtp.unprotect(data)
            got.append((seq, True))
        except pylibsrtp.Error:
            got.append((seq, False))
    return got


async def test_each_packet_goes_twice_and_the_receiver_keeps_one_copy(receiver):
    keyframes: list[int] = []
    tier = PacketStream("video", "t/180p", clock_rate=90000)
    repeated = RepeatedTier(tier, lambda: keyframes.append(1))
    dt = repeating_downtrack(receiver)
    repeated.stream.attach(dt, at_keyframe=True)
    assert keyframes  # the join asks the tier's source for a keyframe
    assert len(tier) == 1  # a subscriber of the variant keeps the tier in use
    seq = tier.push_frame(frame(5), 100, 3000, keyframe=True)
    await eventually(lambda: repeated.repeated == 5, what="the first frame's copies (sent from the event loop)")
    seq = tier.push_frame(frame(3), seq, 6000, keyframe=False)
    await eventually(lambda: repeated.repeated == 8, what="the second frame's copies")
    got = arrivals(receiver, 16)
    first = got[0][0]
    ones = [(first + i) & 0xFFFF for i in range(5)]
    twos = [(first + 5 + i) & 0xFFFF for i in range(3)]
    # each frame as it comes, then again a few ms later, under the same numbers
    assert [s for s, _ in got] == ones + ones + twos + twos
    assert [kept for _, kept in got] == [True] * 5 + [False] * 5 + [True] * 3 + [False] * 3
    assert receiver.nothing_more()
    assert repeated.repeated == 8 and repeated.stream.send_errors == 0
    # transport-cc: each second copy is known as the copy of its first, so the one the receiver
    # drops is not read as loss (frames of 5 then 3: first copies, then second copies, in turn)
    start = min(dt.cc.copies.values())  # the keyframe's first packet too: it made the downtrack join
    firsts = [start + i for i in range(5)] + [start + 10 + i for i in range(3)]
    seconds = [start + 5 + i for i in range(5)] + [start + 13 + i for i in range(3)]
    assert dt.cc.copies == dict(zip(seconds, firsts))
    # the variant stands where the tier stands, copies sent or not: a switch between the two keeps its place
    assert (repeated.stream.last_seq, repeated.stream.last_ts) == (tier.last_seq, tier.last_ts) == ((seq - 1) & 0xFFFF, 6000)


async def test_nacks_are_served_and_closing_lets_the_tier_go(receiver):
    tier = PacketStream("video", "t/180p", clock_rate=90000)
    repeated = RepeatedTier(tier, lambda: None)
    dt = repeating_downtrack(receiver)
    repeated.stream.attach(dt, at_keyframe=True)
    tier.push_frame(frame(4), 7, 3000, keyframe=True)
    await eventually(lambda: repeated.repeated == 4, what="the frame's copies")
    got = arrivals(receiver, 8)
    lost = got[2][0]
    assert repeated.stream.retransmit(dt, [lost]) == 1  # both copies lost: a NACK still gets it
    [(seq, _)] = arrivals(receiver, 1)
    assert seq == lost
    repeated.close()
    assert len(tier) == 0 and not tier.taps and dt.stream is None
    tier.push_frame(frame(2), 11, 6000, keyframe=False)
    await stays(lambda: repeated.repeated == 4, 5 * SPACING_S, what="no copy once the variant is closed")
    assert receiver.nothing_more()


async def test_no_copies_while_nobody_receives_the_variant():
    tier = PacketStream("video", "t/180p", clock_rate=90000)
    repeated = RepeatedTier(tier, lambda: None)
    tier.push_frame(frame(3), 0, 3000, keyframe=True)
    await stays(lambda: repeated.repeated == 0, 5 * SPACING_S, what="no copy scheduled")
    assert repeated.stream.last_seq == 2


def repeated_feedback(sub: Subscriber, *, first_lost: int | None = None) -> Feedback:
    """Twenty packets sent twice, as the repeated variant sends them; the receiver kept the first copies
    (all but ``first_lost``, whose second copy it kept) and reports the others as never received."""
    base, now, arrivals = sub.cc.next, time.monotonic(), []
    for i in range(20):
        first = sub.cc.take(now + 0.03 * i, 1200)
        sub.cc.note_copy(sub.cc.take(now + 0.03 * i + 0.01, 1200), first)
        arrival = 100.0 + 0.03 * i
        arrivals += [None, arrival + 0.01] if i == first_lost else [arrival, None]
    return Feedback(sender_ssrc=1, media_ssrc=2, base_seq=base, count=0, arrivals=arrivals)


async def test_the_copy_a_receiver_drops_is_no_loss_and_a_lost_first_copy_is():
    satellite = LinkInfo(downlink_kbps=2000, uplink_kbps=500, rtt_ms=600, loss_pct=2)
    config = SfuConfig(public_url="http://x")
    for first_lost, lossy in ((None, False), (7, True)):
        pc = RTCPeerConnection()
        allocation = TierAllocation(config, satellite, time.monotonic())
        sub = Subscriber("r", "c", pc, allocation, source=None, on_ready=lambda s: None, on_tier=lambda s, t: None)
        try:
            sub._on_transport_feedback(repeated_feedback(sub, first_lost=first_lost))
            # no second copy counted lost; a first copy lost is one the link lost
            assert sub.estimator.loss == pytest.approx(1 / 40 if lossy else 0.0) and not sub.cc.copies
            allocation.on_receiver_report(0.0, 600.0, time.monotonic())  # the receiver's report: nothing lost
            assert allocation.protected == lossy  # the first copy lost: the link is lossy, the copy repaired it
        finally:
            await pc.close()
